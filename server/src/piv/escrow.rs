//! The escrowed PUK: sealed at rest with the server's key, bound to its card (the card's id is
//! part of what is authenticated, so a sealed PUK copied to another card's row won't open),
//! and a fresh one drawn for every rotation.

use anyhow::Context;
use unlock_protocol::CardId;
use unlock_protocol::piv::Puk;

use crate::secrets::{Keys, random_digits};

/// What a sealed PUK is bound to.
fn purpose(card: &CardId) -> Vec<u8> {
    [b"puk:".as_slice(), card.as_str().as_bytes()].concat()
}

/// Seals `puk` for the card `card`.
pub fn seal(keys: &Keys, card: &CardId, puk: &Puk) -> anyhow::Result<Vec<u8>> {
    keys.seal_as(&purpose(card), puk.as_bytes())
}

/// Opens a PUK sealed for `card`.
pub fn open(keys: &Keys, card: &CardId, sealed: &[u8]) -> anyhow::Result<Puk> {
    let bytes = keys
        .open_as(&purpose(card), sealed)
        .context("open the escrowed PUK")?;
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("the escrowed PUK is damaged"))?;
    Puk::parse(&text).map_err(|_| anyhow::anyhow!("the escrowed PUK is damaged"))
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
