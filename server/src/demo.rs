//! The demo holder the run command seeds into an empty database, so a newcomer can try the
//! journey at once. Production never passes `--demo`.

use anyhow::bail;

use unlock_protocol::CardStatus;

use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::Clock;
use crate::db::cards::CardRecord;
use crate::db::{self, Db};

pub const DEMO_DOMAIN: &str = "demo.example";
pub const DEMO_HOLDER_ID: &str = "100000000001";
pub const DEMO_EMAIL: &str = "demo.holder@demo.example";
pub const DEMO_CARD_SERIAL: &str = "2d6bddb8ad096c2d";

/// Seeds the demo holder if the database has no holders; returns whether it did.
pub async fn seed_if_empty(db: &Db, clock: &Clock) -> anyhow::Result<bool> {
    if db::holders::count(&mut *db.reader().await?).await? > 0 {
        return Ok(false);
    }
    let action = Action::DemoSeed;
    audit::operator_write(db, clock, Some(DEMO_HOLDER_ID), action, |conn, now| {
        Box::pin(async move {
            // Checked again in the write: another instance may have seeded it meanwhile.
            if db::holders::count(conn).await? > 0 {
                bail!("the database has holders already");
            }
            let two_years = 2 * 365 * 24 * 3_600_000;
            db::allowed_domains::add(conn, DEMO_DOMAIN, "demo", now).await?;
            db::holders::save(conn, DEMO_HOLDER_ID, "Demo Holder", "Demo Trust", now).await?;
            db::holder_emails::add(conn, DEMO_EMAIL, DEMO_HOLDER_ID, now, "demo", false).await?;
            let card = CardRecord {
                status: CardStatus::Active,
                cert_expires_at: now + two_years,
                model: "unlock-cr/1".into(),
            };
            db::cards::save(conn, DEMO_CARD_SERIAL, DEMO_HOLDER_ID, &card, None, 1, now).await?;
            Ok(Audited::done(Outcome::Done, None, ()))
        })
    })
    .await?;
    Ok(true)
}
