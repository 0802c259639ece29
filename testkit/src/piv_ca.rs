//! A test certificate authority for PIV cards: it issues the virtual card's Card
//! Authentication (9E) and PIV Authentication (9A) certificates, and its certificate is what a
//! test gives the server as its PIV trust anchor. A second one plays the untrusted issuer.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use p256::pkcs8::DecodePublicKey;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

/// id-PIV-cardAuth (NIST SP 800-73-4, FIPS 201): the extended key usage of a Card
/// Authentication certificate.
pub const ID_PIV_CARD_AUTH: [u64; 8] = [2, 16, 840, 1, 101, 3, 6, 8];

/// Which of the card's keys a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PivKey {
    /// 9E: needs no PIN; proves the card is present.
    CardAuthentication,
    /// 9A: needs the PIN; authenticates the holder.
    PivAuthentication,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// From a day ago (clocks differ) until `days` from now.
    pub fn days_from_now(days: u64) -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now - Duration::from_secs(86_400),
            not_after: now + Duration::from_secs(days * 86_400),
        }
    }

    /// Valid for a month, until yesterday.
    pub fn expired() -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now - Duration::from_secs(31 * 86_400),
            not_after: now - Duration::from_secs(86_400),
        }
    }
}

/// What goes into one of a card's certificates.
#[derive(Debug, Clone, Copy)]
pub struct CardCertificate<'a> {
    /// The card's GUID (the CHUID's), named as `urn:uuid:` in the subject alternative name.
    pub guid: &'a [u8; 16],
    pub key: PivKey,
    pub public_key: &'a p256::PublicKey,
    pub validity: Validity,
}

/// Where a CA's certificate and key live (PEM), for binaries that share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CaFiles {
    /// `NAME-ca.pem` and `NAME-ca.key` in `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            cert: dir.join(format!("{name}-ca.pem")),
            key: dir.join(format!("{name}-ca.key")),
        }
    }
}

/// A certificate authority with an ECDSA P-256 key. `Debug` shows only its certificate's
/// fingerprint.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("sha256", &hex::encode(Sha256::digest(&self.cert_der)))
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA named `name`, valid for ten years.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("make the CA's key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        set_validity(&mut params, Validity::days_from_now(3650));
        let certificate = params
            .self_signed(&key)
            .context("sign the CA certificate")?;
        Self::from_parts(&certificate.pem(), key)
    }

    /// The CA saved at `files` by [`TestCa::save`].
    pub fn load(files: &CaFiles) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read_to_string(&files.cert)
            .with_context(|| format!("read {}", files.cert.display()))?;
        let key_pem = std::fs::read_to_string(&files.key)
            .with_context(|| format!("read {}", files.key.display()))?;
        let key = KeyPair::from_pem(&key_pem).context("read the CA's key")?;
        Self::from_parts(&cert_pem, key)
    }

    /// The CA at `files`, or a new one named `name` saved there if there is none.
    pub fn load_or_create(files: &CaFiles, name: &str) -> anyhow::Result<Self> {
        if files.cert.exists() && files.key.exists() {
            return Self::load(files);
        }
        let ca = Self::new(name)?;
        ca.save(files)?;
        Ok(ca)
    }

    fn from_parts(cert_pem: &str, key: KeyPair) -> anyhow::Result<Self> {
        let cert_der = pem_to_der(cert_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).context("read the CA certificate")?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
            cert_der,
        })
    }

    /// Writes the certificate and the key (PEM) to `files`.
    pub fn save(&self, files: &CaFiles) -> anyhow::Result<()> {
        std::fs::write(&files.cert, &self.cert_pem)
            .with_context(|| format!("write {}", files.cert.display()))?;
        std::fs::write(&files.key, self.issuer.key().serialize_pem())
            .with_context(|| format!("write {}", files.key.display()))
    }

    /// The CA certificate, PEM: the trust anchor a server is given.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a card certificate (DER) for `request`'s key, naming the card by its GUID.
    pub fn issue(&self, request: &CardCertificate<'_>) -> anyhow::Result<Vec<u8>> {
        let guid = unlock_protocol::CardGuid::from_bytes(*request.guid);
        let mut params = CertificateParams::default();
        let purpose = match request.key {
            PivKey::CardAuthentication => "Card Authentication",
            PivKey::PivAuthentication => "PIV Authentication",
        };
        params.distinguished_name = distinguished_name(&format!("Virtual PIV card {purpose}"));
        params.subject_alt_names = vec![SanType::URI(
            guid.urn().try_into().context("the GUID as a URI")?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match request.key {
            PivKey::CardAuthentication => ExtendedKeyUsagePurpose::Other(ID_PIV_CARD_AUTH.to_vec()),
            PivKey::PivAuthentication => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        set_validity(&mut params, request.validity);
        let public_key = CardPublicKey(request.public_key.to_sec1_bytes().to_vec());
        let certificate = params
            .signed_by(&public_key, &self.issuer)
            .context("sign the card certificate")?;
        Ok(certificate.der().to_vec())
    }
}

/// Checks that `signature` (DER ECDSA, as a PIV card returns it) is the P-256 key's in
/// `certificate` over the 32-byte `digest`, taken as it is (a prehash).
pub fn verify_prehash(
    certificate: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
) -> anyhow::Result<()> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let certificate =
        x509_cert::Certificate::from_der(certificate).context("read the certificate")?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .context("the certificate's public key")?;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
        .context("a P-256 public key in the certificate")?;
    let signature = p256::ecdsa::Signature::from_der(signature).context("a DER signature")?;
    key.verify_prehash(digest, &signature)
        .context("the signature does not verify")
}

/// A card's public key as rcgen takes it: the SEC1 point, under ECDSA P-256.
struct CardPublicKey(Vec<u8>);

impl PublicKeyData for CardPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Smartcard unlock tests");
    name.push(DnType::CommonName, common_name);
    name
}

