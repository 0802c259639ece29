//! What RA staff change: an address added (only in an allowed domain, only if no profile has
//! it; the holder told at every address, and then able to unlock their card with it), an
//! address removed, a holder's lock-out released, and the allow list (managers). Each is audited.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use unlock_protocol::staff::Role;

use crate::helpers::*;
use crate::staff_helpers::StaffMember;

/// A holder whose only address is outside the allow list, with an active card.
const REMOTE: &str = "555566667777";
const REMOTE_CARD: &str = "0000555566667777";
const OLD_ADDRESS: &str = "jo.bloggs@oldtrust.example";
const NEW_ADDRESS: &str = "jo.bloggs@trust.example";
const ADDED: &str = "An email address was added to your smartcard profile";
const REMOVED: &str = "An email address was removed from your smartcard profile";

async fn audit_of(
    app: &TestApp,
    action: &str,
) -> Vec<(String, String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT actor, outcome, holder_id, detail FROM audit_events WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(app.db())
    .await
    .unwrap()
}

async fn remote_holder(app: &TestApp) {
    let card = Some(("active", START_OF_TEST + 86_400_000 * 365, "unlock-cr/1"));
    add_holder(app.server(), REMOTE, OLD_ADDRESS, card).await;
}

#[tokio::test]
async fn an_ra_adds_an_address_and_the_holder_then_unlocks_their_card_alone() {
    let mut app = spawn_app().await;
    remote_holder(&app).await;
    // Today the holder can't self-serve: their address is not in an allowed domain.
    assert_eq!(
        app.start(OLD_ADDRESS).await.code(),
        "email_domain_not_allowed"
    );

    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let added = rita
        .post(
            &format!("/api/staff/holders/{REMOTE}/emails"),
            json!({"email": " Jo.Bloggs@Trust.Example "}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.json());
    let emails = &added.json()["emails"];
    assert_eq!(emails[1]["address"], NEW_ADDRESS);
    assert_eq!(emails[1]["domain_allowed"], true);
    assert_eq!(emails[1]["added_by"], "staff:rita");
    // The four-eyes rule is off by default: the address can be used at once.
    assert_eq!(emails[1]["awaiting_approval"], false);
    assert_eq!(emails[0]["domain_allowed"], false);

    // Both addresses on the profile are told, through the real SMTP server.
    for address in [OLD_ADDRESS, NEW_ADDRESS] {
        let raw = app.smtp().wait_for_subject(address, ADDED).await;
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let text = message.body_text(0).unwrap();
        assert!(text.contains(NEW_ADDRESS), "{text}");
        assert!(
            text.contains("contact your Registration Authority at once"),
            "{text}"
        );
    }
    assert_eq!(
        audit_of(&app, "staff.email_add").await,
        [(
            "staff:rita".into(),
            "added".into(),
            Some(REMOTE.into()),
            Some(NEW_ADDRESS.into())
        )]
    );

    // The remote-unlock promise: the holder now unlocks their card with that address.
    app.new_browser();
    app.verified_journey_for(NEW_ADDRESS).await;
    app.unlock_card(REMOTE_CARD).await;
    let overview = rita.get("/api/staff/overview").await.json();
    assert_eq!(overview["today"]["unlocks"], 1);
    // An unlock through an address staff added in the week before is flagged, with who added it.
    let flagged = &overview["unlocks_via_new_addresses"];
    assert_eq!(flagged.as_array().map(Vec::len), Some(1), "{overview}");
    assert_eq!(flagged[0]["holder_id"], REMOTE);
    assert_eq!(flagged[0]["card"], REMOTE_CARD);
    assert_eq!(flagged[0]["added_by"], "staff:rita");
    let profile = rita
        .get(&format!("/api/staff/holders/{REMOTE}"))
        .await
        .json();
    assert_eq!(profile["journeys"][0]["summary"], "Unlocked");
    assert_eq!(profile["journeys"][0]["unlocked"], true);
}

#[tokio::test]
async fn an_address_must_be_in_an_allowed_domain_and_on_no_profile_yet() {
    let app = spawn_app().await;
    remote_holder(&app).await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let add = |holder: &'static str, email: &'static str| {
        let path = format!("/api/staff/holders/{holder}/emails");
        let rita = &rita;
        async move { rita.post(&path, json!({"email": email})).await }
    };

    let outside = add(REMOTE, "jo@elsewhere.example").await;
    assert_eq!(
        (outside.status, outside.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_domain_not_allowed".into()
        )
    );
    assert!(
        outside.json()["message"]
            .as_str()
            .unwrap()
            .contains("elsewhere.example is not on the email domain allow list")
    );
    let taken = add(REMOTE, EMAIL).await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "email_taken".into())
    );
    assert!(taken.json()["message"].as_str().unwrap().contains(HOLDER));
    let again = add(HOLDER, EMAIL).await;
    assert_eq!(
        again.json()["message"],
        "This email address is already on this holder's profile."
    );
    let malformed = add(REMOTE, "not an address").await;
    assert_eq!(malformed.code(), "email_invalid");
    let nobody = add("111122223333", "x@trust.example").await;
    assert_eq!(
        (nobody.status, nobody.code()),
        (StatusCode::NOT_FOUND, "holder_not_found".into())
    );

    let outcomes: Vec<String> = audit_of(&app, "staff.email_add")
        .await
        .into_iter()
        .map(|(_, outcome, ..)| outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            "domain_not_allowed",
            "already_on_a_profile",
            "already_on_a_profile",
            "no_holder"
        ]
    );
    // Nothing was added, and nobody was emailed.
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM holder_emails")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(count, 2);
    let notices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'email_added'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(notices, 0);
}

