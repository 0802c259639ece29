//! The `piv/1` release: once the card has signed the journey's possession nonce with its Card
//! Authentication key (9E), the server releases its escrowed PUK together with the next PUK
//! the card is to be rotated to, and a receipt nonce.
//!
//! The next PUK is drawn and recorded as *pending* in the same transaction as the release,
//! and becomes current only when the card's receipt (signed with 9A after the new PIN was
//! verified) arrives. Until then a release offers both PUKs the card may hold — pending
//! first, since the card is rotated to it the moment it has been used — and keeps the same
//! pending PUK as the target, so whatever happened to the last attempt the card holds one of
//! the two and at most one PUK try is spent finding which.
//!
//! The escrow key (perhaps on an HSM) is never asked while the write is open: the next PUK is
//! drawn and sealed before it, under the key version of the card the journey accepted, and
//! the released PUKs are opened after it commits.

use unlock_protocol::card_steps::{CardRelease, Nonce, Signature};
use unlock_protocol::piv::{self, NONCE_LEN, Puk, Purpose};
use unlock_protocol::{CardGuid, ErrorCode};

use super::{
    CardJourney, Checked, accepted_key, audited, custody_failure, find, notify_release,
    other_profile, piv_trust, releasable, release_cap, too_many_attempts,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::piv::{escrow, signature};
use crate::state::AppState;
use unlock_protocol::CardId;

/// `POST /api/journey/card/release` for a PIV card: its possession signature in, its PUKs out.
pub async fn release_puk(
    state: &AppState,
    token: Option<&str>,
    proof: Signature,
    client: &str,
) -> Result<CardRelease, Failure> {
    piv_trust(state)?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let next = draw_next(state, &token).await?;
    let (job_state, job_client) = (state.clone(), client.to_owned());
    let sealed = step(state, client, Action::JourneyRelease, move |conn, now| {
        let (state, token, proof) = (job_state.clone(), token.clone(), proof.clone());
        let (next, client) = (next.clone(), job_client.clone());
        Box::pin(
            async move { record_release(conn, now, &state, &token, &proof, next, &client).await },
        )
    })
    .await?;
    open_release(state, sealed).await
}

/// A PUK drawn for the card the journey accepted, sealed under the card's key version, in
/// case the release finds no pending PUK to keep.
#[derive(Clone)]
struct NextPuk {
    card: CardId,
    version: i64,
    puk: Puk,
    sealed: Vec<u8>,
}

async fn draw_next(state: &AppState, token: &str) -> Result<Option<NextPuk>, Failure> {
    let Some((card, version)) = accepted_key(state, token).await? else {
        return Ok(None);
    };
    let puk = escrow::new_puk()?;
    let sealed = state
        .custody
        .seal_puk(version, &card, &puk)
        .await
        .map_err(custody_failure)?;
    Ok(Some(NextPuk {
        card,
        version,
        puk,
        sealed,
    }))
}

/// What a committed release hands out, still sealed.
struct SealedRelease {
    guid: CardGuid,
    version: i64,
    /// The PUKs the card may hold, pending first.
    candidates: Vec<Vec<u8>>,
    /// The PUK to rotate to: drawn for this release, or the pending one (sealed).
    next: Next,
    receipt_nonce: [u8; NONCE_LEN],
    /// Which release of the journey this is.
    count: i64,
}

enum Next {
    Drawn(Puk),
    Pending(Vec<u8>),
}

/// Opens what the release committed to, with the card's escrow key version.
async fn open_release(state: &AppState, sealed: SealedRelease) -> Result<CardRelease, Failure> {
    let card: CardId = sealed.guid.clone().into();
    let open = |blob: Vec<u8>| {
        let card = card.clone();
        async move {
            state
                .custody
                .open_puk(sealed.version, &card, &blob)
                .await
                .map_err(custody_failure)
        }
    };
    let mut puks = Vec::with_capacity(sealed.candidates.len());
    for candidate in sealed.candidates {
        puks.push(open(candidate).await?);
    }
    let next_puk = match sealed.next {
        Next::Drawn(puk) => puk,
        Next::Pending(blob) => open(blob).await?,
    };
    Ok(CardRelease::Piv {
        guid: sealed.guid,
        puks,
        next_puk,
        receipt_nonce: Nonce(sealed.receipt_nonce),
    })
}

async fn record_release(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    proof: &Signature,
    next: Option<NextPuk>,
    client: &str,
) -> anyhow::Result<Audited<SealedRelease>> {
    let Some(journey) = find(conn, token).await? else {
        return no_journey_step(conn, state, client, now).await;
    };
    let cap = release_cap(state);
    let mut detail = None;
    let checked = 'checked: {
        let card_id =
            match releasable(conn, now, state, &journey, piv::PROFILE, &mut detail).await? {
                Ok(card_id) => card_id,
                Err(refused) => break 'checked refused,
            };
        let (Ok(guid), Some(possession_key)) = (
            CardGuid::parse(card_id.as_str()),
            journey.possession_key.as_deref(),
        ) else {
            break 'checked other_profile();
        };
        // One proof per nonce: presenting the card again draws a new one.
        let Some(nonce) = db::journeys::take_possession_nonce(conn, journey.id, now).await? else {
            let refused = Failure::client(ErrorCode::ChallengeReused);
            break 'checked (Outcome::ChallengeReused, Err(refused));
        };
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| anyhow::anyhow!("a stored possession nonce has the wrong length"))?;
        let message = piv::message(Purpose::Possession, &nonce);
        if !signature::verifies(possession_key, &message, &proof.0) {
            let refused = Failure::client(ErrorCode::PossessionFailed);
            break 'checked (Outcome::PossessionFailed, Err(refused));
        }
        // The card was read before the write; if another was accepted since, read it again.
        let Some(next) = next.filter(|next| {
            next.card.as_str() == guid.as_str() && journey.card.key_version() == Some(next.version)
        }) else {
            break 'checked other_profile();
        };
        let checked = release_escrow(conn, now, &journey, guid, next, cap, &mut detail).await?;
        if let (Outcome::Released, Ok(release)) = &checked {
            let card = release.guid.clone().into();
            notify_release(conn, state, &journey, &card, release.count, client, now).await?;
        }
        break 'checked checked;
    };
    Ok(audited(&journey, checked, detail))
}

