//! The card steps: present the card, get a cryptogram for its challenge, send its receipt.

use std::time::Duration;

use reqwest::StatusCode;
use unlock_protocol::CardSerial;
use unlock_protocol::api::IneligibleReason;
use unlock_protocol::card_profile::{card_key, cryptogram};

use crate::helpers::*;

const YEAR: i64 = 86_400_000 * 365;
const SECOND_EMAIL: &str = "jd@trust.example";

/// Audit rows of an action: (outcome, client address, detail).
async fn audit_rows(app: &TestApp, action: &str) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT outcome, client_addr, detail FROM audit_events WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(app.db())
    .await
    .unwrap()
}

/// Waits for the unlock notice to `address`.
async fn unlock_notice_to(app: &TestApp, address: &str) -> Vec<u8> {
    app.smtp()
        .wait_for_subject(address, "Your smartcard was unlocked")
        .await
}

async fn add_email(app: &TestApp, holder: &str, email: &str) {
    sqlx::query(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, 0, 'test')",
    )
    .bind(email)
    .bind(holder)
    .execute(app.db())
    .await
    .unwrap();
}

#[tokio::test]
async fn happy_path_unlocks_the_card_and_tells_every_address_on_the_profile() {
    let app = spawn_app().await;
    add_email(&app, HOLDER, SECOND_EMAIL).await;
    app.verified_journey().await;

    let accepted = app.present_card("00:00:12:34:56:78:90:12", PROFILE).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.json());
    assert_eq!(
        accepted.json(),
        serde_json::json!({"stage": "card_accepted", "card": CARD, "expires_in_seconds": 900,
                           "challenge": {"profile": PROFILE, "serial": CARD}})
    );
    assert_eq!(app.journey().await.stage(), "card_accepted");

    let challenge = fresh_challenge();
    let released = app.cryptogram(&challenge).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.json());
    let serial = CardSerial::parse(CARD).unwrap().to_bytes();
    let expected = cryptogram(&card_key(&master(), &serial), &block(&challenge), &serial);
    assert_eq!(
        released.json(),
        serde_json::json!({"profile": PROFILE, "serial": CARD, "cryptogram": hex::encode(expected)})
    );

    let unlocked = app.receipt(&receipt_for(CARD, &challenge)).await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.json());
    assert_eq!(
        unlocked.json(),
        serde_json::json!({"stage": "unlocked", "card": CARD})
    );
    assert_eq!(
        app.journey().await.json(),
        serde_json::json!({"stage": "unlocked", "card": CARD})
    );

    // Every address on the profile is told, through the real SMTP server.
    for address in [EMAIL, SECOND_EMAIL] {
        let raw = unlock_notice_to(&app, address).await;
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("Your smartcard was unlocked"));
        assert_eq!(message.html_body_count(), 1);
        let text = message.body_text(0).unwrap().into_owned();
        assert!(text.contains("ending 9012"), "{text}");
        assert!(text.contains("28 November 2026 at 09:00 GMT"), "{text}");
        assert!(
            text.contains("If this was not you, contact your Registration Authority at once"),
            "{text}"
        );
        assert!(!text.contains("0000123456789012") && !text.contains("security code is"));
        assert!(message.body_html(0).unwrap().contains("9012"));
    }

    // The journey is over: nothing more is released for it.
    assert_refused(
        &app.cryptogram(&fresh_challenge()).await,
        StatusCode::CONFLICT,
        "journey_closed",
    );
    assert_refused(
        &app.present_card(CARD, PROFILE).await,
        StatusCode::CONFLICT,
        "journey_closed",
    );

    let client = Some("127.0.0.1".to_owned());
    assert_eq!(
        audit_rows(&app, "journey.present_card").await,
        [
            (
                "accepted".into(),
                client.clone(),
                Some(format!("card {CARD}"))
            ),
            (
                "journey_closed".into(),
                client.clone(),
                Some(format!("card {CARD}"))
            ),
        ]
    );
    assert_eq!(
        audit_rows(&app, "journey.cryptogram").await,
        [
            (
                "released".into(),
                client.clone(),
                Some(format!("card {CARD}, release 1 of 5, card master key v1"))
            ),
            ("journey_closed".into(), client.clone(), None),
        ]
    );
    assert_eq!(
        audit_rows(&app, "journey.receipt").await,
        [(
            "unlocked".into(),
            client.clone(),
            Some(format!("card {CARD}"))
        )]
    );
    assert_eq!(
        audit_rows(&app, "outbox.unlock_notice").await,
        [(
            "queued".into(),
            client.clone(),
            Some("to 2 address(es)".into())
        )]
    );
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, recipient FROM outbox WHERE kind = 'card_unlocked' ORDER BY recipient",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            ("card_unlocked".into(), EMAIL.into()),
            ("card_unlocked".into(), SECOND_EMAIL.into())
        ]
    );
    // Neither the challenge nor anything derived from the key is kept in the clear.
    let details: Vec<Option<String>> = sqlx::query_scalar("SELECT detail FROM audit_events")
        .fetch_all(app.db())
        .await
        .unwrap();
    for detail in details.into_iter().flatten() {
        assert!(!detail.contains(&challenge) && !detail.contains(&hex::encode(expected)));
    }
    let last_challenge: Option<Vec<u8>> = sqlx::query_scalar("SELECT last_challenge FROM journeys")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(last_challenge, None);
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT challenge_hash FROM card_challenges")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], block(&challenge).to_vec());
}

