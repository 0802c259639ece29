//! The holder's page: a Leptos single-page app, compiled to WASM by Trunk, that walks a
//! smartcard holder through unlocking their card. It talks to the server over `fetch`
//! (`api`) and to the card reader through the browser extension (`bridge`).

mod api;
mod app;
mod bridge;
mod components;
mod countdown;
mod pages;
mod route;
mod session;
mod wire;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
