//! Signing staff in: the password, then a code from the authenticator app (and, the first
//! time, a new password in place of the one-time one), each step on a session ([`super::session`])
//! bound to the browser by an `HttpOnly; SameSite=Strict` cookie.
//!
//! An unknown username, a disabled account and a wrong password get the same answer after
//! the same work (one Argon2 check), and count towards the same lock-outs.

use unlock_protocol::staff::{SignInStep, StaffPassword, StaffUsername};
use unlock_protocol::{ErrorCode, OneTimeCode};

use super::accounts::{self, Account};
use super::session::{
    Session, find_session, idle_limit, session_end, set_stage, signed_in, staff_event,
};
use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::db::staff_sessions::NewSession;
use crate::db::states::SessionStage;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::secrets::{new_token, token_hash};
use crate::state::AppState;
use crate::throttle::{self, Locked, Scope};

/// How long each sign-in step may take before signing in starts again.
const STEP_MILLIS: Millis = 5 * 60_000;

/// A sign-in just begun: the cookie's token and what comes next.
#[derive(Debug)]
pub struct Begun {
    pub token: String,
    pub step: SignInStep,
}

/// The lock-out on sign-ins for this username (by pseudonym) or from this client address.
async fn sign_in_lock(
    conn: &mut Conn,
    subject: &str,
    client: &str,
    now: Millis,
) -> anyhow::Result<Option<Locked>> {
    let until = db::throttles::locked_until(
        conn,
        (Scope::StaffAccount, subject),
        (Scope::StaffClient, client),
    )
    .await?;
    Ok(throttle::in_force(until, now))
}

/// Counts a wrong password or code against the username and the client address.
async fn count_failure(
    conn: &mut Conn,
    state: &AppState,
    subject: &str,
    client: &str,
    now: Millis,
) -> anyhow::Result<()> {
    let config = &state.config.throttle;
    throttle::hit(conn, config, Scope::StaffAccount, subject, now).await?;
    throttle::hit(conn, config, Scope::StaffClient, client, now).await?;
    Ok(())
}

fn locked_out(now: Millis, locked: Locked) -> Failure {
    let minutes = seconds_until(now, locked.until).div_ceil(60);
    let wait = if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    };
    Failure::client_message(
        ErrorCode::Throttled,
        format!(
            "There have been too many wrong sign-in attempts. Wait {wait} and try again, or ask \
             your service's operator to release the lock."
        ),
    )
    .retry_after(seconds_until(now, locked.until))
}

/// Whoever tried to sign in from `client`, as the audit trail names them: the account, if
/// the name is one.
fn sign_in_actor(account: Option<&Account>, client: &str) -> audit::Actor {
    audit::Actor {
        name: account.map_or_else(
            || "unknown".to_owned(),
            |account| format!("staff:{}", account.username),
        ),
        client: Some(client.to_owned()),
        holder: None,
    }
}

fn sign_in_failed() -> Failure {
    Failure::client(ErrorCode::SignInFailed)
}

fn sign_in_expired() -> Failure {
    Failure::client(ErrorCode::SignInExpired)
}

