//! Handlers of the staff API (`/api/staff/...`); the rules live in [`crate::staff`].

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use unlock_protocol::staff::{
    AddDomain, AddEmail, AllowList, AuditPage, HolderProfile, HolderSearch, Me, NewPassword,
    Overview, Permission, ReleaseThrottle, Released, SecondFactor, SignIn, SignInStep,
};
use unlock_protocol::{ErrorCode, HolderId};

use super::extract::{ApiJson, ApiPath, ApiQuery, ClientAddr, StaffToken, staff_cookie};
use crate::allowlist;
use crate::error::Failure;
use crate::staff::audit_log::{self, AuditFilter};
use crate::staff::auth;
use crate::staff::session::{self, StaffUser};
use crate::staff::{actions, holders, overview, record_access, reports};
use crate::state::AppState;

/// The header the page sets on requests it makes by itself (the overview's refresh), which
/// do not count as the staff member being active.
const BACKGROUND: &str = "x-unlock-background";

/// The signed-in staff member; every staff endpoint but signing in takes one.
#[derive(Debug)]
pub struct Staff(pub StaffUser);

impl FromRequestParts<AppState> for Staff {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
        let Ok(StaffToken(token)) = StaffToken::from_request_parts(parts, state).await;
        let background = parts.headers.contains_key(BACKGROUND);
        session::authenticate(state, token.as_deref(), &client, background)
            .await
            .map(Self)
    }
}

fn session_cookie(state: &AppState, token: Option<&str>) -> [(header::HeaderName, String); 1] {
    let max_age = state.config.staff.session_hours * 3600;
    [(
        header::SET_COOKIE,
        staff_cookie(token, state.config.serves_https(), max_age),
    )]
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<impl IntoResponse, Failure> {
    let begun = auth::sign_in(&state, &body.username, body.password, &client).await?;
    Ok((session_cookie(&state, Some(&begun.token)), Json(begun.step)))
}

pub async fn sign_in_code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    StaffToken(token): StaffToken,
    ApiJson(body): ApiJson<SecondFactor>,
) -> Result<Json<SignInStep>, Failure> {
    auth::second_factor(&state, token.as_deref(), &body.code, &client)
        .await
        .map(Json)
}

pub async fn sign_in_new_password(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    StaffToken(token): StaffToken,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<Json<SignInStep>, Failure> {
    auth::new_password(&state, token.as_deref(), body.password, &client)
        .await
        .map(Json)
}

pub async fn sign_out(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    StaffToken(token): StaffToken,
) -> Result<impl IntoResponse, Failure> {
    session::sign_out(&state, token.as_deref(), &client).await?;
    Ok((StatusCode::NO_CONTENT, session_cookie(&state, None)))
}

pub async fn me(State(state): State<AppState>, Staff(user): Staff) -> Json<Me> {
    Json(user.me(&state))
}

pub async fn overview(
    State(state): State<AppState>,
    Staff(user): Staff,
) -> Result<Json<Overview>, Failure> {
    session::require(&state, &user, Permission::ViewStatus, "staff.overview").await?;
    Ok(Json(overview::overview(&state).await?))
}

#[derive(Debug, Deserialize)]
pub struct Search {
    q: String,
}

pub async fn search_holders(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiQuery(search): ApiQuery<Search>,
) -> Result<Json<HolderSearch>, Failure> {
    let action = "staff.holder_search";
    session::require(&state, &user, Permission::ViewStatus, action).await?;
    let (searched, found) = holders::search(&state, &user, &search.q).await?;
    let detail = format!(
        "{}: {} ({} found)",
        searched.as_str(),
        search.q.trim(),
        found.matches.len()
    );
    record_access(&state, &user, action, None, Some(detail)).await?;
    Ok(Json(found))
}

fn holder_id(raw: &str) -> Result<HolderId, Failure> {
    HolderId::parse(raw).map_err(|_| Failure::client(ErrorCode::HolderNotFound))
}

async fn profile_of(
    state: &AppState,
    user: &StaffUser,
    id: &HolderId,
) -> Result<Json<HolderProfile>, Failure> {
    holders::profile(state, user, id)
        .await?
        .map(Json)
        .ok_or_else(|| Failure::client(ErrorCode::HolderNotFound))
}

pub async fn holder(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(raw_id): ApiPath<String>,
) -> Result<Json<HolderProfile>, Failure> {
    let action = "staff.holder_view";
    session::require(&state, &user, Permission::ViewStatus, action).await?;
    let id = holder_id(&raw_id)?;
    let profile = profile_of(&state, &user, &id).await?;
    record_access(&state, &user, action, Some(&id), None).await?;
    Ok(profile)
}

pub async fn add_email(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(raw_id): ApiPath<String>,
    ApiJson(body): ApiJson<AddEmail>,
) -> Result<Json<HolderProfile>, Failure> {
    let id = holder_id(&raw_id)?;
    actions::add_email(&state, &user, &id, &body.email).await?;
    profile_of(&state, &user, &id).await
}

pub async fn remove_email(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath((raw_id, email)): ApiPath<(String, String)>,
) -> Result<Json<HolderProfile>, Failure> {
    let id = holder_id(&raw_id)?;
    actions::remove_email(&state, &user, &id, &email).await?;
    profile_of(&state, &user, &id).await
}

pub async fn release_throttle(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiJson(body): ApiJson<ReleaseThrottle>,
) -> Result<Json<Released>, Failure> {
    let released = actions::release_throttle(&state, &user, body.target).await?;
    Ok(Json(Released { released }))
}

pub async fn allow_list(
    State(state): State<AppState>,
    Staff(user): Staff,
) -> Result<Json<AllowList>, Failure> {
    session::require(&state, &user, Permission::ViewStatus, "staff.allowlist").await?;
    Ok(Json(AllowList {
        domains: allowlist::list(state.db.read_pool()).await?,
    }))
}

pub async fn allow_domain(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiJson(body): ApiJson<AddDomain>,
) -> Result<Json<AllowList>, Failure> {
    actions::change_allowlist(&state, &user, &body.domain, true).await?;
    allow_list(State(state), Staff(user)).await
}

pub async fn disallow_domain(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<AllowList>, Failure> {
    actions::change_allowlist(&state, &user, &domain, false).await?;
    allow_list(State(state), Staff(user)).await
}

#[derive(Debug, Deserialize)]
pub struct ReportRange {
    from: Option<String>,
    to: Option<String>,
}

pub async fn report(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiQuery(range): ApiQuery<ReportRange>,
) -> Result<Response, Failure> {
    let action = "staff.report_export";
    session::require(&state, &user, Permission::ExportReports, action).await?;
    let range = reports::Range::parse(range.from.as_deref(), range.to.as_deref())?;
    let csv = reports::organisations(&state, &range).await?;
    let detail = format!("unlocks and registrations, {} to {}", range.from, range.to);
    record_access(&state, &user, action, None, Some(detail)).await?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", range.file_name()))
            .map_err(|error| anyhow::anyhow!("the report's file name: {error}"))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

pub async fn audit(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<AuditPage>, Failure> {
    session::require(&state, &user, Permission::ViewStatus, "staff.audit").await?;
    audit_log::page(&state, &user, &filter).await.map(Json)
}
