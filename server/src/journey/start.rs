//! Starting a journey: the answer is the same whether or not the address (or mobile number)
//! is on a profile.

use unlock_protocol::api::JourneyView;
use unlock_protocol::{EmailAddress, ErrorCode};

use super::device::DeviceCookie;
use super::{Journey, LatestCode, code_refused, throttled, view_of};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::contact::Contact;
use crate::db::journeys::NewJourney;
use crate::db::states::{CodeState, JourneyState, OutboxKind};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::mobile::{MobileError, MobileNumber};
use crate::outbox::{self, Outgoing, templates};
use crate::secrets::{self, token_hash};
use crate::state::AppState;
use crate::throttle::{self, Locked, Scope};

/// A journey just started: the cookie token and the first view.
pub struct Started {
    pub token: String,
    pub view: JourneyView,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

/// `POST /api/journeys`.
pub async fn start(
    state: &AppState,
    raw_contact: &str,
    client: &str,
    device: Option<&DeviceCookie>,
) -> Result<Started, Failure> {
    let email = parse_contact(state, raw_contact)?;
    // Every start counts against its client, one the allow list refuses too, so a flood of
    // made-up addresses runs into the client's limit like any other. The allow list's answer
    // still comes first: it tells a holder who typed the wrong address what to do.
    let ((allowed, holder_id), client_count, journey_id) = if state.db.hot_counters_apart() {
        let (found, locked, journey_id) = look_up_and_count(state, &email, client).await?;
        (found, ClientCount::Counted(locked), journey_id)
    } else {
        // Look-ups that need no lock run beside other requests, before the write.
        let mut conn = state.db.reader().await?;
        (
            look_up(&mut conn, state, &email).await?,
            ClientCount::InTheStart,
            None,
        )
    };
    // Addresses on no profile get a pseudonymous subject and go through every step a known
    // one does, except that no email is queued: the answer and its timing must not differ. A
    // browser that finished a journey for the holder counts on limits of its own.
    let subject = match &holder_id {
        Some(id) => {
            let holder_subject = format!("holder:{id}");
            match device.filter(|device| device.trusted_for(&state.keys, id)) {
                Some(device) => device.subject(&holder_subject),
                None => holder_subject,
            }
        }
        None => state.keys.email_subject(email.as_str()),
    };
    let request = StartRequest {
        state: state.clone(),
        email,
        allowed,
        holder_id,
        subject,
        client: client.to_owned(),
        client_count,
        journey_id,
    };
    super::step(state, client, Action::JourneyStart, move |conn, now| {
        Box::pin(request.clone().run(conn, now))
    })
    .await
}

/// Where a start is counted against its client.
#[derive(Debug, Clone, Copy)]
enum ClientCount {
    /// Already, apart (PostgreSQL; see [`look_up_and_count`]): the client's lock-out after
    /// it.
    Counted(Option<Locked>),
    /// First thing in the start's own write (SQLite: its one writer takes every write in
    /// turn, so a write of its own would only add a commit for the start to wait for).
    InTheStart,
}

/// Looks the contact up and counts a start from `client`, in a write of its own ahead of the
/// journey's, each statement committed as it runs, on one connection; the client's lock-out
/// after the count, and the id reserved for the journey, if one was (see
/// [`db::holder_emails::StartLookUp::journey_id`]). Every start from one address (a
/// hospital behind one NAT address) updates that address's row, and on PostgreSQL a row
/// stays locked until the transaction that updated it commits, so the count commits as its
/// own statement, holding the row only while PostgreSQL runs it (and a new lock-out, if the
/// count ran over the allowance, as another: a failure between them leaves the count, and
/// the next start sets the lock-out; two over-limit starts at once set one lock-out, never a
/// shorter one over a longer, see [`db::throttles::lock_unless_locked`]).
async fn look_up_and_count(
    state: &AppState,
    contact: &Contact,
    client: &str,
) -> anyhow::Result<((bool, Option<String>), Option<Locked>, Option<i64>)> {
    let (state, contact, client) = (state.clone(), contact.clone(), client.to_owned());
    let db = state.db.clone();
    db.write_each_statement(move |conn| {
        let (state, contact, client) = (state.clone(), contact.clone(), client.clone());
        Box::pin(async move {
            let now = state.clock.now();
            let Contact::Email(email) = &contact else {
                let found = look_up(conn, &state, &contact).await?;
                let locked = client_start(conn, &state, &client, now).await?;
                return Ok((found, locked, None));
            };
            // An address, as nearly every start has: looked up and counted in one statement.
            let (config, scope) = (&state.config.throttle, Scope::ClientStart);
            let key = crate::http::client_addr::throttle_key(&client);
            let hit = db::throttles::Hit {
                scope,
                key: &key,
                now,
                window: throttle::window(config, scope),
            };
            let found = db::holder_emails::look_up_counting(conn, email, hit).await?;
            let locked = throttle::settle(conn, config, scope, &key, found.count, now).await?;
            Ok(((found.allowed, found.holder), locked, found.journey_id))
        })
    })
    .await
}

/// Counts a start from `client`; its lock-out after the count.
async fn client_start(
    conn: &mut Conn,
    state: &AppState,
    client: &str,
    now: Millis,
) -> anyhow::Result<Option<Locked>> {
    let key = crate::http::client_addr::throttle_key(client);
    throttle::hit(conn, &state.config.throttle, Scope::ClientStart, &key, now).await
}

/// An email address (it has an `@`) or a mobile number, as the holder typed it. Which one
/// it is depends only on what was typed, never on any profile.
fn parse_contact(state: &AppState, raw: &str) -> Result<Contact, Failure> {
    if raw.contains('@') {
        return EmailAddress::parse(raw)
            .map(Contact::Email)
            .map_err(|e| Failure::client_message(ErrorCode::EmailInvalid, format!("{e}.")));
    }
    MobileNumber::parse(raw, state.config.sms.region())
        .map(Contact::Mobile)
        .map_err(|error| {
            let message = match error {
                MobileError::NotANumber if !raw.bytes().any(|b| b.is_ascii_digit()) => {
                    "Enter an email address in the correct format, like name@example.org, or a \
                     mobile number, like 07700 900 982."
                        .to_owned()
                }
                error => format!("{error}."),
            };
            Failure::client_message(ErrorCode::EmailInvalid, message)
        })
}

/// Whether codes may go to the contact (its email domain is allowed; text messages are
/// configured), and whose profile it is on.
async fn look_up(
    conn: &mut Conn,
    state: &AppState,
    contact: &Contact,
) -> anyhow::Result<(bool, Option<String>)> {
    match contact {
        Contact::Email(email) => db::holder_emails::look_up(conn, email).await,
        Contact::Mobile(number) => {
            let holder = db::holder_mobiles::look_up(conn, number.as_str()).await?;
            Ok((state.config.sms.enabled(), holder))
        }
    }
}

/// The answer for a contact codes may not go to: the same for every number when no SMS
/// gateway is configured, so it tells nobody which numbers are on profiles.
fn not_allowed(contact: &Contact) -> (Failure, String) {
    match contact {
        Contact::Email(email) => (
            Failure::client(ErrorCode::EmailDomainNotAllowed),
            email.domain().to_owned(),
        ),
        Contact::Mobile(_) => (
            Failure::client_message(
                ErrorCode::EmailDomainNotAllowed,
                "Codes can't be sent by text message. Use the email address on your smartcard \
                 profile, or contact your Registration Authority.",
            ),
            "text messages are not configured".to_owned(),
        ),
    }
}

#[derive(Clone)]
struct StartRequest {
    state: AppState,
    email: Contact,
    allowed: bool,
    holder_id: Option<String>,
    /// What the journey's codes and failures count against (see [`super::device`]).
    subject: String,
    client: String,
    client_count: ClientCount,
    /// Reserved for the journey, if it was.
    journey_id: Option<i64>,
}

impl StartRequest {
    /// The write: every check that must see committed state, the journey, its code, its email
    /// and the audit event, in one transaction.
    async fn run(self, conn: &mut Conn, now: Millis) -> anyhow::Result<Audited<Started>> {
        let Self {
            state,
            email,
            allowed,
            holder_id,
            subject,
            client,
            client_count,
            journey_id: reserved,
        } = self;
        let config = &state.config;
        let client_locked = match client_count {
            ClientCount::Counted(locked) => locked,
            ClientCount::InTheStart => client_start(conn, &state, &client, now).await?,
        };
        let mut journey_id = None;
        let mut detail = None;
        let (outcome, result) = 'checked: {
            if !allowed {
                let (refused, why) = not_allowed(&email);
                detail = Some(why);
                break 'checked (Outcome::DomainNotAllowed, Err(refused));
            }
            // One write at a time counts and adds to the subject's codes.
            db::throttles::lock_subject(conn, &subject).await?;
            if let Some(locked) = client_locked {
                break 'checked (Outcome::ThrottledClient, Err(throttled(now, locked)));
            }
            if let Some((outcome, refused)) =
                code_refused(conn, &config.journey, &subject, now).await?
            {
                break 'checked (outcome, Err(refused));
            }

            let token = secrets::new_token()?;
            let expires_at =
                now + i64::try_from(config.journey.code_ttl_seconds * 1000).unwrap_or(i64::MAX);
            let new = NewJourney {
                token_hash: &token_hash(&token),
                subject: &subject,
                holder_id: holder_id.as_deref(),
                email: email.as_str(),
                client_addr: &client,
                expires_at,
            };
            let id = match reserved {
                Some(id) => id,
                None => db::journeys::create(conn, &new, now).await?,
            };
            journey_id = Some(id);
            let journey = Journey {
                id,
                subject: subject.clone(),
                holder_id: holder_id.clone(),
                email: email.as_str().to_owned(),
                state: JourneyState::AwaitingCode,
                ineligible_reason: None,
                expires_at,
                card_serial: None,
                closed_reason: None,
            };
            // A reserved id: the journey is stored with its code.
            let stored_with = reserved.map(|_| &new);
            let code = issue_code(&state, conn, &journey, 0, stored_with, now).await?;
            let view = view_of(&config.journey, &journey, Some(&code), now);
            (
                Outcome::CodeIssued,
                view.map(|view| Started { token, view }),
            )
        };
        Ok(Audited::new(outcome, detail, result).concerning(journey_id, holder_id.as_deref()))
    }
}

