use axum::Json;
use axum::extract::State;
use unlock_protocol::api::Health;
use unlock_protocol::{ApiError, ErrorCode};

use crate::error::Failure;
use crate::state::AppState;

/// The process is up
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    responses((status = 200, description = "`{\"status\": \"ok\"}`.", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        key_token: None,
    })
}

/// The process can serve requests: the database answers (and how the key token is)
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`, with `\"key_token\": \"ok\"` or `\"unavailable\"` when keys are on a PKCS#11 token (a token that does not answer stops only the card steps, so the instance stays ready).", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer.", body = ApiError),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Failure> {
    match state.db.ping().await {
        Ok(()) => Ok(Json(Health {
            status: "ready".into(),
            key_token: match state.custody.token_health().await {
                None => None,
                Some(Ok(())) => Some("ok".into()),
                Some(Err(error)) => {
                    tracing::warn!(%error, "the key token does not answer");
                    Some("unavailable".into())
                }
            },
        })),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "not ready");
            Err(Failure::client(ErrorCode::Unavailable))
        }
    }
}
