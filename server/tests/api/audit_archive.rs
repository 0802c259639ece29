//! The audit archive (issue 13, item 6): `unlock-server audit archive` moves the events of
//! past days out to a file whose SHA-256 the database keeps; `audit verify` checks a file
//! against it; an event no archive holds can never be deleted, and the archive records can
//! never be changed. The test's clock starts on 28 November 2026.

use std::process::Output;
use std::time::Duration;

use crate::helpers::*;

const DAY: Duration = Duration::from_secs(86_400);
/// 29 November 2026, 00:00 UTC.
const NOV_29: i64 = 1_795_910_400_000;

fn cli(app: &TestApp, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_unlock-server"))
        .args(args)
        .env("UNLOCK_DATABASE_URL", app.config.database_url.expose())
        .env("UNLOCK_DATA_DIR", app.dir.path())
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.db()).await.unwrap()
}

#[tokio::test]
async fn past_days_move_to_a_file_the_database_vouches_for_and_nothing_else_leaves() {
    let mut app = spawn_app().await;
    // 28 November: a journey and a wrong code. 30 November: another journey.
    app.start(EMAIL).await;
    app.verify("000000").await;
    app.clock.advance(2 * DAY);
    app.new_browser();
    app.start(EMAIL).await;
    let old = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE at < 1795910400000",
    )
    .await;
    let kept = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE at >= 1795910400000",
    )
    .await;
    assert!(old >= 2 && kept >= 1, "{old} old, {kept} kept");

    let file = app.dir.path().join("audit-2026-11.jsonl");
    let file_arg = file.to_str().unwrap();
    let future = cli(
        &app,
        &[
            "audit",
            "archive",
            "--before",
            "2999-01-01",
            "--out",
            file_arg,
        ],
    );
    assert!(!future.status.success());
    assert!(
        text(&future).contains("today or earlier"),
        "{}",
        text(&future)
    );
    assert!(!file.exists());

    let archived = cli(
        &app,
        &[
            "audit",
            "archive",
            "--before",
            "2026-11-29",
            "--out",
            file_arg,
        ],
    );
    assert!(archived.status.success(), "{}", text(&archived));
    assert!(
        text(&archived).starts_with(&format!("archived {old} events: ")),
        "{}",
        text(&archived)
    );
    // The file holds the old events, one JSON object a line, as they were stored.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), usize::try_from(old).unwrap());
    assert!(
        lines
            .iter()
            .all(|event| event["at"].as_i64().unwrap() < NOV_29)
    );
    assert_eq!(lines[0]["action"], "journey.start");
    assert_eq!(lines[0]["outcome"], "code_issued");
    // The database keeps the rest, the archive's own event (by the command's clock, today)
    // and its record of the archive.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE at < 1795910400000"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE at >= 1795910400000"
        )
        .await,
        kept + 1
    );
    assert_eq!(app.audit("audit.archive").await, ["done"]);

    // Nothing the archive does not hold can be deleted, and its records can't be touched.
    let delete = sqlx::query("DELETE FROM audit_events")
        .execute(app.db())
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    for sql in [
        "UPDATE audit_archives SET sha256 = 'forged'",
        "DELETE FROM audit_archives",
    ] {
        let tamper = sqlx::query(sql).execute(app.db()).await;
        assert!(
            tamper.unwrap_err().to_string().contains("append-only"),
            "{sql}"
        );
    }

    // The file checks out; a changed copy does not.
    let verified = cli(&app, &["audit", "verify", file_arg]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("is intact"), "{}", text(&verified));
    let changed = app.dir.path().join("changed.jsonl");
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&changed, original.replacen("code_issued", "code_issuet", 1)).unwrap();
    let refused = cli(&app, &["audit", "verify", changed.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("matches no archive"),
        "{}",
        text(&refused)
    );

    // Again: nothing is left before that day, and an archive file is never overwritten.
    let again = cli(
        &app,
        &[
            "audit",
            "archive",
            "--before",
            "2026-11-29",
            "--out",
            file_arg,
        ],
    );
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("left to archive"), "{}", text(&again));
    let overwrite = cli(
        &app,
        &[
            "audit",
            "archive",
            "--before",
            "2026-12-01",
            "--out",
            file_arg,
        ],
    );
    assert!(!overwrite.status.success());
    assert!(
        text(&overwrite).contains("never overwritten"),
        "{}",
        text(&overwrite)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    let listed = cli(&app, &["audit", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1);
}
