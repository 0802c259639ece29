//! A PIV card's credentials without the card, for the server's tests: two P-256 key pairs —
//! Card Authentication (9E) and PIV Authentication (9A) — with certificates from a
//! [`TestCa`] naming the card's GUID, and the signatures the card would make. Certificates
//! have fixed dates, so they hold (or have ended) at the server tests' fixed clock and at
//! today's date alike.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use crate::piv_ca::{CardCertificate, Validity};
pub use crate::piv_ca::{PivKey, TestCa};

/// When a card's certificates are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 2026-01-01 to 2036-01-01.
    Current,
    /// 2025-01-01 to 2026-06-30: ended at every date the tests run at.
    Expired,
}

impl Period {
    fn validity(self) -> Validity {
        // Days since 1970-01-01.
        let day = |days: u64| UNIX_EPOCH + Duration::from_secs(days * 86_400);
        let (from, until): (SystemTime, SystemTime) = match self {
            Self::Current => (day(20_454), day(24_106)),
            Self::Expired => (day(20_089), day(20_634)),
        };
        Validity {
            not_before: from,
            not_after: until,
        }
    }
}

/// A fresh GUID: 16 random bytes as 32 hex digits.
pub fn new_guid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("randomness");
    hex::encode(bytes)
}

/// A PIV card's keys and certificates, as the card would hold them.
pub struct TestPivCard {
    /// 32 hex digits.
    pub guid: String,
    card_authentication: SigningKey,
    piv_authentication: SigningKey,
    /// DER.
    pub card_authentication_cert: Vec<u8>,
    pub piv_authentication_cert: Vec<u8>,
}

impl std::fmt::Debug for TestPivCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPivCard")
            .field("guid", &self.guid)
            .finish_non_exhaustive()
    }
}

impl TestPivCard {
    /// A card with `guid` (32 hex digits), fresh keys, and certificates from `ca`.
    pub fn issue(ca: &TestCa, guid: &str, period: Period) -> Self {
        let guid_bytes: [u8; 16] = hex::decode(guid)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .expect("a GUID of 32 hex digits");
        let certify = |key: &SigningKey, purpose: PivKey| {
            ca.issue(&CardCertificate {
                guid: &guid_bytes,
                key: purpose,
                public_key: &p256::PublicKey::from(key.verifying_key()),
                validity: period.validity(),
            })
            .expect("issue a card certificate")
        };
        let card_authentication = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let piv_authentication = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        Self {
            guid: guid.to_owned(),
            card_authentication_cert: certify(&card_authentication, PivKey::CardAuthentication),
            piv_authentication_cert: certify(&piv_authentication, PivKey::PivAuthentication),
            card_authentication,
            piv_authentication,
        }
    }

    /// What the card's key `key` answers to GENERAL AUTHENTICATE over SHA-256 of `message`:
    /// an ECDSA P-256 signature, DER.
    pub fn sign(&self, key: PivKey, message: &[u8]) -> Vec<u8> {
        let key = match key {
            PivKey::CardAuthentication => &self.card_authentication,
            PivKey::PivAuthentication => &self.piv_authentication,
        };
        let signature: Signature = key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}
