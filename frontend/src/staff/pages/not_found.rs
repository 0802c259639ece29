//! Any staff path the app does not know.

use leptos::prelude::*;

use crate::components::Heading;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! {
        <Heading title="Page not found" />
        <p>"If you typed the web address, check it is correct."</p>
        <p>
            <a href="/status">"Go to the overview"</a>
        </p>
    }
}
