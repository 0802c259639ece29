//! Handlers of the staff API (`/api/staff/...`); the rules live in [`crate::staff`].

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use unlock_protocol::staff::{
    AddDomain, AddEmail, AllowList, ApproveEmail, AuditPage, ChangePassword, HolderProfile,
    HolderSearch, IssueUnlockCode, Me, NewPassword, Overview, Permission, ReleaseThrottle,
    Released, SecondFactor, SignIn, SignInStep, UnlockCodeIssued,
};
use unlock_protocol::{ApiError, ErrorCode, HolderId};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use super::extract::{ApiJson, ApiPath, ApiQuery, ClientAddr, StaffToken, staff_cookie};
use crate::allowlist;
use crate::audit::Action;
use crate::error::Failure;
use crate::staff::audit_log::{self, AuditFilter};
use crate::staff::auth;
use crate::staff::session::{self, StaffUser};
use crate::staff::{actions, holders, overview, record_access, reports};
use crate::state::AppState;

/// The header the page sets on requests it makes by itself (the overview's refresh), which
/// do not count as the staff member being active.
const BACKGROUND: &str = "x-unlock-background";

/// The [`BACKGROUND`] header, as the OpenAPI document lists it on every endpoint that takes a
/// signed-in [`Staff`] member.
#[derive(Debug)]
pub struct Background;

impl IntoParams for Background {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let parameter = ParameterBuilder::new()
            .name(BACKGROUND)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Present (any value) on requests the page makes by itself, such as the \
                 overview's refresh: they do not count as the staff member being active.",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)));
        vec![parameter.build()]
    }
}

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