/// A positive 16-byte serial number.
fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).context("random serial number")?;
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    Ok(SerialNumber::from_slice(&serial))
}

/// rcgen takes `time`'s dates; they are reached from the epoch, which it gives.
fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since_epoch = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap_or_default();
    params.not_before = epoch + since_epoch(validity.not_before);
    params.not_after = epoch + since_epoch(validity.not_after);
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let (label, der) = x509_cert::der::pem::decode_vec(pem.as_bytes())
        .map_err(|error| anyhow::anyhow!("read the PEM certificate: {error}"))?;
    anyhow::ensure!(
        label == "CERTIFICATE",
        "expected a certificate, found {label}"
    );
    Ok(der)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

    use super::*;

    const GUID: [u8; 16] = [
        0x3f, 0x2a, 0x9c, 0x1e, 0x5b, 0x7d, 0x4e, 0x8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x5a,
        0x6b,
    ];

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x42; 32]).unwrap()
    }

    fn issue(ca: &TestCa, key: PivKey, validity: Validity) -> x509_cert::Certificate {
        let public_key = p256::PublicKey::from(self::key().verifying_key());
        let der = ca
            .issue(&CardCertificate {
                guid: &GUID,
                key,
                public_key: &public_key,
                validity,
            })
            .unwrap();
        x509_cert::Certificate::from_der(&der).unwrap()
    }

    #[test]
    fn card_certificates_name_the_guid_and_their_purpose() {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let certificate = issue(&ca, PivKey::CardAuthentication, Validity::days_from_now(30));
        let (_, san) = certificate
            .tbs_certificate
            .get::<SubjectAltName>()
            .unwrap()
            .unwrap();
        assert!(
            matches!(&san.0[..], [GeneralName::UniformResourceIdentifier(uri)]
            if uri.as_str() == "urn:uuid:3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")
        );
        let (_, eku) = certificate
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .unwrap()
            .unwrap();
        assert_eq!(eku.0[0].to_string(), "2.16.840.1.101.3.6.8");

        let piv_auth = issue(&ca, PivKey::PivAuthentication, Validity::days_from_now(30));
        let (_, eku) = piv_auth
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .unwrap()
            .unwrap();
        assert_eq!(eku.0[0].to_string(), "1.3.6.1.5.5.7.3.2");
        let ca_cert = x509_cert::Certificate::from_der(ca.cert_der()).unwrap();
        assert_eq!(
            piv_auth.tbs_certificate.issuer,
            ca_cert.tbs_certificate.subject
        );
    }

    #[test]
    fn an_expired_certificate_ended_before_now() {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let certificate = issue(&ca, PivKey::PivAuthentication, Validity::expired());
        let not_after = certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time();
        assert!(not_after < SystemTime::now());
    }

    #[test]
    fn a_saved_ca_loads_and_issues_under_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let files = CaFiles::in_dir(dir.path(), "trusted");
        let ca = TestCa::load_or_create(&files, "Trusted PIV CA").unwrap();
        let again = TestCa::load_or_create(&files, "ignored").unwrap();
        assert_eq!(ca.cert_pem(), again.cert_pem());
        let key_pem = std::fs::read_to_string(&files.key).unwrap();
        assert!(key_pem.contains("PRIVATE KEY"));
        assert!(!format!("{again:?}").contains("PRIVATE"));
        let certificate = issue(
            &again,
            PivKey::CardAuthentication,
            Validity::days_from_now(1),
        );
        let ca_cert = x509_cert::Certificate::from_der(ca.cert_der()).unwrap();
        assert_eq!(
            certificate.tbs_certificate.issuer,
            ca_cert.tbs_certificate.subject
        );
    }

    #[test]
    fn signatures_verify_with_the_certificate_key_and_nothing_else() {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let certificate = issue(&ca, PivKey::CardAuthentication, Validity::days_from_now(30))
            .to_der()
            .unwrap();
        let digest: [u8; 32] = Sha256::digest(b"nonce").into();
        let signature: p256::ecdsa::Signature = key().sign_prehash(&digest).unwrap();
        let der = signature.to_der();
        verify_prehash(&certificate, &digest, der.as_bytes()).unwrap();
        let other: [u8; 32] = Sha256::digest(b"other").into();
        assert!(verify_prehash(&certificate, &other, der.as_bytes()).is_err());
    }
}
