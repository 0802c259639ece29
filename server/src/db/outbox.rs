//! `outbox` and `outbox_attempts`: emails queued in the transaction of the change that
//! needs them, claimed by one instance's worker at a time, and every attempt recorded.

use anyhow::Context;

use super::states::{Channel, OutboxKind, ReceiptState};
use super::{Conn, Engine};
use crate::clock::Millis;

/// A message to queue (its body already sealed).
pub struct NewMessage<'a> {
    pub kind: OutboxKind,
    pub recipient: &'a str,
    pub journey_id: Option<i64>,
    pub holder_id: Option<&'a str>,
    pub sealed: &'a [u8],
    pub expires_at: Option<Millis>,
}

impl std::fmt::Debug for NewMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMessage")
            .field("kind", &self.kind)
            .field("journey_id", &self.journey_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Queues a message inside the caller's transaction; its id.
pub async fn enqueue(
    conn: &mut Conn,
    message: &NewMessage<'_>,
    now: Millis,
) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO outbox (kind, recipient, journey_id, holder_id, sealed_message, state, next_attempt_at, expires_at, created_at, channel)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $6, $8) RETURNING id",
    )
    .bind(message.kind)
    .bind(message.recipient)
    .bind(message.journey_id)
    .bind(message.holder_id)
    .bind(message.sealed.to_vec())
    .bind(now)
    .bind(message.expires_at)
    .bind(crate::contact::channel_of(message.recipient))
    .fetch_one(conn)
    .await
    .context("queue a message")
}

/// Withdraws a journey's code emails that no worker has claimed yet (a newer code replaced
/// them).
pub async fn withdraw_code_emails(
    conn: &mut Conn,
    journey_id: i64,
    now: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE outbox SET state = 'failed', last_error = 'superseded by a newer code',
                sealed_message = NULL, finished_at = $1
         WHERE journey_id = $2 AND kind = 'one_time_code' AND state = 'queued' AND claimed_by IS NULL",
    )
    .bind(now)
    .bind(journey_id)
    .execute(conn)
    .await
    .context("withdraw the earlier code's email")?;
    Ok(())
}

/// Hands back every claim `instance` holds (a previous run of it stopped mid-send); how many.
pub async fn release_claims(conn: &mut Conn, instance: &str) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
         WHERE claimed_by = $1 AND state = 'queued'",
    )
    .bind(instance)
    .execute(conn)
    .await
    .context("release this instance's outbox claims")?;
    Ok(done.rows_affected())
}

/// A message claimed for sending.
#[derive(sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub kind: OutboxKind,
    pub channel: Channel,
    pub recipient: String,
    pub sealed_message: Option<Vec<u8>>,
    pub attempts: i64,
    pub expires_at: Option<Millis>,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("channel", &self.channel)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Claims up to `limit` due messages for `instance` until `until`: queued, due, and either
/// unclaimed or claimed by an instance whose lease ran out (it died mid-send). On
/// PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so workers of several
/// instances claiming at once each take different messages without waiting on each other.
pub async fn claim_due(
    conn: &mut Conn,
    instance: &str,
    now: Millis,
    until: Millis,
    limit: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let claim = match Engine::of(conn) {
        Engine::Sqlite => {
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2
             WHERE id IN (SELECT id FROM outbox
                          WHERE state = 'queued' AND next_attempt_at <= $3
                            AND (claimed_until IS NULL OR claimed_until < $3)
                          ORDER BY next_attempt_at, id LIMIT $4)
             RETURNING id, kind, channel, recipient, sealed_message, attempts, expires_at"
        }
        Engine::Postgres => {
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2
             WHERE id IN (SELECT id FROM outbox
                          WHERE state = 'queued' AND next_attempt_at <= $3
                            AND (claimed_until IS NULL OR claimed_until < $3)
                          ORDER BY next_attempt_at, id LIMIT $4
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, kind, channel, recipient, sealed_message, attempts, expires_at"
        }
    };
    sqlx::query_as(claim)
        .bind(instance)
        .bind(until)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await
        .context("claim due outbox messages")
}

/// What became of one attempt, to record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempted {
    pub id: i64,
    /// `sent`, `queued` (to retry) or `failed`.
    pub state: &'static str,
    /// `sent`, `retry` or `failed`.
    pub attempt: &'static str,
    pub next: Millis,
    pub detail: Option<String>,
    pub finished: Option<Millis>,
    /// The id the SMS gateway gave a text it accepted.
    pub gateway_id: Option<String>,
}