/// Sign in: username and password
///
/// Begins a staff session in the `unlock_staff` cookie; the next step is the authenticator
/// code (or, at first sign-in, a new password after it).
#[utoipa::path(
    post,
    path = "/api/staff/sign-in",
    tag = "staff",
    operation_id = "staff_sign_in",
    request_body = SignIn,
    responses(
        (status = 200, description = "The password was right: what comes next.", body = SignInStep,
            headers(("set-cookie" = String, description = "`unlock_staff`, the session's token (HttpOnly, SameSite=Strict, Path=/api/staff)."))),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`sign_in_failed`: wrong username or password.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`: too many failed sign-ins; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
        (status = 503, description = "`unavailable`: too many passwords are being checked at once.", body = ApiError),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<impl IntoResponse, Failure> {
    let begun = auth::sign_in(&state, &body.username, body.password, &client).await?;
    Ok((session_cookie(&state, Some(&begun.token)), Json(begun.step)))
}

/// Sign in: the authenticator app's code
#[utoipa::path(
    post,
    path = "/api/staff/sign-in/code",
    tag = "staff",
    operation_id = "staff_sign_in_code",
    security(("staff_cookie" = [])),
    request_body = SecondFactor,
    responses(
        (status = 200, description = "The code was right: signed in, or a new password is needed first.", body = SignInStep,
            headers(("set-cookie" = String, description = "`unlock_staff` with a new token: the one from the password step no longer works."))),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`sign_in_expired`: no sign-in waiting for a code, or it took too long.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`code_invalid`, `authenticator_code_wrong` or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn sign_in_code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    StaffToken(token): StaffToken,
    ApiJson(body): ApiJson<SecondFactor>,
) -> Result<impl IntoResponse, Failure> {
    let (step, renewed) =
        auth::second_factor(&state, token.as_deref(), &body.code, &client).await?;
    Ok((session_cookie(&state, Some(&renewed)), Json(step)))
}

/// Sign in: replace the one-time password
#[utoipa::path(
    post,
    path = "/api/staff/sign-in/new-password",
    tag = "staff",
    operation_id = "staff_sign_in_new_password",
    security(("staff_cookie" = [])),
    request_body = NewPassword,
    responses(
        (status = 200, description = "The password was replaced: signed in.", body = SignInStep),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`sign_in_expired`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`password_rejected` (the message says why) or `invalid_body`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
        (status = 503, description = "`unavailable`: too many passwords are being checked at once.", body = ApiError),
    ),
)]
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

/// Change your own password
///
/// The current password is weighed like a sign-in's, against the same lock-outs; the new one
/// must meet the policy and not be easy to guess. Every other session of yours ends.
#[utoipa::path(
    post,
    path = "/api/staff/password",
    tag = "staff",
    operation_id = "staff_change_password",
    security(("staff_cookie" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "The password was changed."),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`not_signed_in`, `session_expired`, or `sign_in_failed`: the current password is not right.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`password_rejected` or `invalid_body`.", body = ApiError),
        (status = 429, description = "`too_many_attempts`: wrong passwords locked the account or address out for a while.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
        (status = 503, description = "`unavailable`: too many passwords are being checked at once.", body = ApiError),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    Staff(user): Staff,
    StaffToken(token): StaffToken,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, Failure> {
    let token = token.unwrap_or_default();
    auth::change_password(
        &state,
        &user,
        &token,
        body.current_password,
        body.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out
///
/// Ends the session, if there is one, and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/staff/sign-out",
    tag = "staff",
    operation_id = "staff_sign_out",
    security((), ("staff_cookie" = [])),
    responses(
        (status = 204, description = "Signed out.",
            headers(("set-cookie" = String, description = "Clears `unlock_staff`."))),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn sign_out(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    StaffToken(token): StaffToken,
) -> Result<impl IntoResponse, Failure> {
    session::sign_out(&state, token.as_deref(), &client).await?;
    Ok((StatusCode::NO_CONTENT, session_cookie(&state, None)))
}

/// Who is signed in
#[utoipa::path(
    get,
    path = "/api/staff/me",
    tag = "staff",
    operation_id = "staff_me",
    security(("staff_cookie" = [])),
    params(Background),
    responses(
        (status = 200, description = "The signed-in staff member.", body = Me),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn me(State(state): State<AppState>, Staff(user): Staff) -> Json<Me> {
    Json(user.me(&state))
}

/// The status view's figures
#[utoipa::path(
    get,
    path = "/api/staff/overview",
    tag = "staff",
    operation_id = "staff_overview",
    security(("staff_cookie" = [])),
    params(Background),
    responses(
        (status = 200, description = "Today's and the last 30 days' figures.", body = Overview),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn overview(
    State(state): State<AppState>,
    Staff(user): Staff,
) -> Result<Json<Overview>, Failure> {
    session::require(&state, &user, Permission::ViewStatus, Action::StaffOverview).await?;
    Ok(Json(overview::overview(&state).await?))
}

/// `GET /api/staff/holders?q=...`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// A 12-digit user id, an email address or (part of) a name.
    q: String,
}

/// Look holders up
#[utoipa::path(
    get,
    path = "/api/staff/holders",
    tag = "staff",
    operation_id = "staff_search_holders",
    security(("staff_cookie" = [])),
    params(Search, Background),
    responses(
        (status = 200, description = "The holders found; addresses masked unless the role may see them.", body = HolderSearch),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 422, description = "`query_invalid`: `q` is missing, empty or not a well-formed address.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn search_holders(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiQuery(search): ApiQuery<Search>,
) -> Result<Json<HolderSearch>, Failure> {
    let action = Action::StaffHolderSearch;
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

/// One holder's profile
#[utoipa::path(
    get,
    path = "/api/staff/holders/{id}",
    tag = "staff",
    operation_id = "staff_holder",
    security(("staff_cookie" = [])),
    params(("id" = String, Path, description = "The holder's 12-digit user id."), Background),
    responses(
        (status = 200, description = "Everything staff may see of the holder.", body = HolderProfile),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 404, description = "`holder_not_found`, or `not_found`: the path is not UTF-8.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn holder(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(raw_id): ApiPath<String>,
) -> Result<Json<HolderProfile>, Failure> {
    let action = Action::StaffHolderView;
    session::require(&state, &user, Permission::ViewStatus, action).await?;
    let id = holder_id(&raw_id)?;
    let profile = profile_of(&state, &user, &id).await?;
    record_access(&state, &user, action, Some(&id), None).await?;
    Ok(profile)
}

/// Add an address to a holder's profile
///
/// Every address on the profile is told by email.
#[utoipa::path(
    post,
    path = "/api/staff/holders/{id}/emails",
    tag = "staff",
    operation_id = "staff_add_email",
    security(("staff_cookie" = [])),
    params(("id" = String, Path, description = "The holder's 12-digit user id."), Background),
    request_body = AddEmail,
    responses(
        (status = 200, description = "The address was added: the profile as it is now.", body = HolderProfile),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`, or `own_profile`: staff may not change their own profile.", body = ApiError),
        (status = 404, description = "`holder_not_found`, or `not_found`: the path is not UTF-8.", body = ApiError),
        (status = 409, description = "`email_taken`: the address is on a profile already.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`email_invalid`, `email_domain_not_allowed` or `invalid_body`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
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

/// Approve an address another RA added (the four-eyes rule)
///
/// With `staff.four_eyes_for_added_addresses` on, an added address starts no journey until a
/// second RA, not the one who added it, approves it.
#[utoipa::path(
    post,
    path = "/api/staff/holders/{id}/emails/approve",
    tag = "staff",
    operation_id = "staff_approve_email",
    security(("staff_cookie" = [])),
    params(("id" = String, Path, description = "The holder's 12-digit user id."), Background),
    request_body = ApproveEmail,
    responses(
        (status = 200, description = "The address was approved: the profile as it is now.", body = HolderProfile),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden` (also: you added this address yourself), or `own_profile`.", body = ApiError),
        (status = 404, description = "`holder_not_found`, `email_not_on_profile`, or `not_found`: the path is not UTF-8.", body = ApiError),
        (status = 409, description = "`email_taken`: the address is not waiting for approval.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`email_invalid` or `invalid_body`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn approve_email(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(raw_id): ApiPath<String>,
    ApiJson(body): ApiJson<ApproveEmail>,
) -> Result<Json<HolderProfile>, Failure> {
    let id = holder_id(&raw_id)?;
    actions::approve_email(&state, &user, &id, &body.email).await?;
    profile_of(&state, &user, &id).await
}

/// Remove an address from a holder's profile
///
/// The removed address and those left on the profile are told by email.
#[utoipa::path(
    delete,
    path = "/api/staff/holders/{id}/emails/{email}",
    tag = "staff",
    operation_id = "staff_remove_email",
    security(("staff_cookie" = [])),
    params(
        ("id" = String, Path, description = "The holder's 12-digit user id."),
        ("email" = String, Path, description = "The address to remove, percent-encoded."),
        Background,
    ),
    responses(
        (status = 200, description = "The address was removed: the profile as it is now.", body = HolderProfile),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden` or `own_profile`.", body = ApiError),
        (status = 404, description = "`holder_not_found`, `email_not_on_profile`, or `not_found`: the path is not UTF-8.", body = ApiError),
        (status = 422, description = "`email_invalid`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn remove_email(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath((raw_id, email)): ApiPath<(String, String)>,
) -> Result<Json<HolderProfile>, Failure> {
    let id = holder_id(&raw_id)?;
    actions::remove_email(&state, &user, &id, &email).await?;
    profile_of(&state, &user, &id).await
}

/// Issue a one-time unlock code to a holder verified over the phone
///
/// RA-assisted remote unlock, for a holder who can reach no address on their profile: the RA
/// records how they verified the holder and reads the code out to them. The code is shown
/// this once (only its keyed hash is kept); it works once, for 30 minutes, for this holder
/// only, and replaces any earlier one. Every address on the profile is told who issued it.
#[utoipa::path(
    post,
    path = "/api/staff/holders/{id}/unlock-code",
    tag = "staff",
    operation_id = "staff_issue_unlock_code",
    security(("staff_cookie" = [])),
    params(("id" = String, Path, description = "The holder's 12-digit user id."), Background),
    request_body = IssueUnlockCode,
    responses(
        (status = 200, description = "The code to read out, and when it stops working.", body = UnlockCodeIssued),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`, or `own_profile`: staff may not issue a code for their own profile.", body = ApiError),
        (status = 404, description = "`holder_not_found`, or `not_found`: the path is not UTF-8.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`invalid_body`: no note, a note over 500 characters, or an unknown way of verifying.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn issue_unlock_code(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(raw_id): ApiPath<String>,
    ApiJson(body): ApiJson<IssueUnlockCode>,
) -> Result<Json<UnlockCodeIssued>, Failure> {
    let id = holder_id(&raw_id)?;
    actions::issue_unlock_code(&state, &user, &id, &body)
        .await
        .map(Json)
}

/// Release a holder's or a client address's throttle
///
/// Clears the counts and lock-outs (not staff sign-in ones: those are the operator's).
#[utoipa::path(
    post,
    path = "/api/staff/throttles/release",
    tag = "staff",
    operation_id = "staff_release_throttle",
    security(("staff_cookie" = [])),
    params(Background),
    request_body = ReleaseThrottle,
    responses(
        (status = 200, description = "How many counts and lock-outs were cleared.", body = Released),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden` or `own_profile`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`query_invalid`: not an IP address; or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`: an RA has released this holder `staff.holder_releases_per_week` times in 7 days; only an RA manager may now.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn release_throttle(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiJson(body): ApiJson<ReleaseThrottle>,
) -> Result<Json<Released>, Failure> {
    let released = actions::release_throttle(&state, &user, body.target).await?;
    Ok(Json(Released { released }))
}

/// The email domain allow list
#[utoipa::path(
    get,
    path = "/api/staff/allowlist",
    tag = "staff",
    operation_id = "staff_allow_list",
    security(("staff_cookie" = [])),
    params(Background),
    responses(
        (status = 200, description = "The allowed domains.", body = AllowList),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn allow_list(
    State(state): State<AppState>,
    Staff(user): Staff,
) -> Result<Json<AllowList>, Failure> {
    session::require(
        &state,
        &user,
        Permission::ViewStatus,
        Action::StaffAllowlist,
    )
    .await?;
    Ok(Json(AllowList {
        domains: allowlist::list(&state.db).await?,
    }))
}

/// Add a domain to the allow list
#[utoipa::path(
    post,
    path = "/api/staff/allowlist",
    tag = "staff",
    operation_id = "staff_allow_domain",
    security(("staff_cookie" = [])),
    params(Background),
    request_body = AddDomain,
    responses(
        (status = 200, description = "The domain is allowed (whether or not it was before): the list as it is now.", body = AllowList),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`domain_invalid` or `invalid_body`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn allow_domain(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiJson(body): ApiJson<AddDomain>,
) -> Result<Json<AllowList>, Failure> {
    actions::change_allowlist(&state, &user, &body.domain, true).await?;
    allow_list(State(state), Staff(user)).await
}

/// Remove a domain from the allow list
#[utoipa::path(
    delete,
    path = "/api/staff/allowlist/{domain}",
    tag = "staff",
    operation_id = "staff_disallow_domain",
    security(("staff_cookie" = [])),
    params(("domain" = String, Path, description = "The domain, such as `trust.example.org`."), Background),
    responses(
        (status = 200, description = "The domain is not allowed (whether or not it was before): the list as it is now.", body = AllowList),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 404, description = "`not_found`: the path is not UTF-8.", body = ApiError),
        (status = 422, description = "`domain_invalid`.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn disallow_domain(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<AllowList>, Failure> {
    actions::change_allowlist(&state, &user, &domain, false).await?;
    allow_list(State(state), Staff(user)).await
}

/// `GET /api/staff/reports/organisations.csv?from=...&to=...`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportRange {
    /// The first day (UTC), `2026-12-01`.
    from: Option<String>,
    /// The last day (UTC), `2026-12-31`.
    to: Option<String>,
}

/// Unlocks and registrations per organisation, as CSV
#[utoipa::path(
    get,
    path = "/api/staff/reports/organisations.csv",
    tag = "staff",
    operation_id = "staff_report",
    security(("staff_cookie" = [])),
    params(ReportRange, Background),
    responses(
        (status = 200, description = "The report, one row per organisation.", body = String, content_type = "text/csv",
            headers(("content-disposition" = String, description = "`attachment` with the report's file name."))),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 422, description = "`query_invalid`: a day is malformed or the range is wrong.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn report(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiQuery(range): ApiQuery<ReportRange>,
) -> Result<Response, Failure> {
    let action = Action::StaffReportExport;
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

/// `GET /api/staff/audit?...`: each filter is optional; empty ones are ignored. The same
/// fields as [`AuditFilter`], which the conversion below keeps in step.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exactly: `holder`, `system`, `operator`, `staff:<username>`.
    actor: Option<String>,
    /// The start of the action's name: `journey.` or `staff.email_add`.
    action: Option<String>,
    outcome: Option<String>,
    /// A 12-digit user id.
    holder: Option<String>,
    /// The first day (UTC), `2026-12-01`.
    from: Option<String>,
    /// The last day (UTC), `2026-12-31`.
    to: Option<String>,
    /// Events older than this id (the previous page's `next_before`).
    before: Option<i64>,
}

impl From<AuditQuery> for AuditFilter {
    fn from(query: AuditQuery) -> Self {
        let AuditQuery {
            actor,
            action,
            outcome,
            holder,
            from,
            to,
            before,
        } = query;
        Self {
            actor,
            action,
            outcome,
            holder,
            from,
            to,
            before,
        }
    }
}

/// A page of the audit log, newest first
#[utoipa::path(
    get,
    path = "/api/staff/audit",
    tag = "staff",
    operation_id = "staff_audit",
    security(("staff_cookie" = [])),
    params(AuditQuery, Background),
    responses(
        (status = 200, description = "Up to 50 events; addresses masked unless the role may see them.", body = AuditPage),
        (status = 401, description = "`not_signed_in` or `session_expired`.", body = ApiError),
        (status = 403, description = "`forbidden`.", body = ApiError),
        (status = 422, description = "`query_invalid`: an unknown or malformed filter.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn audit(
    State(state): State<AppState>,
    Staff(user): Staff,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, Failure> {
    session::require(&state, &user, Permission::ViewStatus, Action::StaffAudit).await?;
    audit_log::page(&state, &user, &AuditFilter::from(query))
        .await
        .map(Json)
}
