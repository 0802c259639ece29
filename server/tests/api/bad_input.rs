use reqwest::StatusCode;

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
