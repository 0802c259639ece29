//! The staff app at `/status`: the status view and the Registration Authority's tools,
//! behind a sign-in with a password and a code from an authenticator app. The server checks
//! every role on every request; the page only offers what the role may do.

mod api;
mod chart;
mod format;
mod pages;
mod route;

use leptos::prelude::*;
use leptos_router::components::{FlatRoutes, Route, Router};
use leptos_router::hooks::use_location;
use leptos_router::path;
use unlock_protocol::staff::{Me, Permission, StaffUsername};

use crate::api::ApiFailure;
use crate::components::SkipLink;
use crate::pages::PageScope;
use pages::{
    AllowListPage, AuditPage, ChangePasswordPage, CodePage, HolderPage, HoldersPage,
    NewPasswordPage, NotFoundPage, OverviewPage, ReportsPage, SignInPage,
};
pub use route::StaffPage;

/// Who is signed in, shared through the context.
#[derive(Debug, Clone, Copy)]
pub struct StaffSession {
    /// `None` until the server has answered; then who is signed in, if anyone.
    pub me: RwSignal<Option<Option<Me>>>,
    /// The username typed at sign-in, for the new-password rules.
    pub username: RwSignal<Option<StaffUsername>>,
    /// Why the staff member is asked to sign in, shown on the sign-in page.
    pub notice: RwSignal<Option<String>>,
}

/// The session shared through the context.
pub fn use_staff() -> StaffSession {
    expect_context()
}

impl StaffSession {
    fn new() -> Self {
        Self {
            me: RwSignal::new(None),
            username: RwSignal::new(None),
            notice: RwSignal::new(None),
        }
    }

    /// The server says who is signed in; times are shown in the service's zone from now on.
    pub fn signed_in_as(&self, me: Me) {
        format::set_time_zone(me.time_zone.clone());
        self.me.set(Some(Some(me)));
    }

    /// Who is signed in now (tracked).
    pub fn signed_in(&self) -> Option<Me> {
        self.me.get().flatten()
    }

    /// Whether the signed-in staff member's role may do `permission` (tracked).
    pub fn may(&self, permission: Permission) -> bool {
        self.me.with(|me| {
            me.as_ref()
                .and_then(Option::as_ref)
                .is_some_and(|me| me.role.may(permission))
        })
    }

    /// The server no longer knows the session: the page forgets it and asks for sign-in.
    pub fn signed_out(&self, why: Option<String>) {
        self.notice.set(why);
        self.me.set(Some(None));
    }

    /// The sentence to show for a failed call, or `None` when it signed the page out.
    pub fn problem(&self, failure: ApiFailure) -> Option<String> {
        if api::needs_sign_in(&failure) {
            self.signed_out(Some(failure.message));
            None
        } else {
            Some(failure.message)
        }
    }
}

#[component]
pub fn StaffApp() -> impl IntoView {
    let session = StaffSession::new();
    provide_context(session);
    // A reload knows nothing but the cookie: ask who is signed in.
    leptos::task::spawn_local(async move {
        match api::get::<Me>("/api/staff/me").await {
            Ok(me) => session.signed_in_as(me),
            Err(_) => session.me.set(Some(None)),
        }
    });
    view! {
        <Router>
            <SkipLink />
            <Header />
            <div class="nhsuk-width-container">
                <main class="nhsuk-main-wrapper" id="maincontent" role="main" tabindex="-1">
                    <FlatRoutes fallback=NotFoundPage>
                        <Route path=path!("/status") view=|| signed_in(OverviewPage) />
                        <Route path=path!("/status/sign-in") view=SignInPage />
                        <Route path=path!("/status/sign-in/code") view=CodePage />
                        <Route path=path!("/status/sign-in/new-password") view=NewPasswordPage />
                        <Route path=path!("/status/password") view=|| signed_in(ChangePasswordPage) />
                        <Route path=path!("/status/holders") view=|| signed_in(HoldersPage) />
                        <Route path=path!("/status/holders/:id") view=|| signed_in(HolderPage) />
                        <Route path=path!("/status/allowlist") view=|| signed_in(AllowListPage) />
                        <Route path=path!("/status/reports") view=|| signed_in(ReportsPage) />
                        <Route path=path!("/status/audit") view=|| signed_in(AuditPage) />
                    </FlatRoutes>
                </main>
            </div>
        </Router>
    }
}

