//! `/help/helper`: the helper program the extension talks to is missing or too old.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::{CheckAgain, ContactRa, Heading, found, page_checks, use_resume};

#[component]
pub fn HelpHelperPage() -> impl IntoView {
    let then = use_resume();
    let outdated = use_query_map().with_untracked(|q| q.get("outdated").is_some());
    let (extension, _, _) = crate::bridge::use_bridge().seen();
    let helper = if outdated {
        "Too old for this service"
    } else {
        "Not found on this computer"
    };
    let (title, why) = if outdated {
        (
            "Update the smartcard unlock helper program",
            "The smartcard unlock helper program on this computer is an older version that does not work with this service.",
        )
    } else {
        (
            "Install the smartcard unlock helper program",
            "This service needs the smartcard unlock helper program on this computer to reach your card reader. We could not find it.",
        )
    };
    view! {
        <Heading title=title />
        <p>{why}</p>
        <ol class="nhsuk-list nhsuk-list--number">
            <li>
                "Install the latest smartcard unlock helper program from the link your organisation gave you, or ask your IT service desk to install it for you."
            </li>
            <li>"Close your browser and open it again, then come back to this page."</li>
            <li>"Select Check again."</li>
        </ol>
        <CheckAgain then=then />
        {page_checks(found(extension), Some(helper.to_owned()), None)}
        <ContactRa />
    }
}
