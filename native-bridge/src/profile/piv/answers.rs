//! What each of a PIV card's answers (response data and status word) means, as the bridge's
//! error codes.

use unlock_protocol::CardGuid;
use unlock_protocol::bridge::{BridgeError, ErrorCode};
use unlock_protocol::card_steps::{Certificate, MAX_CERTIFICATE, Signature};
use unlock_protocol::piv::{GUID_LEN, PIN_TRIES, key, sw, tag, tlv};

use crate::errors::fail;
use crate::profile::apdu::Answer;

fn unsupported(why: &str) -> BridgeError {
    BridgeError::with_message(
        ErrorCode::UnsupportedCard,
        format!("This service cannot unlock this card: {why}."),
    )
}

/// `63Cx`: x tries left.
fn tries_in(word: u16) -> Option<u8> {
    (word & 0xFFF0 == sw::TRIES_LEFT_BASE).then_some((word & 0x000F) as u8)
}

pub fn selected((_, word): Answer) -> Result<(), BridgeError> {
    match word {
        sw::OK => Ok(()),
        _ => Err(fail(ErrorCode::UnsupportedCard)),
    }
}

/// The GUID in the CHUID (`53 { … 34 <16 bytes> … }`); a card without one (or with the
/// all-zero GUID of an unpersonalised card) cannot be told apart from others.
pub fn guid((data, word): Answer) -> Result<CardGuid, BridgeError> {
    if word != sw::OK {
        return Err(unsupported("it has no card holder unique identifier"));
    }
    tlv::find(&data, &[tag::DATA])
        .and_then(|body| tlv::find(body, &[tag::GUID]))
        .and_then(|guid| <[u8; GUID_LEN]>::try_from(guid).ok())
        .filter(|guid| guid.iter().any(|byte| *byte != 0))
        .map(CardGuid::from_bytes)
        .ok_or_else(|| unsupported("it has no card GUID"))
}

/// The certificate in a certificate object (`53 { 70 <DER>, 71 <info>, … }`), uncompressed.
pub fn certificate((data, word): Answer) -> Result<Certificate, BridgeError> {
    if word != sw::OK {
        return Err(unsupported("it does not have both PIV certificates"));
    }
    let body =
        tlv::find(&data, &[tag::DATA]).ok_or_else(|| unsupported("a certificate is malformed"))?;
    let certificate = tlv::find(body, &[tag::CERTIFICATE])
        .filter(|certificate| !certificate.is_empty())
        .ok_or_else(|| unsupported("a certificate is missing"))?;
    // CertInfo bit 0: the certificate is gzip-compressed, which PIV allows and few cards do.
    if tlv::find(body, &[tag::CERT_INFO])
        .is_some_and(|info| info.first().is_some_and(|b| b & 1 != 0))
    {
        return Err(unsupported("its certificates are compressed"));
    }
    if certificate.len() > MAX_CERTIFICATE {
        return Err(unsupported("a certificate is too large"));
    }
    Ok(Certificate(certificate.to_vec()))
}

/// PIN tries left (VERIFY without data); 0 when blocked, all of them when verified.
pub fn pin_tries((_, word): Answer) -> Result<u8, BridgeError> {
    match word {
        sw::OK => Ok(PIN_TRIES),
        sw::BLOCKED => Ok(0),
        word => tries_in(word).ok_or_else(|| fail(ErrorCode::UnsupportedCard)),
    }
}

/// PUK tries left (VERIFY P2 `81` without data), when the card tells; many cards don't.
pub fn puk_tries((_, word): Answer) -> Option<u8> {
    match word {
        sw::BLOCKED => Some(0),
        word => tries_in(word),
    }
}

/// What RESET RETRY COUNTER made of one PUK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PukOutcome {
    Accepted,
    /// Wrong; this many tries left.
    Refused(u8),
}

pub fn reset_retry_counter((_, word): Answer) -> Result<PukOutcome, BridgeError> {
    match word {
        sw::OK => Ok(PukOutcome::Accepted),
        sw::BLOCKED => Err(fail(ErrorCode::PukBlocked)),
        // The card's PIN policy refused the new passcode.
        sw::WRONG_DATA => Err(fail(ErrorCode::PasscodeRejected)),
        word => tries_in(word)
            .map(PukOutcome::Refused)
            .ok_or_else(|| fail(ErrorCode::UnsupportedCard)),
    }
}

