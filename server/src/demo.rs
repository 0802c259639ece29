//! The demo holder the run command seeds into an empty database, so a newcomer can try the
//! journey at once. Production never passes `--demo`.

use anyhow::Context;

use unlock_protocol::CardStatus;

use crate::audit::{self, Action, Event, Outcome};
use crate::clock::Millis;
use crate::db::cards::CardRecord;
use crate::db::{self, Db};

pub const DEMO_DOMAIN: &str = "demo.example";
pub const DEMO_HOLDER_ID: &str = "100000000001";
pub const DEMO_EMAIL: &str = "demo.holder@demo.example";
pub const DEMO_CARD_SERIAL: &str = "2d6bddb8ad096c2d";

/// Seeds the demo holder if the database has no holders; returns whether it did.
pub async fn seed_if_empty(db: &Db, now: Millis) -> anyhow::Result<bool> {
    let mut tx = db.begin().await?;
    if db::holders::count(&mut tx).await? > 0 {
        return Ok(false);
    }
    let two_years = 2 * 365 * 24 * 3_600_000;
    db::allowed_domains::add(&mut tx, DEMO_DOMAIN, "demo", now).await?;
    db::holders::save(&mut tx, DEMO_HOLDER_ID, "Demo Holder", "Demo Trust", now).await?;
    db::holder_emails::add(&mut tx, DEMO_EMAIL, DEMO_HOLDER_ID, now, "demo").await?;
    let card = CardRecord {
        status: CardStatus::Active,
        cert_expires_at: now + two_years,
        model: "unlock-cr/1".into(),
    };
    db::cards::save(&mut tx, DEMO_CARD_SERIAL, DEMO_HOLDER_ID, &card, now).await?;
    let event = Event {
        holder_id: Some(DEMO_HOLDER_ID),
        ..Event::new("operator", Action::DemoSeed, Outcome::Done)
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await.context("commit the demo holder")?;
    Ok(true)
}
