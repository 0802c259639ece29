//! The card's signatures: ECDSA P-256 (DER, as PIV cards return it) or RSA PKCS#1 v1.5, both
//! over SHA-256 of the message, checked with the public key of the certificate the card
//! presented (its SubjectPublicKeyInfo, DER). RustCrypto does the curve and RSA work.

use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use sha2::Sha256;

/// Smallest RSA modulus accepted, in bytes (RSA-2048).
const MIN_RSA_BYTES: usize = 256;

/// Whether `signature` is the signature of `message` by the key `spki_der` names.
pub fn verifies(spki_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der) {
        return p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|signature| key.verify(message, &signature).is_ok());
    }
    if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(spki_der) {
        use rsa::traits::PublicKeyParts;
        if key.size() < MIN_RSA_BYTES {
            return false;
        }
        let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
        return rsa::pkcs1v15::Signature::try_from(signature)
            .is_ok_and(|signature| key.verify(message, &signature).is_ok());
    }
    false
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    use super::*;

    #[test]
    fn a_p256_signature_verifies_only_for_its_message_and_key() {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let spki = key.verifying_key().to_public_key_der().unwrap().into_vec();
        let signature: p256::ecdsa::Signature = key.sign(b"possession");
        let der = signature.to_der().as_bytes().to_vec();
        assert!(verifies(&spki, b"possession", &der));
        assert!(!verifies(&spki, b"receipt", &der));
        let other = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let other = other
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .into_vec();
        assert!(!verifies(&other, b"possession", &der));
        assert!(!verifies(&spki, b"possession", &der[..der.len() - 1]));
        assert!(!verifies(b"not a key", b"possession", &der));
    }

    #[test]
    fn an_rsa_2048_signature_verifies() {
        use rsa::signature::{SignatureEncoding, Signer as _};
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let spki = rsa::RsaPublicKey::from(&private)
            .to_public_key_der()
            .unwrap()
            .into_vec();
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
        let signature = signer.sign(b"receipt").to_vec();
        assert!(verifies(&spki, b"receipt", &signature));
        assert!(!verifies(&spki, b"possession", &signature));
    }
}
