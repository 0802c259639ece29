//! `one_time_codes`: keyed hashes of the codes sent, their wrong tries and state. Changes
//! are made in SQL on the row as it stands (`wrong_tries = wrong_tries + 1 … RETURNING`),
//! never from a value read earlier, and only while the code is still live.

use anyhow::Context;

use super::Conn;

/// A wrong try counted against a live code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongTry {
    /// Wrong tries so far, this one included.
    pub wrong_tries: i64,
    /// Whether this try used up the code.
    pub voided: bool,
}

/// Counts a wrong try against code `id`, voiding it at `max_tries`; `None` if the code was
/// no longer live (another request used or voided it first).
pub async fn record_wrong_try(
    conn: &mut Conn,
    id: i64,
    max_tries: i64,
) -> anyhow::Result<Option<WrongTry>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "UPDATE one_time_codes
         SET wrong_tries = wrong_tries + 1,
             state = CASE WHEN wrong_tries + 1 >= $2 THEN 'voided' ELSE state END
         WHERE id = $1 AND state = 'live'
         RETURNING wrong_tries, state",
    )
    .bind(id)
    .bind(max_tries)
    .fetch_optional(conn)
    .await
    .context("count a wrong code")?;
    Ok(row.map(|(wrong_tries, state)| WrongTry {
        wrong_tries,
        voided: state == "voided",
    }))
}

/// Uses up code `id`; whether it was still live.
pub async fn use_up(conn: &mut Conn, id: i64) -> anyhow::Result<bool> {
    let done =
        sqlx::query("UPDATE one_time_codes SET state = 'used' WHERE id = $1 AND state = 'live'")
            .bind(id)
            .execute(conn)
            .await
            .context("use up the code")?;
    Ok(done.rows_affected() > 0)
}
