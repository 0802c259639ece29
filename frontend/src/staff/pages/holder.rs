//! `/status/holders/{id}`: one holder's profile, addresses, cards, recent journeys step by
//! step, the emails they were sent and their throttles; and, for RA staff, adding and
//! removing addresses and releasing lock-outs (never on their own profile).

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use unlock_protocol::staff::{
    AddEmail, ApproveEmail, HolderProfile, IssueUnlockCode, JourneyRecord, MAX_VERIFICATION_NOTE,
    Permission, ReleaseThrottle, Released, ThrottleTarget, UnlockCodeIssued, VerificationMethod,
};
use unlock_protocol::{EmailAddress, ErrorCode, HolderId};

use super::{Confirm, Done, RowButton, Tag, header_row};
use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::pages::PageScope;
use crate::staff::api::{self, encode};
use crate::staff::format::{card_status, date, date_time, delivery_state, email_kind};
use crate::staff::{StaffSession, use_staff};

const NEW_EMAIL: &str = "new-email";

/// What the page's actions share; `Copy`, so every button can hold one.
#[derive(Debug, Clone, Copy)]
struct Holder {
    scope: PageScope,
    session: StaffSession,
    id: StoredValue<HolderId>,
    profile: RwSignal<Option<HolderProfile>>,
    done: RwSignal<Option<String>>,
    problem: RwSignal<Option<String>>,
    /// The address waiting for "Yes, remove it".
    removing: RwSignal<Option<String>>,
    /// What is wrong with the unlock code form: how the holder was checked, and the note.
    how_error: RwSignal<Option<String>>,
    note_error: RwSignal<Option<String>>,
    /// The unlock code just issued, to read out (kept here: the profile below is redrawn
    /// when it reloads).
    issued: RwSignal<Option<UnlockCodeIssued>>,
}

impl Holder {
    fn url(&self, rest: &str) -> String {
        format!("/api/staff/holders/{}{rest}", self.id.get_value())
    }

    fn load(self) {
        self.scope.spawn(async move {
            match api::get::<HolderProfile>(&self.url("")).await {
                Ok(profile) => self.profile.set(Some(profile)),
                Err(failure) => self.failed(failure),
            }
        });
    }

    fn failed(&self, failure: crate::api::ApiFailure) {
        self.done.set(None);
        self.problem.set(self.session.problem(failure));
    }

    fn changed(&self, profile: HolderProfile, message: String) {
        self.problem.set(None);
        self.profile.set(Some(profile));
        self.done.set(Some(message));
    }

    fn remove(self, address: String) {
        self.scope.spawn(async move {
            let url = self.url(&format!("/emails/{}", encode(&address)));
            match api::delete::<HolderProfile>(&url).await {
                Ok(profile) => self.changed(
                    profile,
                    format!("{address} was removed from the profile. We have emailed it and every address left."),
                ),
                Err(failure) => self.failed(failure),
            }
            self.removing.set(None);
        });
    }

    fn approve(self, address: String) {
        self.scope.spawn(async move {
            let body = ApproveEmail {
                email: address.clone(),
            };
            match api::post::<_, HolderProfile>(&self.url("/emails/approve"), &body).await {
                Ok(profile) => self.changed(
                    profile,
                    format!(
                        "{address} was approved. The holder can now use it to unlock their card."
                    ),
                ),
                Err(failure) => self.failed(failure),
            }
        });
    }

    fn release(self, target: ThrottleTarget) {
        self.scope.spawn(async move {
            let body = ReleaseThrottle { target };
            match api::post::<_, Released>("/api/staff/throttles/release", &body).await {
                Ok(released) => {
                    self.problem.set(None);
                    self.done.set(Some(format!(
                        "Released: {} count{} and lock-outs cleared.",
                        released.released,
                        if released.released == 1 { "" } else { "s" }
                    )));
                    self.load();
                }
                Err(failure) => self.failed(failure),
            }
        });
    }
}

