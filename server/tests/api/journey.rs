use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn happy_path_from_email_to_verified_code() {
    let app = spawn_app().await;

    let started = app.start("  Jane.Doe@Trust.Example ").await;
    assert_eq!(started.status, StatusCode::OK);
    assert_eq!(
        started.json(),
        serde_json::json!({"stage": "awaiting_code", "email_hint": "j*******@trust.example",
                           "expires_in_seconds": 900, "tries_left": 3, "resend_in_seconds": 30})
    );
    let cookie = started.header("set-cookie");
    assert!(cookie.starts_with("unlock_journey="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/api")
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http deployments can't use Secure cookies"
    );

    let raw = app.smtp().wait_for(EMAIL, 1).await;
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("parse");
    assert_eq!(
        message.subject(),
        Some("Your smartcard unlock security code")
    );
    assert_eq!(
        message
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address()),
        Some("no-reply@unlock.invalid")
    );
    assert_eq!(message.text_body_count(), 1);
    assert_eq!(message.html_body_count(), 1);
    let text = message.body_text(0).expect("text part").into_owned();
    assert!(
        text.contains("15 minutes") && text.contains("until 09:15 GMT."),
        "{text}"
    );
    assert!(text.contains("Nobody will ever ask you for this code"));
    assert!(text.contains("If you did not ask to unlock your smartcard"));
    let code = code_in(&raw);
    assert!(message.body_html(0).expect("html part").contains(&code));

    let verified = app.verify(&code).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.json());
    assert_eq!(
        verified.json(),
        serde_json::json!({"stage": "verified", "expires_in_seconds": 900})
    );
    assert_eq!(app.journey().await.stage(), "verified");

    // Single use: the same code can't be spent again.
    let again = app.verify(&code).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "journey_closed".into())
    );

    assert_eq!(app.audit("journey.start").await, ["code_issued"]);
    assert_eq!(
        app.audit("journey.verify_code").await,
        ["verified", "not_awaiting_code"]
    );
}

#[tokio::test]
async fn codes_are_stored_only_as_keyed_hashes() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    let code = app.code_for(EMAIL, 1).await;
    let macs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT code_mac FROM one_time_codes")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(macs.len(), 1);
    assert_eq!(macs[0].len(), 32);
    assert!(!macs[0].windows(6).any(|w| w == code.as_bytes()));
    // The queued message is sealed at rest and its body is cleared once sent.
    for _ in 0..100 {
        let state: String = sqlx::query_scalar("SELECT state FROM outbox")
            .fetch_one(app.db())
            .await
            .unwrap();
        if state == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let bodies: Vec<Option<Vec<u8>>> = sqlx::query_scalar("SELECT sealed_message FROM outbox")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(bodies, [None]);
}

#[tokio::test]
async fn three_wrong_codes_void_the_code() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    let code = app.code_for(EMAIL, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let first = app.verify(wrong).await;
    assert_eq!(
        (first.status, first.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "code_wrong".into())
    );
    assert_eq!(first.json()["tries_left"], 2);
    assert_eq!(
        first.json()["message"],
        "The security code is not right. You have 2 more tries."
    );
    assert_eq!(app.verify(wrong).await.json()["tries_left"], 1);
    let third = app.verify(wrong).await;
    assert_eq!(
        (third.status, third.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "code_voided".into())
    );
    assert_eq!(third.json()["tries_left"], 0);

    // Even the right code no longer works.
    assert_eq!(app.verify(&code).await.code(), "code_voided");
    assert_eq!(app.journey().await.json()["tries_left"], 0);
    assert_eq!(
        app.audit("journey.verify_code").await,
        [
            "wrong_code",
            "wrong_code",
            "wrong_code_voided",
            "no_live_code"
        ]
    );
}

#[tokio::test]
async fn a_code_expires_fifteen_minutes_after_the_journey_starts() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    let code = app.code_for(EMAIL, 1).await;
    app.clock.advance(Duration::from_secs(14 * 60 + 59));
    assert_eq!(app.journey().await.json()["expires_in_seconds"], 1);

    app.clock.advance(Duration::from_secs(1));
    let late = app.verify(&code).await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::GONE, "code_expired".into())
    );
    assert_eq!(app.journey().await.stage(), "expired");
    assert_eq!(app.resend().await.code(), "code_expired");
}

