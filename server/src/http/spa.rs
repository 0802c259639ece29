//! The built single-page apps: their files from `static_dir`, the holder's `index.html` for
//! its routes (`/email`, `/code`, ...), the staff app's `status/index.html` for everything
//! under `/status`, and the caching and script policy each needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_http::services::ServeDir;
use unlock_protocol::ErrorCode;

use crate::error::Failure;

/// The directives every response carries; `script-src` gains the hashes of `index.html`'s
/// inline scripts on that page only.
const SCRIPT_SRC: &str = "script-src 'self' 'wasm-unsafe-eval'";
const OTHER_DIRECTIVES: &str = "style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Assets whose names carry a content hash never change: browsers may keep them a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else is checked with the server before each use.
const REVALIDATE: &str = "no-cache";

/// Shown at `/` when there is no built app, so a newcomer knows what to do.
const NOT_BUILT_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>Smartcard unlock</title></head><body>\
     <h1>The app is not built</h1>\
     <p>The server could not find the built page (<code>static_dir</code>, by default \
     <code>frontend/dist</code>). Build it with Trunk (<code>trunk build --release</code>, \
     see the README) and restart the server.</p>\
     <p>The API under <code>/api/</code> works without it.</p>\
     </body></html>\n";

/// The Content-Security-Policy of every response, with `'sha256-…'` sources for the given
/// inline-script hashes.
pub fn content_security_policy(script_hashes: &[String]) -> String {
    let mut script_src = SCRIPT_SRC.to_owned();
    for hash in script_hashes {
        script_src.push_str(&format!(" 'sha256-{hash}'"));
    }
    format!("default-src 'self'; {script_src}; {OTHER_DIRECTIVES}")
}

/// The SHA-256 (base64) of the body of every inline `<script>` in `html`, in order: what
/// CSP needs to allow exactly those scripts (Trunk starts the WASM from one) and no others.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut hashes = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("<script") {
        let tag_start = from + found;
        let after_name = tag_start + "<script".len();
        // `<scripts>` or `<script-x>` are other elements.
        if !lower[after_name..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            from = after_name;
            continue;
        }
        let Some(tag_end) = end_of_tag(&lower, after_name) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</script") else {
            break;
        };
        let body_end = tag_end + close;
        if !has_src(&lower[after_name..tag_end]) {
            hashes.push(BASE64.encode(Sha256::digest(&html.as_bytes()[tag_end..body_end])));
        }
        from = body_end;
    }
    hashes
}

/// The index just past the `>` closing a start tag, skipping `>` inside quoted values.
fn end_of_tag(lower: &str, from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in lower[from..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '>') => return Some(from + i + 1),
            _ => {}
        }
    }
    None
}

/// Whether a start tag's attributes name an external script.
fn has_src(attributes: &str) -> bool {
    attributes
        .split(|c: char| c.is_ascii_whitespace())
        .any(|attribute| attribute == "src" || attribute.starts_with("src="))
}

/// Whether a file name carries a content hash, as Trunk writes them:
/// `unlock-frontend-1f2e3d4c5b6a7980_bg.wasm`, `style-0a1b2c3d4e5f6071.css`.
pub fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.split(['-', '_', '.'])
        .any(|part| (12..=64).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The app, or the fact that it is not built.
#[derive(Debug, Clone)]
pub enum Spa {
    Built(Arc<BuiltApp>),
    Missing,
}

/// Where the staff app lives, below the holder's.
const STAFF_PREFIX: &str = "/status";

/// A built app: its folder, and each app's `index.html` read once with the policy matching
/// its scripts.
#[derive(Debug)]
pub struct BuiltApp {
    files: ServeDir,
    holder: Page,
    /// `None` if the staff app was not built.
    staff: Option<Page>,
}

/// An app's `index.html` and the Content-Security-Policy that allows its inline scripts.
#[derive(Debug)]
struct Page {
    html: Bytes,
    csp: HeaderValue,
}

impl Page {
    fn load(path: &Path) -> std::io::Result<Self> {
        let html = std::fs::read(path)?;
        let hashes = inline_script_hashes(&String::from_utf8_lossy(&html));
        // Base64 and the fixed directives are plain ASCII, so this cannot fail.
        let csp = HeaderValue::from_str(&content_security_policy(&hashes))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        Ok(Self {
            html: Bytes::from(html),
            csp,
        })
    }

    fn respond(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
                (header::CONTENT_SECURITY_POLICY, self.csp.clone()),
            ],
            self.html.clone(),
        )
            .into_response()
    }
}

/// Whether `path` is the staff app's.
fn is_staff_path(path: &str) -> bool {
    path == STAFF_PREFIX || path.starts_with(&format!("{STAFF_PREFIX}/"))
}