#[tokio::test]
async fn a_removed_address_and_every_address_left_are_told() {
    let app = spawn_app().await;
    let second = "jane.d@trust.example";
    sqlx::query(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, 0, 'test')",
    )
    .bind(second)
    .bind(HOLDER)
    .execute(app.db())
    .await
    .unwrap();
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let removed = rita
        .delete(&format!("/api/staff/holders/{HOLDER}/emails/{second}"))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.json());
    assert_eq!(removed.json()["emails"].as_array().unwrap().len(), 1);
    for address in [EMAIL, second] {
        let raw = app.smtp().wait_for_subject(address, REMOVED).await;
        let text = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap()
            .body_text(0)
            .unwrap()
            .into_owned();
        assert!(
            text.contains(second) && text.contains("can no longer be used"),
            "{text}"
        );
    }
    let again = rita
        .delete(&format!("/api/staff/holders/{HOLDER}/emails/{second}"))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::NOT_FOUND, "email_not_on_profile".into())
    );
    let outcomes: Vec<String> = audit_of(&app, "staff.email_remove")
        .await
        .into_iter()
        .map(|(_, outcome, ..)| outcome)
        .collect();
    assert_eq!(outcomes, ["removed", "not_on_profile"]);
    // The address is now on no profile: a journey with it is answered as any unknown one.
    assert_eq!(app.start(second).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.code_emails(second).is_empty());
}

#[tokio::test]
async fn an_address_removed_lately_is_told_when_another_is_added() {
    let app = spawn_app().await;
    let removed = "jd@trust.example";
    sqlx::query(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, 0, 'test')",
    )
    .bind(removed)
    .bind(HOLDER)
    .execute(app.db())
    .await
    .unwrap();
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let path = format!("/api/staff/holders/{HOLDER}/emails");
    assert_eq!(
        rita.delete(&format!("{path}/{removed}")).await.status,
        StatusCode::OK
    );
    let added = rita
        .post(&path, json!({"email": "new.address@trust.example"}))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.json());
    // The address taken off the profile hears of the one put on, as the profile's own do.
    for address in [removed, EMAIL, "new.address@trust.example"] {
        app.smtp().wait_for_subject(address, ADDED).await;
    }
}

#[tokio::test]
async fn removing_an_address_closes_its_open_journeys() {
    let mut app = spawn_app().await;
    let second = "jd@trust.example";
    sqlx::query(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, 0, 'test')",
    )
    .bind(second)
    .bind(HOLDER)
    .execute(app.db())
    .await
    .unwrap();
    // A journey waiting for its code, and one already verified, both through that address.
    app.start(second).await;
    let code = app.code_for(second, 1).await;
    let waiting = app.client.clone();
    app.new_browser();
    app.verified_journey_for(second).await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let removed = rita
        .delete(&format!("/api/staff/holders/{HOLDER}/emails/{second}"))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.json());
    // Neither the code sent to it nor the verified journey unlocks anything now.
    assert_eq!(
        app.present_card(CARD, PROFILE).await.code(),
        "journey_closed"
    );
    app.client = waiting;
    assert_eq!(app.verify(&code).await.code(), "journey_closed");
    let details: Vec<Option<String>> = audit_of(&app, "staff.email_remove")
        .await
        .into_iter()
        .map(|(.., detail)| detail)
        .collect();
    assert_eq!(
        details,
        [Some(format!("{second} (2 open journey(s) closed)"))]
    );
}