#[component]
pub fn HolderPage() -> impl IntoView {
    let params = use_params_map();
    let raw = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let Ok(id) = HolderId::parse(&raw) else {
        return view! {
            <Heading title="There is no holder with this user id" />
            <p><a href="/status/holders">"Find a holder"</a></p>
        }
        .into_any();
    };
    let holder = Holder {
        scope: PageScope::new(),
        session: use_staff(),
        id: StoredValue::new(id),
        profile: RwSignal::new(None),
        done: RwSignal::new(None),
        problem: RwSignal::new(None),
        removing: RwSignal::new(None),
        how_error: RwSignal::new(None),
        note_error: RwSignal::new(None),
        issued: RwSignal::new(None),
    };
    holder.load();
    let new_email = RwSignal::new(String::new());
    let email_error = RwSignal::new(None::<String>);

    let add = move |event: SubmitEvent| {
        event.prevent_default();
        let email = match new_email.with_untracked(|typed| EmailAddress::parse(typed)) {
            Ok(email) => email,
            Err(error) => return email_error.set(Some(error.to_string())),
        };
        email_error.set(None);
        holder.scope.spawn(async move {
            let body = AddEmail {
                email: email.as_str().to_owned(),
            };
            match api::post::<_, HolderProfile>(&holder.url("/emails"), &body).await {
                Ok(profile) => {
                    new_email.set(String::new());
                    let waits = profile.emails.iter().any(|e| e.awaiting_approval);
                    let next = if waits {
                        "Another RA must approve it on this page before the holder can use it."
                    } else {
                        "The holder can now use it to unlock their card."
                    };
                    holder.changed(
                        profile,
                        format!("{email} was added to the profile. We have emailed every address on it. {next}"),
                    );
                }
                Err(failure) => match failure.code {
                    Some(ErrorCode::EmailInvalid | ErrorCode::EmailDomainNotAllowed | ErrorCode::EmailTaken) => {
                        holder.done.set(None);
                        email_error.set(Some(failure.message));
                    }
                    _ => holder.failed(failure),
                },
            }
        });
    };

    let errors = Signal::derive(move || {
        email_error
            .get()
            .map(|message| ErrorItem::field(NEW_EMAIL, message))
            .into_iter()
            .chain(
                holder
                    .how_error
                    .get()
                    .map(|message| ErrorItem::field(VERIFIED_HOW, message)),
            )
            .chain(
                holder
                    .note_error
                    .get()
                    .map(|message| ErrorItem::field(NOTE, message)),
            )
            .chain(holder.problem.get().map(ErrorItem::general))
            .collect::<Vec<_>>()
    });
    let may_change = move || {
        holder.session.may(Permission::ChangeEmails)
            && holder
                .profile
                .with(|p| p.as_ref().is_some_and(|p| !p.own_profile))
    };
    let may_issue = move || {
        holder.session.may(Permission::IssueUnlockCodes)
            && holder
                .profile
                .with(|p| p.as_ref().is_some_and(|p| !p.own_profile))
    };
    let body = move || {
        holder.profile.get().map(|profile| {
            let title = if profile.name.is_empty() { format!("Holder {}", profile.id) } else { profile.name.clone() };
            let own = profile.own_profile.then(|| view! {
                <div class="nhsuk-inset-text">
                    <p>"This is your own smartcard profile. You cannot change it: ask a colleague."</p>
                </div>
            });
            view! {
                <Heading title=title />
                {own}
                <dl class="nhsuk-summary-list">
                    <div class="nhsuk-summary-list__row">
                        <dt class="nhsuk-summary-list__key">"User id"</dt>
                        <dd class="nhsuk-summary-list__value">{profile.id.to_string()}</dd>
                    </div>
                    <div class="nhsuk-summary-list__row">
                        <dt class="nhsuk-summary-list__key">"Organisation"</dt>
                        <dd class="nhsuk-summary-list__value">{profile.organisation.clone()}</dd>
                    </div>
                </dl>
                <Emails holder=holder profile=profile.clone() may_change=may_change() />
                {may_change().then(|| view! {
                    <h3>"Add an email address or mobile number"</h3>
                    <p>"An email address's domain must be on the allow list. The holder is told at every address and number on their profile, and can then unlock their card themselves with it."</p>
                    <form novalidate on:submit=add>
                        <TextField
                            id=NEW_EMAIL
                            label="Email address or mobile number"
                            value=new_email
                            error=email_error
                            autocomplete="off"
                            width="nhsuk-input--width-30"
                        />
                        <button class="nhsuk-button" type="submit">"Add to profile"</button>
                    </form>
                })}
                {may_issue().then(|| view! { <UnlockCode holder=holder /> })}
                <Cards profile=profile.clone() />
                <Journeys journeys=profile.journeys.clone() />
                <Deliveries profile=profile.clone() />
                <Throttles holder=holder profile=profile />
            }
        })
    };
    view! {
        <a class="nhsuk-back-link" href="/status/holders">"Find another holder"</a>
        <ErrorSummary errors=errors />
        <Done message=holder.done />
        <Show when=move || holder.profile.with(Option::is_some) fallback=|| view! { <p>"Loading…"</p> }>
            {body}
        </Show>
    }
    .into_any()
}

