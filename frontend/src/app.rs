//! The app shell: header, main column, and the routes.

use leptos::prelude::*;

use crate::bridge::Bridge;
use crate::components::focus_element;
use crate::pages::{
    CardPage, CodePage, DonePage, EmailPage, EndPage, HelpExtensionPage, HelpHelperPage,
    HelpReaderPage, NotFoundPage, PasscodePage, StartPage, WorkingPage,
};
use crate::router::Router;
use crate::session::Session;

#[component]
pub fn App() -> impl IntoView {
    provide_context(Session::new());
    provide_context(Bridge::install());
    let router = Router::install();
    provide_context(router);
    // Only a new path changes the page; the help pages read their query once.
    let path = Memo::new(move |_| router.location.with(|location| location.path.clone()));
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
            <header class="nhsuk-header" role="banner">
                <div class="nhsuk-header__container nhsuk-width-container">
                    <div class="nhsuk-header__service">
                        <a class="nhsuk-header__service-name" href="/">
                            "Smartcard unlock"
                        </a>
                    </div>
                </div>
            </header>
            <div class="nhsuk-width-container">
                <main class="nhsuk-main-wrapper" id="maincontent" role="main" tabindex="-1">
                    <div class="nhsuk-grid-row">
                        <div class="nhsuk-grid-column-two-thirds">
                            {move || path.with(|path| page_at(path))}
                        </div>
                    </div>
                </main>
            </div>
    }
}

/// The page at `path`.
fn page_at(path: &str) -> AnyView {
    match path {
        "/" => view! { <StartPage /> }.into_any(),
        "/email" => view! { <EmailPage /> }.into_any(),
        "/code" => view! { <CodePage /> }.into_any(),
        "/card" => view! { <CardPage /> }.into_any(),
        "/passcode" => view! { <PasscodePage /> }.into_any(),
        "/working" => view! { <WorkingPage /> }.into_any(),
        "/done" => view! { <DonePage /> }.into_any(),
        "/help/extension" => view! { <HelpExtensionPage /> }.into_any(),
        "/help/helper" => view! { <HelpHelperPage /> }.into_any(),
        "/help/reader" => view! { <HelpReaderPage /> }.into_any(),
        _ => match path.strip_prefix("/end/") {
            Some(reason) if !reason.is_empty() && !reason.contains('/') => {
                let reason = reason.to_owned();
                view! { <EndPage reason=reason /> }.into_any()
            }
            _ => view! { <NotFoundPage /> }.into_any(),
        },
    }
}
