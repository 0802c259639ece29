//! Retention (issue 13, item 6): finished journeys with their codes, finished emails with
//! their attempts, old card challenges and throttles with nothing left to say are purged past
//! their ages; open journeys, the lifetime wrong-code count and the audit trail are kept.

use std::time::Duration;

use reqwest::StatusCode;
use unlock_server::retention::{Purged, purge};

use crate::helpers::*;

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.db()).await.unwrap()
}

#[tokio::test]
async fn what_is_past_its_age_is_purged_and_the_audit_trail_is_kept() {
    let mut app = spawn_app().await;
    // An unlock, with its code, emails and card challenge; and a wrong code first.
    app.start(EMAIL).await;
    assert_eq!(
        app.verify("000000").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let code = app.code_for(EMAIL, 1).await;
    assert_eq!(app.verify(&code).await.stage(), "verified");
    app.unlock_card(CARD).await;
    // A journey left waiting for its code.
    app.new_browser();
    app.start(EMAIL).await;
    // Every email has gone out.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count(
        &app,
        "SELECT COUNT(*) FROM outbox WHERE finished_at IS NULL",
    )
    .await
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox never finished"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let emails = count(&app, "SELECT COUNT(*) FROM outbox").await;
    let audited = count(&app, "SELECT COUNT(*) FROM audit_events").await;
    assert!(emails >= 4, "{emails} emails");

    // Nothing is old enough yet.
    assert_eq!(purge(&app.server().state).await.unwrap(), Purged::default());

    let then = app.clock.now();
    // 91 days on, a new journey is started; the old ones are past their 90 days.
    app.clock.advance(Duration::from_secs(91 * 24 * 3600));
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    let purged = purge(&app.server().state).await.unwrap();
    assert_eq!(purged.journeys, 2, "{purged:?}");
    assert_eq!(purged.emails, u64::try_from(emails).unwrap(), "{purged:?}");
    assert_eq!(purged.card_challenges, 0, "kept for 400 days");
    // The client's and the day's counts go; the lifetime count of wrong codes stays.
    assert_eq!(
        sqlx::query_scalar::<_, String>("SELECT scope FROM throttles ORDER BY scope")
            .fetch_all(app.db())
            .await
            .unwrap(),
        ["client_start", "subject_wrong_total"]
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM journeys").await, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM one_time_codes").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM outbox_attempts WHERE outbox_id NOT IN (SELECT id FROM outbox)"
        )
        .await,
        0
    );
    // The audit trail is whole, with the purge itself on it.
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE at <= $1")
        .bind(then)
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(kept, audited, "every earlier event kept");
    assert_eq!(app.audit("retention.purge").await, ["done"]);

    // The card challenge goes after 400 days.
    app.clock.advance(Duration::from_secs(310 * 24 * 3600));
    assert_eq!(purge(&app.server().state).await.unwrap().card_challenges, 1);
}
