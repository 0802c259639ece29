//! The card's key behind a certificate, and what GENERAL AUTHENTICATE is given to sign with
//! it: ECDSA P-256 signs the SHA-256 digest as it is; RSA-2048 signs raw, so the card is given
//! the PKCS #1 v1.5 block of the digest's DigestInfo (RFC 8017 §9.2).

use unlock_protocol::bridge::{BridgeError, ErrorCode};
use unlock_protocol::card_steps::Certificate;
use unlock_protocol::piv::algorithm;
use x509_cert::der::asn1::{ObjectIdentifier, UintRef};
use x509_cert::der::{Decode, Reader, SliceReader};

/// id-ecPublicKey and its named curve P-256 (RFC 5480), and rsaEncryption (RFC 8017).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// DigestInfo for SHA-256, before the digest (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const RSA_2048_BYTES: usize = 256;

/// The kinds of key the bridge can have a card sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcP256,
    Rsa2048,
}

impl KeyKind {
    /// The key in `certificate`'s SubjectPublicKeyInfo.
    pub fn of(certificate: &Certificate) -> Result<Self, BridgeError> {
        let unsupported = |why: &str| {
            BridgeError::with_message(
                ErrorCode::UnsupportedCard,
                format!("This service cannot unlock this card: {why}."),
            )
        };
        let certificate = x509_cert::Certificate::from_der(&certificate.0)
            .map_err(|_| unsupported("its certificate could not be read"))?;
        let key = &certificate.tbs_certificate.subject_public_key_info;
        match key.algorithm.oid {
            ID_EC_PUBLIC_KEY => {
                let curve = key
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(SECP256R1) => Ok(Self::EcP256),
                    _ => Err(unsupported(
                        "its key is on an elliptic curve other than P-256",
                    )),
                }
            }
            RSA_ENCRYPTION => match rsa_modulus_bytes(key.subject_public_key.raw_bytes()) {
                Some(RSA_2048_BYTES) => Ok(Self::Rsa2048),
                _ => Err(unsupported("its RSA key is not 2048 bits")),
            },
            _ => Err(unsupported("its key is neither ECDSA P-256 nor RSA-2048")),
        }
    }

    /// P1 of GENERAL AUTHENTICATE.
    pub fn algorithm(self) -> u8 {
        match self {
            Self::EcP256 => algorithm::ECC_P256,
            Self::Rsa2048 => algorithm::RSA_2048,
        }
    }

    /// What the card is given to sign for a SHA-256 `digest`.
    pub fn signing_input(self, digest: &[u8; 32]) -> Vec<u8> {
        match self {
            Self::EcP256 => digest.to_vec(),
            Self::Rsa2048 => {
                let padding = RSA_2048_BYTES - 3 - SHA256_DIGEST_INFO.len() - digest.len();
                [
                    &[0x00, 0x01][..],
                    &vec![0xFF; padding],
                    &[0x00],
                    &SHA256_DIGEST_INFO,
                    digest,
                ]
                .concat()
            }
        }
    }
}

/// Bytes in the modulus of an RSAPublicKey (`SEQUENCE { modulus INTEGER, publicExponent
/// INTEGER }`, RFC 8017 A.1.1).
fn rsa_modulus_bytes(public_key: &[u8]) -> Option<usize> {
    let mut reader = SliceReader::new(public_key).ok()?;
    reader
        .sequence(|sequence| {
            let modulus = UintRef::decode(sequence)?;
            UintRef::decode(sequence)?;
            Ok(modulus.as_bytes().len())
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use sha2::{Digest, Sha256};
    use unlock_e2e::piv_ca::{PivKey, TestCa};
    use unlock_e2e::piv_card::{PivCardOptions, VirtualPivCard};

    use super::*;

    fn ec_certificate() -> Certificate {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let card = VirtualPivCard::new(&PivCardOptions::new([1; 16]), &ca).unwrap();
        Certificate(card.certificate(PivKey::CardAuthentication).to_vec())
    }

    #[test]
    fn an_ecdsa_p256_certificate_means_algorithm_11_and_the_digest_as_it_is() {
        let kind = KeyKind::of(&ec_certificate()).unwrap();
        assert_eq!(kind, KeyKind::EcP256);
        assert_eq!(kind.algorithm(), 0x11);
        assert_eq!(kind.signing_input(&[9; 32]), [9; 32]);
    }

    #[test]
    fn the_rsa_block_is_what_pkcs1_v15_verifies() {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let digest: [u8; 32] = Sha256::digest(b"receipt").into();
        let block = KeyKind::Rsa2048.signing_input(&digest);
        assert_eq!(block.len(), 256);
        // What a card does with it: the raw RSA private operation.
        let raw = rsa::hazmat::rsa_decrypt_and_check(
            &key,
            Some(&mut rsa::rand_core::OsRng),
            &rsa::BigUint::from_bytes_be(&block),
        )
        .unwrap();
        let raw = raw.to_bytes_be();
        let signature = [vec![0; 256 - raw.len()], raw].concat();
        let signature = Signature::try_from(&signature[..]).unwrap();
        VerifyingKey::<Sha256>::new(key.to_public_key())
            .verify(b"receipt", &signature)
            .unwrap();
        assert_eq!(
            rsa_modulus_bytes(key.to_public_key().to_pkcs1_der().unwrap().as_bytes()),
            Some(256)
        );
    }

    #[test]
    fn what_is_not_a_certificate_is_an_unsupported_card() {
        let error = KeyKind::of(&Certificate(vec![0x30, 0x03, 0x02, 0x01, 0x00])).unwrap_err();
        assert_eq!(error.code, ErrorCode::UnsupportedCard);
        assert_eq!(rsa_modulus_bytes(&[0x30, 0x01]), None);
    }
}