#[tokio::test]
async fn the_code_still_works_just_before_expiry() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    let code = app.code_for(EMAIL, 1).await;
    app.clock.advance(Duration::from_secs(14 * 60 + 59));
    assert_eq!(app.verify(&code).await.stage(), "verified");
}

#[tokio::test]
async fn resend_waits_for_the_cooldown_and_only_the_latest_code_works() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    let first_code = app.code_for(EMAIL, 1).await;

    app.clock.advance(Duration::from_secs(29));
    let early = app.resend().await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::TOO_MANY_REQUESTS, "resend_too_soon".into())
    );
    assert_eq!(early.json()["retry_after_seconds"], 1);
    assert_eq!(early.header("retry-after"), "1");

    app.clock.advance(Duration::from_secs(1));
    let resent = app.resend().await;
    assert_eq!(resent.status, StatusCode::OK);
    assert_eq!(resent.json()["resend_in_seconds"], 30);
    // The journey's clock does not restart with a new code.
    assert_eq!(resent.json()["expires_in_seconds"], 870);
    let second_code = app.code_for(EMAIL, 2).await;

    if first_code != second_code {
        assert_eq!(app.verify(&first_code).await.code(), "code_wrong");
    }
    assert_eq!(app.verify(&second_code).await.stage(), "verified");
    assert_eq!(
        app.audit("journey.resend_code").await,
        ["too_soon", "code_issued"]
    );
}

#[tokio::test]
async fn at_most_five_codes_per_holder_per_hour() {
    let mut app = spawn_app().await;
    app.start(EMAIL).await;
    for sent in 1..=4 {
        // Each code's email goes out before the next is asked for (else it is withdrawn).
        app.smtp().wait_for(EMAIL, sent).await;
        app.clock.advance(Duration::from_secs(30));
        assert_eq!(app.resend().await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::from_secs(30));
    let sixth = app.resend().await;
    assert_eq!(
        (sixth.status, sixth.code()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_codes".into())
    );

    // A new journey (another browser) is capped too: the limit is per holder.
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.code(), "too_many_codes");

    app.smtp().wait_for(EMAIL, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp().messages_to(EMAIL).len(), 5);

    // An hour after the first code, one more may be sent.
    app.clock.advance(Duration::from_secs(3600 - 150 + 1));
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
}

#[tokio::test]
async fn known_and_unknown_addresses_get_byte_identical_answers() {
    let mut app = spawn_app().await;
    let unknown = "nobody.here@trust.example";

    let known_start = app.start(EMAIL).await;
    app.new_browser();
    let unknown_start = app.start(unknown).await;
    assert_eq!(known_start.status, unknown_start.status);
    let hint_free = |reply: &Reply| {
        let mut json = reply.json();
        json["email_hint"] = serde_json::Value::Null;
        json
    };
    assert_eq!(hint_free(&known_start), hint_free(&unknown_start));
    assert_eq!(known_start.body.len(), unknown_start.body.len());
    let names = |reply: &Reply| {
        reply
            .headers
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&known_start), names(&unknown_start));

    // Same-length local parts give the very same bytes.
    app.new_browser();
    let known = app.start(EMAIL).await;
    app.new_browser();
    let unknown = app.start("jane.dof@trust.example").await;
    assert_eq!(known.body, unknown.body);

    // Only the address on a profile receives an email.
    app.smtp().wait_for(EMAIL, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.smtp().messages_to("jane.dof@trust.example").is_empty());
    assert!(
        app.smtp()
            .messages_to("nobody.here@trust.example")
            .is_empty()
    );
}

#[tokio::test]
async fn every_step_answers_the_same_for_an_unknown_address() {
    let app = spawn_app().await;
    let known = spawn_app().await;
    app.start("jane.dof@trust.example").await;
    known.start(EMAIL).await;
    let code = known.code_for(EMAIL, 1).await;
    let wrong = if code == "999999" { "000000" } else { "999999" };
    for _ in 0..3 {
        assert_eq!(app.verify(wrong).await.body, known.verify(wrong).await.body);
    }
    app.clock.advance(Duration::from_secs(30));
    known.clock.advance(Duration::from_secs(30));
    assert_eq!(app.resend().await.body, known.resend().await.body);
    assert_eq!(app.journey().await.body, known.journey().await.body);
}

