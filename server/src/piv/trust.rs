//! The PIV trust anchors (`cards.piv_trust_anchors_file`, a PEM bundle) and the check of the
//! two certificates a card presents: each must chain to an anchor (rustls-webpki builds and
//! checks the path), be valid now, be for its purpose (Card Authentication: id-PIV-cardAuth
//! when an extended key usage is given; PIV Authentication: clientAuth), and name this card —
//! its GUID as a `urn:uuid:` URI in the subject alternative name (read with x509-cert).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use unlock_protocol::CardGuid;
use webpki::{ALL_VERIFICATION_ALGS, EndEntityCert, KeyUsage};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::clock::Millis;

/// id-PIV-cardAuth, 2.16.840.1.101.3.6.8 (NIST SP 800-73-4), as DER content octets.
const PIV_CARD_AUTH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x06, 0x08];

/// The anchors every PIV card certificate must chain to.
pub struct PivTrust {
    anchors: Vec<TrustAnchor<'static>>,
}

impl std::fmt::Debug for PivTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PivTrust({} anchors)", self.anchors.len())
    }
}

/// Which certificate a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    CardAuthentication,
    PivAuthentication,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Self::CardAuthentication => "card authentication certificate",
            Self::PivAuthentication => "PIV authentication certificate",
        }
    }
}

/// Why a presented certificate is refused; the audit trail records it in these words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("{}: not a certificate", .0.name())]
    Malformed(Which),
    #[error("{}: expired or not yet valid", .0.name())]
    Expired(Which),
    #[error("{}: does not chain to a trust anchor ({})", .0.name(), .1)]
    NotTrusted(Which, String),
    #[error("{}: does not name this card", .0.name())]
    OtherCard(Which),
}

/// The public keys of a trusted card's two certificates (SubjectPublicKeyInfo, DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardKeys {
    /// Card Authentication (9E): checks the possession proof.
    pub possession: Vec<u8>,
    /// PIV Authentication (9A): checks the receipt.
    pub receipt: Vec<u8>,
}

impl PivTrust {
    /// The anchors in the PEM file `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("read the PIV trust anchors {}", path.display()))?;
        Self::from_pem(&pem)
            .with_context(|| format!("read the PIV trust anchors {}", path.display()))
    }

    /// The anchors in a PEM bundle: every `CERTIFICATE` in it, at least one.
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let mut anchors = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|error| anyhow::anyhow!("not PEM: {error}"))?;
            let anchor = webpki::anchor_from_trusted_cert(&cert).map_err(|error| {
                anyhow::anyhow!("a certificate that can't be an anchor: {error}")
            })?;
            anchors.push(anchor.to_owned());
        }
        if anchors.is_empty() {
            bail!("no certificate in it");
        }
        Ok(Self { anchors })
    }

    /// Checks the card's two certificates at `now`; their keys if both are trusted and name
    /// the card `guid`.
    pub fn check(
        &self,
        guid: &CardGuid,
        card_authentication: &[u8],
        piv_authentication: &[u8],
        now: Millis,
    ) -> Result<CardKeys, Untrusted> {
        Ok(CardKeys {
            possession: self.check_one(
                guid,
                card_authentication,
                Which::CardAuthentication,
                now,
            )?,
            receipt: self.check_one(guid, piv_authentication, Which::PivAuthentication, now)?,
        })
    }

    fn check_one(
        &self,
        guid: &CardGuid,
        der: &[u8],
        which: Which,
        now: Millis,
    ) -> Result<Vec<u8>, Untrusted> {
        let cert = CertificateDer::from(der);
        let end_entity = EndEntityCert::try_from(&cert).map_err(|_| Untrusted::Malformed(which))?;
        let usage = match which {
            Which::CardAuthentication => KeyUsage::required_if_present(PIV_CARD_AUTH),
            Which::PivAuthentication => KeyUsage::client_auth(),
        };
        let time = UnixTime::since_unix_epoch(Duration::from_millis(
            u64::try_from(now).unwrap_or_default(),
        ));
        end_entity
            .verify_for_usage(
                ALL_VERIFICATION_ALGS,
                &self.anchors,
                &[],
                time,
                usage,
                None,
                None,
            )
            .map_err(|error| match error {
                webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                    Untrusted::Expired(which)
                }
                other => Untrusted::NotTrusted(which, other.to_string()),
            })?;
        card_key(der, guid, which)
    }
}