/// `POST /api/staff/sign-in`: the password.
pub async fn sign_in(
    state: &AppState,
    raw_username: &str,
    password: String,
    client: &str,
) -> Result<Begun, Failure> {
    let now = state.clock.now();
    // A name that can't be an account's is treated as an unknown one.
    let username = StaffUsername::parse(raw_username).ok();
    let name = username
        .as_ref()
        .map_or("", StaffUsername::as_str)
        .to_owned();
    let subject = state.keys.staff_subject(&name);
    let account = {
        let mut conn = state.db.reader().await?;
        let account = match &username {
            Some(name) => accounts::find(&mut conn, name.as_str()).await?,
            None => None,
        };
        if let Some(locked) = sign_in_lock(&mut conn, &subject, client, now).await? {
            let actor = sign_in_actor(account.as_ref(), client);
            return audit::write(
                &state.db,
                &state.clock,
                actor,
                Action::StaffSignIn,
                move |_, _| {
                    let refused =
                        Audited::refused(Outcome::LockedOut, None, locked_out(now, locked));
                    Box::pin(async move { Ok(refused) })
                },
            )
            .await;
        }
        account
    };
    let actor = sign_in_actor(account.as_ref(), client);
    let usable = account.filter(|account| account.disabled_at.is_none());
    let stored = usable.as_ref().map(|account| account.password_hash.clone());
    let matched = state.passwords.verify(password.clone(), stored).await;
    let client = client.to_owned();
    let Some(account) = usable.filter(|_| matched) else {
        let job_state = state.clone();
        return audit::write(
            &state.db,
            &state.clock,
            actor,
            Action::StaffSignIn,
            move |conn, now| {
                let (state, subject, client) = (job_state.clone(), subject.clone(), client.clone());
                Box::pin(async move {
                    count_failure(conn, &state, &subject, &client, now).await?;
                    Ok(Audited::refused(Outcome::Failed, None, sign_in_failed()))
                })
            },
        )
        .await;
    };
    // A password hashed with an older work factor is re-hashed while it is at hand.
    let rehashed = if state.passwords.is_current(&account.password_hash) {
        None
    } else {
        Some(state.passwords.hash(password).await?)
    };
    let token = new_token()?;
    let stored_token = token_hash(&token);
    let idle_limit = idle_limit(state);
    audit::write(
        &state.db,
        &state.clock,
        actor,
        Action::StaffSignIn,
        move |conn, now| {
            let (username, client) = (account.username.clone(), client.clone());
            let (stored_token, rehashed) = (stored_token.clone(), rehashed.clone());
            Box::pin(async move {
                if let Some(hash) = rehashed {
                    db::staff_accounts::rehash(conn, &username, &hash).await?;
                }
                // Sessions nobody can use any more go when a new one begins.
                db::staff_sessions::forget_ended(conn, now, idle_limit).await?;
                let session = NewSession {
                    token_hash: &stored_token,
                    username: &username,
                    client_addr: &client,
                    expires_at: now + STEP_MILLIS,
                };
                db::staff_sessions::begin(conn, &session, now).await?;
                Ok(Audited::done(Outcome::PasswordOk, None, ()))
            })
        },
    )
    .await?;
    Ok(Begun {
        token,
        step: SignInStep::SecondFactor,
    })
}

/// `POST /api/staff/sign-in/code`: the authenticator code. Each time step's code is taken
/// once: the step of the last one accepted is stored.
pub async fn second_factor(
    state: &AppState,
    token: Option<&str>,
    raw_code: &str,
    client: &str,
) -> Result<SignInStep, Failure> {
    let token = token.ok_or_else(sign_in_expired)?.to_owned();
    let code = OneTimeCode::parse(raw_code).map_err(|_| {
        Failure::client_message(
            ErrorCode::CodeInvalid,
            "Enter the 6-digit code from your authenticator app.",
        )
    })?;
    let (job_state, client) = (state.clone(), client.to_owned());
    state
        .db
        .write(move |conn| {
            let (state, token, code, client) = (
                job_state.clone(),
                token.clone(),
                code.clone(),
                client.clone(),
            );
            Box::pin(async move { check_code(conn, &state, &token, &code, &client).await })
        })
        .await?
}

