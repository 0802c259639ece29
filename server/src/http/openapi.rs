//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations and the bodies' `ToSchema` derives (`unlock-protocol`'s `openapi` feature,
//! which only the server enables: the page's WASM carries none of it).

use std::sync::LazyLock;

use axum::Json;
use unlock_protocol::{ApiError, ErrorCode};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::extract::{JOURNEY_COOKIE, STAFF_COOKIE};
use super::{health, journey, staff};

/// The name of the security scheme of the journey cookie, as the handlers' `security(...)`
/// name it.
pub const JOURNEY_SECURITY: &str = "journey_cookie";
/// The name of the security scheme of the staff session cookie.
pub const STAFF_SECURITY: &str = "staff_cookie";

/// The whole HTTP API: the holder's journey, the staff pages' API, and the health probes.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Smartcard self-service unlock",
        version = env!("CARGO_PKG_VERSION"),
        description = "The HTTP API of the smartcard self-service unlock service: the holder's \
            journey (email, one-time code, card, unlock) and the staff pages (sign-in, status, \
            holders, allow list, reports, audit log).\n\n\
            Every refusal has an `ApiError` body whose `code` is stable; its `message` is a \
            plain sentence to show. Paths not listed here answer `404` `not_found` under \
            `/api/`, and a listed path answers `405` `method_not_allowed` to another method. \
            Staff times are milliseconds since the Unix epoch (UTC).",
    ),
    paths(
        journey::allowed_domains,
        journey::start,
        journey::view,
        journey::verify,
        journey::resend,
        journey::redeem_ra_code,
        journey::present_card,
        journey::release,
        journey::receipt,
        staff::sign_in,
        staff::sign_in_code,
        staff::sign_in_new_password,
        staff::sign_out,
        staff::change_password,
        staff::me,
        staff::overview,
        staff::search_holders,
        staff::holder,
        staff::add_email,
        staff::approve_email,
        staff::remove_email,
        staff::issue_unlock_code,
        staff::release_throttle,
        staff::allow_list,
        staff::allow_domain,
        staff::disallow_domain,
        staff::report,
        staff::audit,
        document,
        health::healthz,
        health::readyz,
    ),
    components(schemas(ApiError, ErrorCode)),
    modifiers(&CookieSchemes),
    tags(
        (name = "holder", description = "The holder's journey, bound to the browser by the \
            `unlock_journey` cookie that starting it sets."),
        (name = "staff", description = "The staff pages' API, behind the `unlock_staff` \
            session cookie that signing in sets; each role may do some of it."),
        (name = "health", description = "Probes for the orchestrator."),
        (name = "meta", description = "This document."),
    ),
)]
pub struct ApiDoc;

/// Adds the two cookies as API-key security schemes, under the names the handlers use.
struct CookieSchemes;

impl Modify for CookieSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let cookie = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        components.add_security_scheme(
            JOURNEY_SECURITY,
            cookie(
                JOURNEY_COOKIE,
                "The journey's token, set by `POST /api/journeys` (named \
                 `__Host-unlock_journey` when the service is served over https).",
            ),
        );
        components.add_security_scheme(
            STAFF_SECURITY,
            cookie(
                STAFF_COOKIE,
                "The staff session's token, set by `POST /api/staff/sign-in` and replaced once \
                 the authenticator code is accepted; signed in once that code (and, at first \
                 sign-in, a new password) is accepted. Named `__Host-unlock_staff` over https.",
            ),
        );
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// This OpenAPI 3.1 document
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object)),
)]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}
