use std::time::Duration;

use reqwest::StatusCode;
use unlock_server::throttle;

use crate::helpers::*;

async fn release(app: &TestApp, key: &str) -> u64 {
    let mut conn = app.db().acquire().await.unwrap();
    throttle::release(&mut conn, key).await.unwrap()
}

#[tokio::test]
async fn a_client_address_starting_too_many_journeys_is_locked_out_until_released() {
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 3).await;
    for _ in 0..3 {
        app.new_browser();
        assert_eq!(
            app.start("someone@trust.example").await.status,
            StatusCode::OK
        );
    }
    let locked = app.start(EMAIL).await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert_eq!(locked.json()["retry_after_seconds"], 15 * 60);
    assert_eq!(locked.header("retry-after"), "900");

    // The lock-out grows: the next start over the limit, once the first lock-out ends, locks longer.
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(app.start(EMAIL).await.json()["retry_after_seconds"], 3600);

    // A staff action releases it at once.
    assert_eq!(release(&app, "127.0.0.1").await, 1);
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    assert!(
        app.audit("journey.start")
            .await
            .contains(&"throttled_client".to_owned())
    );
}

#[tokio::test]
async fn a_client_address_sending_too_many_wrong_codes_is_locked_out() {
    let mut app = spawn_app_with(|c| c.throttle.client_failures_per_hour = 4).await;
    for round in 0..2 {
        app.new_browser();
        app.start(&format!("guess{round}@trust.example")).await;
        for _ in 0..2 {
            assert_eq!(app.verify("123456").await.code(), "code_wrong");
        }
    }
    app.new_browser();
    app.start("guess3@trust.example").await;
    app.verify("123456").await;
    let locked = app.verify("123456").await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert_eq!(locked.json()["retry_after_seconds"], 5 * 60);
}

#[tokio::test]
async fn a_holder_who_keeps_voiding_codes_is_locked_out_across_journeys() {
    let mut app = spawn_app().await;
    for n in 1..=2 {
        app.new_browser();
        assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
        let code = app.code_for(EMAIL, n).await;
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for _ in 0..3 {
            app.verify(wrong).await;
        }
    }
    // The second voided code within a day locks the holder for 15 minutes, from any browser.
    app.new_browser();
    let locked = app.start(EMAIL).await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert_eq!(locked.json()["retry_after_seconds"], 15 * 60);

    // Its voided codes, and its wrong codes today and in all.
    assert_eq!(release(&app, &format!("holder:{HOLDER}")).await, 3);
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_address_is_throttled_exactly_like_a_known_one() {
    let mut app = spawn_app_with(|c| c.throttle.client_failures_per_hour = 100).await;
    let mut replies = Vec::new();
    for email in [EMAIL, "jane.dof@trust.example"] {
        for _ in 0..2 {
            app.new_browser();
            app.start(email).await;
            for _ in 0..3 {
                app.verify("999999").await;
            }
        }
        app.new_browser();
        replies.push(app.start(email).await);
    }
    assert_eq!(replies[0].status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(replies[0].body, replies[1].body);
}

#[tokio::test]
async fn the_operator_command_releases_a_throttle_while_the_server_runs() {
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 1).await;
    app.start(EMAIL).await;
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.code(), "throttled");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_unlock-server"))
        .args(["throttle", "release", "--client", "127.0.0.1"])
        .env("UNLOCK_DATABASE_URL", app.config.database_url.expose())
        .env("UNLOCK_DATA_DIR", app.dir.path())
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "released 1 throttle(s) for 127.0.0.1\n"
    );
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    assert_eq!(app.audit("throttle.release").await, ["done"]);
}

#[tokio::test]
async fn the_allow_list_answer_comes_first_even_for_a_throttled_address() {
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 1).await;
    app.start(EMAIL).await;
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.code(), "throttled");
    assert_eq!(
        app.start("jane@gmail.com").await.code(),
        "email_domain_not_allowed"
    );
}

/// Starts a journey for `email` as a request forwarded with `headers`, in a fresh browser.
async fn start_forwarded(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = reqwest::Client::new()
        .post(app.url("/api/journeys"))
        .json(&serde_json::json!({ "email": email }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send().await.unwrap()).await
}

async fn start_clients(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT client_addr FROM audit_events WHERE action = 'journey.start' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap()
}

#[tokio::test]
async fn behind_trusted_proxies_the_client_is_the_first_untrusted_hop_from_the_right() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
    })
    .await;
    // A CDN (10.1.2.3) in front of the load balancer (the test's 127.0.0.1); the client's own
    // entry (6.6.6.6) is not believed.
    for (name, value) in [
        ("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3"),
        (
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8:1:2::99]:4711\", for=10.1.2.3",
        ),
        ("x-forwarded-for", "::ffff:198.51.100.4"),
    ] {
        start_forwarded(&app, EMAIL, &[(name, value)]).await;
    }
    assert_eq!(
        start_clients(&app).await,
        ["203.0.113.9", "2001:db8:1:2::99", "198.51.100.4"]
    );
}

#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_change_nothing() {
    let app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 2).await;
    for n in 0..2 {
        let spoofed = format!("203.0.113.{n}");
        start_forwarded(&app, EMAIL, &[("x-forwarded-for", &spoofed)]).await;
    }
    let locked = start_forwarded(&app, EMAIL, &[("x-forwarded-for", "203.0.113.77")]).await;
    assert_eq!(locked.code(), "throttled");
    assert!(start_clients(&app).await.iter().all(|c| c == "127.0.0.1"));
}

#[tokio::test]
async fn an_ipv6_client_is_throttled_by_its_64_and_released_by_any_address_in_it() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.throttle.client_starts_per_hour = 2;
    })
    .await;
    let from = |addr: &'static str| [("x-forwarded-for", addr)];
    for addr in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::2"] {
        assert_eq!(
            start_forwarded(&app, EMAIL, &from(addr)).await.status,
            StatusCode::OK
        );
    }
    // A new address in the same /64 is the same subscriber.
    let locked = start_forwarded(&app, EMAIL, &from("2001:db8:1:2:abcd::3")).await;
    assert_eq!(locked.code(), "throttled");
    // Another network is not.
    let other = start_forwarded(&app, EMAIL, &from("2001:db8:1:3::1")).await;
    assert_eq!(other.status, StatusCode::OK);
    // The key is the /64; releasing names any address in it (as staff and the CLI do).
    let key = unlock_server::http::client_addr::release_key("2001:db8:1:2::42").unwrap();
    assert_eq!(key, "2001:db8:1:2::/64");
    assert_eq!(release(&app, &key).await, 1);
    assert_eq!(
        start_forwarded(&app, EMAIL, &from("2001:db8:1:2::1"))
            .await
            .status,
        StatusCode::OK
    );
}
