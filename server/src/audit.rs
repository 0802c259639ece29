//! The append-only audit trail: who did what, when, from where, and how it ended.
//!
//! Changes are audited one way: [`write`] runs the change in a write transaction and
//! appends the [`Audited`] outcome it returns in the same transaction, for the holder's
//! steps, staff's actions and the operator's commands ([`operator_write`]) alike. Only where
//! the write itself finds out who acted (a staff session named by its cookie) does it append
//! through [`record`] directly, still inside its transaction.

use std::sync::Arc;

use crate::clock::{Clock, Millis};
use crate::db::states::stored_names;
use crate::db::{self, BoxFuture, Conn, Db};
use crate::error::Failure;

stored_names! {
    /// What was done (`audit_events.action`): the holder's steps, the system's, staff's and
    /// the operator's.
    pub enum Action {
        JourneyStart => "journey.start",
        JourneyVerifyCode => "journey.verify_code",
        JourneyResendCode => "journey.resend_code",
        JourneyPresentCard => "journey.present_card",
        /// The release of a card secret: a cryptogram (unlock-cr/1) or the PUKs (piv/1). Stored
        /// under its first name, so the history stays one series.
        JourneyRelease => "journey.cryptogram",
        JourneyReceipt => "journey.receipt",
        /// A holder typed the one-time unlock code an RA read out to them (it starts the
        /// journey, verified).
        JourneyRaCode => "journey.ra_code",
        /// The unlock notice queued to every address on the profile.
        OutboxUnlockNotice => "outbox.unlock_notice",
        /// The notice queued to every address on the profile at a journey's first release.
        OutboxReleaseNotice => "outbox.release_notice",
        StaffSignIn => "staff.sign_in",
        StaffSignInCode => "staff.sign_in_code",
        StaffPasswordChange => "staff.password_change",
        StaffSignOut => "staff.sign_out",
        /// A session ended by being idle, running out or its account being disabled.
        StaffSessionEnd => "staff.session_end",
        StaffOverview => "staff.overview",
        StaffHolderSearch => "staff.holder_search",
        StaffHolderView => "staff.holder_view",
        StaffReportExport => "staff.report_export",
        StaffAudit => "staff.audit",
        StaffAllowlist => "staff.allowlist",
        StaffEmailAdd => "staff.email_add",
        StaffEmailRemove => "staff.email_remove",
        StaffEmailApprove => "staff.email_approve",
        StaffThrottleRelease => "staff.throttle_release",
        /// An RA issued a one-time unlock code to a holder they verified over the phone.
        StaffUnlockCodeIssue => "staff.unlock_code_issue",
        StaffAccountAdd => "staff.account_add",
        StaffAccountReset => "staff.account_reset",
        StaffAccountDisable => "staff.account_disable",
        AllowlistAdd => "allowlist.add",
        AllowlistRemove => "allowlist.remove",
        /// The operator's release of a throttle from the command line.
        ThrottleRelease => "throttle.release",
        /// What was past its retention was deleted (the audit trail is kept whole).
        RetentionPurge => "retention.purge",
        /// Old events moved out to a file (`audit archive`).
        AuditArchive => "audit.archive",
        HoldersImport => "holders.import",
        /// The first version of a key made (`keys generate`).
        KeysGenerate => "keys.generate",
        /// A new current version of a key made (`keys rotate`).
        KeysRotate => "keys.rotate",
        /// A file key moved onto the token (`keys import`).
        KeysImport => "keys.import",
        DemoSeed => "demo.seed",
    }
}

