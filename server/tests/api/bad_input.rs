use reqwest::StatusCode;
use serde_json::json;
use unlock_protocol::staff::Role;

use crate::helpers::*;

const SECURITY_HEADERS: [&str; 6] = [
    "content-security-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cache-control",
];

fn assert_json_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), "application/json");
    let json = reply.json();
    assert_eq!(json["code"], code);
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.ends_with('.') && m.len() > 10),
        "{json}"
    );
    for name in SECURITY_HEADERS {
        assert!(
            !reply.header(name).is_empty(),
            "{name} missing on a {status} response"
        );
    }
}

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = app.client.post(app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn malformed_or_mistyped_bodies_get_stable_json_errors() {
    let app = spawn_app().await;
    let json = Some("application/json");
    let cases: [(&str, Option<&str>, &str, StatusCode, &str); 7] = [
        (
            "/api/journeys",
            json,
            "{\"email\":",
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "/api/journeys",
            json,
            "",
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "/api/journeys",
            json,
            "{\"email\": 5}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "/api/journeys",
            json,
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "/api/journeys",
            json,
            "{\"email\":\"a@trust.example\",\"admin\":true}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "/api/journeys",
            None,
            "{\"email\":\"a@trust.example\"}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/api/journey/code",
            json,
            "{\"code\": 123456}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (path, content_type, body, status, code) in cases {
        let reply = raw_post(&app, path, content_type, body).await;
        assert_json_error(&reply, status, code);
    }
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let app = spawn_app().await;
    let body = format!("{{\"email\":\"{}@trust.example\"}}", "a".repeat(20 * 1024));
    let reply = raw_post(&app, "/api/journeys", Some("application/json"), body).await;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let missing = read(
        app.client
            .get(app.url("/api/nothing-here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_json_error(&missing, StatusCode::NOT_FOUND, "not_found");
    let wrong_method = read(
        app.client
            .delete(app.url("/api/journeys"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_json_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let health = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    for name in SECURITY_HEADERS {
        assert!(
            !health.header(name).is_empty(),
            "{name} missing on /healthz"
        );
    }
    assert!(
        health
            .header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    assert!(
        health
            .header("content-security-policy")
            .contains("'wasm-unsafe-eval'")
    );
}

#[tokio::test]
async fn unicode_tricks_in_emails_are_refused_plainly() {
    let app = spawn_app().await;
    for email in [
        "jane.doe@trust.exаmple",         // Cyrillic a in the domain
        "jane.doe\u{200b}@trust.example", // zero-width space
        "jane.doe@trust.example\u{202e}", // right-to-left override
        "ｊane.doe@trust.example",        // full-width letter
        "jane.doe@trust.example\u{0}",
        "jane.doe@trust.example\r\nBcc: x@evil.example",
    ] {
        let reply = app.start(email).await;
        assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "email_invalid");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journeys")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn malformed_codes_are_refused_without_using_a_try() {
    let app = spawn_app().await;
    app.start(EMAIL).await;
    for code in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
        let reply = app.verify(code).await;
        assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    }
    assert_eq!(app.journey().await.json()["tries_left"], 3);
}

#[tokio::test]
async fn card_steps_with_a_forged_journey_cookie_are_throttled_as_the_document_says() {
    let app = spawn_app_with(|c| c.throttle.client_failures_per_hour = 3).await;
    let forged = format!("unlock_journey={}", "0".repeat(64));
    let steps = [
        (
            "/api/journey/card",
            json!({"profile": PROFILE, "serial": CARD}),
        ),
        (RELEASE, cryptogram_request(&"00".repeat(16))),
        (
            "/api/journey/card/receipt",
            json!({"profile": PROFILE, "receipt": "00".repeat(16)}),
        ),
    ];
    for (path, body) in steps {
        let mut last = None;
        for _ in 0..4 {
            let request = app.client.post(app.url(path)).header("cookie", &forged);
            let reply = read(request.json(&body).send().await.unwrap()).await;
            assert_documented(&app, "POST", path, &reply).await;
            last = Some(reply);
        }
        // Past the client's allowance each step is locked out, not just "no journey".
        assert_refused(&last.unwrap(), StatusCode::TOO_MANY_REQUESTS, "throttled");
    }
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_gets_an_answer_the_document_lists() {
    let app = spawn_app().await;
    let max = app
        .signed_in_staff("max", Role::RaManager, Some("999988886666"))
        .await;
    let email = json!({"email": EMAIL});
    let remove = format!("/api/staff/holders/{HOLDER}/emails/%FF");
    let cases = [
        ("GET", "/api/staff/holders/{id}", "/api/staff/holders/%FF"),
        (
            "POST",
            "/api/staff/holders/{id}/emails",
            "/api/staff/holders/%FF/emails",
        ),
        (
            "POST",
            "/api/staff/holders/{id}/emails/approve",
            "/api/staff/holders/%FF/emails/approve",
        ),
        (
            "DELETE",
            "/api/staff/holders/{id}/emails/{email}",
            remove.as_str(),
        ),
        (
            "DELETE",
            "/api/staff/allowlist/{domain}",
            "/api/staff/allowlist/%FF",
        ),
    ];
    for (method, documented, path) in cases {
        let reply = match method {
            "GET" => max.get(path).await,
            "POST" => max.post(path, email.clone()).await,
            _ => max.delete(path).await,
        };
        assert_refused(&reply, StatusCode::NOT_FOUND, "not_found");
        assert_documented(&app, method, documented, &reply).await;
    }
}
