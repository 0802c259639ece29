//! The demo holder the run command seeds into an empty database, so a newcomer can try the
//! journey at once. Production never passes `--demo`.

use anyhow::Context;

use crate::audit::{self, Event};
use crate::clock::Millis;
use crate::db::Db;

pub const DEMO_DOMAIN: &str = "demo.example";
pub const DEMO_HOLDER_ID: &str = "100000000001";
pub const DEMO_EMAIL: &str = "demo.holder@demo.example";
pub const DEMO_CARD_SERIAL: &str = "2d6bddb8ad096c2d";

/// Seeds the demo holder if the database has no holders; returns whether it did.
pub async fn seed_if_empty(db: &Db, now: Millis) -> anyhow::Result<bool> {
    let mut tx = db.begin().await?;
    let holders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM holders")
        .fetch_one(&mut *tx)
        .await
        .context("count holders")?;
    if holders > 0 {
        return Ok(false);
    }
    let two_years = 2 * 365 * 24 * 3_600_000;
    sqlx::query(
        "INSERT INTO allowed_domains (domain, added_at, added_by) VALUES ($1, $2, 'demo') ON CONFLICT DO NOTHING",
    )
    .bind(DEMO_DOMAIN)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("allow the demo domain")?;
    sqlx::query("INSERT INTO holders (id, display_name, organisation, created_at) VALUES ($1, 'Demo Holder', 'Demo Trust', $2)")
        .bind(DEMO_HOLDER_ID)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("add the demo holder")?;
    sqlx::query(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, $3, 'demo')",
    )
    .bind(DEMO_EMAIL)
    .bind(DEMO_HOLDER_ID)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("add the demo email")?;
    sqlx::query(
        "INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, updated_at)
         VALUES ($1, $2, 'active', $3, 'unlock-cr/1', $4)",
    )
    .bind(DEMO_CARD_SERIAL)
    .bind(DEMO_HOLDER_ID)
    .bind(now + two_years)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("add the demo card")?;
    audit::record(
        &mut tx,
        now,
        Event {
            actor: "operator",
            action: "demo.seed",
            outcome: "done",
            holder_id: Some(DEMO_HOLDER_ID),
            ..Event::default()
        },
    )
    .await?;
    tx.commit().await.context("commit the demo holder")?;
    Ok(true)
}
