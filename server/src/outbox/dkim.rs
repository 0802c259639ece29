//! DKIM signing with the key from `[mail.dkim]`: read once at start-up from a PEM file (RSA
//! or Ed25519), handed to lettre's signer, never printed.

use std::fmt;

use anyhow::{Context, bail};
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig as LettreDkim, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use zeroize::Zeroizing;

use crate::config::Config;

/// The headers signed: what a reader trusts (who, to whom, what, when, which message). Not
/// Content-Type: lettre keeps a multipart message's Content-Type with its body until it is
/// written out, so it would be named in `h=` without being hashed, and every signature would
/// fail (the body hash covers the parts and their boundaries all the same).
const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
];
/// RFC 8301: verifiers refuse RSA keys below 1024 bits; signers must use at least this.
const MIN_RSA_BITS: usize = 2048;

/// Signs messages for one domain with one key.
pub struct DkimSigner {
    config: LettreDkim,
    selector: String,
    domain: String,
    algorithm: &'static str,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("DkimSigner")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// The signer `[mail.dkim]` asks for, if any.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let Some(dkim) = &config.mail.dkim else {
            return Ok(None);
        };
        let path = &dkim.private_key_file;
        let pem = Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
            format!(
                "read the DKIM key file {} (mail.dkim.private_key_file)",
                path.display()
            )
        })?);
        let (key, algorithm) =
            signing_key(&pem).with_context(|| format!("the DKIM key file {}", path.display()))?;
        let domain = config.dkim_domain(dkim)?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect();
        let relaxed = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        Ok(Some(Self {
            config: LettreDkim::new(dkim.selector.clone(), domain.clone(), key, headers, relaxed),
            selector: dkim.selector.clone(),
            domain,
            algorithm,
        }))
    }

    /// Adds the `DKIM-Signature` header.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }

    /// What the start-up log says about signing.
    pub fn describe(&self) -> String {
        format!(
            "{} key, selector {}, domain {}",
            self.algorithm, self.selector, self.domain
        )
    }
}

/// The key in a PEM file, as lettre wants it: RSA as PKCS#1 PEM, Ed25519 as its 32-byte
/// seed in base64. Errors never quote the file.
fn signing_key(pem: &str) -> anyhow::Result<(DkimSigningKey, &'static str)> {
    let rsa =
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            Some(rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| {
                anyhow::anyhow!("it is not a readable RSA private key (PKCS#1 PEM)")
            })?)
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem).ok()
        } else {
            bail!("it holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\")");
        };
    if let Some(rsa) = rsa {
        let bits = rsa.size() * 8;
        if bits < MIN_RSA_BITS {
            bail!("its RSA key has {bits} bits; DKIM needs at least {MIN_RSA_BITS}");
        }
        let pkcs1 = rsa
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map_err(|_| anyhow::anyhow!("its RSA key could not be re-encoded"))?;
        let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|_| anyhow::anyhow!("its RSA key was refused"))?;
        return Ok((key, "RSA"));
    }
    let ed25519 = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|_| {
        anyhow::anyhow!("it is neither an RSA nor an Ed25519 private key (PKCS#8 PEM)")
    })?;
    let seed = Zeroizing::new(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        ed25519.to_bytes(),
    ));
    let key = DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
        .map_err(|_| anyhow::anyhow!("its Ed25519 key was refused"))?;
    Ok((key, "Ed25519"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;

    #[test]
    fn ed25519_and_rsa_pem_keys_are_read_and_others_refused_without_echo() {
        let ed = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let pem = ed.to_pkcs8_pem(Default::default()).unwrap();
        assert_eq!(signing_key(&pem).unwrap().1, "Ed25519");

        let small = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let small_pem = small.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        let error = format!("{:#}", signing_key(&small_pem).err().unwrap());
        assert!(error.contains("1024 bits"), "{error}");

        let garbage =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n";
        let error = format!("{:#}", signing_key(garbage).err().unwrap());
        assert!(error.contains("neither"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
        assert!(signing_key("hello").is_err());
    }

    #[test]
    fn the_signer_reads_its_key_file_and_never_prints_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dkim.pem");
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]);
        let pem = key.to_pkcs8_pem(Default::default()).unwrap();
        std::fs::write(&file, pem.as_bytes()).unwrap();
        let mut config = Config::default();
        config.mail.dkim = Some(crate::config::DkimConfig {
            selector: "unlock2026".into(),
            domain: None,
            private_key_file: file.clone(),
        });
        let signer = DkimSigner::from_config(&config).unwrap().unwrap();
        assert_eq!(
            signer.describe(),
            "Ed25519 key, selector unlock2026, domain unlock.invalid"
        );
        let printed = format!("{signer:?} {config:?}");
        let seed = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0x5a; 32]);
        for secret in [&seed[..12], "90, 90, 90", "5a5a5a", "PRIVATE KEY"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        // A missing file is named, and so is a file that holds no key; neither is quoted.
        std::fs::write(&file, "not a key but a secret 123456").unwrap();
        let error = format!("{:#}", DkimSigner::from_config(&config).unwrap_err());
        assert!(
            error.contains("dkim.pem") && !error.contains("123456"),
            "{error}"
        );
        std::fs::remove_file(&file).unwrap();
        let error = format!("{:#}", DkimSigner::from_config(&config).unwrap_err());
        assert!(error.contains("mail.dkim.private_key_file"), "{error}");
    }
}
