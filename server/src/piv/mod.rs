//! What the server needs for `piv/1` cards: the trust anchors the cards' certificates must
//! chain to ([`trust`]), the check of the signatures the card makes with the keys those
//! certificates name ([`signature`]), and the escrowed PUK ([`escrow`]).

pub mod escrow;
pub mod signature;
pub mod trust;

pub use trust::{CardKeys, PivTrust, Untrusted};