const VERIFIED_HOW: &str = "verified-how";
const NOTE: &str = "verification-note";

/// RA-assisted remote unlock: how the RA checked who phoned, then a one-time unlock code to
/// read out, shown this once.
#[component]
fn UnlockCode(holder: Holder) -> impl IntoView {
    let how = RwSignal::new(None::<VerificationMethod>);
    let note = RwSignal::new(String::new());
    let (how_error, note_error, issued) = (holder.how_error, holder.note_error, holder.issued);

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let chosen = how.get_untracked();
        how_error.set(
            chosen
                .is_none()
                .then(|| "Select how you checked who the holder is".to_owned()),
        );
        let written = note.with_untracked(|n| n.trim().to_owned());
        note_error.set(if written.is_empty() {
            Some("Write what you checked".to_owned())
        } else if written.chars().count() > MAX_VERIFICATION_NOTE {
            Some(format!("Write at most {MAX_VERIFICATION_NOTE} characters"))
        } else {
            None
        });
        let Some(verified_how) = chosen else {
            return;
        };
        if note_error.with_untracked(Option::is_some) {
            return;
        }
        holder.scope.spawn(async move {
            let body = IssueUnlockCode {
                verified_how,
                note: written,
            };
            match api::post::<_, UnlockCodeIssued>(&holder.url("/unlock-code"), &body).await {
                Ok(code) => {
                    holder.problem.set(None);
                    holder.done.set(None);
                    how.set(None);
                    note.set(String::new());
                    issued.set(Some(code));
                    holder.load();
                }
                Err(failure) => holder.failed(failure),
            }
        });
    };
    let options = VerificationMethod::ALL
        .iter()
        .enumerate()
        .map(|(n, method)| {
            let method = *method;
            let id = if n == 0 {
                VERIFIED_HOW.to_owned()
            } else {
                format!("{VERIFIED_HOW}-{}", n + 1)
            };
            view! {
                <div class="nhsuk-radios__item">
                    <input
                        class="nhsuk-radios__input"
                        id=id.clone()
                        name=VERIFIED_HOW
                        type="radio"
                        value=method.as_str()
                        prop:checked=move || how.get() == Some(method)
                        on:change=move |_| how.set(Some(method))
                    />
                    <label class="nhsuk-label nhsuk-radios__label" for=id>
                        {method.label()}
                    </label>
                </div>
            }
        })
        .collect_view();
    let shown = move || {
        issued.get().map(|code| {
            view! {
                <div class="nhsuk-panel app-unlock-code" role="status">
                    <h3>"Read this code out to the holder"</h3>
                    <p class="nhsuk-body-l"><strong id="unlock-code">{code.code.clone()}</strong></p>
                    <p>
                        {format!(
                            "It works once, until {} (30 minutes), for this holder only. It will not be shown again. They choose \"I have a code from my Registration Authority\" and type it in.",
                            date_time(code.expires_at)
                        )}
                    </p>
                </div>
            }
        })
    };
    view! {
        <h3>"Remote unlock with a one-time code"</h3>
        <p>
            "If the holder cannot get to any email address on their profile and has phoned you, check who they are. Then issue a one-time unlock code and read it out to them. Every address on the profile is told that you issued one."
        </p>
        {shown}
        <form novalidate on:submit=submit>
            <div class=move || {
                if how_error.with(Option::is_some) {
                    "nhsuk-form-group nhsuk-form-group--error"
                } else {
                    "nhsuk-form-group"
                }
            }>
                <fieldset class="nhsuk-fieldset" aria-describedby=move || how_error.with(Option::is_some).then_some("verified-how-error")>
                    <legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s">
                        "How did you check who the holder is?"
                    </legend>
                    {move || how_error.get().map(|message| view! {
                        <span class="nhsuk-error-message" id="verified-how-error">
                            <span class="nhsuk-u-visually-hidden">"Error: "</span>
                            {message}
                        </span>
                    })}
                    <div class="nhsuk-radios">{options}</div>
                </fieldset>
            </div>
            <div class=move || {
                if note_error.with(Option::is_some) {
                    "nhsuk-form-group nhsuk-form-group--error"
                } else {
                    "nhsuk-form-group"
                }
            }>
                <label class="nhsuk-label" for=NOTE>"What did you check?"</label>
                <div class="nhsuk-hint" id="verification-note-hint">
                    "For example, the number you called back and the details they confirmed. This goes in the audit log."
                </div>
                {move || note_error.get().map(|message| view! {
                    <span class="nhsuk-error-message" id="verification-note-error">
                        <span class="nhsuk-u-visually-hidden">"Error: "</span>
                        {message}
                    </span>
                })}
                <textarea
                    class=move || {
                        if note_error.with(Option::is_some) {
                            "nhsuk-textarea nhsuk-textarea--error"
                        } else {
                            "nhsuk-textarea"
                        }
                    }
                    id=NOTE
                    name=NOTE
                    rows="3"
                    aria-describedby=move || {
                        if note_error.with(Option::is_some) {
                            "verification-note-hint verification-note-error"
                        } else {
                            "verification-note-hint"
                        }
                    }
                    prop:value=move || note.get()
                    on:input=move |event| note.set(event_target_value(&event))
                ></textarea>
            </div>
            <button class="nhsuk-button" type="submit">"Issue an unlock code"</button>
        </form>
    }
}