impl Spa {
    /// Reads the apps' `index.html` at start-up; without the holder's only the API is served.
    pub fn load(dir: &Path) -> Self {
        let index_path: PathBuf = dir.join("index.html");
        let holder = match Page::load(&index_path) {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(
                    folder = %dir.display(),
                    %error,
                    "the app is not built (no index.html): serving the API only"
                );
                return Self::Missing;
            }
        };
        let staff_path = dir.join("status/index.html");
        let staff = match Page::load(&staff_path) {
            Ok(page) => Some(page),
            Err(error) => {
                tracing::warn!(file = %staff_path.display(), %error, "the staff app is not built");
                None
            }
        };
        tracing::info!(folder = %dir.display(), staff = staff.is_some(), "serving the app");
        Self::Built(Arc::new(BuiltApp {
            // `cargo xtask` writes .br and .gz beside each asset; they go to browsers that take them.
            files: ServeDir::new(dir)
                .append_index_html_on_directories(false)
                .precompressed_br()
                .precompressed_gzip(),
            holder,
            staff,
        }))
    }

    /// Answers a request no API route matched.
    pub async fn serve(&self, request: Request) -> Response {
        let path = request.uri().path();
        // `/metrics` is served on `metrics_listen` only: a scrape sent here is told so plainly
        // rather than handed the page.
        if path == "/api" || path.starts_with("/api/") || path == "/metrics" {
            return Failure::client(ErrorCode::NotFound).into_response();
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Failure::client(ErrorCode::MethodNotAllowed).into_response();
        }
        let app = match self {
            Self::Built(app) => app,
            Self::Missing if path == "/" => return not_built(),
            Self::Missing => {
                return Failure::client(ErrorCode::NotFound).into_response();
            }
        };
        // The page for the app a route belongs to, when the path is not a file.
        let staff = is_staff_path(path);
        let page = move || match (staff, &app.staff) {
            (false, _) => app.holder.respond(),
            (true, Some(staff)) => staff.respond(),
            (true, None) => not_built(),
        };
        if [
            "/",
            "/index.html",
            STAFF_PREFIX,
            "/status/",
            "/status/index.html",
        ]
        .contains(&path)
        {
            return page();
        }
        let hashed = is_hashed_asset(path);
        let Ok(mut response) = app.files.clone().oneshot(request).await;
        if response.status() == StatusCode::NOT_FOUND {
            // Not a file: one of the app's own routes.
            return page();
        }
        let cache = if hashed { IMMUTABLE } else { REVALIDATE };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        response.map(Body::new)
    }
}

fn not_built() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
        ],
        NOT_BUILT_PAGE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_inline_scripts_only_byte_for_byte() {
        let html = "<!DOCTYPE html><html><head>\
            <script src=\"/app-0123456789abcdef.js\" type=\"module\"></script>\
            <SCRIPT type=\"module\">\nimport init from '/app.js';\nawait init();\n</SCRIPT>\
            <script data-x=\"a>b\">alert(1)</script>\
            <scripts>not a script</scripts>\
            </head><body></body></html>";
        assert_eq!(
            inline_script_hashes(html),
            [
                // printf "\nimport init from '/app.js';\nawait init();\n" | sha256 | base64
                "mStLiw5ufhC4Rn65S+yuobFT1L6YIq0IsINW02YqTpc=".to_owned(),
                // printf 'alert(1)' | sha256 | base64
                "bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=".to_owned(),
            ]
        );
        assert!(inline_script_hashes("<p>no scripts</p>").is_empty());
        assert!(inline_script_hashes("<script>unterminated").is_empty());
    }

    #[test]
    fn policy_adds_hashes_to_script_src_and_keeps_the_rest_strict() {
        let plain = content_security_policy(&[]);
        assert_eq!(
            plain,
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        let hashed = content_security_policy(&["abc=".to_owned(), "def=".to_owned()]);
        assert!(
            hashed.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-abc=' 'sha256-def=';")
        );
        assert!(hashed.contains("frame-ancestors 'none'"));
        assert!(!hashed.contains("unsafe-inline"));
    }

    #[test]
    fn hashed_assets_are_told_apart_by_their_names() {
        for hashed in [
            "/unlock-frontend-1f2e3d4c5b6a7980.js",
            "/unlock-frontend-1f2e3d4c5b6a7980_bg.wasm",
            "/style-0a1b2c3d4e5f607.css",
            "/snippets/x/inline0-9a8b7c6d5e4f3a2b.js",
        ] {
            assert!(is_hashed_asset(hashed), "{hashed}");
        }
        for plain in [
            "/index.html",
            "/favicon.ico",
            "/robots.txt",
            "/unlock-frontend.js",
            "/fonts/arial-bold.woff2",
            "/abcdef.css",
        ] {
            assert!(!is_hashed_asset(plain), "{plain}");
        }
    }
}