/// Draws a new code for the journey, with `wrong_tries` already spent (carried over from the
/// code it replaces), and queues its email if the address is on a profile; stores the
/// journey with it if given `new_journey` (the journey's id reserved, not yet stored). The
/// caller supersedes any earlier code first. The code itself leaves this function only inside the
/// sealed email.
pub(super) async fn issue_code(
    state: &AppState,
    conn: &mut Conn,
    journey: &Journey,
    wrong_tries: i64,
    new_journey: Option<&NewJourney<'_>>,
    now: Millis,
) -> anyhow::Result<LatestCode> {
    let code = secrets::new_code()?;
    let code_mac = state.keys.code_mac(journey.id, &code);
    let new = db::codes::NewCode {
        journey_id: journey.id,
        subject: &journey.subject,
        code_mac: &code_mac,
        wrong_tries,
    };
    let minutes = state.config.journey.code_ttl_seconds / 60;
    // Rendered and sealed for every address, so known and unknown ones cost the same; only an
    // address on a profile has it queued (on PostgreSQL by the statement that stores the code
    // either way, see [`db::codes::issue`]).
    let message = match Contact::from_stored(&journey.email) {
        Some(Contact::Mobile(_)) => templates::one_time_code_sms(&code, minutes),
        _ => templates::one_time_code(&code, minutes, journey.expires_at, &state.config.time_zone),
    };
    let sealed = outbox::seal(
        &state.keys,
        OutboxKind::OneTimeCode,
        &journey.email,
        &message,
    )?;
    let outgoing = Outgoing {
        kind: OutboxKind::OneTimeCode,
        recipient: &journey.email,
        journey_id: Some(journey.id),
        holder_id: journey.holder_id.as_deref(),
        sealed,
        expires_at: Some(journey.expires_at),
    };
    let email = journey.holder_id.is_some().then(|| outgoing.row());
    let id = match new_journey {
        Some(journey) => {
            db::codes::issue_with_journey(conn, journey, &new, email.as_ref(), now).await?
        }
        None => db::codes::issue(conn, &new, email.as_ref(), now).await?,
    };
    Ok(LatestCode {
        id,
        code_mac,
        issued_at: now,
        wrong_tries,
        state: CodeState::Live,
    })
}
