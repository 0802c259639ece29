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
    })
}

/// The process can serve requests: the database answers
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`.", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer.", body = ApiError),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Failure> {
    match state.db.ping().await {
        Ok(()) => Ok(Json(Health {
            status: "ready".into(),
        })),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "not ready");
            Err(Failure::client(ErrorCode::Unavailable))
        }
    }
}