/// The PUKs the card may hold and the one to rotate it to, with the pending PUK recorded in
/// this transaction (the one `next` brings, unless one is pending already); a receipt nonce
/// the card is to sign once unlocked. All still sealed.
async fn release_escrow(
    conn: &mut Conn,
    now: Millis,
    journey: &CardJourney,
    guid: CardGuid,
    next: NextPuk,
    cap: i64,
    detail: &mut Option<String>,
) -> anyhow::Result<Checked<SealedRelease>> {
    let escrow_row = db::cards::escrow(conn, guid.as_str()).await?;
    let Some((current, pending, generation)) =
        escrow_row.and_then(|e| Some((e.current?, e.pending, e.generation)))
    else {
        anyhow::bail!("card {guid} was accepted without an escrowed PUK");
    };
    let (candidates, next_puk) = match pending {
        Some(pending) => (vec![pending.clone(), current], Next::Pending(pending)),
        None => {
            if !db::cards::hold_pending_puk(conn, guid.as_str(), &next.sealed, now).await? {
                anyhow::bail!("card {guid}'s pending PUK changed during its release");
            }
            (vec![current], Next::Drawn(next.puk))
        }
    };
    let mut receipt_nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut receipt_nonce)?;
    // Counted in SQL and only below the cap, so parallel requests can't overrun it.
    let Some(released) =
        db::journeys::count_release(conn, journey.id, &receipt_nonce, cap, now).await?
    else {
        return too_many_attempts(conn, journey.id, now).await;
    };
    *detail = Some(format!(
        "card {guid}, release {released} of {cap}, PUK generation {generation}, {} candidate(s), \
         escrow key v{}",
        candidates.len(),
        next.version
    ));
    let release = SealedRelease {
        guid,
        version: next.version,
        candidates,
        next: next_puk,
        receipt_nonce,
        count: released,
    };
    Ok((Outcome::Released, Ok(release)))
}
