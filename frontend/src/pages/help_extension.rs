//! `/help/extension`: the browser extension did not answer.

use leptos::prelude::*;

use crate::components::{CheckAgain, ContactRa, Heading, page_checks, use_resume};

#[component]
pub fn HelpExtensionPage() -> impl IntoView {
    let then = use_resume();
    view! {
        <Heading title="Install the smartcard unlock browser extension" />
        <p>
            "This service uses a small browser extension to talk to your card reader. We could not find it in this browser."
        </p>
        <ol class="nhsuk-list nhsuk-list--number">
            <li>
                "Use Google Chrome or Microsoft Edge. If you are using another browser, open this page in one of those."
            </li>
            <li>
                "Install the \u{201c}Smartcard unlock\u{201d} extension from the link your organisation gave you, or ask your IT service desk to install it."
            </li>
            <li>
                "If it is already installed, open your browser's extensions settings and check it is switched on."
            </li>
            <li>"Then select Check again."</li>
        </ol>
        <CheckAgain then=then />
        {page_checks(Some("Not found in this browser".to_owned()), None, None)}
        <ContactRa />
    }
}
