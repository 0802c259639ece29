//! RA-assisted remote unlock: an RA who verified a holder over the phone issues a one-time
//! unlock code (12 characters with no look-alikes, 30 minutes, single use, bound to that
//! holder, shown once, audited with the RA's name, every address on the profile told); the
//! holder types it instead of an emailed code and goes on to the card steps. Wrong codes
//! count against the client as wrong emailed codes do.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use unlock_protocol::staff::Role;
use unlock_protocol::{RA_CODE_ALPHABET, RaUnlockCode};

use crate::helpers::*;
use crate::staff_helpers::StaffMember;

/// A holder whose only address is outside the allow list (so self-service can't reach
/// them), with an active card.
const REMOTE: &str = "555566667777";
const REMOTE_CARD: &str = "0000555566667777";
const OLD_ADDRESS: &str = "jo.bloggs@oldtrust.example";
/// The RA's own smartcard profile.
const RITA: &str = "999988887777";
const NOTICE: &str = "A Registration Authority gave out an unlock code for your smartcard";
const RA_CODE: &str = "/api/journey/ra-code";

async fn remote_holder(app: &TestApp) {
    let card = Some(("active", START_OF_TEST + 86_400_000 * 365, "unlock-cr/1"));
    add_holder(app.server(), REMOTE, OLD_ADDRESS, card).await;
}

fn verified() -> Value {
    json!({
        "verified_how": "called_back_on_directory_number",
        "note": "Called back on 0113 496 0000 from the trust directory; confirmed date of birth."
    })
}

async fn issue(ra: &StaffMember, holder: &str) -> Reply {
    ra.post(
        &format!("/api/staff/holders/{holder}/unlock-code"),
        verified(),
    )
    .await
}

/// Issues a code for `holder` and returns it as shown to the RA.
async fn issued_code(ra: &StaffMember, holder: &str) -> String {
    let reply = issue(ra, holder).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    reply.json()["code"].as_str().unwrap().to_owned()
}

async fn redeem(app: &TestApp, code: &str) -> Reply {
    app.post_json(RA_CODE, json!({ "code": code })).await
}

