//! End-to-end test parts: virtual `unlock-cr/1` and `piv/1` cards that plug into a real
//! `pcscd` through the `vpcd` driver, the test CA that issues the PIV card's certificates, and
//! the harness that starts them.

pub mod bridge;
pub mod browser;
pub mod card;
pub mod harness;
pub mod journey;
pub mod mail;
/// The test CA that issues the virtual PIV card's certificates (shared with the server's
/// tests).
pub use unlock_testkit::piv_ca;
pub mod piv_card;
pub mod service;
pub mod staff;
pub mod vpcd;
pub mod webdriver;