stored_names! {
    /// How it ended (`audit_events.outcome`).
    pub enum Outcome {
        Done => "done",
        Viewed => "viewed",
        Forbidden => "forbidden",
        NoJourney => "no_journey",
        // Starting and codes.
        CodeIssued => "code_issued",
        DomainNotAllowed => "domain_not_allowed",
        ThrottledClient => "throttled_client",
        ThrottledHolder => "throttled_holder",
        Throttled => "throttled",
        TooManyCodes => "too_many_codes",
        TooSoon => "too_soon",
        Expired => "expired",
        NotAwaitingCode => "not_awaiting_code",
        NoLiveCode => "no_live_code",
        WrongCode => "wrong_code",
        WrongCodeVoided => "wrong_code_voided",
        Verified => "verified",
        /// The right code, but none of the holder's cards can be unlocked here.
        VerifiedIneligible => "verified_ineligible",
        // The card steps.
        JourneyClosed => "journey_closed",
        NotVerified => "not_verified",
        CardNotOnProfile => "card_not_on_profile",
        CardNotUsable => "card_not_usable",
        /// A PIV card's certificates don't chain to the anchors, have expired, or name
        /// another card.
        CertificateNotTrusted => "certificate_not_trusted",
        /// A PIV card's PUK is blocked: only the RA can help.
        PukBlocked => "puk_blocked",
        /// A PIV card's possession signature did not verify.
        PossessionFailed => "possession_failed",
        Accepted => "accepted",
        NoCard => "no_card",
        TooManyAttempts => "too_many_attempts",
        ChallengeReused => "challenge_reused",
        Released => "released",
        /// A holder's lock-outs released too often this week for an RA alone.
        ReleaseCapped => "release_capped",
        NoChallenge => "no_challenge",
        ReceiptWrong => "receipt_wrong",
        Unlocked => "unlocked",
        Queued => "queued",
        // Staff sign-in and sessions.
        LockedOut => "locked_out",
        Failed => "failed",
        /// A new staff password the policy or the estimator refused.
        PasswordRejected => "password_rejected",
        PasswordOk => "password_ok",
        CodeOk => "code_ok",
        CodeReused => "code_reused",
        CodeWrong => "code_wrong",
        Disabled => "disabled",
        Idle => "idle",
        // Staff changes.
        Added => "added",
        Removed => "removed",
        OwnProfile => "own_profile",
        NoHolder => "no_holder",
        AlreadyOnAProfile => "already_on_a_profile",
        NotOnProfile => "not_on_profile",
        AlreadyAllowed => "already_allowed",
        NotOnTheList => "not_on_the_list",
        Approved => "approved",
        NotWaiting => "not_waiting",
        /// The four-eyes rule: who added an address may not approve it.
        SameStaff => "same_staff",
    }
}

/// One audit event. Details must never hold a code, passcode, key or cryptogram.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: Action,
    pub outcome: Outcome,
    pub journey_id: Option<i64>,
    pub holder_id: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event with no journey, holder, client or detail.
    pub fn new(actor: &'a str, action: Action, outcome: Outcome) -> Self {
        Self {
            actor,
            action,
            outcome,
            journey_id: None,
            holder_id: None,
            client_addr: None,
            detail: None,
        }
    }
}

/// Refusals that name no holder and cost whoever sends them nothing: a cookie that names no
/// journey, a domain not on the allow list, a client or a staff sign-in locked out. A flood
/// of them must not grow the audit trail a row a request, so each is audited whole the first
/// time in a minute from one client under one name (`holder`, a staff account's or
/// `unknown`) and its repeats are counted, then folded into one event with their number
/// ([`fold_repeats`]).
const REPEATABLE: [Outcome; 4] = [
    Outcome::NoJourney,
    Outcome::DomainNotAllowed,
    Outcome::ThrottledClient,
    Outcome::LockedOut,
];

/// Appends an event inside the caller's transaction, so it commits with the change it records
/// (a [`REPEATABLE`] refusal's repeat in the same minute only counted); the step is counted
/// in the metrics (`unlock_steps_total`) once that transaction commits.
pub async fn record(conn: &mut Conn, at: Millis, event: Event<'_>) -> anyhow::Result<()> {
    let repeat = match event.client_addr {
        Some(client) if REPEATABLE.contains(&event.outcome) => {
            db::audit::count_repeat(conn, at, client, &event).await? > 1
        }
        _ => false,
    };
    if !repeat {
        db::audit::append(conn, at, &event).await?;
    }
    crate::metrics::step(event.action.as_str(), event.outcome.as_str());
    Ok(())
}

