//! Pieces every page uses, in the NHS.UK frontend's markup: heading with step, back link,
//! error summary, text field.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use wasm_bindgen::JsCast;

use crate::route::Resume;

/// Steps in the holder's journey, for "Step N of 6".
const STEPS: u8 = 6;

/// One line of the error summary: the sentence, and the field it is about, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorItem {
    pub message: String,
    pub field: Option<&'static str>,
}

impl ErrorItem {
    /// A problem with the field whose id is `field`; the summary links to it.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field),
        }
    }

    /// A problem with no field to fix.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }
}

/// The page's h1, the step caption above it, and the document title.
#[component]
pub fn Heading(
    #[prop(into)] title: String,
    /// The step of the journey, 1 to 6.
    #[prop(optional)]
    step: Option<u8>,
) -> impl IntoView {
    document().set_title(&format!("{title} – Smartcard unlock"));
    view! {
        {step.map(|n| view! { <span class="nhsuk-caption-l">{format!("Step {n} of {STEPS}")}</span> })}
        <h1>{title}</h1>
    }
}

/// A link back to the previous step.
#[component]
pub fn BackLink(href: &'static str) -> impl IntoView {
    view! { <a class="nhsuk-back-link" href=href>"Back"</a> }
}

/// The error summary at the top of the page. It takes the focus whenever it shows new
/// errors, so screen readers announce them and keyboard users start from it.
#[component]
pub fn ErrorSummary(#[prop(into)] errors: Signal<Vec<ErrorItem>>) -> impl IntoView {
    let summary = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        let has_errors = errors.with(|list| !list.is_empty());
        if let (true, Some(element)) = (has_errors, summary.get()) {
            let _ = element.focus();
        }
    });
    view! {
        <Show when=move || errors.with(|list| !list.is_empty())>
            <div
                class="nhsuk-error-summary"
                tabindex="-1"
                node_ref=summary
            >
                <div role="alert">
                    <h2 class="nhsuk-error-summary__heading">
                        "There is a problem"
                    </h2>
                    <div class="nhsuk-error-summary__body">
                        <ul class="nhsuk-list nhsuk-error-summary__list">
                            {move || errors.get().into_iter().map(summary_line).collect_view()}
                        </ul>
                    </div>
                </div>
            </div>
        </Show>
    }
}

fn summary_line(item: ErrorItem) -> impl IntoView {
    match item.field {
        Some(field) => view! {
            <li>
                <a
                    href=format!("#{field}")
                    on:click=move |event| {
                        event.prevent_default();
                        focus_element(field);
                    }
                >
                    {item.message}
                </a>
            </li>
        }
        .into_any(),
        None => view! { <li>{item.message}</li> }.into_any(),
    }
}

/// Moves the focus to the element with this id and scrolls it into view.
pub fn focus_element(id: &str) {
    let element = document()
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(element) = element {
        element.scroll_into_view();
        let _ = element.focus();
    }
}

/// A labelled text input with its hint and inline error, as the NHS.UK frontend lays it out.
#[component]
pub fn TextField(
    /// The input's id and name; the error summary links here.
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(default = "text")] input_type: &'static str,
    autocomplete: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    /// An `nhsuk-input--width-*` class, for inputs whose answer has a known length.
    #[prop(optional)]
    width: Option<&'static str>,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = {
        let hint_id = hint.map(|_| hint_id.clone());
        let error_id = error_id.clone();
        move || {
            let ids: Vec<String> = hint_id
                .iter()
                .cloned()
                .chain(error.with(Option::is_some).then(|| error_id.clone()))
                .collect();
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    let group_class = move || {
        if error.with(Option::is_some) {
            "nhsuk-form-group nhsuk-form-group--error"
        } else {
            "nhsuk-form-group"
        }
    };
    let input_class = move || {
        let mut class = String::from("nhsuk-input");
        if let Some(width) = width {
            class.push(' ');
            class.push_str(width);
        }
        if error.with(Option::is_some) {
            class.push_str(" nhsuk-input--error");
        }
        class
    };
    view! {
        <div class=group_class>
            <label class="nhsuk-label" for=id>
                {label}
            </label>
            {hint.map(|hint| view! { <div class="nhsuk-hint" id=hint_id>{hint}</div> })}
            {move || {
                error
                    .get()
                    .map(|message| {
                        view! {
                            <span class="nhsuk-error-message" id=error_id.clone()>
                                <span class="nhsuk-u-visually-hidden">"Error: "</span>
                                {message}
                            </span>
                        }
                    })
            }}
            <input
                class=input_class
                id=id
                name=id
                type=input_type
                autocomplete=autocomplete
                inputmode=inputmode
                spellcheck="false"
                aria-describedby=described_by
                prop:value=move || value.get()
                on:input=move |event| value.set(event_target_value(&event))
            />
        </div>
    }
}

