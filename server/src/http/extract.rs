//! Extractors that turn bad requests into the API's own errors.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use unlock_protocol::ErrorCode;

use crate::error::Failure;
use crate::journey::device::{self, DEVICE_COOKIE, DeviceCookie};
use crate::state::AppState;

/// The name of the cookie that binds a journey to the browser.
pub const JOURNEY_COOKIE: &str = "unlock_journey";

/// A JSON body whose every rejection is a [`Failure`] with a stable code.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_failure(&rejection)),
        }
    }
}

fn json_failure(rejection: &JsonRejection) -> Failure {
    let code = match rejection {
        JsonRejection::JsonDataError(_) => ErrorCode::InvalidBody,
        JsonRejection::JsonSyntaxError(_) => ErrorCode::BadJson,
        JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::BadJson,
    };
    Failure::client(code)
}

/// The client's address, canonical: the peer, or behind trusted proxies the address they
/// received the request from (see [`super::client_addr`]).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| {
                Failure::Internal(anyhow::anyhow!(
                    "the server was started without peer addresses"
                ))
            })?;
        Ok(Self(state.proxies.client(peer, &parts.headers).to_string()))
    }
}

/// The value of the cookie `name`, if the request carries a plausible one.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_up_to(headers, name, 128)
}

/// The value of the cookie `name`, if the request carries one of at most `max_len` bytes.
fn cookie_up_to(headers: &HeaderMap, name: &str, max_len: usize) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty() && value.len() <= max_len)
}

/// The journey token from the cookie, if any.
#[derive(Debug, Clone)]
pub struct JourneyToken(pub Option<String>);

impl FromRequestParts<AppState> for JourneyToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let name = cookie_name(JOURNEY_COOKIE, state.config.serves_https());
        Ok(Self(cookie(&parts.headers, &name)))
    }
}

/// The browser's device cookie, if it carries one this server signed the form of (whose
/// holders it names is checked where it is used).
#[derive(Debug, Clone)]
pub struct Device(pub Option<DeviceCookie>);

impl FromRequestParts<AppState> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let name = cookie_name(DEVICE_COOKIE, state.config.serves_https());
        Ok(Self(
            cookie_up_to(&parts.headers, &name, device::MAX_LEN)
                .and_then(|value| DeviceCookie::parse(&value)),
        ))
    }
}

/// The `Set-Cookie` value of a device cookie: sent with every request to this host (`Path=/`,
/// as `__Host-` needs), never to script.
pub fn device_cookie(cookie: &DeviceCookie, secure: bool) -> String {
    let name = cookie_name(DEVICE_COOKIE, secure);
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        cookie.value(),
        device::MAX_AGE_SECONDS
    )
}

/// A cookie's name: over https with the `__Host-` prefix, which browsers accept only from
/// this host, `Secure`, on `Path=/` and without a `Domain` — so no other site or sub-domain
/// can plant or overwrite it. Over https only the prefixed name is read.
pub fn cookie_name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The staff session token from the cookie, if any.
#[derive(Debug, Clone)]
pub struct StaffToken(pub Option<String>);

impl FromRequestParts<AppState> for StaffToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let name = cookie_name(STAFF_COOKIE, state.config.serves_https());
        Ok(Self(cookie(&parts.headers, &name)))
    }
}

/// The name of the cookie that holds a staff session.
pub const STAFF_COOKIE: &str = "unlock_staff";

/// The `Set-Cookie` value for a staff session; `None` ends it in the browser.
pub fn staff_cookie(token: Option<&str>, secure: bool, max_age_seconds: u64) -> String {
    let (value, max_age) = token.map_or(("", 0), |token| (token, max_age_seconds));
    let name = cookie_name(STAFF_COOKIE, secure);
    // `__Host-` needs `Path=/`.
    let (path, secure) = if secure {
        ("/", "; Secure")
    } else {
        ("/api/staff", "")
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// A query string whose every rejection is a [`Failure`] with a stable code.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|_| Failure::client(ErrorCode::QueryInvalid))
    }
}

/// Path parameters whose every rejection is a [`Failure`] with a stable code.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| Failure::client(ErrorCode::NotFound))
    }
}

/// The `Set-Cookie` value that binds a new journey to this browser.
pub fn journey_cookie(token: &str, secure: bool, max_age_seconds: u64) -> String {
    let name = cookie_name(JOURNEY_COOKIE, secure);
    // `__Host-` needs `Path=/`.
    let (path, secure) = if secure {
        ("/", "; Secure")
    } else {
        ("/api", "")
    };
    format!(
        "{name}={token}; Path={path}; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict{secure}"
    )
}