/// Records attempts of messages `instance` holds, whatever their number, in two statements
/// on SQLite (under load the worker shares the write connection with holders' requests) and
/// in one on PostgreSQL (a data-modifying `WITH`), so that there it can commit on its own
/// ([`super::Db::write_statement`]). A message whose claim another instance has since
/// taken over is left to that instance; every attempt is recorded.
pub async fn record_attempts(
    conn: &mut Conn,
    instance: &str,
    now: Millis,
    attempts: &[Attempted],
) -> anyhow::Result<()> {
    let rows = serde_json::to_string(attempts).context("encode the attempts")?;
    match Engine::of(conn) {
        Engine::Sqlite => {
            sqlx::query(
                "UPDATE outbox SET state = o.state, attempts = attempts + 1, next_attempt_at = o.next,
                        last_error = o.detail, finished_at = o.finished,
                        gateway_message_id = o.gateway_id,
                        claimed_by = NULL, claimed_until = NULL,
                        sealed_message = CASE WHEN o.state = 'queued' THEN sealed_message END
                 FROM (SELECT value ->> 'id' AS id, value ->> 'state' AS state, value ->> 'next' AS next,
                              value ->> 'detail' AS detail, value ->> 'finished' AS finished,
                              value ->> 'gateway_id' AS gateway_id
                       FROM json_each($1)) AS o
                 WHERE outbox.id = o.id AND outbox.claimed_by = $2",
            )
            .bind(&rows)
            .bind(instance)
            .execute(&mut *conn)
            .await
            .context("record the outcomes of sends")?;
            sqlx::query(
                "INSERT INTO outbox_attempts (outbox_id, attempted_at, instance, outcome, detail)
                 SELECT value ->> 'id', $2, $3, value ->> 'attempt', value ->> 'detail' FROM json_each($1)",
            )
            .bind(&rows)
            .bind(now)
            .bind(instance)
            .execute(conn)
            .await
            .context("record send attempts")?;
        }
        Engine::Postgres => {
            sqlx::query(
                "WITH o AS (
                     SELECT * FROM jsonb_to_recordset($1::jsonb)
                         AS o (id BIGINT, state TEXT, attempt TEXT, next BIGINT, detail TEXT,
                               finished BIGINT, gateway_id TEXT)
                 ), outcomes AS (
                     UPDATE outbox SET state = o.state, attempts = outbox.attempts + 1,
                            next_attempt_at = o.next, last_error = o.detail,
                            finished_at = o.finished, gateway_message_id = o.gateway_id,
                            claimed_by = NULL, claimed_until = NULL,
                            sealed_message = CASE WHEN o.state = 'queued' THEN outbox.sealed_message END
                     FROM o
                     WHERE outbox.id = o.id AND outbox.claimed_by = $2
                 )
                 INSERT INTO outbox_attempts (outbox_id, attempted_at, instance, outcome, detail)
                 SELECT o.id, $3, $2, o.attempt, o.detail FROM o",
            )
            .bind(&rows)
            .bind(instance)
            .bind(now)
            .execute(conn)
            .await
            .context("record the outcomes of sends")?;
        }
    }
    Ok(())
}

/// Records what the SMS gateway's delivery receipt says of the text it named `gateway_id`;
/// whether a text of ours had that id. A receipt repeated (gateways resend those they see no
/// answer to) records the same state again.
pub async fn record_receipt(
    conn: &mut Conn,
    gateway_id: &str,
    state: ReceiptState,
    now: Millis,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET delivery_state = $1, delivery_reported_at = $2
         WHERE gateway_message_id = $3 AND channel = 'sms'",
    )
    .bind(state)
    .bind(now)
    .bind(gateway_id)
    .execute(conn)
    .await
    .context("record a delivery receipt")?;
    Ok(done.rows_affected() > 0)
}