async fn check_code(
    conn: &mut Conn,
    state: &AppState,
    token: &str,
    code: &OneTimeCode,
    client: &str,
) -> anyhow::Result<Result<SignInStep, Failure>> {
    let now = state.clock.now();
    let session = find_session(&mut *conn, token).await?;
    let Some(Session { account, .. }) = session
        .filter(|session| session.stage == SessionStage::SecondFactor && now < session.expires_at)
    else {
        return Ok(Err(sign_in_expired()));
    };
    let actor = format!("staff:{}", account.username);
    let subject = state.keys.staff_subject(&account.username);
    if let Some(locked) = sign_in_lock(conn, &subject, client, now).await? {
        let event = staff_event(&actor, Action::StaffSignInCode, Outcome::LockedOut, client);
        audit::record(conn, now, event).await?;
        return Ok(Err(locked_out(now, locked)));
    }
    let totp = accounts::authenticator(
        &state.keys,
        &state.config.staff,
        &account.username,
        &account.totp_secret,
    )?;
    let seconds = u64::try_from(now.div_euclid(1000)).unwrap_or(0);
    let step = totp
        .check(code.expose(), seconds)
        .and_then(|step| i64::try_from(step).ok());
    // The step is spent in SQL, and only if it is later than the last one spent, so a code
    // sent to two instances at once is taken once.
    let spent = match step {
        Some(step) => db::staff_accounts::spend_step(conn, &account.username, step).await?,
        None => false,
    };
    if !spent {
        count_failure(conn, state, &subject, client, now).await?;
        let outcome = if step.is_some() {
            Outcome::CodeReused
        } else {
            Outcome::CodeWrong
        };
        audit::record(
            conn,
            now,
            staff_event(&actor, Action::StaffSignInCode, outcome, client),
        )
        .await?;
        return Ok(Err(Failure::client(ErrorCode::AuthenticatorCodeWrong)));
    }
    // A right code clears the username's count of wrong attempts.
    db::throttles::clear(conn, &subject, &[Scope::StaffAccount]).await?;
    let next = if account.must_change_password {
        set_stage(
            conn,
            token,
            SessionStage::NewPassword,
            now,
            now + STEP_MILLIS,
        )
        .await?;
        SignInStep::NewPassword
    } else {
        let ends = session_end(state, now);
        set_stage(conn, token, SessionStage::Active, now, ends).await?;
        SignInStep::SignedIn {
            me: signed_in(&account, client, ends)?.me(state),
        }
    };
    audit::record(
        conn,
        now,
        staff_event(&actor, Action::StaffSignInCode, Outcome::CodeOk, client),
    )
    .await?;
    Ok(Ok(next))
}

/// `POST /api/staff/sign-in/new-password`: first sign-in replaces the one-time password.
pub async fn new_password(
    state: &AppState,
    token: Option<&str>,
    raw_password: String,
    client: &str,
) -> Result<SignInStep, Failure> {
    let token = token.ok_or_else(sign_in_expired)?.to_owned();
    let now = state.clock.now();
    let session = find_session(&mut *state.db.reader().await?, &token).await?;
    let Some(Session { account, .. }) = session
        .filter(|session| session.stage == SessionStage::NewPassword && now < session.expires_at)
    else {
        return Err(sign_in_expired());
    };
    let username = StaffUsername::parse(&account.username)
        .map_err(|_| anyhow::anyhow!("a stored staff username does not parse"))?;
    let password = StaffPassword::parse(&raw_password, &username).map_err(|error| {
        Failure::client_message(ErrorCode::PasswordRejected, format!("{error}."))
    })?;
    if state
        .passwords
        .verify(raw_password, Some(account.password_hash.clone()))
        .await
    {
        return Err(Failure::client_message(
            ErrorCode::PasswordRejected,
            "Choose a new password, not the one-time password you were given.",
        ));
    }
    let hash = state.passwords.hash(password.expose().to_owned()).await?;
    let (job_state, client) = (state.clone(), client.to_owned());
    state
        .db
        .write(move |conn| {
            let (state, token, hash, client) = (
                job_state.clone(),
                token.clone(),
                hash.clone(),
                client.clone(),
            );
            Box::pin(async move { replace_password(conn, &state, &token, &hash, &client).await })
        })
        .await?
}

async fn replace_password(
    conn: &mut Conn,
    state: &AppState,
    token: &str,
    hash: &str,
    client: &str,
) -> anyhow::Result<Result<SignInStep, Failure>> {
    let now = state.clock.now();
    // Checked again inside the write: the session may have moved on meanwhile.
    let Some(Session { account, .. }) = find_session(&mut *conn, token)
        .await?
        .filter(|session| session.stage == SessionStage::NewPassword && now < session.expires_at)
    else {
        return Ok(Err(sign_in_expired()));
    };
    db::staff_accounts::set_password(conn, &account.username, hash, now).await?;
    // Any other session was begun with the one-time password.
    db::staff_sessions::end_others_of(conn, &account.username, &token_hash(token)).await?;
    let ends = session_end(state, now);
    set_stage(conn, token, SessionStage::Active, now, ends).await?;
    let actor = format!("staff:{}", account.username);
    let event = staff_event(&actor, Action::StaffPasswordChange, Outcome::Done, client);
    audit::record(conn, now, event).await?;
    Ok(Ok(SignInStep::SignedIn {
        me: signed_in(&account, client, ends)?.me(state),
    }))
}