#[tokio::test]
async fn an_ra_releases_a_holder_s_lock_out_but_not_staff_sign_in_ones() {
    let mut app = spawn_app().await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    // Two voided codes in a day lock the holder out.
    for n in 1..=2 {
        app.new_browser();
        app.start(EMAIL).await;
        let code = app.code_for(EMAIL, n).await;
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for _ in 0..3 {
            app.verify(wrong).await;
        }
    }
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.code(), "throttled");
    let profile = rita
        .get(&format!("/api/staff/holders/{HOLDER}"))
        .await
        .json();
    let throttle = profile["throttles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "subject_voided")
        .cloned()
        .expect("the holder's lock-out is shown");
    assert_eq!(throttle["target"], json!({"holder": HOLDER}));
    assert!(throttle["locked_until"].as_i64().unwrap() > app.clock.now());
    assert!(
        profile["journeys"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("voided"),
        "{profile}"
    );

    let released = rita
        .post(
            "/api/staff/throttles/release",
            json!({"target": {"holder": HOLDER}}),
        )
        .await;
    // Its voided codes, and its wrong codes today and in all.
    assert_eq!(released.json(), json!({"released": 3}));
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);

    sqlx::query(
        "INSERT INTO throttles (scope, key, hits, window_started_at, locked_until)
         VALUES ('staff_client', '127.0.0.1', 30, $1, $1 + 3600000)
         ON CONFLICT (scope, key) DO UPDATE SET hits = 30, window_started_at = $1,
                locked_until = $1 + 3600000",
    )
    .bind(app.clock.now())
    .execute(app.db())
    .await
    .unwrap();
    let client = rita
        .post(
            "/api/staff/throttles/release",
            json!({"target": {"client": "127.0.0.1"}}),
        )
        .await;
    assert_eq!(client.status, StatusCode::OK);
    let staff_lock: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM throttles WHERE scope = 'staff_client'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(staff_lock, 1, "staff sign-in lock-outs stay");
    let bad = rita
        .post(
            "/api/staff/throttles/release",
            json!({"target": {"client": "not-an-ip"}}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "query_invalid".into())
    );
    let audited: Vec<String> = audit_of(&app, "staff.throttle_release")
        .await
        .into_iter()
        .filter_map(|(.., detail)| detail)
        .collect();
    // The client address's counts of journeys started and wrong codes, not the staff lock-out.
    assert_eq!(
        audited,
        [
            format!("holder:{HOLDER}: 3 cleared"),
            "127.0.0.1: 2 cleared".into()
        ]
    );
}

#[tokio::test]
async fn an_ra_manager_changes_the_allow_list_and_holders_feel_it_at_once() {
    let app = spawn_app().await;
    remote_holder(&app).await;
    let max = app
        .signed_in_staff("max", Role::RaManager, Some("999988886666"))
        .await;
    let listed = max
        .post(
            "/api/staff/allowlist",
            json!({"domain": "@OldTrust.Example"}),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.json());
    let domains = listed.json()["domains"].as_array().unwrap().clone();
    let old = domains
        .iter()
        .find(|d| d["domain"] == "oldtrust.example")
        .unwrap();
    assert_eq!(
        (old["added_by"].clone(), old["addresses"].clone()),
        (json!("staff:max"), json!(1))
    );
    assert_eq!(app.start(OLD_ADDRESS).await.status, StatusCode::OK);

    let removed = max.delete("/api/staff/allowlist/oldtrust.example").await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        app.start(OLD_ADDRESS).await.code(),
        "email_domain_not_allowed"
    );
    let bad = max
        .post("/api/staff/allowlist", json!({"domain": "not a domain"}))
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "domain_invalid".into())
    );
    let gone = max.delete("/api/staff/allowlist/oldtrust.example").await;
    assert_eq!(gone.status, StatusCode::OK);

    let mut trail = Vec::new();
    for action in ["allowlist.add", "allowlist.remove"] {
        for (actor, outcome, _, detail) in audit_of(&app, action).await {
            trail.push(format!("{actor} {outcome} {}", detail.unwrap_or_default()));
        }
    }
    assert_eq!(
        trail,
        [
            "staff:max added oldtrust.example",
            "staff:max removed oldtrust.example",
            "staff:max not_on_the_list oldtrust.example",
        ]
    );
}

