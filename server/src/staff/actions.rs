//! What Registration Authority staff change: addresses on holders' profiles (the holder is
//! told at every address), holders' throttles, and (managers) the allow list. Nobody acts
//! on their own profile; every action and every refusal is audited.

use crate::db::holder_emails::Added;
use crate::db::{self, Conn};
use anyhow::Context;
use unlock_protocol::staff::{Permission, ThrottleTarget};
use unlock_protocol::{EmailAddress, ErrorCode, HolderId};

use super::session::{self, StaffUser};
use crate::audit::{self, Event};
use crate::clock::Millis;
use crate::error::Failure;
use crate::outbox::{self, Composed, Outgoing, templates};
use crate::state::AppState;
use crate::{allowlist, throttle};

/// An action's audit record: what it did (or why not), to whom, and what it concerned.
struct Audited<T> {
    outcome: &'static str,
    detail: Option<String>,
    result: Result<T, Failure>,
}

impl<T> Audited<T> {
    fn done(outcome: &'static str, detail: String, value: T) -> Self {
        Self {
            outcome,
            detail: Some(detail),
            result: Ok(value),
        }
    }

    fn refused(outcome: &'static str, detail: Option<String>, failure: Failure) -> Self {
        Self {
            outcome,
            detail,
            result: Err(failure),
        }
    }
}

/// Runs `work` in a write transaction and audits it as `action` by `user`.
async fn audited<T, F>(
    state: &AppState,
    user: &StaffUser,
    action: &'static str,
    holder: Option<&HolderId>,
    work: F,
) -> Result<T, Failure>
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut Conn, Millis) -> crate::db::BoxFuture<'c, anyhow::Result<Audited<T>>>
        + Send
        + Sync
        + 'static,
{
    let (actor, client) = (user.actor(), user.client.clone());
    let holder = holder.map(|id| id.as_str().to_owned());
    let clock = state.clock.clone();
    let work = std::sync::Arc::new(work);
    let result = state
        .db
        .write(move |conn| {
            let (work, actor, client, holder) =
                (work.clone(), actor.clone(), client.clone(), holder.clone());
            let now = clock.now();
            Box::pin(async move {
                let audited = work(&mut *conn, now).await?;
                let event = Event {
                    actor: &actor,
                    action,
                    outcome: audited.outcome,
                    holder_id: holder.as_deref(),
                    client_addr: Some(&client),
                    detail: audited.detail.as_deref(),
                    ..Event::default()
                };
                audit::record(conn, now, event).await?;
                Ok(audited.result)
            })
        })
        .await?;
    if result.is_ok() {
        state.outbox_wake.notify_one();
    }
    result
}

/// The answer when staff try to act on their own profile; audited as a refusal.
async fn refuse_own_profile(
    state: &AppState,
    user: &StaffUser,
    action: &'static str,
    holder: &HolderId,
) -> Failure {
    let result: Result<(), Failure> = audited(state, user, action, Some(holder), |_, _| {
        Box::pin(async {
            Ok(Audited::refused(
                "own_profile",
                None,
                Failure::client(ErrorCode::OwnProfile),
            ))
        })
    })
    .await;
    match result {
        Err(failure) => failure,
        Ok(()) => Failure::client(ErrorCode::OwnProfile),
    }
}

fn parse_email(raw: &str) -> Result<EmailAddress, Failure> {
    EmailAddress::parse(raw)
        .map_err(|error| Failure::client_message(ErrorCode::EmailInvalid, format!("{error}.")))
}

fn holder_not_found() -> Failure {
    Failure::client(ErrorCode::HolderNotFound)
}

async fn holder_exists(conn: &mut Conn, holder: &str) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM holders WHERE id = $1")
        .bind(holder)
        .fetch_optional(conn)
        .await
        .context("look the holder up")?;
    Ok(found.is_some())
}

/// Queues `message` to each of `addresses`, as about `holder`'s profile.
async fn tell(
    conn: &mut Conn,
    state: &AppState,
    kind: &str,
    holder: &str,
    addresses: &[String],
    message: &Composed,
    now: Millis,
) -> anyhow::Result<()> {
    for address in addresses {
        let outgoing = Outgoing {
            kind,
            recipient: address,
            journey_id: None,
            holder_id: Some(holder),
            sealed: outbox::seal(&state.keys, message)?,
            expires_at: None,
        };
        outbox::enqueue(conn, outgoing, now).await?;
    }
    Ok(())
}