#[tokio::test]
async fn an_ra_issues_a_code_over_the_phone_and_the_holder_unlocks_their_card_with_it() {
    let mut app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;

    let reply = issue(&rita, REMOTE).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let shown = reply.json()["code"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.json()["expires_at"],
        START_OF_TEST + 30 * 60_000,
        "30 minutes"
    );
    // ABCD-EFGH-JKMN: 12 characters from the alphabet without look-alikes, in fours.
    assert_eq!(shown.len(), 14, "{shown}");
    let bare: String = shown.chars().filter(|c| *c != '-').collect();
    assert_eq!(bare.len(), 12);
    assert!(
        bare.bytes().all(|b| RA_CODE_ALPHABET.contains(&b)),
        "{shown}"
    );
    assert_eq!(RaUnlockCode::parse(&shown).unwrap().grouped(), shown);

    // Only a keyed hash is stored, never the code.
    let stored: Vec<(Vec<u8>, String, String, String)> = sqlx::query_as(
        "SELECT code_mac, issued_by, verified_how, state FROM ra_unlock_codes WHERE holder_id = $1",
    )
    .bind(REMOTE)
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.len(), 32);
    assert!(!stored[0].0.windows(12).any(|w| w == bare.as_bytes()));
    assert_eq!(stored[0].1, "staff:rita");
    assert_eq!(stored[0].2, "called_back_on_directory_number");
    assert_eq!(stored[0].3, "live");

    // Audited with the RA's name and how they verified the holder; the code is not in it.
    let events: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT actor, outcome, holder_id, detail FROM audit_events WHERE action = 'staff.unlock_code_issue'",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "staff:rita");
    assert_eq!(events[0].1, "code_issued");
    assert_eq!(events[0].2.as_deref(), Some(REMOTE));
    let detail = events[0].3.clone().unwrap();
    assert!(
        detail.starts_with("called_back_on_directory_number: Called back on"),
        "{detail}"
    );
    let everything: Vec<String> =
        sqlx::query_scalar("SELECT COALESCE(detail, '') FROM audit_events")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert!(
        everything
            .iter()
            .all(|d| !d.contains(&bare) && !d.contains(&shown))
    );

    // Every address on the profile is told who issued it, through the real SMTP server,
    // and never the code.
    let raw = app.smtp().wait_for_subject(OLD_ADDRESS, NOTICE).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(!text.contains(&bare) && !text.contains(&shown));
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let body = message.body_text(0).unwrap();
    assert!(
        body.contains("Registration Authority (rita) issued"),
        "{body}"
    );
    assert!(
        body.contains("contact your Registration Authority at once"),
        "{body}"
    );

    // The holder, in their own browser, types it as heard (any case, no dashes) and goes
    // straight to the card steps.
    app.new_browser();
    let typed = bare.to_lowercase();
    let verified = redeem(&app, &typed).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.json());
    assert_eq!(verified.stage(), "verified");
    assert!(verified.header("set-cookie").contains("unlock_journey="));
    assert_eq!(app.journey().await.stage(), "verified");
    app.unlock_card(REMOTE_CARD).await;
    assert_eq!(
        app.audit("journey.ra_code").await,
        ["verified"],
        "the redemption is audited"
    );

    // Single use: a second browser gets nothing from it.
    app.new_browser();
    let again = redeem(&app, &shown).await;
    assert_refused(&again, StatusCode::UNPROCESSABLE_ENTITY, "code_voided");

    // The overview counts it as a remote unlock with an RA's help, saving 15 minutes.
    let overview = rita.get("/api/staff/overview").await.json();
    assert_eq!(overview["today"]["unlocks"], 1, "{overview}");
    assert_eq!(overview["today"]["remote_unlocks_with_ra_help"], 1);
    assert_eq!(overview["last_30_days"]["remote_unlocks_with_ra_help"], 1);
    assert_eq!(overview["minutes_saved_per_ra_unlock"], 15);
    // 15 minutes, to a tenth of an hour.
    assert_eq!(overview["today"]["hours_saved"], 0.3);
    // The profile shows the journey, started with an RA's code.
    let profile = rita
        .get(&format!("/api/staff/holders/{REMOTE}"))
        .await
        .json();
    assert_eq!(profile["journeys"][0]["email"], "Unlock code from an RA");
    assert_eq!(profile["journeys"][0]["summary"], "Unlocked");
    assert_eq!(
        profile["journeys"][0]["steps"][0]["label"],
        "Typed the unlock code an RA gave them"
    );
}

#[tokio::test]
async fn the_minutes_an_ra_unlock_saves_are_configurable_and_a_self_service_unlock_saves_its_own() {
    let mut app = spawn_app_with(|c| c.staff.minutes_saved_per_ra_unlock = 12).await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    let code = issued_code(&rita, REMOTE).await;
    app.new_browser();
    assert_eq!(redeem(&app, &code).await.stage(), "verified");
    app.unlock_card(REMOTE_CARD).await;
    app.new_browser();
    app.verified_journey().await;
    app.unlock_card(CARD).await;
    let overview = rita.get("/api/staff/overview").await.json();
    assert_eq!(overview["today"]["unlocks"], 2, "{overview}");
    assert_eq!(overview["today"]["remote_unlocks_with_ra_help"], 1);
    assert_eq!(overview["minutes_saved_per_ra_unlock"], 12);
    // 20 + 12 minutes.
    assert_eq!(overview["today"]["hours_saved"], 0.5);
}

