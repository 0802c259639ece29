//! The card steps, whatever the card's profile: **present** (what the bridge read from the
//! card), **challenge** (what the server asks the card), **proof** (the card's answer),
//! **release** (what the server lets the card have) and **receipt** (the card's word that it
//! was unlocked). Each is one enum with a variant per profile, tagged by `"profile"`; the page
//! carries each from the bridge to the server or back without looking inside.
//!
//! | step | `unlock-cr/1` | `piv/1` |
//! |---|---|---|
//! | present | serial | GUID, both certificates, PUK tries left |
//! | challenge | (the card draws its own) | a possession nonce for key 9E |
//! | proof | the card's challenge | the 9E signature |
//! | release | the cryptogram | the PUK candidates, the next PUK, a receipt nonce |
//! | receipt | the card's receipt | the 9A signature (made after the new PIN was verified) |

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bridge::Block;
use crate::piv::{NONCE_LEN, Puk};
use crate::{CardGuid, CardId, CardSerial, card_profile, piv};

/// Every profile this version knows, in the order the bridge tries them.
pub const PROFILES: [&str; 2] = [card_profile::PROFILE, piv::PROFILE];

/// Most PUK candidates one release carries: the pending next PUK (in case the card was
/// rotated to it but its receipt never arrived) and the current one.
pub const MAX_PUK_CANDIDATES: usize = 2;

/// Present: the card in the reader, as the bridge read it. `POST /api/journey/card`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "profile", deny_unknown_fields)]
pub enum CardIdentity {
    #[serde(rename = "unlock-cr/1")]
    UnlockCr { serial: CardSerial },
    #[serde(rename = "piv/1")]
    Piv {
        /// From the CHUID.
        guid: CardGuid,
        /// The Card Authentication certificate (key 9E), DER.
        card_authentication: Certificate,
        /// The PIV Authentication certificate (key 9A), DER.
        piv_authentication: Certificate,
        /// PUK tries left, when the card tells (0: blocked, only the RA can help).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        puk_tries_left: Option<u8>,
    },
}

impl CardIdentity {
    /// The profile's name.
    pub fn profile(&self) -> &'static str {
        match self {
            Self::UnlockCr { .. } => card_profile::PROFILE,
            Self::Piv { .. } => piv::PROFILE,
        }
    }

    /// How the service names this card.
    pub fn card_id(&self) -> CardId {
        match self {
            Self::UnlockCr { serial } => serial.clone().into(),
            Self::Piv { guid, .. } => guid.clone().into(),
        }
    }
}

/// Challenge: what the server asks of the accepted card, in the answer to present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "profile", deny_unknown_fields)]
pub enum CardChallenge {
    /// Ask the card with this serial for a fresh challenge of its own.
    #[serde(rename = "unlock-cr/1")]
    UnlockCr { serial: CardSerial },
    /// Sign this nonce with the Card Authentication key of the card with this GUID.
    #[serde(rename = "piv/1")]
    Piv { guid: CardGuid, nonce: Nonce },
}

/// Proof: the card's answer to the challenge. `POST /api/journey/card/release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "profile", deny_unknown_fields)]
pub enum CardProof {
    /// The card's fresh challenge, which the cryptogram must answer.
    #[serde(rename = "unlock-cr/1")]
    UnlockCr { challenge: Block },
    /// The Card Authentication key's signature over the possession nonce.
    #[serde(rename = "piv/1")]
    Piv { signature: Signature },
}

/// Release: what the server lets the card have, once the proof checked out. `Debug` hides
/// the secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "profile", deny_unknown_fields)]
pub enum CardRelease {
    /// The cryptogram the card needs to accept the unblock.
    #[serde(rename = "unlock-cr/1")]
    UnlockCr {
        serial: CardSerial,
        cryptogram: Block,
    },
    /// Unblock with the first PUK the card accepts, rotate the PUK to `next_puk` at once,
    /// verify the new PIN and sign `receipt_nonce` with the PIV Authentication key.
    #[serde(rename = "piv/1")]
    Piv {
        guid: CardGuid,
        /// The PUKs the card may have, most likely first (at most
        /// [`MAX_PUK_CANDIDATES`]).
        puks: Vec<Puk>,
        next_puk: Puk,
        receipt_nonce: Nonce,
    },
}

/// Receipt: the card's proof that it was unblocked. `POST /api/journey/card/receipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "profile", deny_unknown_fields)]
pub enum CardReceipt {
    #[serde(rename = "unlock-cr/1")]
    UnlockCr { receipt: Block },
    /// The PIV Authentication key's signature over the receipt nonce.
    #[serde(rename = "piv/1")]
    Piv { signature: Signature },
}

