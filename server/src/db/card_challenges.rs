//! `card_challenges`: every challenge a cryptogram was released for, per card, so no
//! challenge gets a second one (its primary key says so).

use anyhow::Context;

use super::Conn;
use crate::clock::Millis;

/// Records that a cryptogram is released for the challenge with this hash from card
/// `serial`; whether the challenge was fresh (`false`: one was released for it already).
pub async fn record(
    conn: &mut Conn,
    serial: &str,
    challenge_hash: &[u8],
    journey_id: i64,
    now: Millis,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO card_challenges (serial, challenge_hash, journey_id, released_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(serial)
    .bind(challenge_hash)
    .bind(journey_id)
    .bind(now)
    .execute(conn)
    .await
    .context("record the challenge")?;
    Ok(done.rows_affected() == 1)
}
