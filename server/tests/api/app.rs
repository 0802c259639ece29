//! Serving the built single-page app beside the API.

use base64::Engine;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::*;

const HASH: &str = "1f2e3d4c5b6a7980";
const INLINE_SCRIPT: &str = "\nimport init, * as bindings from '/unlock-frontend-1f2e3d4c5b6a7980.js';\n\
     const wasm = await init({ module_or_path: '/unlock-frontend-1f2e3d4c5b6a7980_bg.wasm' });\n\
     window.wasmBindings = bindings;\n";

/// An app as Trunk builds it: an index with one inline module script, hashed assets.
fn index_html() -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <link rel=\"stylesheet\" href=\"/style-{HASH}.css\" integrity=\"sha384-x\">\
         <link rel=\"modulepreload\" href=\"/unlock-frontend-{HASH}.js\">\
         <script type=\"module\">{INLINE_SCRIPT}</script></head><body></body></html>"
    )
}

async fn app_with_built_page() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("app");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), index_html()).unwrap();
    std::fs::write(
        dist.join(format!("unlock-frontend-{HASH}.js")),
        "export default 1;",
    )
    .unwrap();
    std::fs::write(
        dist.join(format!("unlock-frontend-{HASH}_bg.wasm")),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    std::fs::write(dist.join(format!("style-{HASH}.css")), "body{}").unwrap();
    std::fs::write(dist.join("robots.txt"), "User-agent: *\n").unwrap();
    spawn_app_on(dir, None, |_| {}).await
}

#[tokio::test]
async fn the_page_and_its_routes_get_index_html_with_its_inline_script_allowed_by_hash() {
    let app = app_with_built_page().await;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(INLINE_SCRIPT));
    for path in ["/", "/email", "/code", "/card/unlock?x=1"] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(String::from_utf8_lossy(&page.body), index_html(), "{path}");
        assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
        assert_eq!(page.header("cache-control"), "no-cache");
        let csp = page.header("content-security-policy");
        assert!(
            csp.contains(&format!(
                "script-src 'self' 'wasm-unsafe-eval' 'sha256-{hash}';"
            )),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"));
        assert!(!page.header("strict-transport-security").is_empty());
        assert_eq!(page.header("x-content-type-options"), "nosniff");
    }
}