/// The first thing on every page: a link past the header for keyboard and screen reader users.
#[component]
pub fn SkipLink() -> impl IntoView {
    view! {
        <a
            class="nhsuk-skip-link"
            href="#maincontent"
            on:click=|event| {
                event.prevent_default();
                focus_element("maincontent");
            }
        >
            "Skip to main content"
        </a>
    }
}

/// A path the app does not know, with the way back to where its pages start.
#[component]
pub fn NotFound(home: &'static str, home_label: &'static str) -> impl IntoView {
    view! {
        <Heading title="Page not found" />
        <p>"If you typed the web address, check it is correct."</p>
        <p>
            <a href=home>{home_label}</a>
        </p>
    }
}

/// "contact your Registration Authority", the way out on every page that can go wrong.
#[component]
pub fn ContactRa() -> impl IntoView {
    view! {
        <p>
            "If you cannot fix this, contact your Registration Authority. They can unlock your card in person."
        </p>
    }
}

/// "Check again" on a help page: a full reload of the page the holder came from, so a newly
/// installed extension or helper program is picked up.
#[component]
pub fn CheckAgain(then: Resume) -> impl IntoView {
    view! {
        <a class="nhsuk-button" href=then.page().path() rel="external">
            "Check again"
        </a>
    }
}

/// The page a help page's "Check again" returns to, from its `then` query.
pub fn use_resume() -> Resume {
    let query = use_query_map();
    query.with_untracked(|q| Resume::from_query(q.get("then").as_deref()))
}

/// On a help page: what the page saw of the extension, the helper program and the card
/// reader on the way here (nothing after a reload, when it has not looked), and where to look
/// further: `unlock-bridge diagnose` sees the rest.
///
/// A plain function rather than a component: the props builder would cost the holder's
/// download more than the lines themselves.
pub fn page_checks(
    extension: Option<String>,
    helper: Option<String>,
    reader: Option<String>,
) -> impl IntoView {
    let row = |key: &'static str, value: Option<String>| {
        value.map(|value| {
            view! {
                <div class="nhsuk-summary-list__row">
                    <dt class="nhsuk-summary-list__key">{key}</dt>
                    <dd class="nhsuk-summary-list__value">{value}</dd>
                </div>
            }
        })
    };
    let seen = extension.is_some();
    view! {
        {seen
            .then(|| {
                view! {
                    <h2 class="nhsuk-heading-m">"What this page can see"</h2>
                    <dl class="nhsuk-summary-list">
                        {row("Browser extension", extension)}
                        {row("Helper program", helper)}
                        {row("Card reader", reader)}
                    </dl>
                }
            })}
        <p>
            "If this does not help, ask your IT service desk to run "
            <code>"unlock-bridge diagnose"</code>
            " on this computer, or run it yourself in a terminal or command prompt. It checks the parts this page cannot see and says how to fix each problem."
        </p>
    }
}

/// "Found (version …)" for the extension, when it answered.
pub fn found(version: Option<String>) -> Option<String> {
    version.map(|version| format!("Found (version {version})"))
}
