//! Starting a journey: the answer is the same whether or not the address is on a profile.

use crate::db::{Conn, Flag};
use anyhow::Context;
use unlock_protocol::api::JourneyView;
use unlock_protocol::{EmailAddress, ErrorCode};

use super::{Journey, LatestCode, throttled, view_of};
use crate::audit::{self, Event};
use crate::clock::Millis;
use crate::config::Config;
use crate::error::Failure;
use crate::outbox::{self, Outgoing, templates};
use crate::secrets::{self, token_hash};
use crate::state::AppState;
use crate::throttle::{self, Locked, Scope};

/// A journey just started: the cookie token and the first view.
#[derive(Debug)]
pub struct Started {
    pub token: String,
    pub view: JourneyView,
}

/// `POST /api/journeys`.
pub async fn start(state: &AppState, raw_email: &str, client: &str) -> Result<Started, Failure> {
    let email = EmailAddress::parse(raw_email)
        .map_err(|e| Failure::client_message(ErrorCode::EmailInvalid, format!("{e}.")))?;
    // Look-ups that need no lock run beside other requests, before the write.
    let (allowed, holder_id) = look_up(state, &email).await?;
    let request = StartRequest {
        state: state.clone(),
        email,
        allowed,
        holder_id,
        client: client.to_owned(),
    };
    let result = state
        .db
        .write(move |conn| Box::pin(request.clone().run(conn)))
        .await?;
    if result.is_ok() {
        state.outbox_wake.notify_one();
    }
    result
}

/// What may stop a journey from starting, read in one round trip to SQLite.
struct StartLimits {
    /// The client address's lock-out after counting this start.
    client: Option<Locked>,
    /// The holder's (or unknown address's) lock-out.
    subject: Option<Locked>,
    /// Codes sent to the subject in the last hour.
    recent_codes: i64,
}

/// Counts a start from `client` and reads `subject`'s limits, in one statement: this runs on
/// every start, and each statement is a round trip to SQLite's thread under the write lock.
async fn start_limits(
    conn: &mut Conn,
    config: &Config,
    client: &str,
    subject: &str,
    now: Millis,
) -> anyhow::Result<StartLimits> {
    let (hits, locked_until, subject_until, recent_codes): (i64, Millis, Option<Millis>, i64) =
        sqlx::query_as(
            "INSERT INTO throttles (scope, key, hits, window_started_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (scope, key) DO UPDATE SET
                 hits = CASE WHEN throttles.window_started_at <= $3 - $4 THEN 1 ELSE throttles.hits + 1 END,
                 window_started_at = CASE WHEN throttles.window_started_at <= $3 - $4 THEN $3 ELSE throttles.window_started_at END
             RETURNING hits, locked_until,
                 (SELECT locked_until FROM throttles WHERE scope = $5 AND key = $6),
                 (SELECT COUNT(*) FROM one_time_codes WHERE subject = $6 AND issued_at > $3 - 3600000)",
        )
        .bind(Scope::ClientStart.as_str())
        .bind(client)
        .bind(now)
        .bind(throttle::window(&config.throttle, Scope::ClientStart))
        .bind(Scope::SubjectVoided.as_str())
        .bind(subject)
        .fetch_one(&mut *conn)
        .await
        .context("count the start and read the subject's limits")?;
    let client_lock = throttle::settle(
        conn,
        &config.throttle,
        Scope::ClientStart,
        client,
        hits,
        locked_until,
        now,
    )
    .await?;
    Ok(StartLimits {
        client: client_lock,
        subject: subject_until
            .filter(|until| *until > now)
            .map(|until| Locked { until }),
        recent_codes,
    })
}

/// Whether the address's domain is allowed, and whose profile the address is on.
async fn look_up(state: &AppState, email: &EmailAddress) -> anyhow::Result<(bool, Option<String>)> {
    let (allowed, holder): (Flag, Option<String>) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM allowed_domains WHERE domain = $1),
                (SELECT holder_id FROM holder_emails WHERE email = $2)",
    )
    .bind(email.domain())
    .bind(email.as_str())
    .fetch_one(state.db.read_pool())
    .await
    .context("look up the address")?;
    Ok((allowed.into(), holder))
}

#[derive(Clone)]
struct StartRequest {
    state: AppState,
    email: EmailAddress,
    allowed: bool,
    holder_id: Option<String>,
    client: String,
}

