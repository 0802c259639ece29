//! Any path the app does not know.

use leptos::prelude::*;

use crate::components::NotFound;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! { <NotFound home="/" home_label="Go to the start of the smartcard unlock service" /> }
}
