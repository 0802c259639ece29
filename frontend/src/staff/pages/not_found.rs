//! Any staff path the app does not know.

use leptos::prelude::*;

use crate::components::NotFound;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! { <NotFound home="/status" home_label="Go to the overview" /> }
}
