//! End-to-end test parts: a virtual `unlock-cr/1` card that plugs into a real `pcscd`
//! through the `vpcd` driver.

pub mod bridge;
pub mod browser;
pub mod card;
pub mod harness;
pub mod journey;
pub mod mail;
pub mod service;
pub mod staff;
pub mod vpcd;
pub mod webdriver;
