//! The service's pages, as two Leptos single-page apps compiled to WASM by Trunk, each its
//! own binary so each page downloads only its own code:
//!
//! - the holder's app (`unlock-frontend`, served at `/`) walks a smartcard holder through
//!   unlocking their card. It talks to the server over `fetch` (`api`) and to the card
//!   reader through the browser extension (`bridge`);
//! - the staff app (`unlock-staff`, served at `/status`) is the status view and the
//!   Registration Authority's tools, behind a password and authenticator sign-in (`staff`).

mod api;
mod app;
mod bridge;
mod components;
mod countdown;
mod pages;
mod route;
mod session;
mod staff;
mod wire;

/// Starts the holder's app.
pub fn mount_holder() {
    leptos::mount::mount_to_body(app::App);
}

/// Starts the staff app.
pub fn mount_staff() {
    leptos::mount::mount_to_body(staff::StaffApp);
}
