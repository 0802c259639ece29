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
    Session, StaffUser, find_session, idle_limit, session_end, set_stage, signed_in, staff_event,
};
use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::db::staff_sessions::NewSession;
use crate::db::states::SessionStage;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::http::client_addr::throttle_key;
use crate::secrets::{new_token, token_hash};
use crate::state::AppState;
use crate::throttle::{self, Locked, Scope};

/// How long each sign-in step may take before signing in starts again.
const STEP_MILLIS: Millis = 5 * 60_000;

/// A sign-in just begun: the cookie's token and what comes next.
pub struct Begun {
    pub token: String,
    pub step: SignInStep,
}

impl std::fmt::Debug for Begun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Begun")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The lock-out on sign-ins for this username (by pseudonym) or from this client address.
async fn sign_in_lock(
    conn: &mut Conn,
    subject: &str,
    client: &str,
    now: Millis,
) -> anyhow::Result<Option<Locked>> {
    let client = &throttle_key(client);
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
    let client = &throttle_key(client);
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

/// Every Argon2 slot is busy (a burst of sign-ins): try again in a moment.
fn busy() -> Failure {
    Failure::client_message(
        ErrorCode::Unavailable,
        "Signing in is busy just now. Wait a moment and try again.",
    )
}

fn busy_or_fault(error: anyhow::Error) -> Failure {
    if error.is::<accounts::Busy>() {
        busy()
    } else {
        Failure::from(error)
    }
}

/// A sign-in attempt counted before its password is checked.
#[derive(Debug, Clone, Default)]
struct Attempt {
    /// A lock-out in force before this attempt: it is refused unweighed, and not counted.
    refused: Option<Locked>,
    /// Lock-outs this attempt's count began (it ran over the allowance), with what each key's
    /// `locked_until` was before: lifted again if the password turns out right.
    began: Vec<(Scope, String, Millis)>,
}

/// Counts this sign-in attempt against the username and the client address before its
/// password is checked, in the write that checks their lock-outs, so a burst of guesses can't
/// all be weighed before the first is counted: the attempt that runs over the allowance
/// begins the lock-out there and then (and is weighed, as a lone guesser's would be), and
/// every attempt after it is refused unweighed.
async fn count_attempt(
    conn: &mut Conn,
    state: &AppState,
    subject: &str,
    client: &str,
    now: Millis,
) -> anyhow::Result<Attempt> {
    let config = &state.config.throttle;
    let client = &throttle_key(client);
    let mut attempt = Attempt::default();
    for (scope, key) in [(Scope::StaffAccount, subject), (Scope::StaffClient, client)] {
        let window = throttle::window(config, scope);
        let count = db::throttles::count(conn, scope, key, now, window).await?;
        if let Some(locked) = throttle::in_force(Some(count.locked_until), now) {
            attempt.refused = later(attempt.refused, Some(locked));
        } else if throttle::settle(conn, config, scope, key, count, now)
            .await?
            .is_some()
        {
            attempt
                .began
                .push((scope, key.to_owned(), count.locked_until));
        }
    }
    if attempt.refused.is_some() {
        // Refused unweighed: it does not count, and begins no lock-out of its own.
        undo_attempt(conn, &attempt, subject, client).await?;
    }
    Ok(attempt)
}

/// Takes an attempt back: it was no failure (the right password, or never weighed).
async fn undo_attempt(
    conn: &mut Conn,
    attempt: &Attempt,
    subject: &str,
    client: &str,
) -> anyhow::Result<()> {
    let client = &throttle_key(client);
    db::throttles::uncount(conn, Scope::StaffAccount, subject).await?;
    db::throttles::uncount(conn, Scope::StaffClient, client).await?;
    for (scope, key, before) in &attempt.began {
        db::throttles::lock(conn, *scope, key, *before).await?;
    }
    Ok(())
}

fn later(a: Option<Locked>, b: Option<Locked>) -> Option<Locked> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.until >= b.until { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Counts a password attempt in a write of its own, before it is weighed.
async fn record_attempt(
    state: &AppState,
    subject: &str,
    client: &str,
    now: Millis,
) -> anyhow::Result<Attempt> {
    let (job_state, subject, client) = (state.clone(), subject.to_owned(), client.to_owned());
    state
        .db
        .write(move |conn| {
            let (state, subject, client) = (job_state.clone(), subject.clone(), client.clone());
            Box::pin(async move { count_attempt(conn, &state, &subject, &client, now).await })
        })
        .await
}

/// An attempt that could not be weighed (no Argon2 slot free) does not count: it is taken
/// back, and the answer is 503.
async fn unweighed(state: &AppState, attempt: Attempt, subject: &str, client: &str) -> Failure {
    let (subject, client) = (subject.to_owned(), client.to_owned());
    let undone = state
        .db
        .write(move |conn| {
            let (attempt, subject, client) = (attempt.clone(), subject.clone(), client.clone());
            Box::pin(async move { undo_attempt(conn, &attempt, &subject, &client).await })
        })
        .await;
    if let Err(error) = undone {
        return Failure::from(error);
    }
    crate::metrics::password_checks_busy();
    busy()
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
        match &username {
            Some(name) => accounts::find(&mut conn, name.as_str()).await?,
            None => None,
        }
    };
    let actor = sign_in_actor(account.as_ref(), client);
    let client = client.to_owned();
    let attempt = record_attempt(state, &subject, &client, now).await?;
    if let Some(locked) = attempt.refused {
        return audit::write(
            &state.db,
            &state.clock,
            actor,
            Action::StaffSignIn,
            move |_, _| {
                let refused = Audited::refused(Outcome::LockedOut, None, locked_out(now, locked));
                Box::pin(async move { Ok(refused) })
            },
        )
        .await;
    }
    let usable = account.filter(|account| account.disabled_at.is_none());
    let stored = usable.as_ref().map(|account| account.password_hash.clone());
    let Ok(matched) = state.passwords.verify(password.clone(), stored).await else {
        // Never weighed: it does not count.
        return Err(unweighed(state, attempt, &subject, &client).await);
    };
    let Some(account) = usable.filter(|_| matched) else {
        // Counted, with any lock-out it began, before it was weighed.
        return audit::write(
            &state.db,
            &state.clock,
            actor,
            Action::StaffSignIn,
            move |_, _| {
                let refused = Audited::refused(Outcome::Failed, None, sign_in_failed());
                Box::pin(async move { Ok(refused) })
            },
        )
        .await;
    };
    // A password hashed with an older work factor is re-hashed while it is at hand.
    let rehashed = if state.passwords.is_current(&account.password_hash) {
        None
    } else {
        Some(
            state
                .passwords
                .hash(password)
                .await
                .map_err(busy_or_fault)?,
        )
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
            let (subject, attempt) = (subject.clone(), attempt.clone());
            Box::pin(async move {
                // The right password: this attempt was no failure.
                undo_attempt(conn, &attempt, &subject, &client).await?;
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
) -> Result<(SignInStep, String), Failure> {
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
) -> anyhow::Result<Result<(SignInStep, String), Failure>> {
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
    // Both factors done: a new token, so one seen before now (on a shared screen, in a
    // proxy's log) is worth nothing from here on.
    let renewed = new_token()?;
    db::staff_sessions::replace_token(conn, &token_hash(token), &token_hash(&renewed)).await?;
    let token = renewed.as_str();
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
    Ok(Ok((next, renewed)))
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
    super::strength::refuse_guessable(password.expose(), username.as_str())
        .map_err(|advice| Failure::client_message(ErrorCode::PasswordRejected, advice))?;
    if state
        .passwords
        .verify(raw_password, Some(account.password_hash.clone()))
        .await
        .map_err(|_| busy())?
    {
        return Err(Failure::client_message(
            ErrorCode::PasswordRejected,
            "Choose a new password, not the one-time password you were given.",
        ));
    }
    let hash = state
        .passwords
        .hash(password.expose().to_owned())
        .await
        .map_err(busy_or_fault)?;
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

/// `POST /api/staff/password`: a signed-in staff member changes their own password. The
/// current one is weighed like a sign-in's (counted first, against the same lock-outs); the
/// new one meets the policy and the estimator; every other session of theirs ends.
pub async fn change_password(
    state: &AppState,
    user: &StaffUser,
    token: &str,
    current: String,
    new: String,
) -> Result<(), Failure> {
    let now = state.clock.now();
    let username = user.username.clone();
    let actor = audit::Actor {
        name: user.actor(),
        client: Some(user.client.clone()),
        holder: None,
    };
    // The refusal is made afresh each time the audited write runs.
    let refuse = |outcome: Outcome, failure: Box<dyn Fn() -> Failure + Send + Sync>| {
        let actor = actor.clone();
        async move {
            audit::write(
                &state.db,
                &state.clock,
                actor,
                Action::StaffPasswordChange,
                move |_, _| {
                    let refused = Audited::refused(outcome, None, failure());
                    Box::pin(async move { Ok(refused) })
                },
            )
            .await
        }
    };
    let rejected = |message: String| -> Box<dyn Fn() -> Failure + Send + Sync> {
        Box::new(move || Failure::client_message(ErrorCode::PasswordRejected, message.clone()))
    };
    // The new password first: a refusal here weighs nothing.
    let password = match StaffPassword::parse(&new, &username) {
        Ok(password) => password,
        Err(error) => {
            return refuse(Outcome::PasswordRejected, rejected(format!("{error}."))).await;
        }
    };
    if let Err(advice) = super::strength::refuse_guessable(password.expose(), username.as_str()) {
        return refuse(Outcome::PasswordRejected, rejected(advice)).await;
    }
    if new == current {
        let same = "Choose a new password, not the one you have now.".to_owned();
        return refuse(Outcome::PasswordRejected, rejected(same)).await;
    }
    let account = accounts::find(&mut *state.db.reader().await?, username.as_str())
        .await?
        .ok_or_else(|| anyhow::anyhow!("a signed-in staff member has no account"))?;
    let subject = state.keys.staff_subject(username.as_str());
    let client = user.client.clone();
    let attempt = record_attempt(state, &subject, &client, now).await?;
    if let Some(locked) = attempt.refused {
        return refuse(
            Outcome::LockedOut,
            Box::new(move || locked_out(now, locked)),
        )
        .await;
    }
    let Ok(matched) = state
        .passwords
        .verify(current, Some(account.password_hash.clone()))
        .await
    else {
        return Err(unweighed(state, attempt, &subject, &client).await);
    };
    if !matched {
        // Counted, with any lock-out it began, before it was weighed.
        let wrong = || {
            Failure::client_message(
                ErrorCode::SignInFailed,
                "Your current password is not right.",
            )
        };
        return refuse(Outcome::Failed, Box::new(wrong)).await;
    }
    let hash = state
        .passwords
        .hash(password.expose().to_owned())
        .await
        .map_err(busy_or_fault)?;
    let stored_token = token_hash(token);
    audit::write(
        &state.db,
        &state.clock,
        actor,
        Action::StaffPasswordChange,
        move |conn, now| {
            let (username, hash, stored_token) =
                (username.clone(), hash.clone(), stored_token.clone());
            let (attempt, subject, client) = (attempt.clone(), subject.clone(), client.clone());
            Box::pin(async move {
                undo_attempt(conn, &attempt, &subject, &client).await?;
                db::staff_accounts::set_password(conn, username.as_str(), &hash, now).await?;
                // Whoever else holds a session of theirs is signed out.
                db::staff_sessions::end_others_of(conn, username.as_str(), &stored_token).await?;
                Ok(Audited::done(Outcome::Done, None, ()))
            })
        },
    )
    .await
}
