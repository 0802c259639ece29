//! `/done`, step 6: the card is unlocked.

use leptos::prelude::*;
use unlock_protocol::api::JourneyView;

use super::{PageScope, end_or_show, journey_view};
use crate::components::{ErrorItem, ErrorSummary, Heading};
use crate::route::Page;
use crate::session::use_session;

#[component]
pub fn DonePage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_session();
    let unlocked = RwSignal::new(false);
    let errors = RwSignal::new(Vec::<ErrorItem>::new());

    scope.spawn(async move {
        match journey_view(session).await {
            Ok(JourneyView::Unlocked { .. }) => {
                session.forget_all();
                unlocked.set(true);
            }
            Ok(other) => scope.replace(Page::for_view(&other)),
            Err(failure) => {
                if let Some(failure) = end_or_show(scope, failure) {
                    errors.set(vec![ErrorItem::general(failure.message)]);
                }
            }
        }
    });

    view! {
        <ErrorSummary errors=errors />
        <Show when=move || unlocked.get()>
            <Heading step=6 title="Your card is unlocked" />
            <p class="nhsuk-body-l">"Log in with your new passcode."</p>
            <p>"Your card is ready to use. You can leave it in the reader."</p>
            <p>
                "We have sent an email to the addresses on your smartcard profile to say that your card was unlocked."
            </p>
            <p>
                "If you did not unlock your card yourself, contact your Registration Authority straight away."
            </p>
        </Show>
    }
}
