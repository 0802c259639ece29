//! What Registration Authority staff change: addresses and mobile numbers on holders'
//! profiles (the holder is told at every one), holders' throttles, and (managers) the allow
//! list. Nobody acts on their own profile; every action and every refusal is audited.

use crate::contact::Contact;
use crate::db::holder_emails::{Added, Approval};
use crate::db::states::{Channel, OutboxKind};
use crate::db::{self, Conn};
use crate::mobile::MobileNumber;
use unlock_protocol::staff::{
    IssueUnlockCode, MAX_VERIFICATION_NOTE, Permission, Role, ThrottleTarget, UnlockCodeIssued,
};
use unlock_protocol::{EmailAddress, ErrorCode, HolderId};

use super::session::{self, StaffUser};
use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::Millis;
use crate::error::Failure;
use crate::outbox::{self, Composed, Outgoing, templates};
use crate::state::AppState;
use crate::{allowlist, throttle};

/// Runs `work` as an audited write by `user` (see [`audit::write`]); the outbox is woken
/// when it succeeds, since every change staff make tells someone.
async fn audited<T, F>(
    state: &AppState,
    user: &StaffUser,
    action: Action,
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
    let result = audit::write(
        &state.db,
        &state.clock,
        user.audit_actor(holder),
        action,
        work,
    )
    .await;
    if result.is_ok() {
        state.outbox_wake.notify_one();
    }
    result
}