/// The first independent vector of `shared/test-vectors/unlock-cr-1.json`, end to end.
#[tokio::test]
async fn the_cryptogram_and_receipt_match_the_independent_test_vector() {
    let app = spawn_app().await;
    let serial = "2d6bddb8ad096c2d";
    app.add_card(HOLDER, serial, "active", START_OF_TEST + YEAR, PROFILE)
        .await;
    app.verified_journey().await;
    assert_eq!(
        app.present_card("2D6BDDB8AD096C2D", PROFILE).await.stage(),
        "card_accepted"
    );
    let released = app.cryptogram("e2f9c4a79e98c221a0561065e0626dfa").await;
    assert_eq!(
        released.json()["cryptogram"],
        "d206290d1935d00cc7a1d6d9754a930f"
    );
    let unlocked = app.receipt("05c81625313a68973efa8058c4eace12").await;
    assert_eq!(unlocked.stage(), "unlocked");
    assert_eq!(unlocked.json()["card"], serial);
}

#[tokio::test]
async fn a_card_that_is_not_on_the_profile_is_refused_and_the_holder_may_try_their_own() {
    let app = spawn_app().await;
    add_holder(
        app.server(),
        "200000000001",
        "someone.else@trust.example",
        Some(("active", START_OF_TEST + YEAR, PROFILE)),
    )
    .await;
    app.verified_journey().await;

    for stranger in ["0000200000000001", "ffffffffffffffff"] {
        let refused = app.present_card(stranger, PROFILE).await;
        assert_refused(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_not_on_profile",
        );
        assert_eq!(
            refused.json()["message"],
            "This card is not the one on your profile. Insert your own smartcard."
        );
        assert_eq!(app.journey().await.stage(), "verified");
    }
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );
    // Presenting it again (the card was pulled and put back) is fine.
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );
    assert_eq!(
        app.audit("journey.present_card").await,
        [
            "card_not_on_profile",
            "card_not_on_profile",
            "accepted",
            "accepted"
        ]
    );
}

#[tokio::test]
async fn cards_that_cannot_be_unlocked_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let cases = [
        (
            "1000000000000001",
            "cancelled",
            START_OF_TEST + YEAR,
            PROFILE,
            IneligibleReason::CardCancelled,
        ),
        (
            "1000000000000002",
            "suspended",
            START_OF_TEST + YEAR,
            PROFILE,
            IneligibleReason::CardSuspended,
        ),
        (
            "1000000000000003",
            "active",
            START_OF_TEST,
            PROFILE,
            IneligibleReason::CertificatesExpired,
        ),
        (
            "1000000000000004",
            "active",
            START_OF_TEST + YEAR,
            "legacy-card",
            IneligibleReason::CardModelUnsupported,
        ),
    ];
    for (serial, status, expires, model, _) in cases {
        app.add_card(HOLDER, serial, status, expires, model).await;
    }
    app.verified_journey().await;
    for (serial, _, _, _, reason) in cases {
        let refused = app.present_card(serial, PROFILE).await;
        assert_refused(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_not_usable",
        );
        assert_eq!(refused.json()["message"], reason.message(), "{serial}");
    }
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );
    let details: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'journey.present_card' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(
        details[0].as_deref(),
        Some("card 1000000000000001: card_cancelled")
    );
    assert_eq!(
        details[2].as_deref(),
        Some("card 1000000000000003: certificates_expired")
    );
}

