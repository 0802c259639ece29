//! The card's two keys, each with the certificate the test CA issued for it, and the signing
//! request GENERAL AUTHENTICATE carries.

use anyhow::Context;
use p256::ecdsa::SigningKey;
use unlock_protocol::piv::{tag, tlv};

use super::PivCardOptions;
use crate::piv_ca::{CardCertificate, PivKey, TestCa};

/// One of the card's keys and its certificate.
#[derive(Clone)]
pub struct KeySlot {
    pub key: SigningKey,
    pub certificate: Vec<u8>,
}

impl KeySlot {
    /// A fresh key, certified by `ca`.
    pub fn new(ca: &TestCa, options: &PivCardOptions, purpose: PivKey) -> anyhow::Result<Self> {
        let key = random_key()?;
        let public_key = p256::PublicKey::from(key.verifying_key());
        let certificate = ca.issue(&CardCertificate {
            guid: &options.guid,
            key: purpose,
            public_key: &public_key,
            validity: options.validity,
        })?;
        Ok(Self { key, certificate })
    }
}

fn random_key() -> anyhow::Result<SigningKey> {
    loop {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).context("random key")?;
        // Fails only for zero or a value past the group order: draw again.
        if let Ok(key) = SigningKey::from_slice(&secret) {
            return Ok(key);
        }
    }
}

/// The digest in `7C { 82 00, 81 20 <digest> }` (in either order), if that is what `data` is.
pub fn signing_request(data: &[u8]) -> Option<[u8; 32]> {
    let elements = tlv::decode(data)?;
    let [(template, inside)] = elements.as_slice() else {
        return None;
    };
    if *template != [tag::DYNAMIC_AUTHENTICATION] {
        return None;
    }
    let members = tlv::decode(inside)?;
    let wants_response = members
        .iter()
        .any(|(t, value)| *t == [tag::RESPONSE] && value.is_empty());
    let challenge = members
        .iter()
        .find(|(t, _)| *t == [tag::CHALLENGE])
        .map(|(_, value)| *value)?;
    if !wants_response || members.len() != 2 {
        return None;
    }
    challenge.try_into().ok()
}
