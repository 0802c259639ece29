//! `/help/reader`: no card reader was found, or the computer's smart card service is off.

use leptos::prelude::*;

use crate::components::{CheckAgain, ContactRa, Heading, PageChecks, use_resume};

#[component]
pub fn HelpReaderPage() -> impl IntoView {
    let then = use_resume();
    view! {
        <Heading title="Connect your card reader" />
        <p>"We could not find a card reader connected to this computer."</p>
        <ol class="nhsuk-list nhsuk-list--number">
            <li>"Plug your card reader into this computer and wait a few seconds."</li>
            <li>
                "If it is already plugged in, unplug it and plug it in again, or try a different USB port."
            </li>
            <li>"If it is still not found, restart your computer."</li>
            <li>"Then select Check again."</li>
        </ol>
        <CheckAgain then=then />
        <PageChecks />
        <ContactRa />
    }
}