#[tokio::test]
async fn a_card_is_refused_until_the_code_is_verified() {
    let app = spawn_app().await;
    assert_refused(
        &app.present_card(CARD, PROFILE).await,
        StatusCode::NOT_FOUND,
        "no_journey",
    );
    app.start(EMAIL).await;
    let early = app.present_card(CARD, PROFILE).await;
    assert_refused(&early, StatusCode::CONFLICT, "not_verified");
    assert_refused(
        &app.cryptogram(&fresh_challenge()).await,
        StatusCode::CONFLICT,
        "not_verified",
    );
    assert_eq!(app.journey().await.stage(), "awaiting_code");
    assert_eq!(app.audit("journey.present_card").await, ["not_verified"]);
}

#[tokio::test]
async fn a_cryptogram_needs_an_accepted_card() {
    let app = spawn_app().await;
    app.verified_journey().await;
    let early = app.cryptogram(&fresh_challenge()).await;
    assert_refused(&early, StatusCode::CONFLICT, "card_not_accepted");
    assert_refused(
        &app.receipt(&fresh_challenge()).await,
        StatusCode::CONFLICT,
        "card_not_accepted",
    );

    // A refused card replaces the accepted one: nothing is released for either.
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );
    app.present_card("ffffffffffffffff", PROFILE).await;
    assert_eq!(app.journey().await.stage(), "verified");
    assert_refused(
        &app.cryptogram(&fresh_challenge()).await,
        StatusCode::CONFLICT,
        "card_not_accepted",
    );

    // A card cancelled after it was accepted gets nothing either.
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );
    sqlx::query("UPDATE cards SET status = 'cancelled' WHERE serial = $1")
        .bind(CARD)
        .execute(app.db())
        .await
        .unwrap();
    let cancelled = app.cryptogram(&fresh_challenge()).await;
    assert_refused(
        &cancelled,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_not_usable",
    );
    assert_eq!(
        cancelled.json()["message"],
        IneligibleReason::CardCancelled.message()
    );
    assert_eq!(
        app.audit("journey.cryptogram").await,
        ["no_card", "no_card", "card_not_usable"]
    );
}