#[tokio::test]
async fn an_ra_releases_one_holder_three_times_a_week_then_only_a_manager_can_and_it_is_flagged() {
    let app = spawn_app().await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let max = app
        .signed_in_staff("max", Role::RaManager, Some("999988886666"))
        .await;
    let release = |who: &'static str| {
        let member = if who == "rita" { &rita } else { &max };
        member.post(
            "/api/staff/throttles/release",
            json!({"target": {"holder": HOLDER}}),
        )
    };
    for _ in 0..3 {
        assert_eq!(release("rita").await.status, StatusCode::OK);
    }
    let capped = release("rita").await;
    assert_eq!(
        (capped.status, capped.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert!(
        capped.json()["message"]
            .as_str()
            .unwrap()
            .contains("Ask an RA manager"),
        "{}",
        capped.json()
    );
    assert_documented(&app, "POST", "/api/staff/throttles/release", &capped).await;
    assert!(
        app.audit("staff.throttle_release")
            .await
            .contains(&"release_capped".to_owned())
    );
    // An RA manager may still release, and the overview flags the holder.
    assert_eq!(release("max").await.status, StatusCode::OK);
    let overview = max.get("/api/staff/overview").await.json();
    let flagged = &overview["repeated_releases"];
    assert_eq!(flagged[0]["holder_id"], HOLDER, "{overview}");
    assert_eq!(flagged[0]["releases"], 4);

    // A week on, the RA may release the holder again.
    app.clock.advance(Duration::from_secs(8 * 24 * 3600));
    let rita = app
        .signed_in_staff("rita2", Role::Ra, Some("999988887777"))
        .await;
    let released = rita
        .post(
            "/api/staff/throttles/release",
            json!({"target": {"holder": HOLDER}}),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK);
}

#[tokio::test]
async fn with_the_four_eyes_rule_an_added_address_starts_nothing_until_a_second_ra_approves_it() {
    let mut app = spawn_app_with(|c| c.staff.four_eyes_for_added_addresses = true).await;
    remote_holder(&app).await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let rob = app
        .signed_in_staff("rob", Role::Ra, Some("999988885555"))
        .await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    let added = rita
        .post(
            &format!("/api/staff/holders/{REMOTE}/emails"),
            json!({"email": NEW_ADDRESS}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.json());
    assert_eq!(added.json()["emails"][1]["awaiting_approval"], true);

    // Until approved, the address starts a journey like any address on no profile: the same
    // answer, and no code is sent.
    app.new_browser();
    assert_eq!(app.start(NEW_ADDRESS).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.code_emails(NEW_ADDRESS).is_empty());

    async fn approve(member: &StaffMember) -> Reply {
        member
            .post(
                &format!("/api/staff/holders/{REMOTE}/emails/approve"),
                json!({"email": NEW_ADDRESS}),
            )
            .await
    }
    // Not by who added it, nor by support.
    let own = approve(&rita).await;
    assert_eq!(
        (own.status, own.code()),
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    assert!(
        own.json()["message"]
            .as_str()
            .unwrap()
            .contains("another RA")
    );
    assert_eq!(approve(&sam).await.status, StatusCode::FORBIDDEN);
    // A second RA approves it; approving again changes nothing.
    let approved = approve(&rob).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.json());
    assert_eq!(approved.json()["emails"][1]["awaiting_approval"], false);
    assert_eq!(approve(&rob).await.code(), "email_taken");
    let outcomes: Vec<String> = audit_of(&app, "staff.email_approve")
        .await
        .into_iter()
        .map(|(actor, outcome, ..)| format!("{actor} {outcome}"))
        .collect();
    assert_eq!(
        outcomes,
        [
            "staff:rita same_staff",
            "staff:sam forbidden",
            "staff:rob approved",
            "staff:rob not_waiting"
        ]
    );

    // Now the holder can use it.
    app.new_browser();
    app.verified_journey_for(NEW_ADDRESS).await;
}
