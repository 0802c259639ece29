//! `/help/reader`: no card reader was found, or the computer's smart card service is off.

use leptos::prelude::*;

use crate::components::{CheckAgain, ContactRa, Heading, found, page_checks, use_resume};

#[component]
pub fn HelpReaderPage() -> impl IntoView {
    let then = use_resume();
    let (extension, host, service_off) = crate::bridge::use_bridge().seen();
    let reader = if service_off {
        "The computer's smart card service is not running"
    } else {
        "None found"
    };
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
        {page_checks(
            found(extension.filter(|_| host.is_some())),
            host.map(|host| format!("Working (version {host})")),
            Some(reader.to_owned()),
        )}
        <ContactRa />
    }
}
