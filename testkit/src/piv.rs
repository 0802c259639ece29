//! PIV credentials for tests, as a card management system issues them: a certification
//! authority (rcgen), and a card's two P-256 key pairs — Card Authentication (9E) and PIV
//! Authentication (9A) — with certificates naming the card's GUID as a `urn:uuid:` URI.
//! Certificates are valid from 2026-01-01 to 2036-01-01 unless made expired (valid through
//! 2026-06-30), so they hold at the server tests' fixed clock and at today's date alike.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, date_time_ymd,
};

/// id-PIV-cardAuth (NIST SP 800-73-4): the extended key usage of a Card Authentication
/// certificate.
pub const PIV_CARD_AUTH_EKU: [u64; 9] = [2, 16, 840, 1, 101, 3, 6, 8, 0];

/// Which of the card's keys a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// 9E: no PIN needed; proves possession.
    CardAuthentication,
    /// 9A: needs the PIN; signs the receipt.
    PivAuthentication,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// 2026-01-01 to 2036-01-01.
    Current,
    /// 2025-01-01 to 2026-06-30: expired at every date the tests run at.
    Expired,
}

/// A certification authority that issues card certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A self-signed root named `name`, with a fresh P-256 key.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2025, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The root certificate, PEM: what the server is given as a trust anchor.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `subject_key` on the card with `guid` (32 hex digits) in `slot`; DER.
    pub fn issue(
        &self,
        guid: &str,
        subject_key: &impl PublicKeyData,
        slot: Slot,
        validity: Validity,
    ) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(match slot {
            Slot::CardAuthentication => "Card Authentication",
            Slot::PivAuthentication => "Jane Doe",
        });
        params.subject_alt_names = vec![SanType::URI(
            urn(guid).try_into().expect("a URN is an IA5 string"),
        )];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match slot {
            Slot::CardAuthentication => {
                ExtendedKeyUsagePurpose::Other(PIV_CARD_AUTH_EKU[..8].to_vec())
            }
            Slot::PivAuthentication => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (date_time_ymd(2026, 1, 1), date_time_ymd(2036, 1, 1)),
            Validity::Expired => (date_time_ymd(2025, 1, 1), date_time_ymd(2026, 6, 30)),
        };
        params
            .signed_by(subject_key, &self.issuer)
            .expect("issue a card certificate")
            .der()
            .to_vec()
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Unlock Test Trust");
    name.push(DnType::CommonName, common_name);
    name
}

/// `urn:uuid:8-4-4-4-12` for 32 hex digits.
pub fn urn(guid: &str) -> String {
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &guid[..8],
        &guid[8..12],
        &guid[12..16],
        &guid[16..20],
        &guid[20..]
    )
}

/// A fresh GUID: 16 random bytes as 32 hex digits.
pub fn new_guid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    /// A card with `guid`, fresh keys, and certificates from `ca`.
    pub fn issue(ca: &TestCa, guid: &str, validity: Validity) -> Self {
        let (card_authentication, card_key) = p256_key();
        let (piv_authentication, piv_key) = p256_key();
        Self {
            guid: guid.to_owned(),
            card_authentication_cert: ca.issue(guid, &card_key, Slot::CardAuthentication, validity),
            piv_authentication_cert: ca.issue(guid, &piv_key, Slot::PivAuthentication, validity),
            card_authentication,
            piv_authentication,
        }
    }

    /// What the card's key in `slot` answers to GENERAL AUTHENTICATE over SHA-256 of
    /// `message`: an ECDSA P-256 signature, DER.
    pub fn sign(&self, slot: Slot, message: &[u8]) -> Vec<u8> {
        let key = match slot {
            Slot::CardAuthentication => &self.card_authentication,
            Slot::PivAuthentication => &self.piv_authentication,
        };
        let signature: Signature = key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// A P-256 key for signing, and the same key as rcgen takes it for a certificate.
fn p256_key() -> (SigningKey, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a card key");
    let signing = SigningKey::from_pkcs8_der(&key.serialize_der()).expect("read the card key");
    (signing, key)
}
