//! The PIV unblock, run inside one exclusive transaction once the card is checked: RESET
//! RETRY COUNTER with the released PUKs in order until the card takes one, the PUK rotated to
//! the next one at once (a PUK this computer has seen is dead after one use), the new PIN
//! verified, and the receipt nonce signed with the PIV Authentication key.
//!
//! A wrong PUK costs one of the card's few PUK tries, and a blocked PUK leaves only the RA, so
//! the candidates are never allowed to run the counter down: with fewer tries left than
//! candidates the bridge tries none, and it stops at the first the card accepts.

use unlock_protocol::Passcode;
use unlock_protocol::bridge::{BridgeError, ErrorCode};
use unlock_protocol::card_steps::{CardReceipt, MAX_PUK_CANDIDATES, Nonce};
use unlock_protocol::piv::{self, Puk, Purpose, ins, key, pin_block};

use super::answers::{self, PukOutcome};
use super::{exchange, pin_tries, puk_tries, sign};
use crate::errors::fail;
use crate::profile::Unblocked;
use crate::profile::apdu::Transmit;

pub fn run(
    card: &dyn Transmit,
    puks: &[Puk],
    next_puk: &Puk,
    receipt_nonce: &Nonce,
    passcode: &Passcode,
) -> Result<Unblocked, BridgeError> {
    let pin = pin_block(passcode.expose()).ok_or_else(|| fail(ErrorCode::PasscodeRejected))?;
    may_try(puks.len(), puk_tries(card)?)?;
    let accepted = first_accepted(card, puks, &pin)?;
    if accepted != next_puk {
        let change = [accepted.as_bytes(), next_puk.as_bytes()].concat();
        let header = [0x00, ins::CHANGE_REFERENCE_DATA, 0x00, key::PUK];
        answers::puk_changed(exchange(card, header, &change, None)?)?;
    }
    let verify = [0x00, ins::VERIFY, 0x00, key::PIN];
    answers::pin_verified(exchange(card, verify, &pin, None)?)?;
    let message = piv::message(Purpose::Receipt, &receipt_nonce.0);
    let signature = sign(card, key::PIV_AUTHENTICATION, &message)?;
    // The new PIN was just verified, so its counter is full: a card pulled now is unblocked,
    // and the receipt must reach the server rather than a removal.
    Ok(Unblocked {
        receipt: CardReceipt::Piv { signature },
        tries_left: pin_tries(card).unwrap_or(piv::PIN_TRIES),
    })
}

/// Whether `candidates` PUKs may be tried when the card has `tries` left (`None`: it does not
/// tell): not if it is blocked, and not if the wrong ones could block it before the right
/// one's turn.
pub fn may_try(candidates: usize, tries: Option<u8>) -> Result<(), BridgeError> {
    if candidates == 0 || candidates > MAX_PUK_CANDIDATES {
        return Err(fail(ErrorCode::BadRequest));
    }
    match tries {
        Some(0) => Err(fail(ErrorCode::PukBlocked)),
        Some(tries) if usize::from(tries) < candidates => Err(BridgeError::with_message(
            ErrorCode::PukRejected,
            "The card has too few unlock key tries left to try the keys held for it. Contact \
             your Registration Authority.",
        )),
        _ => Ok(()),
    }
}

/// The first of `puks` the card accepts (setting the new PIN); stops at once when the last
/// one is refused, or when the tries left would not cover the candidates still to try.
fn first_accepted<'p>(
    card: &dyn Transmit,
    puks: &'p [Puk],
    pin: &[u8; piv::PIN_BLOCK_LEN],
) -> Result<&'p Puk, BridgeError> {
    let header = [0x00, ins::RESET_RETRY_COUNTER, 0x00, key::PIN];
    for (index, puk) in puks.iter().enumerate() {
        let reset = [puk.as_bytes(), &pin[..]].concat();
        let outcome = answers::reset_retry_counter(exchange(card, header, &reset, None)?)?;
        let left_to_try = puks.len() - index - 1;
        match outcome {
            PukOutcome::Accepted => {
                tracing::debug!(candidate = index, "the card took a PUK");
                return Ok(puk);
            }
            PukOutcome::Refused(0) => return Err(fail(ErrorCode::PukBlocked)),
            PukOutcome::Refused(tries) => {
                tracing::debug!(candidate = index, tries, "the card refused a PUK");
                if left_to_try == 0 || usize::from(tries) < left_to_try {
                    return Err(fail(ErrorCode::PukRejected));
                }
            }
        }
    }
    Err(fail(ErrorCode::PukRejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_tried_only_when_the_tries_cover_them() {
        assert!(may_try(1, Some(3)).is_ok());
        assert!(may_try(2, Some(2)).is_ok());
        assert!(may_try(2, None).is_ok());
        assert!(may_try(1, Some(1)).is_ok());
        assert_eq!(
            may_try(2, Some(1)).unwrap_err().code,
            ErrorCode::PukRejected
        );
        assert_eq!(may_try(1, Some(0)).unwrap_err().code, ErrorCode::PukBlocked);
        assert_eq!(may_try(0, Some(3)).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(may_try(3, Some(3)).unwrap_err().code, ErrorCode::BadRequest);
    }
}
