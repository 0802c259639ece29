//! One module per page, and what the pages share: a handle for their background work and
//! navigation, and the look-up of where the journey stands.

mod card;
mod code;
mod done;
mod email;
mod end;
mod help_extension;
mod help_helper;
mod help_reader;
mod not_found;
mod passcode;
mod start;
mod working;

use std::future::Future;

use leptos::prelude::*;
use leptos::task::spawn_local_scoped_with_cancellation;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;
use unlock_protocol::api::JourneyView;

pub use card::CardPage;
pub use code::CodePage;
pub use done::DonePage;
pub use email::{EmailPage, RaCodePage};
pub use end::EndPage;
pub use help_extension::HelpExtensionPage;
pub use help_helper::HelpHelperPage;
pub use help_reader::HelpReaderPage;
pub use not_found::NotFoundPage;
pub use passcode::PasscodePage;
pub use start::StartPage;
pub use working::WorkingPage;

use crate::api::{self, ApiFailure};
use crate::route::Page;
use crate::session::Session;

/// A page's handle for work that must stop when the holder leaves the page, and for moving
/// on; `Copy`, so event handlers and tasks can hold it.
#[derive(Debug, Clone, Copy)]
pub struct PageScope(StoredValue<Owner>);

impl PageScope {
    /// The scope of the page being built; call in the page component's body.
    pub fn new() -> Self {
        Self(StoredValue::new(Owner::current().unwrap_or_default()))
    }

    /// Runs `task` until it finishes or the page goes away.
    pub fn spawn(self, task: impl Future<Output = ()> + 'static) {
        if let Some(owner) = self.0.try_get_value() {
            owner.with(|| spawn_local_scoped_with_cancellation(task));
        }
    }

    /// Moves on to the next page; Back comes back here.
    pub fn go(self, page: Page) {
        self.navigate(&page.path(), false);
    }

    /// Moves to `page` in place of this one, for redirects and steps that cannot be redone.
    pub fn replace(self, page: Page) {
        self.navigate(&page.path(), true);
    }

    /// Moves to the app's `path`; with `replace`, in place of this page.
    pub fn navigate(self, path: &str, replace: bool) {
        if let Some(owner) = self.0.try_get_value() {
            owner.with(|| {
                use_navigate()(
                    path,
                    NavigateOptions {
                        replace,
                        ..Default::default()
                    },
                );
            });
        }
    }
}

/// Where the journey stands: what the server last said on this page load, else asks it
/// (after a reload the page knows nothing but the cookie).
pub async fn journey_view(session: Session) -> Result<JourneyView, ApiFailure> {
    if let Some(view) = session.view.get_untracked() {
        return Ok(view);
    }
    let view = api::journey().await?;
    session.view.set(Some(view.clone()));
    Ok(view)
}

/// Sends the holder to the end page for `failure` if it ends the journey; otherwise hands
/// the failure back for the page to show.
pub fn end_or_show(scope: PageScope, failure: ApiFailure) -> Option<ApiFailure> {
    match failure.end_reason() {
        Some(reason) => {
            scope.replace(Page::End(reason));
            None
        }
        None => Some(failure),
    }
}