/// The answer when staff try to act on their own profile; audited as a refusal.
async fn refuse_own_profile(
    state: &AppState,
    user: &StaffUser,
    action: Action,
    holder: &HolderId,
) -> Failure {
    let result: Result<(), Failure> = audited(state, user, action, Some(holder), |_, _| {
        Box::pin(async {
            Ok(Audited::refused(
                Outcome::OwnProfile,
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

/// An email address (it has an `@`) or a mobile number.
fn parse_contact(state: &AppState, raw: &str) -> Result<Contact, Failure> {
    let invalid = |error: &dyn std::fmt::Display| {
        Failure::client_message(ErrorCode::EmailInvalid, format!("{error}."))
    };
    if raw.contains('@') {
        EmailAddress::parse(raw)
            .map(Contact::Email)
            .map_err(|e| invalid(&e))
    } else {
        MobileNumber::parse(raw, state.config.sms.region())
            .map(Contact::Mobile)
            .map_err(|e| invalid(&e))
    }
}

/// Every address and number on `holder`'s profile that can be told something: numbers only
/// when text messages are configured.
pub(crate) async fn everyone_on(
    conn: &mut Conn,
    state: &AppState,
    holder: &str,
) -> anyhow::Result<Vec<String>> {
    let mut everyone = db::holder_emails::of_holder(conn, holder).await?;
    if state.config.sms.enabled() {
        everyone.extend(db::holder_mobiles::of_holder(conn, holder).await?);
    }
    Ok(everyone)
}

fn holder_not_found() -> Failure {
    Failure::client(ErrorCode::HolderNotFound)
}

async fn holder_exists(conn: &mut Conn, holder: &str) -> anyhow::Result<bool> {
    db::holders::exists(conn, holder).await
}

/// Queues `message` to each of `addresses`, as about `holder`'s profile.
async fn tell(
    conn: &mut Conn,
    state: &AppState,
    kind: OutboxKind,
    holder: &str,
    addresses: &[String],
    message: &Composed,
    now: Millis,
) -> anyhow::Result<()> {
    for address in addresses {
        let message = match crate::contact::channel_of(address) {
            Channel::Email => message.clone(),
            Channel::Sms if state.config.sms.enabled() => templates::sms_notice(message),
            // No gateway to send it: the emails tell the holder.
            Channel::Sms => continue,
        };
        let outgoing = Outgoing {
            kind,
            recipient: address,
            journey_id: None,
            holder_id: Some(holder),
            sealed: outbox::seal(&state.keys, kind, address, &message)?,
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
    let action = Action::StaffEmailAdd;
    session::require(state, user, Permission::ChangeEmails, action).await?;
    if user.owns(holder) {
        return Err(refuse_own_profile(state, user, action, holder).await);
    }
    let email = parse_contact(state, raw_email)?;
    let (job_state, id, by) = (state.clone(), holder.as_str().to_owned(), user.actor());
    audited(state, user, action, Some(holder), move |conn, now| {
        let (state, id, email, by) = (job_state.clone(), id.clone(), email.clone(), by.clone());
        Box::pin(async move {
            let detail = email.as_str().to_owned();
            if !holder_exists(conn, &id).await? {
                return Ok(Audited::refused(
                    Outcome::NoHolder,
                    Some(detail),
                    holder_not_found(),
                ));
            }
            if let Contact::Email(email) = &email
                && !db::allowed_domains::contains(conn, email.domain()).await?
            {
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
                    Outcome::DomainNotAllowed,
                    Some(detail),
                    refused,
                ));
            }
            let four_eyes = state.config.staff.four_eyes_for_added_addresses;
            let added = match &email {
                Contact::Email(address) => {
                    db::holder_emails::add(conn, address.as_str(), &id, now, &by, four_eyes).await?
                }
                Contact::Mobile(number) => {
                    db::holder_mobiles::add(conn, number.as_str(), &id, now, &by, four_eyes).await?
                }
            };
            if let Added::Taken { owner } = added {
                let what = match &email {
                    Contact::Email(_) => "email address",
                    Contact::Mobile(_) => "mobile number",
                };
                let message = if owner == id {
                    format!("This {what} is already on this holder's profile.")
                } else {
                    format!("This {what} is already on another holder's profile ({owner}).")
                };
                let refused = Failure::client_message(ErrorCode::EmailTaken, message);
                return Ok(Audited::refused(
                    Outcome::AlreadyOnAProfile,
                    Some(detail),
                    refused,
                ));
            }
            // Every address on the profile, and every address removed from it in the last 30
            // days: whoever had an address taken off can't then have another put on unseen.
            let mut everyone = everyone_on(conn, &state, &id).await?;
            for removed in recently_removed(conn, &id, now).await? {
                if !everyone.contains(&removed) {
                    everyone.push(removed);
                }
            }
            let notice = templates::address_added(
                &email,
                &state.config.public_url,
                now,
                &state.config.time_zone,
            );
            tell(
                conn,
                &state,
                OutboxKind::EmailAdded,
                &id,
                &everyone,
                &notice,
                now,
            )
            .await?;
            Ok(Audited::done(Outcome::Added, Some(detail), ()))
        })
    })
    .await
}

/// `POST /api/staff/holders/{id}/emails/approve`: under the four-eyes rule, a second RA
/// (not the one who added the address) lets an added address start journeys.
pub async fn approve_email(
    state: &AppState,
    user: &StaffUser,
    holder: &HolderId,
    raw_email: &str,
) -> Result<(), Failure> {
    let action = Action::StaffEmailApprove;
    session::require(state, user, Permission::ChangeEmails, action).await?;
    if user.owns(holder) {
        return Err(refuse_own_profile(state, user, action, holder).await);
    }
    let email = parse_contact(state, raw_email)?;
    let (id, by) = (holder.as_str().to_owned(), user.actor());
    audited(state, user, action, Some(holder), move |conn, now| {
        let (id, email, by) = (id.clone(), email.clone(), by.clone());
        Box::pin(async move {
            let detail = Some(email.as_str().to_owned());
            let refused = |outcome, failure| Ok(Audited::refused(outcome, detail.clone(), failure));
            let approval = match &email {
                Contact::Email(address) => {
                    db::holder_emails::approve(conn, address.as_str(), &id, &by, now).await?
                }
                Contact::Mobile(number) => {
                    db::holder_mobiles::approve(conn, number.as_str(), &id, &by, now).await?
                }
            };
            match approval {
                Approval::Approved => Ok(Audited::done(Outcome::Approved, detail.clone(), ())),
                Approval::NotOnProfile if !holder_exists(conn, &id).await? => {
                    refused(Outcome::NoHolder, holder_not_found())
                }
                Approval::NotOnProfile => refused(
                    Outcome::NotOnProfile,
                    Failure::client(ErrorCode::EmailNotOnProfile),
                ),
                Approval::NotWaiting => refused(
                    Outcome::NotWaiting,
                    Failure::client_message(
                        ErrorCode::EmailTaken,
                        "This address is not waiting for approval: it can be used already.",
                    ),
                ),
                Approval::SameStaff => refused(
                    Outcome::SameStaff,
                    Failure::client_message(
                        ErrorCode::Forbidden,
                        "You added this address, so another RA must approve it.",
                    ),
                ),
            }
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
    let action = Action::StaffEmailRemove;
    session::require(state, user, Permission::ChangeEmails, action).await?;
    if user.owns(holder) {
        return Err(refuse_own_profile(state, user, action, holder).await);
    }
    let email = parse_contact(state, raw_email)?;
    let (job_state, id) = (state.clone(), holder.as_str().to_owned());
    audited(state, user, action, Some(holder), move |conn, now| {
        let (state, id, email) = (job_state.clone(), id.clone(), email.clone());
        Box::pin(async move {
            let detail = email.as_str().to_owned();
            let removed = match &email {
                Contact::Email(address) => {
                    db::holder_emails::remove(conn, address.as_str(), &id).await?
                }
                Contact::Mobile(number) => {
                    db::holder_mobiles::remove(conn, number.as_str(), &id).await?
                }
            };
            if !removed {
                let refused = if holder_exists(conn, &id).await? {
                    Failure::client(ErrorCode::EmailNotOnProfile)
                } else {
                    holder_not_found()
                };
                return Ok(Audited::refused(
                    Outcome::NotOnProfile,
                    Some(detail),
                    refused,
                ));
            }
            // A code sent to the address must not unlock anything now.
            let closed = db::journeys::close_open_for_email(conn, &id, email.as_str(), now).await?;
            let detail = if closed > 0 {
                format!("{detail} ({closed} open journey(s) closed)")
            } else {
                detail
            };
            let mut told = everyone_on(conn, &state, &id).await?;
            told.push(email.as_str().to_owned());
            let notice = templates::address_removed(&email, now, &state.config.time_zone);
            tell(
                conn,
                &state,
                OutboxKind::EmailRemoved,
                &id,
                &told,
                &notice,
                now,
            )
            .await?;
            Ok(Audited::done(Outcome::Removed, Some(detail), ()))
        })
    })
    .await
}

/// How long an address removed from a profile is still told of addresses added to it.
const REMOVED_STILL_TOLD: Millis = 30 * 86_400_000;

/// The addresses RA staff removed from `holder`'s profile in the last 30 days.
async fn recently_removed(
    conn: &mut Conn,
    holder: &str,
    now: Millis,
) -> anyhow::Result<Vec<String>> {
    let details = db::audit::details_since(
        conn,
        holder,
        Action::StaffEmailRemove,
        Outcome::Removed,
        now - REMOVED_STILL_TOLD,
    )
    .await?;
    // The detail is the address, then what else the removal did.
    Ok(details
        .iter()
        .filter_map(|detail| detail.split_whitespace().next())
        .filter_map(Contact::from_stored)
        .map(|contact| contact.as_str().to_owned())
        .collect())
}

/// `POST /api/staff/throttles/release`: clears a holder's or a client address's counts and
/// lock-outs (not staff sign-in ones: those are the operator's).
pub async fn release_throttle(
    state: &AppState,
    user: &StaffUser,
    target: ThrottleTarget,
) -> Result<u64, Failure> {
    let action = Action::StaffThrottleRelease;
    session::require(state, user, Permission::ReleaseThrottles, action).await?;
    let (key, holder) = match &target {
        ThrottleTarget::Holder(id) if user.owns(id) => {
            return Err(refuse_own_profile(state, user, action, id).await);
        }
        ThrottleTarget::Holder(id) => (format!("holder:{id}"), Some(id.clone())),
        ThrottleTarget::Client(address) => {
            let key = crate::http::client_addr::release_key(address).ok_or_else(|| {
                Failure::client_message(
                    ErrorCode::QueryInvalid,
                    "Enter a client address like 192.0.2.10 or 2001:db8::10.",
                )
            })?;
            (key, None)
        }
    };
    // An RA may release one holder only so often; past that it is an RA manager's call (and
    // every release past the first in a week is flagged in the overview).
    let capped = match (&holder, user.role) {
        (Some(_), Role::Ra) => Some(i64::from(state.config.staff.holder_releases_per_week)),
        _ => None,
    };
    let concerning = holder.clone();
    audited(
        state,
        user,
        action,
        concerning.as_ref(),
        move |conn, now| {
            let (key, holder) = (key.clone(), holder.clone());
            Box::pin(async move {
                if let (Some(cap), Some(holder)) = (capped, &holder) {
                    let week = now - 7 * 86_400_000;
                    let done = db::figures::holder_steps_since(
                        conn,
                        action,
                        Outcome::Released,
                        holder.as_str(),
                        week,
                    )
                    .await?;
                    if done >= cap {
                        let message = format!(
                            "This holder's lock-outs have been released {done} times in the last 7 \
                         days. Ask an RA manager to look into it and release them."
                        );
                        return Ok(Audited::refused(
                            Outcome::ReleaseCapped,
                            Some(format!("{key}: {done} releases in 7 days")),
                            Failure::client_message(ErrorCode::Throttled, message),
                        ));
                    }
                }
                let released = throttle::release_holder_scopes(conn, &key).await?;
                Ok(Audited::done(
                    Outcome::Released,
                    Some(format!("{key}: {released} cleared")),
                    released,
                ))
            })
        },
    )
    .await
}

/// How long an RA's unlock code works.
pub const UNLOCK_CODE_TTL: Millis = 30 * 60_000;

/// `POST /api/staff/holders/{id}/unlock-code`: an RA who verified a holder over the phone
/// issues them a one-time unlock code to read out (shown this once; only its keyed hash is
/// kept). It works once, for 30 minutes, for this holder only, and supersedes any earlier
/// one. Every address on the profile is told who issued it (never the code).
pub async fn issue_unlock_code(
    state: &AppState,
    user: &StaffUser,
    holder: &HolderId,
    request: &IssueUnlockCode,
) -> Result<UnlockCodeIssued, Failure> {
    let action = Action::StaffUnlockCodeIssue;
    session::require(state, user, Permission::IssueUnlockCodes, action).await?;
    if user.owns(holder) {
        return Err(refuse_own_profile(state, user, action, holder).await);
    }
    let note = request.note.trim().to_owned();
    if note.is_empty() || note.chars().count() > MAX_VERIFICATION_NOTE {
        return Err(Failure::client_message(
            ErrorCode::InvalidBody,
            format!(
                "Write a note of how you verified the holder (at most {MAX_VERIFICATION_NOTE} \
                 characters)."
            ),
        ));
    }
    let how = request.verified_how;
    let (job_state, id, by) = (state.clone(), holder.as_str().to_owned(), user.actor());
    let ra = user.username.to_string();
    audited(state, user, action, Some(holder), move |conn, now| {
        let (state, id, by, note, ra) = (
            job_state.clone(),
            id.clone(),
            by.clone(),
            note.clone(),
            ra.clone(),
        );
        Box::pin(async move {
            // What the RA checked is on the record; the code never is.
            let detail = format!("{}: {note}", how.as_str());
            if !holder_exists(conn, &id).await? {
                return Ok(Audited::refused(
                    Outcome::NoHolder,
                    Some(detail),
                    holder_not_found(),
                ));
            }
            let code = crate::secrets::new_ra_code()?;
            let expires_at = now + UNLOCK_CODE_TTL;
            let new = db::ra_codes::NewRaCode {
                holder_id: &id,
                code_mac: &state.keys.ra_code_mac(code.expose()),
                issued_by: &by,
                verified_how: how.as_str(),
                note: &note,
                expires_at,
            };
            db::ra_codes::issue(conn, &new, now).await?;
            let everyone = db::holder_emails::of_holder(conn, &id).await?;
            let notice = templates::unlock_code_issued(&ra, now, &state.config.time_zone);
            tell(
                conn,
                &state,
                OutboxKind::UnlockCodeIssued,
                &id,
                &everyone,
                &notice,
                now,
            )
            .await?;
            let issued = UnlockCodeIssued {
                code: code.grouped(),
                expires_at,
            };
            Ok(Audited::done(Outcome::CodeIssued, Some(detail), issued))
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
        Action::AllowlistAdd
    } else {
        Action::AllowlistRemove
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
                if added {
                    Outcome::Added
                } else {
                    Outcome::AlreadyAllowed
                }
            } else {
                let removed = allowlist::remove(conn, &domain).await?;
                if removed {
                    Outcome::Removed
                } else {
                    Outcome::NotOnTheList
                }
            };
            Ok(Audited::done(outcome, Some(domain), ()))
        })
    })
    .await
}