impl StartRequest {
    /// The write: every check that must see committed state, the journey, its code, its email
    /// and the audit event, in one transaction.
    async fn run(self, conn: &mut Conn) -> anyhow::Result<Result<Started, Failure>> {
        let Self {
            state,
            email,
            allowed,
            holder_id,
            client,
        } = self;
        let config = &state.config;
        let now = state.clock.now();
        // Addresses on no profile get a pseudonymous subject and go through every step a known
        // one does, except that no email is queued: the answer and its timing must not differ.
        let subject = match &holder_id {
            Some(id) => format!("holder:{id}"),
            None => state.keys.email_subject(email.as_str()),
        };
        let mut journey_id = None;
        let (outcome, result) = 'checked: {
            if !allowed {
                let refused = Failure::client(ErrorCode::EmailDomainNotAllowed);
                break 'checked ("domain_not_allowed", Err(refused));
            }
            let limits = start_limits(conn, config, &client, &subject, now).await?;
            if let Some(locked) = limits.client {
                break 'checked ("throttled_client", Err(throttled(now, locked)));
            }
            let (subject_lock, recent_codes) = (limits.subject, limits.recent_codes);
            if let Some(locked) = subject_lock {
                break 'checked ("throttled_holder", Err(throttled(now, locked)));
            }
            if recent_codes >= i64::from(config.journey.codes_per_hour) {
                let refused = Failure::client(ErrorCode::TooManyCodes);
                break 'checked ("too_many_codes", Err(refused));
            }

            let token = secrets::new_token()?;
            let expires_at =
                now + i64::try_from(config.journey.code_ttl_seconds * 1000).unwrap_or(i64::MAX);
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO journeys (token_hash, subject, holder_id, email, client_addr, state, started_at, expires_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'awaiting_code', $6, $7, $6) RETURNING id",
            )
            .bind(token_hash(&token))
            .bind(&subject)
            .bind(holder_id.as_deref())
            .bind(email.as_str())
            .bind(&client)
            .bind(now)
            .bind(expires_at)
            .fetch_one(&mut *conn)
            .await
            .context("create the journey")?;
            journey_id = Some(id);
            let journey = Journey {
                id,
                subject: subject.clone(),
                holder_id: holder_id.clone(),
                email: email.as_str().to_owned(),
                state: "awaiting_code".into(),
                ineligible_reason: None,
                expires_at,
                card_serial: None,
                closed_reason: None,
            };
            let code = issue_code(&state, conn, &journey, now).await?;
            let view = view_of(&config.journey, &journey, Some(&code), now);
            ("code_issued", view.map(|view| Started { token, view }))
        };
        let event = Event {
            actor: "holder",
            action: "journey.start",
            outcome,
            journey_id,
            holder_id: holder_id.as_deref(),
            client_addr: Some(&client),
            detail: (outcome == "domain_not_allowed").then(|| email.domain()),
        };
        audit::record(conn, now, event).await?;
        Ok(result)
    }
}

/// Draws a new code for the journey and queues its email if the address is on a profile.
/// The caller supersedes any earlier code first. The code itself leaves this function only inside the sealed email.
pub(super) async fn issue_code(
    state: &AppState,
    conn: &mut Conn,
    journey: &Journey,
    now: Millis,
) -> anyhow::Result<LatestCode> {
    let code = secrets::new_code()?;
    let code_mac = state.keys.code_mac(journey.id, &code);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO one_time_codes (journey_id, subject, code_mac, issued_at, state)
         VALUES ($1, $2, $3, $4, 'live') RETURNING id",
    )
    .bind(journey.id)
    .bind(&journey.subject)
    .bind(&code_mac)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("store the code's keyed hash")?;
    let minutes = state.config.journey.code_ttl_seconds / 60;
    // Rendered and sealed for every address, so known and unknown ones cost the same;
    // only an address on a profile has it queued.
    let sealed = outbox::seal(
        &state.keys,
        &templates::one_time_code(&code, minutes, journey.expires_at),
    )?;
    if journey.holder_id.is_some() {
        let outgoing = Outgoing {
            kind: "one_time_code",
            recipient: &journey.email,
            journey_id: Some(journey.id),
            holder_id: journey.holder_id.as_deref(),
            sealed,
            expires_at: Some(journey.expires_at),
        };
        outbox::enqueue(conn, outgoing, now).await?;
    }
    Ok(LatestCode {
        id,
        code_mac,
        issued_at: now,
        wrong_tries: 0,
        state: "live".into(),
    })
}