#[tokio::test]
async fn a_challenge_gets_one_cryptogram_for_good() {
    let mut app = spawn_app().await;
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    let challenge = fresh_challenge();
    assert_eq!(app.cryptogram(&challenge).await.status, StatusCode::OK);
    let replay = app.cryptogram(&challenge).await;
    assert_refused(
        &replay,
        StatusCode::UNPROCESSABLE_ENTITY,
        "challenge_reused",
    );
    assert!(replay.json().get("cryptogram").is_none());

    // Not in another journey either, nor after a restart.
    app.restart().await;
    app.new_browser();
    app.clock.advance(Duration::from_secs(60));
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    assert_refused(
        &app.cryptogram(&challenge).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "challenge_reused",
    );
    // A fresh challenge is fine, and the replays did not count against the journey.
    assert_eq!(
        app.cryptogram(&fresh_challenge()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.audit("journey.cryptogram").await,
        [
            "released",
            "challenge_reused",
            "challenge_reused",
            "released"
        ]
    );
}

#[tokio::test]
async fn cryptograms_are_capped_per_journey_and_the_next_request_closes_it() {
    let app = spawn_app().await;
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    for _ in 0..5 {
        assert_eq!(
            app.cryptogram(&fresh_challenge()).await.status,
            StatusCode::OK
        );
        // A card pulled and put back between attempts.
        app.present_card(CARD, PROFILE).await;
    }
    let sixth = app.cryptogram(&fresh_challenge()).await;
    assert_refused(&sixth, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert_refused(&app.journey().await, StatusCode::CONFLICT, "journey_closed");
    assert_refused(
        &app.cryptogram(&fresh_challenge()).await,
        StatusCode::CONFLICT,
        "journey_closed",
    );
    assert_refused(
        &app.present_card(CARD, PROFILE).await,
        StatusCode::CONFLICT,
        "journey_closed",
    );
    assert_eq!(
        app.audit("journey.cryptogram").await,
        [
            "released",
            "released",
            "released",
            "released",
            "released",
            "too_many_attempts",
            "journey_closed"
        ]
    );
}

#[tokio::test]
async fn a_wrong_receipt_is_refused_and_the_journey_stays_open() {
    let app = spawn_app().await;
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    let first = fresh_challenge();
    app.cryptogram(&first).await;
    let wrong = app.receipt(&receipt_for("ffffffffffffffff", &first)).await;
    assert_refused(&wrong, StatusCode::UNPROCESSABLE_ENTITY, "receipt_wrong");
    assert_eq!(app.journey().await.stage(), "card_accepted");
    // Each released challenge takes one receipt: even the right one now needs a new try.
    assert_refused(
        &app.receipt(&receipt_for(CARD, &first)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "receipt_wrong",
    );

    let second = fresh_challenge();
    assert_eq!(app.cryptogram(&second).await.status, StatusCode::OK);
    assert_eq!(
        app.receipt(&receipt_for(CARD, &second)).await.stage(),
        "unlocked"
    );
    assert_eq!(
        app.audit("journey.receipt").await,
        ["receipt_wrong", "no_challenge", "unlocked"]
    );
    // Only the real unlock was announced.
    assert_eq!(app.audit("outbox.unlock_notice").await, ["queued"]);
}

#[tokio::test]
async fn a_receipt_for_a_card_unblocked_just_before_the_journey_ran_out_still_counts() {
    let app = spawn_app().await;
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    let challenge = fresh_challenge();
    app.cryptogram(&challenge).await;
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(app.journey().await.stage(), "expired");
    assert_refused(
        &app.cryptogram(&fresh_challenge()).await,
        StatusCode::GONE,
        "journey_expired",
    );
    assert_refused(
        &app.present_card(CARD, PROFILE).await,
        StatusCode::GONE,
        "journey_expired",
    );
    assert_eq!(
        app.receipt(&receipt_for(CARD, &challenge)).await.stage(),
        "unlocked"
    );
    unlock_notice_to(&app, EMAIL).await;
}

#[tokio::test]
async fn the_card_steps_are_bound_to_the_browser_cookie() {
    let mut app = spawn_app().await;
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;

    app.new_browser();
    let challenge = fresh_challenge();
    assert_refused(
        &app.present_card(CARD, PROFILE).await,
        StatusCode::NOT_FOUND,
        "no_journey",
    );
    assert_refused(
        &app.cryptogram(&challenge).await,
        StatusCode::NOT_FOUND,
        "no_journey",
    );
    assert_refused(
        &app.receipt(&receipt_for(CARD, &challenge)).await,
        StatusCode::NOT_FOUND,
        "no_journey",
    );
    let forged = read(
        app.client
            .post(app.url(RELEASE))
            .header("cookie", "unlock_journey=00ff")
            .json(&cryptogram_request(&challenge))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_refused(&forged, StatusCode::NOT_FOUND, "no_journey");
    // A cookie that names no journey is audited: spraying forged ones leaves a trace.
    assert_eq!(app.audit("journey.cryptogram").await, ["no_journey"]);
    let rows: Vec<Option<String>> =
        sqlx::query_scalar("SELECT client_addr FROM audit_events WHERE outcome = 'no_journey'")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert!(rows.iter().all(|c| c.as_deref() == Some("127.0.0.1")));
}

#[tokio::test]
async fn bad_card_bodies_get_stable_json_errors() {
    let app = spawn_app().await;
    app.verified_journey().await;
    for (path, body) in [
        (
            "/api/journey/card",
            serde_json::json!({"serial": "12", "profile": PROFILE}),
        ),
        ("/api/journey/card", serde_json::json!({"serial": CARD})),
        (
            "/api/journey/card",
            serde_json::json!({"serial": CARD, "profile": "legacy-card"}),
        ),
        (RELEASE, serde_json::json!({"challenge": "00".repeat(16)})),
        (RELEASE, cryptogram_request("00ff")),
        (RELEASE, cryptogram_request(&"zz".repeat(16))),
        (
            RELEASE,
            serde_json::json!({"profile": "piv/1", "signature": "zz"}),
        ),
        (
            "/api/journey/card/receipt",
            serde_json::json!({"profile": PROFILE, "receipt": 5}),
        ),
        (
            "/api/journey/card/receipt",
            serde_json::json!({"profile": PROFILE, "receipt": "00".repeat(16), "x": 1}),
        ),
    ] {
        let reply = app.post_json(path, body.clone()).await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("zz"),
            "{body}: the input is not echoed"
        );
    }
}

#[tokio::test]
async fn without_a_master_key_the_card_steps_are_unavailable_but_codes_work() {
    let app = spawn_app_with(|c| c.card_master_key = None).await;
    app.verified_journey().await;
    let challenge = fresh_challenge();
    for reply in [
        app.present_card(CARD, PROFILE).await,
        app.cryptogram(&challenge).await,
        app.receipt(&challenge).await,
    ] {
        assert_refused(&reply, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        assert_eq!(
            reply.json()["message"],
            "Unlocking smartcards is not available at the moment. Try again later, or contact \
             your Registration Authority."
        );
    }
    assert_eq!(app.journey().await.stage(), "verified");
}

#[tokio::test]
async fn an_unlock_that_never_confirms_is_still_told_to_every_address_and_shown_to_staff() {
    let app = spawn_app().await;
    add_email(&app, HOLDER, SECOND_EMAIL).await;
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    // Someone with the code and the card takes the cryptogram and never sends the receipt.
    let released = app.cryptogram(&fresh_challenge()).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.json());
    app.cryptogram(&fresh_challenge()).await;

    // Every address is told at the release, once per journey.
    for address in [EMAIL, SECOND_EMAIL] {
        let raw = app
            .smtp()
            .wait_for_subject(address, "An unlock of your smartcard was started")
            .await;
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let text = message.body_text(0).unwrap().into_owned();
        assert!(text.contains("ending 9012"), "{text}");
        assert!(
            text.contains("If this was not you, contact your Registration Authority at once"),
            "{text}"
        );
        assert!(!text.contains("0000123456789012"));
    }
    let started = |raw: &Vec<u8>| subject_of(raw) == "An unlock of your smartcard was started";
    assert_eq!(
        app.smtp()
            .messages_to(EMAIL)
            .iter()
            .filter(|m| started(m))
            .count(),
        1
    );
    assert_eq!(
        audit_rows(&app, "outbox.release_notice").await,
        [(
            "queued".into(),
            Some("127.0.0.1".into()),
            Some("to 2 address(es)".into())
        )]
    );

    // Once its time has run out, staff see it for what it is.
    app.clock.advance(Duration::from_secs(16 * 60));
    let sam = app
        .signed_in_staff("sam", unlock_protocol::staff::Role::Support, None)
        .await;
    let overview = sam.get("/api/staff/overview").await.json();
    let failures = overview["today"]["failures"].as_array().unwrap();
    let unconfirmed = failures
        .iter()
        .find(|f| f["reason"] == "released_no_receipt")
        .unwrap_or_else(|| panic!("{failures:?}"));
    assert_eq!(unconfirmed["count"], 1);
    assert!(
        failures.iter().all(|f| f["reason"] != "timed_out"),
        "{failures:?}"
    );
    let profile = sam
        .get(&format!("/api/staff/holders/{HOLDER}"))
        .await
        .json();
    assert_eq!(
        profile["journeys"][0]["summary"],
        "Stopped: an unlock key was released, but the card never confirmed the unlock",
        "{profile}"
    );
}
