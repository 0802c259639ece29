//! What staff see: the overview's counts (today and 30 days, hours saved, failures by
//! reason, the outbox, unlocks per day), holder look-up with addresses masked for support,
//! the audit log's filters and pages, the CSV report, and plain errors for bad input.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use unlock_protocol::staff::Role;

use crate::helpers::*;

const DAY: Duration = Duration::from_secs(86_400);

fn failure(period: &Value, reason: &str) -> u64 {
    period["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["reason"] == reason)
        .map_or(0, |f| f["count"].as_u64().unwrap())
}

#[tokio::test]
async fn the_overview_counts_today_and_the_last_30_days() {
    let mut app = spawn_app().await;
    let second = "222233334444";
    add_holder(app.server(), second, "sec.ond@trust.example", None).await;

    // A whole unlock; an address outside the allow list; a code voided by wrong tries; a
    // holder with no card told to contact their RA; a journey left to run out of time.
    app.verified_journey().await;
    app.unlock_card(CARD).await;
    app.new_browser();
    assert_eq!(
        app.start("someone@elsewhere.example").await.code(),
        "email_domain_not_allowed"
    );
    app.new_browser();
    app.start("nobody@trust.example").await;
    for _ in 0..3 {
        app.verify("000000").await;
    }
    app.new_browser();
    let told = app.journey_with_code("sec.ond@trust.example").await;
    assert_eq!(
        told.json(),
        json!({"stage": "contact_ra", "reason": "no_card"})
    );
    app.new_browser();
    app.start(EMAIL).await;
    // The unlock's code, its unlock-started and unlocked notices, then this code.
    app.code_for(EMAIL, 4).await;
    wait_for_empty_outbox(&app).await;
    app.clock.advance(Duration::from_secs(16 * 60));

    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    let overview = sam.get("/api/staff/overview").await.json();
    for period in ["today", "last_30_days"] {
        let figures = &overview[period];
        assert_eq!(figures["journeys_started"], 4, "{period}: {figures}");
        assert_eq!(figures["codes_sent"], 3, "{period}: {figures}");
        assert_eq!(figures["codes_verified"], 2, "{period}: {figures}");
        assert_eq!(figures["unlocks"], 1, "{period}: {figures}");
        assert_eq!(figures["hours_saved"], 0.3, "{period}: {figures}");
        assert_eq!(failure(figures, "domain_not_allowed"), 1, "{figures}");
        assert_eq!(failure(figures, "code_voided"), 1, "{figures}");
        assert_eq!(failure(figures, "ineligible_no_card"), 1, "{figures}");
        assert_eq!(failure(figures, "timed_out"), 1, "{figures}");
        assert_eq!(figures["failed"], 4, "{figures}");
    }
    assert_eq!(overview["minutes_saved_per_unlock"], 20);
    assert_eq!(
        overview["outbox"],
        json!({"queued": 0, "oldest_queued_seconds": null,
                                          "failed_today": 0, "failed_last_30_days": 0})
    );
    let days = overview["unlocks_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29], json!({"day": "2026-11-28", "count": 1}));
    assert_eq!(days[0]["day"], "2026-10-30");

    // A day later the unlock is yesterday's.
    app.clock.advance(DAY);
    let sam = app
        .signed_in_staff("sam.next.day", Role::Support, None)
        .await;
    let overview = sam.get("/api/staff/overview").await.json();
    assert_eq!(overview["today"]["unlocks"], 0);
    assert_eq!(overview["today"]["failed"], 0);
    assert_eq!(overview["last_30_days"]["unlocks"], 1);
    let days = overview["unlocks_per_day"].as_array().unwrap();
    assert_eq!(days[28], json!({"day": "2026-11-28", "count": 1}));
    assert_eq!(days[29], json!({"day": "2026-11-29", "count": 0}));
    // And after 30 days it has left the view.
    app.clock.advance(DAY * 29);
    let sam = app
        .signed_in_staff("sam.next.month", Role::Support, None)
        .await;
    assert_eq!(
        sam.get("/api/staff/overview").await.json()["last_30_days"]["unlocks"],
        0
    );
}

#[tokio::test]
async fn the_overview_shows_the_outbox_backlog_and_failures() {
    let dir = TempDir::new().unwrap();
    // A relay that is not there, and one attempt per message.
    let dead = format!("smtp://127.0.0.1:{}", free_port());
    let app = spawn_app_on(dir, Some(dead), |c| {
        c.outbox.max_attempts = 2;
        c.outbox.retry_base_ms = 60_000;
        c.mail.send_timeout_seconds = 1;
    })
    .await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    app.start(EMAIL).await;
    // The first attempt fails and the message waits for its retry.
    wait_for_attempts(&app, 1).await;
    app.clock.advance(Duration::from_secs(30));
    let outbox = &sam.get("/api/staff/overview").await.json()["outbox"];
    assert_eq!(outbox["queued"], 1, "{outbox}");
    assert_eq!(outbox["oldest_queued_seconds"], 30);
    // The retry, a minute after the first attempt, fails for good.
    app.clock.advance(Duration::from_secs(40));
    wait_for_attempts(&app, 2).await;
    wait_for_empty_outbox(&app).await;
    let outbox = &sam.get("/api/staff/overview").await.json()["outbox"];
    assert_eq!(
        (outbox["queued"].clone(), outbox["failed_today"].clone()),
        (json!(0), json!(1)),
        "{outbox}"
    );
    assert_eq!(outbox["failed_last_30_days"], 1);
    let profile = sam
        .get(&format!("/api/staff/holders/{HOLDER}"))
        .await
        .json();
    let delivery = &profile["deliveries"][0];
    assert_eq!(
        (delivery["kind"].clone(), delivery["state"].clone()),
        (json!("one_time_code"), json!("failed"))
    );
    assert_eq!(delivery["attempts"], 2);
    assert!(
        delivery["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{delivery}"
    );
}

/// Waits until the worker has recorded every message's outcome.
async fn wait_for_empty_outbox(app: &TestApp) {
    for _ in 0..400 {
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued'")
            .fetch_one(app.db())
            .await
            .unwrap();
        if queued == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the outbox never emptied");
}

async fn wait_for_attempts(app: &TestApp, attempts: i64) {
    for _ in 0..400 {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_attempts")
            .fetch_one(app.db())
            .await
            .unwrap();
        if done >= attempts {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the outbox never made {attempts} attempts");
}

#[tokio::test]
async fn support_sees_addresses_masked_and_ra_staff_see_them_whole() {
    let app = spawn_app().await;
    sqlx::query(
        "UPDATE holders SET display_name = 'Jane Doe', organisation = 'Example Trust' WHERE id = $1",
    )
    .bind(HOLDER)
    .execute(app.db())
    .await
    .unwrap();
    app.verified_journey().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    rita.post(
        &format!("/api/staff/holders/{HOLDER}/emails"),
        json!({"email": "jd@trust.example"}),
    )
    .await;

    for query in [HOLDER, "1234 5678 9012", EMAIL, "jane", "DOE"] {
        let found = sam
            .get(&format!(
                "/api/staff/holders?q={}",
                query.replace(' ', "%20")
            ))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{query}: {}", found.json());
        assert_eq!(
            found.json(),
            json!({"matches": [{"id": HOLDER, "name": "Jane Doe", "organisation": "Example Trust",
                                "emails": ["j*******@trust.example", "j**@trust.example"]}],
                   "more": false}),
            "{query}"
        );
    }
    let full = rita
        .get(&format!("/api/staff/holders?q={EMAIL}"))
        .await
        .json();
    assert_eq!(
        full["matches"][0]["emails"],
        json!([EMAIL, "jd@trust.example"])
    );
    assert_eq!(
        sam.get("/api/staff/holders?q=nobody%20here").await.json(),
        json!({"matches": [], "more": false})
    );

    let masked = sam
        .get(&format!("/api/staff/holders/{HOLDER}"))
        .await
        .json();
    let whole = rita
        .get(&format!("/api/staff/holders/{HOLDER}"))
        .await
        .json();
    assert_eq!(masked["emails"][0]["address"], "j*******@trust.example");
    assert_eq!(whole["emails"][0]["address"], EMAIL);
    assert_eq!(masked["journeys"][0]["email"], "j*******@trust.example");
    assert_eq!(whole["journeys"][0]["email"], EMAIL);
    assert_eq!(masked["journeys"][0]["summary"], "In progress: card steps");
    let labels: Vec<&str> = masked["journeys"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Started; a code was sent", "Typed the right code"]);
    assert!(
        masked["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["recipient"].as_str().unwrap().contains('*'))
    );
    // A relay's error that names the address is masked for support too (set once the worker
    // has finished with every message, so it can't overwrite it).
    wait_for_empty_outbox(&app).await;
    sqlx::query("UPDATE outbox SET last_error = $1")
        .bind(format!("550 5.1.1 <{EMAIL}>: mailbox unavailable"))
        .execute(app.db())
        .await
        .unwrap();
    let path = format!("/api/staff/holders/{HOLDER}");
    let errors = |view: serde_json::Value| view["deliveries"][0]["last_error"].clone();
    assert_eq!(
        errors(rita.get(&path).await.json()),
        format!("550 5.1.1 <{EMAIL}>: mailbox unavailable")
    );
    let masked_error = errors(sam.get(&path).await.json());
    assert_eq!(
        masked_error, "550 5.1.1 <j*******@trust.example>: mailbox unavailable",
        "{masked_error}"
    );
    assert_eq!(masked["cards"][0]["serial"], CARD);
    assert_eq!(masked["cards"][0]["unlockable"], true);
    // Nothing on a profile is a code.
    let text = masked.to_string() + &whole.to_string();
    let code = app.code_for(EMAIL, 1).await;
    assert!(!text.contains(&code));

    let audit = sam
        .get("/api/staff/audit?action=staff.email_add")
        .await
        .json();
    assert_eq!(audit["events"][0]["detail"], "j**@trust.example");
    let audit = rita
        .get("/api/staff/audit?action=staff.email_add")
        .await
        .json();
    assert_eq!(audit["events"][0]["detail"], "jd@trust.example");
    // Looking is on the record too.
    let searches: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'staff.holder_search'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(searches, 7);
}

#[tokio::test]
async fn the_audit_log_filters_and_pages() {
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 1000).await;
    for n in 0..60 {
        app.new_browser();
        app.start(&format!("person{n}@trust.example")).await;
    }
    app.clock.advance(DAY);
    app.new_browser();
    app.verified_journey().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;

    let first = sam
        .get("/api/staff/audit?action=journey.start")
        .await
        .json();
    let events = first["events"].as_array().unwrap();
    assert_eq!(events.len(), 50);
    assert_eq!(events[0]["holder_id"], HOLDER, "newest first");
    let before = first["next_before"].as_i64().unwrap();
    let second = sam
        .get(&format!(
            "/api/staff/audit?action=journey.start&before={before}"
        ))
        .await
        .json();
    assert_eq!(second["events"].as_array().unwrap().len(), 11);
    assert_eq!(second["next_before"], Value::Null);

    let by_day = sam
        .get("/api/staff/audit?action=journey.&from=2026-11-28&to=2026-11-28")
        .await
        .json();
    assert_eq!(by_day["events"].as_array().unwrap().len(), 50);
    let holder = sam
        .get(&format!("/api/staff/audit?holder={HOLDER}"))
        .await
        .json();
    let actions: Vec<&str> = holder["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["journey.verify_code", "journey.start"]);
    let staff = sam
        .get("/api/staff/audit?actor=staff:sam&outcome=password_ok")
        .await
        .json();
    assert_eq!(staff["events"].as_array().unwrap().len(), 1);
    assert_eq!(staff["events"][0]["action"], "staff.sign_in");

    for bad in [
        "from=yesterday",
        "holder=12",
        "from=2026-11-29&to=2026-11-28",
        "colour=blue",
        "before=x",
    ] {
        let refused = sam.get(&format!("/api/staff/audit?{bad}")).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "query_invalid".into()),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_report_counts_unlocks_and_registrations_per_organisation() {
    let app = spawn_app().await;
    let other = "555566667777";
    add_holder(app.server(), other, "x@trust.example", None).await;
    sqlx::query("UPDATE holders SET organisation = CASE id WHEN $1 THEN 'Example Trust' ELSE '=Other+Trust' END")
        .bind(HOLDER)
        .execute(app.db())
        .await
        .unwrap();
    app.verified_journey().await;
    app.unlock_card(CARD).await;
    let max = app
        .signed_in_staff("max", Role::RaManager, Some("999988886666"))
        .await;
    max.post(
        &format!("/api/staff/holders/{other}/emails"),
        json!({"email": "y@trust.example"}),
    )
    .await;
    max.delete(&format!(
        "/api/staff/holders/{other}/emails/x@trust.example"
    ))
    .await;

    let report = max
        .get("/api/staff/reports/organisations.csv?from=2026-11-01&to=2026-11-30")
        .await;
    assert_eq!(report.status, StatusCode::OK);
    assert_eq!(report.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        report.header("content-disposition"),
        "attachment; filename=\"unlocks-and-registrations-2026-11-01-to-2026-11-30.csv\""
    );
    let mut rows = csv::Reader::from_reader(report.body.as_slice());
    assert_eq!(
        rows.headers().unwrap(),
        vec![
            "organisation",
            "unlocks",
            "hours_saved",
            "emails_added",
            "emails_removed",
            "from",
            "to"
        ]
    );
    let lines: Vec<Vec<String>> = rows
        .records()
        .map(|row| row.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        lines,
        [
            [
                "'=Other+Trust",
                "0",
                "0.0",
                "1",
                "1",
                "2026-11-01",
                "2026-11-30"
            ],
            [
                "Example Trust",
                "1",
                "0.3",
                "0",
                "0",
                "2026-11-01",
                "2026-11-30"
            ],
        ]
    );
    let december = max
        .get("/api/staff/reports/organisations.csv?from=2026-12-01&to=2026-12-31")
        .await;
    assert!(String::from_utf8_lossy(&december.body).contains("Example Trust,0,0.0,0,0"));
    for bad in [
        "from=2026-11-30&to=2026-11-01",
        "from=2025-01-01&to=2026-11-30",
        "to=2026-11-30",
        "",
    ] {
        let refused = max
            .get(&format!("/api/staff/reports/organisations.csv?{bad}"))
            .await;
        assert_eq!(refused.code(), "query_invalid", "{bad}");
    }
    let exported: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_events WHERE action = 'staff.report_export'")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(
        exported,
        [
            "unlocks and registrations, 2026-11-01 to 2026-11-30",
            "unlocks and registrations, 2026-12-01 to 2026-12-31"
        ]
    );
}

#[tokio::test]
async fn bad_staff_requests_get_plain_json_errors() {
    let app = spawn_app().await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let cases = [
        (
            rita.get("/api/staff/holders/12345").await,
            StatusCode::NOT_FOUND,
            "holder_not_found",
        ),
        (
            rita.get("/api/staff/holders/111122223333").await,
            StatusCode::NOT_FOUND,
            "holder_not_found",
        ),
        (
            rita.get("/api/staff/holders?q=").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query_invalid",
        ),
        (
            rita.get("/api/staff/holders?q=a").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query_invalid",
        ),
        (
            rita.get("/api/staff/holders?q=1234").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query_invalid",
        ),
        (
            rita.get("/api/staff/holders?q=bad@@x").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query_invalid",
        ),
        (
            rita.get("/api/staff/holders").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query_invalid",
        ),
        (
            rita.post(
                &format!("/api/staff/holders/{HOLDER}/emails"),
                json!({"email": "a@trust.example", "x": 1}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            rita.post(
                "/api/staff/throttles/release",
                json!({"target": {"moon": "1"}}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            rita.post("/api/staff/sign-in", json!({"username": 5}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            rita.get("/api/staff/nothing-here").await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            rita.delete("/api/staff/overview").await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (reply, status, code) in cases {
        assert_refused(&reply, status, code);
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
    }
}
