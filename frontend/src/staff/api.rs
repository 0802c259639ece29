//! Calls to the staff API (`/api/staff/...`), JSON both ways through serde (the staff app is
//! not held to the holder's download budget). The session cookie is `HttpOnly` and goes with
//! every same-origin request; a refusal that means "not signed in" signs the page out.

use gloo_net::http::{Request, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use unlock_protocol::ErrorCode;

use crate::api::{ApiFailure, failure_of};

/// The header that marks a request the page makes by itself, which does not count as the
/// staff member being active (see the server's idle time-out).
const BACKGROUND: &str = "X-Unlock-Background";

pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, ApiFailure> {
    read(Request::get(url).build()).await
}

/// A `GET` the page makes by itself, such as a refresh.
pub async fn get_in_background<T: DeserializeOwned>(url: &str) -> Result<T, ApiFailure> {
    read(Request::get(url).header(BACKGROUND, "1").build()).await
}

pub async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: &B) -> Result<T, ApiFailure> {
    read(with_json(Request::post(url), body)).await
}

pub async fn delete<T: DeserializeOwned>(url: &str) -> Result<T, ApiFailure> {
    read(Request::delete(url).build()).await
}

/// A `POST` whose answer has no body.
pub async fn post_for_nothing(url: &str) -> Result<(), ApiFailure> {
    let response = send(Request::post(url).build()).await?;
    if response.ok() {
        Ok(())
    } else {
        Err(failure_of(&response).await)
    }
}

/// A `POST` of a JSON body whose answer has no body.
pub async fn post_json_for_nothing<B: Serialize>(url: &str, body: &B) -> Result<(), ApiFailure> {
    let response = send(with_json(Request::post(url), body)).await?;
    if response.ok() {
        Ok(())
    } else {
        Err(failure_of(&response).await)
    }
}

fn with_json<B: Serialize>(request: RequestBuilder, body: &B) -> Result<Request, gloo_net::Error> {
    let text = serde_json::to_string(body).unwrap_or_default();
    request
        .header("Content-Type", "application/json")
        .body(text)
}

async fn send(
    request: Result<Request, gloo_net::Error>,
) -> Result<gloo_net::http::Response, ApiFailure> {
    let request = request.map_err(|_| ApiFailure::unreachable())?;
    request.send().await.map_err(|_| ApiFailure::unreachable())
}

async fn read<T: DeserializeOwned>(
    request: Result<Request, gloo_net::Error>,
) -> Result<T, ApiFailure> {
    let response = send(request).await?;
    if !response.ok() {
        return Err(failure_of(&response).await);
    }
    let text = response
        .text()
        .await
        .map_err(|_| ApiFailure::unreachable())?;
    serde_json::from_str(&text).map_err(|_| ApiFailure::unexpected(response.status()))
}

/// Whether a failure means the staff member must sign in (again).
pub fn needs_sign_in(failure: &ApiFailure) -> bool {
    matches!(
        failure.code,
        Some(ErrorCode::NotSignedIn | ErrorCode::SessionExpired | ErrorCode::SignInExpired)
    )
}

/// `value` made safe for a URL's query or path.
pub fn encode(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}