#[component]
fn Emails(holder: Holder, profile: HolderProfile, may_change: bool) -> impl IntoView {
    let confirm = move || {
        holder.removing.get().map(|address| {
            let body = format!(
                "{address} will be taken off the profile. The holder will no longer be able to \
                 use it to unlock their card, and it will be told."
            );
            view! {
                <Confirm
                    title="Remove this address?".to_owned()
                    body=body
                    yes="Yes, remove it"
                    on_yes=Callback::new(move |()| holder.remove(address.clone()))
                    on_cancel=Callback::new(move |()| holder.removing.set(None))
                />
            }
        })
    };
    let mut columns = vec!["Address", "Can be used to unlock", "Added"];
    if may_change {
        columns.push("Action");
    }
    let rows = profile
        .emails
        .into_iter()
        .map(|email| {
            let (class, allowed) = if !email.domain_allowed {
                ("nhsuk-tag nhsuk-tag--grey", "No: domain not allowed")
            } else if email.awaiting_approval {
                ("nhsuk-tag nhsuk-tag--yellow", "Not yet: waiting for a second RA to approve it")
            } else {
                ("nhsuk-tag nhsuk-tag--green", "Yes")
            };
            let address = email.address.clone();
            let waiting = email.awaiting_approval;
            let action = may_change.then(|| {
                let about = address.clone();
                let to_approve = address.clone();
                let approve = waiting.then(|| view! {
                    <RowButton
                        label="Approve"
                        about=about.clone()
                        on_press=Callback::new(move |()| holder.approve(to_approve.clone()))
                    />
                });
                view! {
                    <td class="nhsuk-table__cell">
                        {approve}
                        <RowButton
                            label="Remove"
                            about=about
                            on_press=Callback::new(move |()| holder.removing.set(Some(address.clone())))
                        />
                    </td>
                }
            });
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">{email.address}</td>
                    <td class="nhsuk-table__cell"><Tag class=class text=allowed /></td>
                    <td class="nhsuk-table__cell">{format!("{} by {}", date(email.added_at), email.added_by)}</td>
                    {action}
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Email addresses and mobile numbers"</h2>
        {confirm}
        <table class="nhsuk-table">
            <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Email addresses and mobile numbers on the profile"</caption>
            {header_row(&columns)}
            <tbody class="nhsuk-table__body">{rows}</tbody>
        </table>
    }
}

#[component]
fn Cards(profile: HolderProfile) -> impl IntoView {
    if profile.cards.is_empty() {
        return view! { <h2>"Smartcards"</h2><p>"There is no smartcard on this profile."</p> }
            .into_any();
    }
    let rows = profile
        .cards
        .into_iter()
        .map(|card| {
            let (class, status) = card_status(card.status);
            let unlockable = if card.unlockable { "Yes" } else { "No" };
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">{card.serial.to_string()}</td>
                    <td class="nhsuk-table__cell"><Tag class=class text=status.to_owned() /></td>
                    <td class="nhsuk-table__cell">{card.model}</td>
                    <td class="nhsuk-table__cell">{date(card.cert_expires_at)}</td>
                    <td class="nhsuk-table__cell">{unlockable}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Smartcards"</h2>
        <table class="nhsuk-table">
            <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Smartcards on the profile"</caption>
            {header_row(&["Serial", "Status", "Model", "Certificates expire", "Can be unlocked here"])}
            <tbody class="nhsuk-table__body">{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Journeys(journeys: Vec<JourneyRecord>) -> impl IntoView {
    if journeys.is_empty() {
        return view! { <h2>"Recent journeys"</h2><p>"This holder has not used self-service yet."</p> }.into_any();
    }
    let items = journeys
        .into_iter()
        .map(|journey| {
            let steps = journey
                .steps
                .into_iter()
                .map(|step| {
                    view! {
                        <tr class="nhsuk-table__row">
                            <td class="nhsuk-table__cell">{date_time(step.at)}</td>
                            <td class="nhsuk-table__cell">{step.label}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <details class="nhsuk-details">
                    <summary class="nhsuk-details__summary">
                        <span class="nhsuk-details__summary-text">
                            {format!("{}: {}", date_time(journey.started_at), journey.summary)}
                        </span>
                    </summary>
                    <div class="nhsuk-details__text">
                        <p>{format!("Started with {} from {}.", journey.email, journey.client_addr)}</p>
                        <table class="nhsuk-table">
                            <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Steps of the journey"</caption>
                            {header_row(&["When", "Step"])}
                            <tbody class="nhsuk-table__body">{steps}</tbody>
                        </table>
                    </div>
                </details>
            }
        })
        .collect_view();
    view! {
        <h2>"Recent journeys"</h2>
        <p>"Newest first. Open one to see each step and where it stopped."</p>
        {items}
    }
    .into_any()
}

#[component]
fn Deliveries(profile: HolderProfile) -> impl IntoView {
    if profile.deliveries.is_empty() {
        return view! { <h2>"Emails sent"</h2><p>"No emails have been sent to this holder."</p> }
            .into_any();
    }
    let rows = profile
        .deliveries
        .into_iter()
        .map(|delivery| {
            let (class, state) = delivery_state(delivery.state);
            let when = delivery
                .finished_at
                .map_or_else(|| "Not yet".to_owned(), date_time);
            let error = delivery.last_error.unwrap_or_default();
            // A text message's delivery receipt, once the gateway sent one.
            let state = match delivery.receipt.as_deref() {
                Some(receipt) => format!("{state} ({receipt})"),
                None => state.to_owned(),
            };
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">{email_kind(&delivery.kind).to_owned()}</td>
                    <td class="nhsuk-table__cell">{delivery.recipient}</td>
                    <td class="nhsuk-table__cell"><Tag class=class text=state /></td>
                    <td class="nhsuk-table__cell">{delivery.attempts}</td>
                    <td class="nhsuk-table__cell">{date_time(delivery.queued_at)}</td>
                    <td class="nhsuk-table__cell">{when}</td>
                    <td class="nhsuk-table__cell">{error}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Emails sent"</h2>
        <div class="app-table-scroll" tabindex="0" role="region" aria-label="Emails sent, scrolls sideways">
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Emails sent to the holder, newest first"</caption>
                {header_row(&["Email", "To", "Delivery", "Attempts", "Queued", "Finished", "Last problem"])}
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn Throttles(holder: Holder, profile: HolderProfile) -> impl IntoView {
    let may_release = holder.session.may(Permission::ReleaseThrottles);
    if profile.throttles.is_empty() {
        return view! { <h2>"Throttles"</h2><p>"Nothing is counted against this holder or the computers they used."</p> }.into_any();
    }
    let own = profile.own_profile;
    let mut columns = vec!["What is counted", "Count", "Locked out until"];
    if may_release {
        columns.push("Action");
    }
    let rows = profile
        .throttles
        .into_iter()
        .map(|throttle| {
            let until = throttle
                .locked_until
                .map_or_else(|| "Not locked out".to_owned(), date_time);
            let releasable =
                may_release && !(own && matches!(throttle.target, ThrottleTarget::Holder(_)));
            let action = may_release.then(|| {
                let target = throttle.target.clone();
                let about = throttle.label.clone();
                let button = releasable.then(|| {
                    view! {
                        <RowButton
                            label="Release"
                            about=about
                            on_press=Callback::new(move |()| holder.release(target.clone()))
                        />
                    }
                });
                view! { <td class="nhsuk-table__cell">{button}</td> }
            });
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">{throttle.label}</td>
                    <td class="nhsuk-table__cell">{throttle.hits}</td>
                    <td class="nhsuk-table__cell">{until}</td>
                    {action}
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Throttles"</h2>
        <p>"Counts of attempts that lock the holder, or the computers they used, out for a while. Releasing clears the count and any lock-out at once."</p>
        <table class="nhsuk-table">
            <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Throttles"</caption>
            {header_row(&columns)}
            <tbody class="nhsuk-table__body">{rows}</tbody>
        </table>
    }
    .into_any()
}
