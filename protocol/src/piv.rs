//! The `piv/1` card profile (NIST SP 800-73-4 PIV: YubiKey 5 and PIV-class smartcards): the
//! commands the bridge sends and the virtual PIV card answers, the BER-TLV framing of PIV
//! data objects, the PUK as the server escrows it, and what the card signs.
//!
//! The card proves possession of its Card Authentication key (9E) by signing a digest of the
//! server's nonce; once unblocked with its escrowed PUK and given the new PIN, it signs a
//! digest of the server's receipt nonce with its PIV Authentication key (9A), which it can
//! only do after the new PIN was verified.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// The profile's name, as the bridge reports it.
pub const PROFILE: &str = "piv/1";

/// The PIV application's identifier (NIST RID `A0 00 00 03 08`, PIX `00 00 10 00`); cards
/// answer SELECT by it with their Application Property Template.
pub const AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// Bytes in a card's GUID (the CHUID's tag `34`), a PUK, and a PIN block.
pub const GUID_LEN: usize = 16;
pub const PUK_LEN: usize = 8;
pub const PIN_BLOCK_LEN: usize = 8;
/// Bytes in a server nonce, possession or receipt.
pub const NONCE_LEN: usize = 32;

/// PIN and PUK tries a card starts with (YubiKey's defaults).
pub const PIN_TRIES: u8 = 3;
pub const PUK_TRIES: u8 = 3;

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCB;
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GET_RESPONSE: u8 = 0xC0;
}

/// Key references: the PIN and PUK (P2 of VERIFY, CHANGE REFERENCE DATA, RESET RETRY
/// COUNTER), and the two keys (P2 of GENERAL AUTHENTICATE).
pub mod key {
    pub const PIN: u8 = 0x80;
    pub const PUK: u8 = 0x81;
    /// PIV Authentication: needs the PIN; signs the receipt.
    pub const PIV_AUTHENTICATION: u8 = 0x9A;
    /// Card Authentication: needs no PIN; proves possession.
    pub const CARD_AUTHENTICATION: u8 = 0x9E;
}

/// Cryptographic mechanism identifiers (P1 of GENERAL AUTHENTICATE).
pub mod algorithm {
    pub const RSA_2048: u8 = 0x07;
    pub const ECC_P256: u8 = 0x11;
}

/// Data object tags (the value of `5C` in GET DATA).
pub mod object {
    pub const CHUID: [u8; 3] = [0x5F, 0xC1, 0x02];
    pub const CARD_AUTHENTICATION_CERT: [u8; 3] = [0x5F, 0xC1, 0x01];
    pub const PIV_AUTHENTICATION_CERT: [u8; 3] = [0x5F, 0xC1, 0x05];
    pub const DIGITAL_SIGNATURE_CERT: [u8; 3] = [0x5F, 0xC1, 0x0A];
    pub const KEY_MANAGEMENT_CERT: [u8; 3] = [0x5F, 0xC1, 0x0B];
    pub const CAPABILITY_CONTAINER: [u8; 3] = [0x5F, 0xC1, 0x07];
    pub const DISCOVERY: [u8; 1] = [0x7E];
}

/// BER-TLV tags inside data objects and GENERAL AUTHENTICATE templates.
pub mod tag {
    /// The envelope every data object comes in.
    pub const DATA: u8 = 0x53;
    /// GET DATA's tag list.
    pub const TAG_LIST: u8 = 0x5C;
    /// CHUID members.
    pub const FASC_N: u8 = 0x30;
    pub const GUID: u8 = 0x34;
    pub const EXPIRATION: u8 = 0x35;
    pub const ISSUER_SIGNATURE: u8 = 0x3E;
    pub const ERROR_DETECTION: u8 = 0xFE;
    /// Certificate object members.
    pub const CERTIFICATE: u8 = 0x70;
    pub const CERT_INFO: u8 = 0x71;
    /// GENERAL AUTHENTICATE's dynamic authentication template and its members.
    pub const DYNAMIC_AUTHENTICATION: u8 = 0x7C;
    pub const RESPONSE: u8 = 0x82;
    pub const CHALLENGE: u8 = 0x81;
    /// SELECT's answer: Application Property Template and its members.
    pub const APPLICATION_PROPERTY_TEMPLATE: u8 = 0x61;
    pub const APPLICATION_IDENTIFIER: u8 = 0x4F;
    pub const COEXISTENT_TAG_ALLOCATION_AUTHORITY: u8 = 0x79;
    pub const APPLICATION_LABEL: u8 = 0x50;
    pub const ALGORITHMS_SUPPORTED: u8 = 0xAC;
    pub const ALGORITHM_IDENTIFIER: u8 = 0x80;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    /// Discovery object members.
    pub const PIN_USAGE_POLICY: [u8; 2] = [0x5F, 0x2F];
}

/// Status words (ISO/IEC 7816-4's).
pub use crate::iso7816::sw;

/// BER-TLV as PIV data objects use it: tags of one to three bytes, definite lengths of up
/// to three bytes (`82 xx xx`), no constructed-tag parsing beyond what the caller asks.
pub mod tlv {
    /// `tag ‖ length ‖ value`.
    pub fn encode(tag: &[u8], value: &[u8]) -> Vec<u8> {
        let mut out = tag.to_vec();
        let length = value.len();
        match length {
            0..=0x7F => out.push(length as u8),
            0x80..=0xFF => out.extend([0x81, length as u8]),
            _ => out.extend([0x82, (length >> 8) as u8, length as u8]),
        }
        out.extend_from_slice(value);
        out
    }

