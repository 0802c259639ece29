//! The app shell: header, main column, and the routes.

use leptos::prelude::*;
use leptos_router::components::{FlatRoutes, Route, Router};
use leptos_router::path;

use crate::bridge::Bridge;
use crate::components::SkipLink;
use crate::pages::{
    CardPage, CodePage, DonePage, EmailPage, EndPage, HelpExtensionPage, HelpHelperPage,
    HelpReaderPage, NotFoundPage, PasscodePage, RaCodePage, StartPage, WorkingPage,
};
use crate::session::Session;

#[component]
pub fn App() -> impl IntoView {
    provide_context(Session::new());
    provide_context(Bridge::install());
    view! {
        <Router>
            <SkipLink />
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
                            <FlatRoutes fallback=NotFoundPage>
                                <Route path=path!("/") view=StartPage />
                                <Route path=path!("/email") view=EmailPage />
                                <Route path=path!("/code") view=CodePage />
                                <Route path=path!("/ra-code") view=RaCodePage />
                                <Route path=path!("/card") view=CardPage />
                                <Route path=path!("/passcode") view=PasscodePage />
                                <Route path=path!("/working") view=WorkingPage />
                                <Route path=path!("/done") view=DonePage />
                                <Route path=path!("/help/extension") view=HelpExtensionPage />
                                <Route path=path!("/help/helper") view=HelpHelperPage />
                                <Route path=path!("/help/reader") view=HelpReaderPage />
                                <Route path=path!("/end/:reason") view=EndPage />
                            </FlatRoutes>
                        </div>
                    </div>
                </main>
            </div>
        </Router>
    }
}