/// CHANGE REFERENCE DATA of the PUK, from the one the card just accepted.
pub fn puk_changed((_, word): Answer) -> Result<(), BridgeError> {
    match word {
        sw::OK => Ok(()),
        sw::BLOCKED => Err(fail(ErrorCode::PukBlocked)),
        word if tries_in(word).is_some() => Err(fail(ErrorCode::PukRejected)),
        _ => Err(unsupported("it does not take a new PUK")),
    }
}

/// VERIFY with the new PIN.
pub fn pin_verified((_, word): Answer) -> Result<(), BridgeError> {
    match word {
        sw::OK => Ok(()),
        sw::BLOCKED => Err(fail(ErrorCode::PasscodeBlocked)),
        word if tries_in(word).is_some() => Err(fail(ErrorCode::PasscodeRejected)),
        _ => Err(fail(ErrorCode::UnsupportedCard)),
    }
}

/// The signature in GENERAL AUTHENTICATE's answer, `7C { 82 <signature> }`.
pub fn signature((data, word): Answer, key_reference: u8) -> Result<Signature, BridgeError> {
    match word {
        sw::OK => tlv::find(&data, &[tag::DYNAMIC_AUTHENTICATION])
            .and_then(|template| tlv::find(template, &[tag::RESPONSE]))
            .filter(|signature| (1..=512).contains(&signature.len()))
            .map(|signature| Signature(signature.to_vec()))
            .ok_or_else(|| fail(ErrorCode::UnsupportedCard)),
        // 9A signs only after the PIN was verified in this session: the card was reset since.
        sw::SECURITY_NOT_SATISFIED if key_reference == key::PIV_AUTHENTICATION => {
            Err(fail(ErrorCode::CardReset))
        }
        _ => Err(unsupported("it would not sign with its key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: std::fmt::Debug>(result: Result<T, BridgeError>) -> ErrorCode {
        result.unwrap_err().code
    }

    fn chuid(guid: &[u8]) -> Vec<u8> {
        let body = [
            tlv::encode(&[0x30], &[0xD4; 25]),
            tlv::encode(&[0x34], guid),
            tlv::encode(&[0xFE], &[]),
        ]
        .concat();
        tlv::encode(&[0x53], &body)
    }

    #[test]
    fn the_guid_comes_from_the_chuid_and_must_be_there() {
        let read = guid((chuid(&[0x3F; 16]), 0x9000)).unwrap();
        assert_eq!(read.as_str(), "3f".repeat(16));
        assert_eq!(code(guid_of(&chuid(&[0; 16]))), ErrorCode::UnsupportedCard);
        assert_eq!(code(guid_of(&chuid(&[1; 15]))), ErrorCode::UnsupportedCard);
        assert_eq!(code(guid((vec![], 0x6A82))), ErrorCode::UnsupportedCard);
        assert_eq!(
            code(guid((vec![0x53, 0x05, 0x34], 0x9000))),
            ErrorCode::UnsupportedCard
        );
    }

    fn guid_of(chuid: &[u8]) -> Result<CardGuid, BridgeError> {
        guid((chuid.to_vec(), 0x9000))
    }

    fn object(certificate: &[u8], info: u8) -> Vec<u8> {
        let body = [
            tlv::encode(&[0x70], certificate),
            tlv::encode(&[0x71], &[info]),
            tlv::encode(&[0xFE], &[]),
        ]
        .concat();
        tlv::encode(&[0x53], &body)
    }

    #[test]
    fn certificates_must_be_present_uncompressed_and_of_a_sane_size() {
        let der = vec![0x30; 600];
        assert_eq!(
            certificate((object(&der, 0), 0x9000)).unwrap(),
            Certificate(der.clone())
        );
        assert_eq!(
            code(certificate((object(&der, 1), 0x9000))),
            ErrorCode::UnsupportedCard
        );
        assert_eq!(
            code(certificate((object(&[], 0), 0x9000))),
            ErrorCode::UnsupportedCard
        );
        let huge = vec![0x30; MAX_CERTIFICATE + 1];
        assert_eq!(
            code(certificate((object(&huge, 0), 0x9000))),
            ErrorCode::UnsupportedCard
        );
        let missing = certificate((vec![], 0x6A82)).unwrap_err();
        assert_eq!(missing.code, ErrorCode::UnsupportedCard);
        assert!(
            missing.message.contains("certificates"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn tries_read_63cx_blocked_and_verified() {
        assert_eq!(pin_tries((vec![], 0x63C2)).unwrap(), 2);
        assert_eq!(pin_tries((vec![], 0x6983)).unwrap(), 0);
        assert_eq!(pin_tries((vec![], 0x9000)).unwrap(), 3);
        assert_eq!(
            code(pin_tries((vec![], 0x6D00))),
            ErrorCode::UnsupportedCard
        );
        assert_eq!(puk_tries((vec![], 0x63C1)), Some(1));
        assert_eq!(puk_tries((vec![], 0x6983)), Some(0));
        assert_eq!(puk_tries((vec![], 0x6A88)), None, "cards that don't tell");
        assert_eq!(puk_tries((vec![], 0x9000)), None);
    }

    #[test]
    fn each_puk_answer_has_its_meaning() {
        assert_eq!(
            reset_retry_counter((vec![], 0x9000)).unwrap(),
            PukOutcome::Accepted
        );
        assert_eq!(
            reset_retry_counter((vec![], 0x63C2)).unwrap(),
            PukOutcome::Refused(2)
        );
        assert_eq!(
            reset_retry_counter((vec![], 0x63C0)).unwrap(),
            PukOutcome::Refused(0)
        );
        assert_eq!(
            code(reset_retry_counter((vec![], 0x6983))),
            ErrorCode::PukBlocked
        );
        assert_eq!(
            code(reset_retry_counter((vec![], 0x6A80))),
            ErrorCode::PasscodeRejected
        );
        assert_eq!(
            code(reset_retry_counter((vec![], 0x6F00))),
            ErrorCode::UnsupportedCard
        );
        assert!(puk_changed((vec![], 0x9000)).is_ok());
        assert_eq!(code(puk_changed((vec![], 0x63C2))), ErrorCode::PukRejected);
        assert_eq!(code(puk_changed((vec![], 0x6983))), ErrorCode::PukBlocked);
        assert_eq!(
            code(puk_changed((vec![], 0x6A80))),
            ErrorCode::UnsupportedCard
        );
    }

    #[test]
    fn the_new_pin_must_verify() {
        assert!(pin_verified((vec![], 0x9000)).is_ok());
        assert_eq!(
            code(pin_verified((vec![], 0x63C2))),
            ErrorCode::PasscodeRejected
        );
        assert_eq!(
            code(pin_verified((vec![], 0x6983))),
            ErrorCode::PasscodeBlocked
        );
        assert_eq!(
            code(pin_verified((vec![], 0x6A80))),
            ErrorCode::UnsupportedCard
        );
    }

    #[test]
    fn a_signature_comes_out_of_its_template() {
        let answer = tlv::encode(&[0x7C], &tlv::encode(&[0x82], &[0x30, 0x44, 1, 2]));
        assert_eq!(
            signature((answer, 0x9000), 0x9E).unwrap(),
            Signature(vec![0x30, 0x44, 1, 2])
        );
        let empty = tlv::encode(&[0x7C], &tlv::encode(&[0x82], &[]));
        assert_eq!(
            code(signature((empty, 0x9000), 0x9E)),
            ErrorCode::UnsupportedCard
        );
        assert_eq!(
            code(signature((vec![], 0x6982), 0x9A)),
            ErrorCode::CardReset
        );
        assert_eq!(
            code(signature((vec![], 0x6982), 0x9E)),
            ErrorCode::UnsupportedCard
        );
        assert_eq!(
            code(signature((vec![], 0x6A80), 0x9E)),
            ErrorCode::UnsupportedCard
        );
    }
}