/// `POST /api/staff/holders/{id}/emails`: adds an address in an allowed domain, so the
/// holder can unlock their card themselves; every address on the profile is told.
pub async fn add_email(
    state: &AppState,
    user: &StaffUser,
    holder: &HolderId,
    raw_email: &str,
) -> Result<(), Failure> {
    let action = "staff.email_add";
    session::require(state, user, Permission::ChangeEmails, action).await?;
    if user.owns(holder) {
        return Err(refuse_own_profile(state, user, action, holder).await);
    }
    let email = parse_email(raw_email)?;
    let (job_state, id, by) = (state.clone(), holder.as_str().to_owned(), user.actor());
    audited(state, user, action, Some(holder), move |conn, now| {
        let (state, id, email, by) = (job_state.clone(), id.clone(), email.clone(), by.clone());
        Box::pin(async move {
            let detail = email.as_str().to_owned();
            if !holder_exists(conn, &id).await? {
                return Ok(Audited::refused(
                    "no_holder",
                    Some(detail),
                    holder_not_found(),
                ));
            }
            let allowed: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM allowed_domains WHERE domain = $1")
                    .bind(email.domain())
                    .fetch_optional(&mut *conn)
                    .await
                    .context("check the allow list")?;
            if allowed.is_none() {
                let refused = Failure::client_message(
                    ErrorCode::EmailDomainNotAllowed,
                    format!(
                        "{} is not on the email domain allow list, so the holder could not use \
                         this address. Use an address in an allowed domain, or ask an RA \
                         manager to allow the domain.",
                        email.domain()
                    ),
                );
                return Ok(Audited::refused(
                    "domain_not_allowed",
                    Some(detail),
                    refused,
                ));
            }
            if let Added::Taken { owner } =
                db::holder_emails::add(conn, email.as_str(), &id, now, &by).await?
            {
                let message = if owner == id {
                    "This email address is already on this holder's profile.".to_owned()
                } else {
                    format!("This email address is already on another holder's profile ({owner}).")
                };
                let refused = Failure::client_message(ErrorCode::EmailTaken, message);
                return Ok(Audited::refused(
                    "already_on_a_profile",
                    Some(detail),
                    refused,
                ));
            }
            let everyone = db::holder_emails::of_holder(conn, &id).await?;
            let notice = templates::address_added(&email, &state.config.public_url, now);
            tell(conn, &state, "email_added", &id, &everyone, &notice, now).await?;
            Ok(Audited::done("added", detail, ()))
        })
    })
    .await
}

/// `DELETE /api/staff/holders/{id}/emails/{email}`: the address and every one left are told.
pub async fn remove_email(
    state: &AppState,
    user: &StaffUser,
    holder: &HolderId,
    raw_email: &str,
) -> Result<(), Failure> {
    let action = "staff.email_remove";
    session::require(state, user, Permission::ChangeEmails, action).await?;
    if user.owns(holder) {
        return Err(refuse_own_profile(state, user, action, holder).await);
    }
    let email = parse_email(raw_email)?;
    let (job_state, id) = (state.clone(), holder.as_str().to_owned());
    audited(state, user, action, Some(holder), move |conn, now| {
        let (state, id, email) = (job_state.clone(), id.clone(), email.clone());
        Box::pin(async move {
            let detail = email.as_str().to_owned();
            if !db::holder_emails::remove(conn, email.as_str(), &id).await? {
                let refused = if holder_exists(conn, &id).await? {
                    Failure::client(ErrorCode::EmailNotOnProfile)
                } else {
                    holder_not_found()
                };
                return Ok(Audited::refused("not_on_profile", Some(detail), refused));
            }
            let mut told = db::holder_emails::of_holder(conn, &id).await?;
            told.push(email.as_str().to_owned());
            let notice = templates::address_removed(&email, now);
            tell(conn, &state, "email_removed", &id, &told, &notice, now).await?;
            Ok(Audited::done("removed", detail, ()))
        })
    })
    .await
}

/// `POST /api/staff/throttles/release`: clears a holder's or a client address's counts and
/// lock-outs (not staff sign-in ones: those are the operator's).
pub async fn release_throttle(
    state: &AppState,
    user: &StaffUser,
    target: ThrottleTarget,
) -> Result<u64, Failure> {
    let action = "staff.throttle_release";
    session::require(state, user, Permission::ReleaseThrottles, action).await?;
    let (key, holder) = match &target {
        ThrottleTarget::Holder(id) if user.owns(id) => {
            return Err(refuse_own_profile(state, user, action, id).await);
        }
        ThrottleTarget::Holder(id) => (format!("holder:{id}"), Some(id.clone())),
        ThrottleTarget::Client(address) => {
            let ip = address.trim().parse::<std::net::IpAddr>().map_err(|_| {
                Failure::client_message(
                    ErrorCode::QueryInvalid,
                    "Enter a client address like 192.0.2.10 or 2001:db8::10.",
                )
            })?;
            (ip.to_canonical().to_string(), None)
        }
    };
    audited(state, user, action, holder.as_ref(), move |conn, _| {
        let key = key.clone();
        Box::pin(async move {
            let released = throttle::release_holder_scopes(conn, &key).await?;
            Ok(Audited::done(
                "released",
                format!("{key}: {released} cleared"),
                released,
            ))
        })
    })
    .await
}

/// `POST /api/staff/allowlist` (`add`) and `DELETE /api/staff/allowlist/{domain}`.
pub async fn change_allowlist(
    state: &AppState,
    user: &StaffUser,
    raw_domain: &str,
    add: bool,
) -> Result<(), Failure> {
    let action = if add {
        "allowlist.add"
    } else {
        "allowlist.remove"
    };
    session::require(state, user, Permission::ManageAllowList, action).await?;
    let domain = allowlist::parse_domain(raw_domain)
        .ok_or_else(|| Failure::client(ErrorCode::DomainInvalid))?;
    let by = user.actor();
    audited(state, user, action, None, move |conn, now| {
        let (domain, by) = (domain.clone(), by.clone());
        Box::pin(async move {
            let outcome = if add {
                let added = allowlist::add(conn, &domain, &by, now).await?;
                if added { "added" } else { "already_allowed" }
            } else {
                let removed = allowlist::remove(conn, &domain).await?;
                if removed {
                    "removed"
                } else {
                    "not_on_the_list"
                }
            };
            Ok(Audited::done(outcome, domain, ()))
        })
    })
    .await
}