#[tokio::test]
async fn timing_does_not_depend_on_whether_the_address_is_known() {
    // The SMTP relay accepts connections and never answers: a server that sent mail while
    // answering would stall on known addresses only.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tarpit = format!("smtp://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_on(dir, Some(tarpit), |c| {
        c.throttle.client_starts_per_hour = 1000;
        c.journey.codes_per_day = 1000;
    })
    .await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..12 {
        for (email, times) in [
            (EMAIL.to_owned(), &mut known),
            (format!("nobody{round}@trust.example"), &mut unknown),
        ] {
            app.new_browser();
            let started = Instant::now();
            let reply = app.start(&email).await;
            times.push(started.elapsed());
            assert_eq!(reply.status, StatusCode::OK);
        }
        app.clock.advance(Duration::from_secs(3600));
    }
    known.sort();
    unknown.sort();
    // Lower quartiles: other tests running alongside only ever add time, to either side.
    let (quartile_known, quartile_unknown) = (known[3], unknown[3]);
    assert!(
        known[11] < Duration::from_secs(2),
        "slowest known-address answer took {:?}",
        known[11]
    );
    assert!(
        quartile_known < quartile_unknown * 2 + Duration::from_millis(20)
            && quartile_unknown < quartile_known * 2 + Duration::from_millis(20),
        "lower quartile known {quartile_known:?} vs unknown {quartile_unknown:?} \
         (known {known:?}, unknown {unknown:?})"
    );
    drop(listener);
}

#[tokio::test]
async fn the_allowed_domains_are_listed_for_the_page() {
    let app = spawn_app().await;
    let listed = app.get("/api/allowed-domains").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json(), serde_json::json!({ "domains": [DOMAIN] }));
}

#[tokio::test]
async fn domains_off_the_allow_list_are_refused_with_a_clear_reason() {
    let app = spawn_app().await;
    let refused = app.start("jane.doe@gmail.com").await;
    assert_eq!(
        (refused.status, refused.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_domain_not_allowed".into()
        )
    );
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("This email domain can't be used")
            && message.contains("contact your Registration Authority")
    );
    assert!(refused.header("set-cookie").is_empty());
    assert_eq!(app.audit("journey.start").await, ["domain_not_allowed"]);

    let malformed = app.start("jane.doe@").await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "email_invalid".into())
    );
}

#[tokio::test]
async fn ineligible_holders_learn_it_only_after_the_code() {
    let app = spawn_app().await;
    let year = 86_400_000 * 365;
    let cases = [
        (
            "200000000001",
            "cancelled@trust.example",
            Some(("cancelled", START_OF_TEST + year, "unlock-cr/1")),
            "card_cancelled",
        ),
        (
            "200000000002",
            "expired@trust.example",
            Some(("active", START_OF_TEST - 1, "unlock-cr/1")),
            "certificates_expired",
        ),
        (
            "200000000003",
            "oldcard@trust.example",
            Some(("active", START_OF_TEST + year, "legacy-card")),
            "card_model_unsupported",
        ),
        ("200000000004", "nocard@trust.example", None, "no_card"),
        (
            "200000000005",
            "suspended@trust.example",
            Some(("suspended", START_OF_TEST + year, "unlock-cr/1")),
            "card_suspended",
        ),
    ];
    let eligible = app.start(EMAIL).await;
    for (holder, email, card, reason) in cases {
        add_holder(app.server(), holder, email, card).await;
        let browser = spawn_browser(&app);
        let started = browser.start(email).await;
        assert_eq!(started.status, eligible.status);
        assert_eq!(started.json()["stage"], "awaiting_code");
        assert_eq!(started.json()["tries_left"], eligible.json()["tries_left"]);
        let code = browser.code_for(email, 1).await;
        let verified = browser.verify(&code).await;
        assert_eq!(verified.status, StatusCode::OK);
        assert_eq!(
            verified.json(),
            serde_json::json!({"stage": "contact_ra", "reason": reason}),
            "{email}"
        );
        assert_eq!(browser.journey().await.json()["reason"], reason);
    }
    assert_eq!(
        app.audit("journey.verify_code").await,
        ["verified_ineligible"; 5]
    );
}