#[tokio::test]
async fn a_code_lasts_30_minutes() {
    let mut app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    let first = issued_code(&rita, HOLDER).await;
    let second = issued_code(&rita, REMOTE).await;
    app.clock.advance(Duration::from_secs(29 * 60 + 59));
    app.new_browser();
    assert_eq!(redeem(&app, &first).await.stage(), "verified");
    app.clock.advance(Duration::from_secs(1));
    app.new_browser();
    let late = redeem(&app, &second).await;
    assert_refused(&late, StatusCode::GONE, "code_expired");
    assert!(
        late.json()["message"]
            .as_str()
            .unwrap()
            .contains("Registration Authority")
    );
    assert_eq!(app.audit("journey.ra_code").await, ["verified", "expired"]);
}

#[tokio::test]
async fn a_code_is_bound_to_its_holder_and_a_newer_one_replaces_it() {
    let mut app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    let older = issued_code(&rita, REMOTE).await;
    let newer = issued_code(&rita, REMOTE).await;
    assert_ne!(older, newer);
    app.new_browser();
    let replaced = redeem(&app, &older).await;
    assert_refused(&replaced, StatusCode::UNPROCESSABLE_ENTITY, "code_voided");
    assert_eq!(redeem(&app, &newer).await.stage(), "verified");
    // The journey it opened is the holder's: another holder's card is refused.
    let other = app.present_card(CARD, PROFILE).await;
    assert_refused(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_not_on_profile",
    );
    let journeys: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT holder_id, subject FROM journeys")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(
        journeys,
        [(Some(REMOTE.to_owned()), format!("holder:{REMOTE}"))]
    );
    let opened: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT journey_id FROM ra_unlock_codes ORDER BY id")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(opened.len(), 2);
    assert_eq!(opened[0], None);
    assert!(opened[1].is_some());
}

#[tokio::test]
async fn nobody_issues_a_code_for_their_own_profile_and_support_staff_issue_none() {
    let app = spawn_app().await;
    remote_holder(&app).await;
    let own = app
        .signed_in_staff("jo", Role::RaManager, Some(REMOTE))
        .await;
    let refused = issue(&own, REMOTE).await;
    assert_refused(&refused, StatusCode::FORBIDDEN, "own_profile");
    let support = app.signed_in_staff("sam", Role::Support, None).await;
    assert_refused(
        &issue(&support, REMOTE).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    assert_refused(
        &issue(&rita, "000000000000").await,
        StatusCode::NOT_FOUND,
        "holder_not_found",
    );
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, outcome FROM audit_events WHERE action = 'staff.unlock_code_issue' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            ("staff:jo".to_owned(), "own_profile".to_owned()),
            ("staff:sam".to_owned(), "forbidden".to_owned()),
            ("staff:rita".to_owned(), "no_holder".to_owned()),
        ]
    );
    let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ra_unlock_codes")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(none, 0);
    // No notice went anywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.smtp().messages_to(OLD_ADDRESS).is_empty());
}

#[tokio::test]
async fn bad_requests_get_a_stable_code_and_a_sentence() {
    let app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    let path = format!("/api/staff/holders/{REMOTE}/unlock-code");
    for body in [
        json!({"verified_how": "known_to_ra", "note": "   "}),
        json!({"verified_how": "known_to_ra", "note": "x".repeat(501)}),
        json!({"verified_how": "asked_nicely", "note": "trust me"}),
        json!({"note": "no choice"}),
    ] {
        let reply = rita.post(&path, body.clone()).await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        assert!(
            !reply.json()["message"].as_str().unwrap().is_empty(),
            "{body}"
        );
    }
    for typed in [
        "",
        "ABCD-EFGH-JKM",
        "ABCD-EFGH-JKM0",
        "ABCD-EFGH-JKMI",
        "123456",
    ] {
        let reply = redeem(&app, typed).await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    }
}