/// Folds the counted repeats of minutes that ended more than a minute before `now` (a
/// minute's grace for requests still in flight, and for instances' clocks) into one audit
/// event each, `times` the repeats after the minute's first; returns how many it folded.
/// Safe on several instances at once: each minute's count is taken out by one of them.
pub async fn fold_repeats(db: &Db, now: Millis) -> anyhow::Result<u64> {
    let before = now - now.rem_euclid(MINUTE) - MINUTE;
    let mut folded = 0;
    loop {
        let batch = db
            .write(move |conn| {
                Box::pin(async move {
                    let taken = db::audit::take_repeats(conn, before).await?;
                    for repeats in taken.iter().filter(|repeats| repeats.times > 1) {
                        db::audit::append_repeats(conn, repeats).await?;
                    }
                    Ok(taken.len())
                })
            })
            .await?;
        folded += u64::try_from(batch).unwrap_or(0);
        if i64::try_from(batch).unwrap_or(i64::MAX) < db::retention::BATCH {
            return Ok(folded);
        }
    }
}

const MINUTE: Millis = 60_000;

/// What an audited change did (or why it refused), and the answer to give.
#[derive(Debug)]
pub struct Audited<T> {
    pub outcome: Outcome,
    pub detail: Option<String>,
    /// The journey it concerned, once the work found it.
    pub journey_id: Option<i64>,
    /// Whose profile it concerned, if the work found out (else the [`Actor`]'s).
    pub holder_id: Option<String>,
    pub result: Result<T, Failure>,
}

impl<T> Audited<T> {
    pub fn new(outcome: Outcome, detail: Option<String>, result: Result<T, Failure>) -> Self {
        Self {
            outcome,
            detail,
            journey_id: None,
            holder_id: None,
            result,
        }
    }

    pub fn done(outcome: Outcome, detail: Option<String>, value: T) -> Self {
        Self::new(outcome, detail, Ok(value))
    }

    pub fn refused(outcome: Outcome, detail: Option<String>, failure: Failure) -> Self {
        Self::new(outcome, detail, Err(failure))
    }

    /// Records it as concerning this journey and holder.
    pub fn concerning(mut self, journey_id: Option<i64>, holder_id: Option<&str>) -> Self {
        self.journey_id = journey_id;
        self.holder_id = holder_id.map(str::to_owned);
        self
    }
}

/// Who acts, from where, on whose profile: the audit record's fixed part.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub client: Option<String>,
    pub holder: Option<String>,
}

impl Actor {
    /// A holder (who is not signed in: their journey's cookie is all they have) at `client`.
    pub fn holder(client: &str) -> Self {
        Self {
            name: "holder".into(),
            client: Some(client.to_owned()),
            holder: None,
        }
    }

    /// The operator, on the command line.
    pub fn operator(holder: Option<&str>) -> Self {
        Self {
            name: "operator".into(),
            client: None,
            holder: holder.map(str::to_owned),
        }
    }
}

/// The audited write: runs `work` in one write transaction (which may run more than once)
/// and appends its [`Audited`] outcome as `action` by `actor` in the same transaction, so
/// the change and its record commit together or not at all.
pub async fn write<T, F>(
    db: &Db,
    clock: &Clock,
    actor: Actor,
    action: Action,
    work: F,
) -> Result<T, Failure>
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut Conn, Millis) -> BoxFuture<'c, anyhow::Result<Audited<T>>>
        + Send
        + Sync
        + 'static,
{
    let clock = clock.clone();
    let work = Arc::new(work);
    db.write(move |conn| {
        let (work, actor) = (work.clone(), actor.clone());
        let now = clock.now();
        Box::pin(async move {
            let audited = work(&mut *conn, now).await?;
            let event = Event {
                journey_id: audited.journey_id,
                holder_id: audited.holder_id.as_deref().or(actor.holder.as_deref()),
                client_addr: actor.client.as_deref(),
                detail: audited.detail.as_deref(),
                ..Event::new(&actor.name, action, audited.outcome)
            };
            record(conn, now, event).await?;
            Ok(audited.result)
        })
    })
    .await?
}

/// The operator's audited write on the command line: [`write`] as the operator, answering
/// a refusal with its sentence as the error.
pub async fn operator_write<T, F>(
    db: &Db,
    clock: &Clock,
    holder: Option<&str>,
    action: Action,
    work: F,
) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut Conn, Millis) -> BoxFuture<'c, anyhow::Result<Audited<T>>>
        + Send
        + Sync
        + 'static,
{
    write(db, clock, Actor::operator(holder), action, work)
        .await
        .map_err(Failure::into_error)
}
