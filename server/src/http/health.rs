use axum::Json;
use axum::extract::State;
use unlock_protocol::ErrorCode;
use unlock_protocol::api::Health;

use crate::error::Failure;
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The process can serve requests: the database answers.
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
