//! The `piv/1` profile (DESIGN.md, "Card profile `piv/1`"): the card is named by the GUID in
//! its CHUID and shows both PIV certificates; it proves possession by signing the server's
//! nonce with its Card Authentication key (9E, no PIN), and after the unblock confirms it by
//! signing the receipt nonce with its PIV Authentication key (9A), which it only does once the
//! new PIN is verified. Nothing needs holding between the two: each is one transaction.

mod answers;
mod keys;
#[cfg(test)]
mod tests;
mod unblock;

use sha2::{Digest, Sha256};
use unlock_protocol::bridge::{BridgeError, CardInfo, ErrorCode};
use unlock_protocol::card_steps::{
    CardChallenge, CardIdentity, CardProof, CardRelease, Certificate, Signature,
};
use unlock_protocol::piv::{self, AID, Purpose, ins, key, object, tag, tlv};
use unlock_protocol::{CardGuid, CardId, Passcode};

use super::apdu::{Answer, Command, Transmit, send};
use super::{CardProfile, Custody, Unblocked};
use crate::errors::fail;
use keys::KeyKind;

/// The `piv/1` profile.
#[derive(Debug, Clone, Copy)]
pub struct Piv1;

impl CardProfile for Piv1 {
    fn name(&self) -> &'static str {
        piv::PROFILE
    }

    fn custody(&self) -> Custody {
        Custody::Released
    }

    fn select(&self, card: &dyn Transmit) -> Result<(), BridgeError> {
        answers::selected(exchange(
            card,
            [0x00, ins::SELECT, 0x04, 0x00],
            &AID,
            Some(0),
        )?)
    }

    fn read(&self, card: &dyn Transmit) -> Result<CardInfo, BridgeError> {
        let guid = guid(card)?;
        let card_authentication = certificate(card, key::CARD_AUTHENTICATION)?;
        let piv_authentication = certificate(card, key::PIV_AUTHENTICATION)?;
        let tries_left = pin_tries(card)?;
        Ok(CardInfo {
            card: CardIdentity::Piv {
                guid,
                card_authentication,
                piv_authentication,
                puk_tries_left: puk_tries(card)?,
            },
            tries_left,
        })
    }

    /// Checks the card is the one the challenge names, then has its Card Authentication key
    /// sign the possession nonce.
    fn answer(
        &self,
        card: &dyn Transmit,
        challenge: &CardChallenge,
    ) -> Result<CardProof, BridgeError> {
        let CardChallenge::Piv { guid, nonce } = challenge else {
            return Err(fail(ErrorCode::BadRequest));
        };
        check_guid(card, guid)?;
        let message = piv::message(Purpose::Possession, &nonce.0);
        let signature = sign(card, key::CARD_AUTHENTICATION, &message)?;
        Ok(CardProof::Piv { signature })
    }

    fn unblock(
        &self,
        card: &dyn Transmit,
        release: &CardRelease,
        passcode: &Passcode,
    ) -> Result<Unblocked, BridgeError> {
        let CardRelease::Piv {
            guid,
            puks,
            next_puk,
            receipt_nonce,
        } = release
        else {
            return Err(fail(ErrorCode::BadRequest));
        };
        check_guid(card, guid)?;
        unblock::run(card, puks, next_puk, receipt_nonce, passcode)
    }

    fn id(&self, card: &dyn Transmit) -> Result<CardId, BridgeError> {
        guid(card).map(CardId::from)
    }

    fn pin_tries(&self, card: &dyn Transmit) -> Result<u8, BridgeError> {
        pin_tries(card)
    }

    fn verify(&self, card: &dyn Transmit, passcode: &Passcode) -> Result<bool, BridgeError> {
        let pin = piv::pin_block(passcode.expose()).ok_or_else(|| fail(ErrorCode::BadRequest))?;
        let verify = [0x00, ins::VERIFY, 0x00, key::PIN];
        match answers::pin_verified(exchange(card, verify, &pin, None)?) {
            Ok(()) => Ok(true),
            Err(error)
                if matches!(
                    error.code,
                    ErrorCode::PasscodeRejected | ErrorCode::PasscodeBlocked
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }
}

fn exchange(
    card: &dyn Transmit,
    header: [u8; 4],
    data: &[u8],
    le: Option<u8>,
) -> Result<Answer, BridgeError> {
    send(card, &Command { header, data, le })
}

/// GET DATA of one object.
fn get_data(card: &dyn Transmit, object: &[u8]) -> Result<Answer, BridgeError> {
    let tag_list = tlv::encode(&[tag::TAG_LIST], object);
    exchange(card, [0x00, ins::GET_DATA, 0x3F, 0xFF], &tag_list, Some(0))
}

fn guid(card: &dyn Transmit) -> Result<CardGuid, BridgeError> {
    answers::guid(get_data(card, &object::CHUID)?)
}

/// The card in the reader is the one with `expected`.
fn check_guid(card: &dyn Transmit, expected: &CardGuid) -> Result<(), BridgeError> {
    if guid(card)? != *expected {
        return Err(fail(ErrorCode::SerialMismatch));
    }
    Ok(())
}

/// The certificate of the key `key_reference`.
fn certificate(card: &dyn Transmit, key_reference: u8) -> Result<Certificate, BridgeError> {
    let object = match key_reference {
        key::CARD_AUTHENTICATION => object::CARD_AUTHENTICATION_CERT,
        _ => object::PIV_AUTHENTICATION_CERT,
    };
    answers::certificate(get_data(card, &object)?)
}

fn pin_tries(card: &dyn Transmit) -> Result<u8, BridgeError> {
    answers::pin_tries(exchange(
        card,
        [0x00, ins::VERIFY, 0x00, key::PIN],
        &[],
        None,
    )?)
}

/// PUK tries left, when the card answers VERIFY for the PUK without data (not a standard
/// use, so many cards don't).
fn puk_tries(card: &dyn Transmit) -> Result<Option<u8>, BridgeError> {
    let answer = exchange(card, [0x00, ins::VERIFY, 0x00, key::PUK], &[], None)?;
    Ok(answers::puk_tries(answer))
}

/// Has the key `key_reference` sign SHA-256 of `message`, in the way its certificate's key
/// signs.
fn sign(card: &dyn Transmit, key_reference: u8, message: &[u8]) -> Result<Signature, BridgeError> {
    let kind = KeyKind::of(&certificate(card, key_reference)?)?;
    let digest: [u8; 32] = Sha256::digest(message).into();
    let template = [
        tlv::encode(&[tag::RESPONSE], &[]),
        tlv::encode(&[tag::CHALLENGE], &kind.signing_input(&digest)),
    ]
    .concat();
    let template = tlv::encode(&[tag::DYNAMIC_AUTHENTICATION], &template);
    let header = [
        0x00,
        ins::GENERAL_AUTHENTICATE,
        kind.algorithm(),
        key_reference,
    ];
    answers::signature(exchange(card, header, &template, Some(0))?, key_reference)
}