    /// The elements of `data` in order, as `(tag, value)`; `None` if any is malformed or
    /// runs past the end.
    pub fn decode(mut data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
        let mut elements = Vec::new();
        while !data.is_empty() {
            let (tag, value, rest) = split_first(data)?;
            elements.push((tag, value));
            data = rest;
        }
        Some(elements)
    }

    /// The value of the first element tagged `tag` directly in `data`.
    pub fn find<'a>(data: &'a [u8], tag: &[u8]) -> Option<&'a [u8]> {
        decode(data)?
            .into_iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, value)| value)
    }

    /// The first element of `data`: its tag, its value, and what follows it.
    fn split_first(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        // Multi-byte tags: a first byte with the low five bits set, then bytes with the high
        // bit set until one without.
        let mut tag_len = 1;
        if data.first()? & 0x1F == 0x1F {
            while data.get(tag_len)? & 0x80 != 0 {
                tag_len += 1;
            }
            tag_len += 1;
        }
        if tag_len > 3 {
            return None;
        }
        let (tag, rest) = data.split_at_checked(tag_len)?;
        let (length, rest) = match *rest.first()? {
            short @ 0..=0x7F => (usize::from(short), &rest[1..]),
            0x81 => (usize::from(*rest.get(1)?), &rest[2..]),
            0x82 => (
                usize::from(u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?])),
                &rest[3..],
            ),
            _ => return None,
        };
        let (value, rest) = rest.split_at_checked(length)?;
        Some((tag, value, rest))
    }
}

/// The PIN as a PIV card takes it: ASCII digits padded with `FF` to 8 bytes (the same block
/// as `unlock-cr/1`'s).
pub use crate::card_profile::{pin_block, pin_digits};

/// A PIV card's PUK: 8 ASCII digits (YubiKey 5.7+ takes only bytes below `0x80`). The server
/// escrows it sealed, releases it only against a proof of possession, and the bridge rotates
/// it at once. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "40719263")
)]
#[serde(try_from = "String", into = "String")]
pub struct Puk(String);

/// Why a string is not a PUK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PukError {
    #[error("A PUK is 8 numbers")]
    Format,
}

impl Puk {
    pub fn parse(raw: &str) -> Result<Self, PukError> {
        if raw.len() == PUK_LEN && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PukError::Format)
        }
    }

    /// The 8 bytes the card compares.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The digits; keep them out of logs and errors.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Puk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Puk(***)")
    }
}

impl TryFrom<String> for Puk {
    type Error = PukError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Puk> for String {
    fn from(value: Puk) -> Self {
        value.0.clone()
    }
}

impl Drop for Puk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// What the card signs to prove possession (9E) and to confirm the unlock (9A): a
/// domain-separated message, so a signature made for one purpose can't stand for the other.
pub fn message(purpose: Purpose, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    [purpose.label(), nonce].concat()
}

/// Why the card signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// With the Card Authentication key, before any PUK is released.
    Possession,
    /// With the PIV Authentication key, after the new PIN was verified.
    Receipt,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Possession => b"smartcard-unlock piv/1 possession\0",
            Self::Receipt => b"smartcard-unlock piv/1 receipt\0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_round_trips_short_and_long_lengths() {
        for length in [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x4A2] {
            let value = vec![0xA5; length];
            let encoded = tlv::encode(&object::CHUID, &value);
            let decoded = tlv::decode(&encoded).unwrap();
            assert_eq!(decoded, vec![(&object::CHUID[..], &value[..])], "{length}");
        }
        let two = [tlv::encode(&[0x34], &[1; 16]), tlv::encode(&[0xFE], &[])].concat();
        assert_eq!(tlv::find(&two, &[0x34]), Some(&[1u8; 16][..]));
        assert_eq!(tlv::find(&two, &[0xFE]), Some(&[][..]));
        assert_eq!(tlv::find(&two, &[0x35]), None);
    }

    #[test]
    fn tlv_refuses_what_runs_past_the_end() {
        for bad in [
            &[0x53, 0x05, 1, 2][..],
            &[0x53, 0x81][..],
            &[0x53, 0x82, 0x01][..],
            &[0x53, 0x83, 0, 0, 1, 0][..],
            &[0x5F][..],
            &[0x5F, 0xC1][..],
            &[0x5F, 0xC1, 0x81, 0x81, 0x00][..],
        ] {
            assert_eq!(tlv::decode(bad), None, "{bad:02x?}");
        }
    }

    #[test]
    fn puks_are_eight_digits_and_hidden_in_debug() {
        let puk = Puk::parse("40719263").unwrap();
        assert_eq!(puk.as_bytes(), b"40719263");
        assert_eq!(format!("{puk:?}"), "Puk(***)");
        for bad in ["", "4071926", "407192631", "4071926a", "４０７１９２６３"] {
            assert_eq!(Puk::parse(bad), Err(PukError::Format), "{bad}");
        }
        let json = serde_json::to_string(&puk).unwrap();
        assert_eq!(json, "\"40719263\"");
        assert!(serde_json::from_str::<Puk>("\"1234\"").is_err());
    }

    #[test]
    fn possession_and_receipt_messages_differ_for_one_nonce() {
        let nonce = [7; NONCE_LEN];
        assert_ne!(
            message(Purpose::Possession, &nonce),
            message(Purpose::Receipt, &nonce)
        );
        assert!(message(Purpose::Receipt, &nonce).ends_with(&nonce));
    }
}