/// The key (SubjectPublicKeyInfo, DER) of the certificate `der` if it names the card `guid`:
/// what [`PivTrust::check`] reads with x509-cert once webpki has trusted the certificate.
/// Public only for the fuzz targets, which reach it with certificates no CA signed.
#[doc(hidden)]
pub fn card_key(der: &[u8], guid: &CardGuid, which: Which) -> Result<Vec<u8>, Untrusted> {
    let parsed = x509_cert::Certificate::from_der(der).map_err(|_| Untrusted::Malformed(which))?;
    if !names_card(&parsed, guid) {
        return Err(Untrusted::OtherCard(which));
    }
    parsed
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| Untrusted::Malformed(which))
}

/// Whether the certificate's subject alternative name holds `urn:uuid:<guid>`.
fn names_card(cert: &x509_cert::Certificate, guid: &CardGuid) -> bool {
    let Ok(Some((_, names))) = cert.tbs_certificate.get::<SubjectAltName>() else {
        return false;
    };
    let wanted = guid.urn();
    names.0.iter().any(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => uri.as_str().eq_ignore_ascii_case(&wanted),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use unlock_testkit::piv::{Period, TestCa, TestPivCard, new_guid};

    use super::*;

    /// 2026-11-28T09:00:00Z, as the server tests' clock.
    const NOW: Millis = 1_795_856_400_000;

    fn guid(text: &str) -> CardGuid {
        CardGuid::parse(text).unwrap()
    }

    #[test]
    fn a_card_from_the_anchor_is_trusted_and_gives_its_keys() {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let trust = PivTrust::from_pem(ca.cert_pem().as_bytes()).unwrap();
        let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
        let keys = trust
            .check(
                &guid(&card.guid),
                &card.card_authentication_cert,
                &card.piv_authentication_cert,
                NOW,
            )
            .unwrap();
        assert_ne!(keys.possession, keys.receipt);
    }

    #[test]
    fn another_anchor_expiry_another_card_and_swapped_slots_are_refused() {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let trust = PivTrust::from_pem(ca.cert_pem().as_bytes()).unwrap();
        let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
        let id = guid(&card.guid);
        let (cak, pak) = (
            &card.card_authentication_cert,
            &card.piv_authentication_cert,
        );

        let stranger = TestPivCard::issue(
            &TestCa::new("Rogue CA").unwrap(),
            &card.guid,
            Period::Current,
        );
        assert!(matches!(
            trust.check(&id, &stranger.card_authentication_cert, pak, NOW),
            Err(Untrusted::NotTrusted(Which::CardAuthentication, _))
        ));
        let expired = TestPivCard::issue(&ca, &card.guid, Period::Expired);
        assert_eq!(
            trust.check(&id, cak, &expired.piv_authentication_cert, NOW),
            Err(Untrusted::Expired(Which::PivAuthentication))
        );
        assert_eq!(
            trust.check(&guid(&new_guid()), cak, pak, NOW),
            Err(Untrusted::OtherCard(Which::CardAuthentication))
        );
        // The PIV Authentication certificate is not for card authentication, and the other
        // way round.
        assert!(matches!(
            trust.check(&id, pak, cak, NOW),
            Err(Untrusted::NotTrusted(Which::CardAuthentication, _))
        ));
        assert_eq!(
            trust.check(&id, b"junk", pak, NOW),
            Err(Untrusted::Malformed(Which::CardAuthentication))
        );
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        assert!(PivTrust::from_pem(b"").is_err());
        assert!(
            PivTrust::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