/// `page`, once the server has confirmed someone is signed in; otherwise the sign-in page.
fn signed_in<V: IntoView + 'static>(page: fn() -> V) -> impl IntoView {
    let session = use_staff();
    let scope = PageScope::new();
    Effect::new(move |_| {
        if session.me.get() == Some(None) {
            scope.navigate(&StaffPage::SignIn.path(), true);
        }
    });
    view! {
        <Show
            when=move || session.signed_in().is_some()
            fallback=|| view! { <p>"Loading…"</p> }
        >
            {page()}
        </Show>
    }
}

/// The header: the service name, who is signed in with "Sign out", and the menu of what the
/// role may use.
#[component]
fn Header() -> impl IntoView {
    let session = use_staff();
    let scope = PageScope::new();
    let sign_out = move |_| {
        scope.spawn(async move {
            // Signed out in the page either way; the server forgets the session if it can.
            let _ = api::post_for_nothing("/api/staff/sign-out").await;
            session.signed_out(Some("You have signed out.".into()));
        });
    };
    let account = move || {
        session.signed_in().map(|me| {
            view! {
                <nav class="nhsuk-header__account" aria-label="Account">
                    <ul class="nhsuk-header__account-list">
                        <li class="nhsuk-header__account-item">
                            {format!("{} ({})", me.username, me.role.label())}
                        </li>
                        <li class="nhsuk-header__account-item">
                            <a class="nhsuk-header__account-link" href=StaffPage::ChangePassword.path()>"Change password"</a>
                        </li>
                        <li class="nhsuk-header__account-item">
                            <button class="nhsuk-header__account-button" type="button" on:click=sign_out>
                                "Sign out"
                            </button>
                        </li>
                    </ul>
                </nav>
            }
        })
    };
    let menu = move || {
        session.signed_in().map(|me| {
            let items: Vec<(StaffPage, &str)> = [
                (StaffPage::Overview, "Overview"),
                (StaffPage::Holders, "Find a holder"),
                (StaffPage::AllowList, "Email domains"),
                (StaffPage::Reports, "Reports"),
                (StaffPage::Audit, "Audit log"),
            ]
            .into_iter()
            .filter(|(page, _)| page.permission().is_none_or(|needed| me.role.may(needed)))
            .collect();
            view! {
                <nav class="nhsuk-header__navigation" aria-label="Menu">
                    <div class="nhsuk-header__navigation-container nhsuk-width-container">
                        <ul class="nhsuk-header__navigation-list">
                            {items.into_iter().map(|(page, label)| view! { <MenuItem page=page label=label /> }).collect_view()}
                        </ul>
                    </div>
                </nav>
            }
        })
    };
    view! {
        <header class="nhsuk-header" role="banner">
            <div class="nhsuk-header__container nhsuk-width-container">
                <div class="nhsuk-header__service">
                    <a class="nhsuk-header__service-name" href="/status">
                        "Smartcard unlock: staff"
                    </a>
                </div>
                {account}
            </div>
            {menu}
        </header>
    }
}

#[component]
fn MenuItem(page: StaffPage, label: &'static str) -> impl IntoView {
    let location = use_location();
    let href = page.path();
    let here = move || page.contains(&location.pathname.get()).then_some("page");
    view! {
        <li class="nhsuk-header__navigation-item">
            <a class="nhsuk-header__navigation-link" href=href aria-current=here>
                {label}
            </a>
        </li>
    }
}
