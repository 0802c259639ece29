//! Retention: each instance purges, every `retention.interval_minutes`, the finished journeys
//! and their codes, the finished emails and their delivery attempts, the old card challenges
//! and the throttles with nothing left to say, past their configured ages. The audit trail is
//! kept whole (it is append-only); each purge that deleted anything is audited itself.

use std::time::Duration;

use tokio::sync::watch;

use crate::audit::{self, Action, Event, Outcome};
use crate::clock::Millis;
use crate::db::{self, retention::BATCH};
use crate::state::AppState;

const DAY: Millis = 86_400_000;

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub journeys: u64,
    pub emails: u64,
    pub card_challenges: u64,
    pub throttles: u64,
    /// RAs' one-time unlock codes issued before the journeys' cut-off.
    pub ra_unlock_codes: u64,
}

impl Purged {
    fn total(&self) -> u64 {
        self.journeys + self.emails + self.card_challenges + self.throttles + self.ra_unlock_codes
    }
}

/// Deletes what is past its age now, a batch per write, and audits what went.
pub async fn purge(state: &AppState) -> anyhow::Result<Purged> {
    let now = state.clock.now();
    let retention = &state.config.retention;
    let age = |days: u32| now - i64::from(days) * DAY;
    let (journeys_before, emails_before, challenges_before) = (
        age(retention.journeys_days),
        age(retention.emails_days),
        age(retention.card_challenges_days),
    );
    let mut purged = Purged::default();
    loop {
        let batch = state
            .db
            .write(move |conn| {
                Box::pin(async move {
                    Ok(Purged {
                        journeys: db::retention::journeys(conn, journeys_before, now).await?,
                        emails: db::retention::emails(conn, emails_before).await?,
                        card_challenges: db::retention::card_challenges(conn, challenges_before)
                            .await?,
                        throttles: db::retention::finished_throttles(conn, now).await?,
                        ra_unlock_codes: db::retention::ra_unlock_codes(conn, journeys_before)
                            .await?,
                    })
                })
            })
            .await?;
        purged.journeys += batch.journeys;
        purged.emails += batch.emails;
        purged.card_challenges += batch.card_challenges;
        purged.throttles += batch.throttles;
        purged.ra_unlock_codes += batch.ra_unlock_codes;
        let full = [
            batch.journeys,
            batch.emails,
            batch.card_challenges,
            batch.throttles,
            batch.ra_unlock_codes,
        ]
        .iter()
        .any(|n| *n >= u64::try_from(BATCH).unwrap_or(u64::MAX));
        if !full {
            break;
        }
    }
    if purged.total() > 0 {
        let detail = format!(
            "{} journeys, {} emails, {} card challenges, {} throttles, {} RA unlock codes",
            purged.journeys,
            purged.emails,
            purged.card_challenges,
            purged.throttles,
            purged.ra_unlock_codes
        );
        state
            .db
            .write(move |conn| {
                let detail = detail.clone();
                Box::pin(async move {
                    let event = Event {
                        detail: Some(&detail),
                        ..Event::new("server", Action::RetentionPurge, Outcome::Done)
                    };
                    audit::record(conn, now, event).await
                })
            })
            .await?;
        tracing::info!(?purged, "purged what is past its retention");
    }
    Ok(purged)
}

/// Purges every `retention.interval_minutes`, and folds the audit trail's counted repeats
/// every minute ([`audit::fold_repeats`]), until `stop` turns true; a failed round is logged
/// and tried again next time.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut purge_every = tokio::time::interval(Duration::from_secs(
        state.config.retention.interval_minutes * 60,
    ));
    let mut fold_every = tokio::time::interval(Duration::from_secs(60));
    for interval in [&mut purge_every, &mut fold_every] {
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once; the first round waits a whole period.
        interval.reset();
    }
    loop {
        tokio::select! {
            _ = purge_every.tick() => {
                if let Err(error) = purge(&state).await {
                    tracing::warn!(error = format!("{error:#}"), "the retention purge failed");
                }
            }
            _ = fold_every.tick() => {
                if let Err(error) = audit::fold_repeats(&state.db, state.clock.now()).await {
                    tracing::warn!(error = format!("{error:#}"), "folding the audit's repeats failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}