/// Bytes written as lower-case hex, at most `MAX` of them.
fn parse_hex<const MAX: usize>(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > 2 * MAX {
        return Err(format!("expected 1 to {MAX} bytes as hex digits"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            // from_str_radix alone would take a sign: "+c" as 0x0c.
            text.get(i..i + 2)
                .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "expected hex digits".to_owned())
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A server nonce: 32 random bytes as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, description = "32 bytes as 64 hex digits.")
)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce(pub [u8; NONCE_LEN]);

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonce(***)")
    }
}

impl TryFrom<String> for Nonce {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        parse_hex::<NONCE_LEN>(&value)?
            .try_into()
            .map(Self)
            .map_err(|_| format!("expected {NONCE_LEN} bytes as hex digits"))
    }
}

impl From<Nonce> for String {
    fn from(value: Nonce) -> Self {
        to_hex(&value.0)
    }
}

/// A card's signature as it returned it (ECDSA: DER; RSA: the raw 256 bytes), as hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, description = "The card's signature, as hex digits.")
)]
#[serde(try_from = "String", into = "String")]
pub struct Signature(pub Vec<u8>);

/// Largest signature: RSA-4096.
const MAX_SIGNATURE: usize = 512;

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for Signature {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        parse_hex::<MAX_SIGNATURE>(&value).map(Self)
    }
}

impl From<Signature> for String {
    fn from(value: Signature) -> Self {
        to_hex(&value.0)
    }
}

/// An X.509 certificate, DER, as hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, description = "An X.509 certificate (DER) as hex digits.")
)]
#[serde(try_from = "String", into = "String")]
pub struct Certificate(pub Vec<u8>);

/// Largest certificate a card object holds in practice (an RSA-2048 certificate is ~1.2 KB).
pub const MAX_CERTIFICATE: usize = 3 * 1024;

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for Certificate {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        parse_hex::<MAX_CERTIFICATE>(&value).map(Self)
    }
}

impl From<Certificate> for String {
    fn from(value: Certificate) -> Self {
        to_hex(&value.0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn guid() -> CardGuid {
        CardGuid::parse("3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b").unwrap()
    }

    #[test]
    fn each_step_is_tagged_by_its_profile() {
        let present = CardIdentity::Piv {
            guid: guid(),
            card_authentication: Certificate(vec![0x30, 0x82]),
            piv_authentication: Certificate(vec![0x30, 0x81]),
            puk_tries_left: Some(3),
        };
        let value = serde_json::to_value(&present).unwrap();
        assert_eq!(
            value,
            json!({"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                   "card_authentication": "3082", "piv_authentication": "3081",
                   "puk_tries_left": 3})
        );
        assert_eq!(
            serde_json::from_value::<CardIdentity>(value).unwrap(),
            present
        );
        assert_eq!(present.card_id().as_str(), guid().as_str());

        let unlock_cr = json!({"profile": "unlock-cr/1", "serial": "2d6bddb8ad096c2d"});
        let read: CardIdentity = serde_json::from_value(unlock_cr.clone()).unwrap();
        assert_eq!(read.profile(), "unlock-cr/1");
        assert_eq!(serde_json::to_value(&read).unwrap(), unlock_cr);
    }

    #[test]
    fn unknown_profiles_fields_and_malformed_values_are_refused() {
        for bad in [
            json!({"profile": "piv/2", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b"}),
            json!({"serial": "2d6bddb8ad096c2d"}),
            json!({"profile": "unlock-cr/1", "serial": "2d6bddb8ad096c2d", "extra": 1}),
            json!({"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                   "card_authentication": "308", "piv_authentication": "3081"}),
            json!({"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                   "card_authentication": "zz", "piv_authentication": "3081"}),
            json!({"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                   "card_authentication": "ab".repeat(MAX_CERTIFICATE + 1),
                   "piv_authentication": "3081"}),
        ] {
            assert!(
                serde_json::from_value::<CardIdentity>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        for signature in ["", "+c", "30+5"] {
            assert!(
                serde_json::from_value::<CardProof>(
                    json!({"profile": "piv/1", "signature": signature})
                )
                .is_err(),
                "{signature}"
            );
        }
        assert!(
            serde_json::from_value::<CardChallenge>(json!({"profile": "piv/1",
            "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b", "nonce": "00"}))
            .is_err()
        );
    }

    #[test]
    fn a_release_hides_its_secrets_in_debug() {
        let release = CardRelease::Piv {
            guid: guid(),
            puks: vec![Puk::parse("40719263").unwrap()],
            next_puk: Puk::parse("88120457").unwrap(),
            receipt_nonce: Nonce([0x5A; 32]),
        };
        let printed = format!("{release:?}");
        assert!(
            !printed.contains("40719263")
                && !printed.contains("88120457")
                && !printed.contains("5a5a"),
            "{printed}"
        );
        let value = serde_json::to_value(&release).unwrap();
        assert_eq!(value["puks"], json!(["40719263"]));
        assert_eq!(value["receipt_nonce"], "5a".repeat(32));
        assert_eq!(
            serde_json::from_value::<CardRelease>(value).unwrap(),
            release
        );
    }
}
