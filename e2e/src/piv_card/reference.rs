//! The PIN and the PUK as the card keeps and checks them, with their retry counters.

use std::fmt;

use anyhow::Context;
use unlock_protocol::piv::{PIN_BLOCK_LEN, pin_block, pin_digits, sw};

/// A PIN or PUK as the card keeps it: the 8-byte block, digits padded with `FF`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reference([u8; PIN_BLOCK_LEN]);

impl Reference {
    /// 6 to 8 ASCII digits, padded with `FF`.
    pub fn parse_block(block: &[u8]) -> Option<Self> {
        let digits = pin_digits(block)?;
        if !(6..=PIN_BLOCK_LEN).contains(&digits.len()) {
            return None;
        }
        block.try_into().ok().map(Self)
    }

    pub fn parse_digits(digits: &str) -> anyhow::Result<Self> {
        pin_block(digits)
            .and_then(|block| Self::parse_block(&block))
            .context("a PIN or PUK is 6 to 8 digits")
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Compares an offered PIN or PUK block with the card's, counting a wrong one: `63Cx` with
/// the tries now left (`63C0` for the one that blocks it), `6983` once blocked.
pub fn check(tries: &mut u8, limit: u8, offered: &[u8], correct: Reference) -> u16 {
    if *tries == 0 {
        return sw::BLOCKED;
    }
    if offered == correct.0 {
        *tries = limit;
        return sw::OK;
    }
    *tries -= 1;
    sw::TRIES_LEFT_BASE | u16::from(*tries)
}

/// `63Cx` while tries are left, `6983` once blocked.
pub fn tries_word(tries: u8) -> u16 {
    if tries == 0 {
        sw::BLOCKED
    } else {
        sw::TRIES_LEFT_BASE | u16::from(tries)
    }
}

/// Two 8-byte blocks, as CHANGE REFERENCE DATA and RESET RETRY COUNTER take them.
pub fn two_blocks(data: &[u8]) -> Option<(&[u8], &[u8])> {
    (data.len() == 2 * PIN_BLOCK_LEN).then(|| data.split_at(PIN_BLOCK_LEN))
}