#[tokio::test]
async fn wrong_codes_count_against_the_client_like_wrong_emailed_codes() {
    let mut app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    let code = issued_code(&rita, REMOTE).await;
    app.new_browser();
    // Well-formed guesses: each is wrong, until the client is locked out (10 an hour).
    let allowed = app.config.throttle.client_failures_per_hour;
    for n in 0..allowed {
        let last = char::from(RA_CODE_ALPHABET[n as usize]);
        let guess = format!("ABCD-EFGH-JKM{last}");
        let reply = redeem(&app, &guess).await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, "code_wrong");
    }
    let locked = redeem(&app, "ABCD-EFGH-ZZZZ").await;
    assert_refused(&locked, StatusCode::TOO_MANY_REQUESTS, "throttled");
    // Locked out, even the right code is refused from this client, and stays live.
    let right = redeem(&app, &code).await;
    assert_refused(&right, StatusCode::TOO_MANY_REQUESTS, "throttled");
    // The lock-out lapses; the code still works within its 30 minutes.
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(redeem(&app, &code).await.stage(), "verified");
    let outcomes = app.audit("journey.ra_code").await;
    assert_eq!(outcomes.last().map(String::as_str), Some("verified"));
    assert!(outcomes.iter().any(|o| o == "wrong_code"));
    assert!(outcomes.iter().any(|o| o == "throttled_client"));
    // The overview counts the wrong codes among its failures (a minute's repeats are folded
    // into one event once the minute is over, so at least the first is there at once).
    let overview = rita.get("/api/staff/overview").await.json();
    let failures = overview["today"]["failures"].as_array().unwrap().clone();
    let wrong = failures.iter().find(|f| f["reason"] == "ra_code_wrong");
    let counted = wrong.and_then(|f| f["count"].as_u64()).unwrap_or(0);
    assert!(
        (1..=u64::from(allowed) + 1).contains(&counted),
        "{overview}"
    );
}

#[tokio::test]
async fn a_holder_locked_out_of_self_service_is_refused_until_staff_release_them() {
    let mut app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    // Locked out until released (wrong emailed codes in all).
    sqlx::query(
        "INSERT INTO throttles (scope, key, hits, window_started_at, locked_until)
         VALUES ('subject_wrong_total', $1, 100, $2, $3)",
    )
    .bind(format!("holder:{REMOTE}"))
    .bind(START_OF_TEST)
    .bind(i64::MAX / 2)
    .execute(app.db())
    .await
    .unwrap();
    let code = issued_code(&rita, REMOTE).await;
    app.new_browser();
    let refused = redeem(&app, &code).await;
    assert_refused(&refused, StatusCode::TOO_MANY_REQUESTS, "throttled");
    let released = rita
        .post(
            "/api/staff/throttles/release",
            json!({"target": {"holder": REMOTE}}),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.json());
    assert_eq!(redeem(&app, &code).await.stage(), "verified");
}

#[tokio::test]
async fn old_codes_are_purged_with_the_journeys_and_the_audit_trail_keeps_who_issued_them() {
    let app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    issued_code(&rita, REMOTE).await;
    let purge = unlock_server::retention::purge;
    assert_eq!(purge(&app.server().state).await.unwrap().ra_unlock_codes, 0);
    app.clock.advance(Duration::from_secs(
        u64::from(app.config.retention.journeys_days + 1) * 86_400,
    ));
    let purged = purge(&app.server().state).await.unwrap();
    assert_eq!(purged.ra_unlock_codes, 1, "{purged:?}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ra_unlock_codes")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(app.audit("staff.unlock_code_issue").await, ["code_issued"]);
}

#[tokio::test]
async fn a_code_sent_from_many_browsers_at_once_opens_one_journey() {
    let app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app.signed_in_staff("rita", Role::Ra, Some(RITA)).await;
    let code = issued_code(&rita, REMOTE).await;
    let url = app.url(RA_CODE);
    let tries = (0..8).map(|_| {
        // A browser of its own each.
        let client = reqwest::Client::new();
        let (url, code) = (url.clone(), code.clone());
        async move {
            read(
                client
                    .post(url)
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(tries).await;
    let verified = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(verified, 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_refused(reply, StatusCode::UNPROCESSABLE_ENTITY, "code_voided");
    }
    let journeys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journeys")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(journeys, 1);
}
