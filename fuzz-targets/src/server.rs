//! The server's PIV certificate handling: the chain, validity, purpose and GUID check of the
//! two certificates a card presents, and the check of the card's signatures with their keys.

use std::sync::LazyLock;

use unlock_protocol::CardGuid;
use unlock_protocol::piv::{self, NONCE_LEN, Purpose};
use unlock_server::clock::Millis;
use unlock_server::piv::PivTrust;
use unlock_server::piv::signature::verifies;
use unlock_server::piv::trust::{Which, card_key};

use crate::{PIV_GUID, split};

/// The test CA the seed corpus's certificates come from (`tests/seeds.rs` writes both).
pub const TRUST_ANCHOR_PEM: &str = include_str!("../fixtures/piv-ca.pem");

/// 2026-11-28T09:00:00Z, inside the seed certificates' validity (2026 to 2036).
const NOW: Millis = 1_795_856_400_000;

/// The nonce the seed signatures sign, for possession.
pub const SIGNED_NONCE: [u8; NONCE_LEN] = [0x5A; NONCE_LEN];

static TRUST: LazyLock<PivTrust> =
    LazyLock::new(|| PivTrust::from_pem(TRUST_ANCHOR_PEM.as_bytes()).expect("the fixture CA"));

static GUID: LazyLock<CardGuid> = LazyLock::new(|| CardGuid::parse(PIV_GUID).expect("a GUID"));

/// A Card Authentication and a PIV Authentication certificate (see [`split`]), as a card
/// presents them. Mutated certificates rarely get past webpki's signature check, so each is
/// also read as `check` reads a trusted one (x509-cert: the GUID in the subject alternative
/// name, the key); what `check` gives for trusted ones is those keys.
pub fn piv_certificates(data: &[u8]) {
    let (card_authentication, piv_authentication) = split(data);
    let possession = card_key(card_authentication, &GUID, Which::CardAuthentication);
    let receipt = card_key(piv_authentication, &GUID, Which::PivAuthentication);
    if let Ok(keys) = TRUST.check(&GUID, card_authentication, piv_authentication, NOW) {
        assert_eq!(Ok(keys.possession), possession);
        assert_eq!(Ok(keys.receipt), receipt);
    }
}

/// A public key (SubjectPublicKeyInfo, DER) and a signature (see [`split`]) over the
/// possession message for [`SIGNED_NONCE`]; one that verifies verifies for nothing else.
pub fn piv_signature(data: &[u8]) {
    let (key, signature) = split(data);
    if verifies(
        key,
        &piv::message(Purpose::Possession, &SIGNED_NONCE),
        signature,
    ) {
        assert!(!verifies(
            key,
            &piv::message(Purpose::Receipt, &SIGNED_NONCE),
            signature
        ));
    }
}