/// Another browser against the same server.
fn spawn_browser(app: &TestApp) -> Browser<'_> {
    Browser {
        app,
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    }
}

struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

impl Browser<'_> {
    async fn start(&self, email: &str) -> Reply {
        read(
            self.client
                .post(self.app.url("/api/journeys"))
                .json(&serde_json::json!({"email": email}))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
    async fn verify(&self, code: &str) -> Reply {
        read(
            self.client
                .post(self.app.url("/api/journey/code"))
                .json(&serde_json::json!({"code": code}))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
    async fn journey(&self) -> Reply {
        read(
            self.client
                .get(self.app.url("/api/journey"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
    async fn code_for(&self, email: &str, n: usize) -> String {
        self.app.code_for(email, n).await
    }
}

#[tokio::test]
async fn the_journey_is_bound_to_the_browser_cookie() {
    let mut app = spawn_app().await;
    app.start(EMAIL).await;
    let code = app.code_for(EMAIL, 1).await;

    app.new_browser();
    let stranger = app.verify(&code).await;
    assert_eq!(
        (stranger.status, stranger.code()),
        (StatusCode::NOT_FOUND, "no_journey".into())
    );
    let forged = read(
        app.client
            .post(app.url("/api/journey/code"))
            .header("cookie", "unlock_journey=00ff")
            .json(&serde_json::json!({"code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(forged.code(), "no_journey");
    assert_eq!(app.journey().await.code(), "no_journey");
    // A cookie that names no journey is audited: spraying forged ones leaves a trace.
    assert_eq!(app.audit("journey.verify_code").await, ["no_journey"]);
}

#[tokio::test]
async fn cookie_is_secure_when_served_over_https() {
    let app = spawn_app_with(|c| c.public_url = "https://unlock.example.org".into()).await;
    let cookie = app.start(EMAIL).await.header("set-cookie");
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // The `__Host-` prefix: only this host can set it, on `Path=/`, never for a `Domain`.
    assert!(cookie.starts_with("__Host-unlock_journey="), "{cookie}");
    assert!(
        cookie.contains("; Path=/;") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Host-unlock_journey=")
        .to_owned();
    let view = |cookie: String| {
        let request = reqwest::Client::new()
            .get(app.url("/api/journey"))
            .header("cookie", cookie);
        async move { read(request.send().await.unwrap()).await }
    };
    assert_eq!(
        view(format!("__Host-unlock_journey={token}")).await.stage(),
        "awaiting_code"
    );
    // Over https a cookie without the prefix (one a sub-domain could plant) is not read.
    assert_eq!(
        view(format!("unlock_journey={token}")).await.code(),
        "no_journey"
    );
    let sam = app
        .add_staff("sam", unlock_protocol::staff::Role::Support, None)
        .await;
    let staff = sam
        .sign_in_with(&sam.one_time_password)
        .await
        .header("set-cookie");
    assert!(staff.starts_with("__Host-unlock_staff="), "{staff}");
    assert!(
        staff.contains("; Path=/;") && staff.contains("; Secure"),
        "{staff}"
    );
}

#[tokio::test]
async fn a_journey_survives_a_server_restart() {
    let mut app = spawn_app().await;
    app.start(EMAIL).await;
    let code = app.code_for(EMAIL, 1).await;
    app.restart().await;
    assert_eq!(app.journey().await.stage(), "awaiting_code");
    assert_eq!(app.verify(&code).await.stage(), "verified");
}

#[tokio::test]
async fn the_audit_trail_is_append_only() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    let update = sqlx::query("UPDATE audit_events SET outcome = 'tampered'")
        .execute(app.db())
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_events")
        .execute(app.db())
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(app.audit("journey.start").await, ["code_issued"]);
}

#[tokio::test]
async fn health_and_readiness() {
    let mut app = spawn_app().await;
    let health = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (StatusCode::OK, "ok".into())
    );
    let ready = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (StatusCode::OK, "ready".into())
    );
    // With the database closed the server is not ready, and says so in JSON.
    app.server().state.db.close().await;
    let not_ready = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (not_ready.status, not_ready.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
    app.stop().await;
}
