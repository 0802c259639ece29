//! `POST /api/journey/card`: is the card in the reader one this holder may unlock here? If
//! so, the answer says what to ask of it next.

use unlock_protocol::ErrorCode;
use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::card_steps::{CardChallenge, CardIdentity, Nonce};
use unlock_protocol::piv::NONCE_LEN;

use super::{
    Refusal, audited, card_master_configured, find, piv_trust, refuse_card, refuse_card_step,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::db::journeys::PivAcceptance;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::piv::{CardKeys, Untrusted};
use crate::state::AppState;

/// What the card showed, checked before the write (certificates need no database).
#[derive(Debug, Clone)]
enum Shown {
    UnlockCr,
    Piv {
        keys: Result<CardKeys, Untrusted>,
        puk_blocked: bool,
    },
}

/// `POST /api/journey/card`: the card the bridge read, checked against the verified holder's
/// profile and, for a PIV card, against the trust anchors.
pub async fn present_card(
    state: &AppState,
    token: Option<&str>,
    card: CardIdentity,
    client: &str,
) -> Result<JourneyView, Failure> {
    let shown = match &card {
        CardIdentity::UnlockCr { .. } => {
            card_master_configured(state)?;
            Shown::UnlockCr
        }
        CardIdentity::Piv {
            guid,
            card_authentication,
            piv_authentication,
            puk_tries_left,
        } => Shown::Piv {
            keys: piv_trust(state)?.check(
                guid,
                &card_authentication.0,
                &piv_authentication.0,
                state.clock.now(),
            ),
            puk_blocked: *puk_tries_left == Some(0),
        },
    };
    let token = token.ok_or_else(no_journey)?.to_owned();
    let (job_state, job_client) = (state.clone(), client.to_owned());
    step(
        state,
        client,
        Action::JourneyPresentCard,
        move |conn, now| {
            let (state, token) = (job_state.clone(), token.clone());
            let (card, shown) = (card.clone(), shown.clone());
            let client = job_client.clone();
            Box::pin(
                async move { accept_card(conn, now, &state, &token, &card, &shown, &client).await },
            )
        },
    )
    .await
}

async fn accept_card(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    card: &CardIdentity,
    shown: &Shown,
    client: &str,
) -> anyhow::Result<Audited<JourneyView>> {
    let Some(journey) = find(conn, token).await? else {
        return no_journey_step(conn, state, client, now).await;
    };
    let id = card.card_id();
    let mut detail = format!("card {id}");
    let checked = 'checked: {
        if let Some(refused) = refuse_card_step(&journey, now) {
            break 'checked refused;
        }
        let record = db::cards::on_profile(conn, id.as_str(), journey.holder_id.as_deref()).await?;
        let refusal = match refuse_card(&state.config, record.as_ref(), Some(card.profile()), now) {
            Some(refusal) => Some(CardRefusal::Profile(refusal)),
            None => refuse_piv(conn, id.as_str(), shown).await?,
        };
        if let Some((outcome, failure, why)) = refusal.map(CardRefusal::into_parts) {
            if let Some(why) = why {
                detail.push_str(&format!(": {why}"));
            }
            // Whatever card was accepted before, this one is in the reader now.
            db::journeys::forget_card(conn, journey.id, now).await?;
            break 'checked (outcome, Err(failure));
        }
        // The same card again keeps its last challenge (its receipt may be on its way);
        // another card starts afresh.
        let challenge = match (card, shown) {
            (CardIdentity::Piv { guid, .. }, Shown::Piv { keys: Ok(keys), .. }) => {
                let mut nonce = [0u8; NONCE_LEN];
                getrandom::fill(&mut nonce)?;
                let piv = PivAcceptance {
                    possession_nonce: &nonce,
                    possession_key: &keys.possession,
                    receipt_key: &keys.receipt,
                };
                db::journeys::accept_card(conn, journey.id, id.as_str(), Some(piv), now).await?;
                CardChallenge::Piv {
                    guid: guid.clone(),
                    nonce: Nonce(nonce),
                }
            }
            (CardIdentity::UnlockCr { serial }, _) => {
                db::journeys::accept_card(conn, journey.id, id.as_str(), None, now).await?;
                CardChallenge::UnlockCr {
                    serial: serial.clone(),
                }
            }
            (CardIdentity::Piv { .. }, _) => {
                anyhow::bail!("a piv/1 card was accepted without its certificates checked")
            }
        };
        let view = JourneyView::CardAccepted {
            card: id.clone(),
            expires_in_seconds: seconds_until(now, journey.expires_at),
            challenge: Some(challenge),
        };
        (Outcome::Accepted, Ok(view))
    };
    Ok(audited(&journey, checked, Some(detail)))
}

/// Why a card on the profile still can't be unlocked.
enum CardRefusal {
    /// Not on the profile, or on it and unusable (cancelled, expired, …).
    Profile(Refusal),
    /// A PIV card whose certificates aren't trusted.
    Untrusted(Untrusted),
    /// A PIV card whose PUK is blocked.
    PukBlocked,
    /// A PIV card with no escrowed PUK.
    NoEscrow,
}

impl CardRefusal {
    /// The audit outcome, the answer, and what to add to the audit detail.
    fn into_parts(self) -> (Outcome, Failure, Option<String>) {
        match self {
            Self::Profile(refusal) => (
                refusal.outcome(),
                refusal.answer(),
                refusal.0.map(|reason| reason.as_str().to_owned()),
            ),
            Self::Untrusted(why) => (
                Outcome::CertificateNotTrusted,
                Failure::client(ErrorCode::CertificateNotTrusted),
                Some(why.to_string()),
            ),
            Self::PukBlocked => (
                Outcome::PukBlocked,
                Refusal(Some(IneligibleReason::PukBlocked)).answer(),
                None,
            ),
            Self::NoEscrow => (
                Outcome::CardNotUsable,
                Refusal(Some(IneligibleReason::CardModelUnsupported)).answer(),
                Some("no escrowed PUK".to_owned()),
            ),
        }
    }
}

/// For a PIV card on the profile: whether its certificates, PUK and escrow let it be unlocked.
async fn refuse_piv(
    conn: &mut Conn,
    id: &str,
    shown: &Shown,
) -> anyhow::Result<Option<CardRefusal>> {
    let Shown::Piv { keys, puk_blocked } = shown else {
        return Ok(None);
    };
    if let Err(untrusted) = keys {
        return Ok(Some(CardRefusal::Untrusted(untrusted.clone())));
    }
    if *puk_blocked {
        return Ok(Some(CardRefusal::PukBlocked));
    }
    let escrowed = db::cards::escrow(conn, id)
        .await?
        .is_some_and(|escrow| escrow.current.is_some());
    Ok((!escrowed).then_some(CardRefusal::NoEscrow))
}