#[tokio::test]
async fn hashed_assets_are_cached_for_good_and_the_rest_revalidated() {
    let app = app_with_built_page().await;
    let wasm = app.get(&format!("/unlock-frontend-{HASH}_bg.wasm")).await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.header("content-type"), "application/wasm");
    assert_eq!(
        wasm.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(wasm.body, b"\0asm\x01\0\0\0");

    let script = app.get(&format!("/unlock-frontend-{HASH}.js")).await;
    assert_eq!(script.header("content-type"), "text/javascript");
    assert_eq!(
        script.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let style = app.get(&format!("/style-{HASH}.css")).await;
    assert_eq!(style.header("content-type"), "text/css");
    assert_eq!(
        style.header("cache-control"),
        "public, max-age=31536000, immutable"
    );

    let robots = app.get("/robots.txt").await;
    assert_eq!(robots.header("cache-control"), "no-cache");
    assert_eq!(robots.body, b"User-agent: *\n");
    // Files carry the strict policy without any script hash.
    assert!(!robots.header("content-security-policy").contains("sha256-"));
    // A folder or a path outside the app is no file: the page answers.
    assert_eq!(app.get("/assets").await.body, index_html().as_bytes());
    assert_eq!(
        app.get("/..%2funlock.db").await.body,
        index_html().as_bytes()
    );
}

#[tokio::test]
async fn the_api_still_answers_json_beside_the_app() {
    let app = app_with_built_page().await;
    for path in ["/api/unknown", "/api", "/api/journey/nothing"] {
        let missing = app.get(path).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(missing.header("content-type"), "application/json");
        assert_eq!(missing.code(), "not_found");
        assert_eq!(missing.header("cache-control"), "no-store");
    }
    let journey = app.journey().await;
    assert_eq!(journey.code(), "no_journey");
    assert_eq!(journey.header("cache-control"), "no-store");
    let posted = app.post_json("/email", serde_json::json!({})).await;
    assert_eq!(
        (posted.status, posted.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
}

#[tokio::test]
async fn without_a_built_app_the_root_says_how_to_build_it() {
    let app = spawn_app().await;
    let root = app.get("/").await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.header("content-type"), "text/html; charset=utf-8");
    let page = String::from_utf8_lossy(&root.body);
    assert!(
        page.contains("The app is not built") && page.contains("trunk build"),
        "{page}"
    );
    assert!(!root.header("content-security-policy").is_empty());
    assert_eq!(app.get("/email").await.code(), "not_found");
    assert_eq!(app.get("/api/unknown").await.code(), "not_found");
    assert_eq!(app.journey().await.code(), "no_journey");
}

#[tokio::test]
async fn assets_compressed_at_build_time_go_to_browsers_that_accept_them() {
    let app = app_with_built_page().await;
    let wasm = format!("unlock-frontend-{HASH}_bg.wasm");
    let dist = app.dir.path().join("app");
    std::fs::write(dist.join(format!("{wasm}.gz")), b"gzip bytes").unwrap();
    std::fs::write(dist.join(format!("{wasm}.br")), b"brotli bytes").unwrap();
    for (accepts, encoding, body) in [
        ("br, gzip", Some("br"), &b"brotli bytes"[..]),
        ("gzip", Some("gzip"), &b"gzip bytes"[..]),
        ("identity", None, &b"\0asm\x01\0\0\0"[..]),
    ] {
        let reply = app
            .client
            .get(app.url(&format!("/{wasm}")))
            .header("accept-encoding", accepts)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{accepts}");
        let headers = reply.headers().clone();
        assert_eq!(headers["content-type"], "application/wasm", "{accepts}");
        assert_eq!(
            headers
                .get("content-encoding")
                .map(|value| value.to_str().unwrap()),
            encoding,
            "{accepts}"
        );
        assert_eq!(&reply.bytes().await.unwrap()[..], body, "{accepts}");
    }
}

#[tokio::test]
async fn the_staff_app_is_served_under_status_with_its_own_script_allowed() {
    let app = app_with_built_page().await;
    let dist = app.config.static_dir.clone();
    let staff_script =
        "\nimport init from '/status/unlock-staff-0a1b2c3d4e5f6071.js';\nawait init();\n";
    let staff_index = format!(
        "<!DOCTYPE html><html><head><script type=\"module\">{staff_script}</script></head></html>"
    );
    std::fs::create_dir_all(dist.join("status")).unwrap();
    std::fs::write(dist.join("status/index.html"), &staff_index).unwrap();
    std::fs::write(
        dist.join("status/unlock-staff-0a1b2c3d4e5f6071.js"),
        "export default 2;",
    )
    .unwrap();
    // The pages are read at start-up.
    let mut app = app;
    app.restart().await;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(staff_script));
    for path in [
        "/status",
        "/status/",
        "/status/sign-in",
        "/status/holders/123456789012?x=1",
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(String::from_utf8_lossy(&page.body), staff_index, "{path}");
        let csp = page.header("content-security-policy");
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{path}: {csp}");
        assert_eq!(page.header("cache-control"), "no-cache");
    }
    let script = app.get("/status/unlock-staff-0a1b2c3d4e5f6071.js").await;
    assert_eq!(String::from_utf8_lossy(&script.body), "export default 2;");
    assert_eq!(
        script.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    // Paths that only look like the staff app's are the holder's.
    assert_eq!(
        String::from_utf8_lossy(&app.get("/statusx").await.body),
        index_html()
    );
}
