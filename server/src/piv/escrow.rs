//! The escrowed PUK: sealed at rest with the PUK escrow key (see [`crate::custody`]), bound
//! to its card (the card's id is part of what is authenticated, so a sealed PUK copied to
//! another card's row won't open), and a fresh one drawn for every rotation.
//!
//! [`seal`] and [`open`] use version 1 of the escrow key in file custody, derived from the
//! server secret — for tools and tests; the service goes through [`crate::custody::Custody`].

use unlock_protocol::CardId;
use unlock_protocol::piv::Puk;

use crate::custody::{open_in_memory, seal_in_memory};
use crate::secrets::{Keys, random_digits};

/// Seals `puk` for the card `card` with the escrow key's version 1 (file custody).
pub fn seal(keys: &Keys, card: &CardId, puk: &Puk) -> anyhow::Result<Vec<u8>> {
    seal_in_memory(keys.escrow_key_v1(), card, puk)
}

/// Opens a PUK sealed for `card` with the escrow key's version 1 (file custody).
pub fn open(keys: &Keys, card: &CardId, sealed: &[u8]) -> anyhow::Result<Puk> {
    open_in_memory(keys.escrow_key_v1(), card, sealed)
}

/// A fresh PUK: 8 digits, uniformly drawn from the OS CSPRNG.
pub fn new_puk() -> anyhow::Result<Puk> {
    let digits = random_digits(unlock_protocol::piv::PUK_LEN)?;
    Puk::parse(&digits).map_err(|_| anyhow::anyhow!("draw a PUK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_puk_opens_only_for_its_card() {
        let keys = Keys::from_secret(&[7; 32]);
        let card = CardId::parse("3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b").unwrap();
        let other = CardId::parse("0f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b").unwrap();
        let puk = Puk::parse("40719263").unwrap();
        let sealed = seal(&keys, &card, &puk).unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"40719263"));
        assert_eq!(open(&keys, &card, &sealed).unwrap(), puk);
        assert!(open(&keys, &other, &sealed).is_err());
        assert!(open(&Keys::from_secret(&[8; 32]), &card, &sealed).is_err());
    }

    #[test]
    fn new_puks_are_eight_digits_and_differ() {
        let (a, b) = (new_puk().unwrap(), new_puk().unwrap());
        assert_eq!(a.expose().len(), 8);
        assert_ne!(a, b);
    }
}
