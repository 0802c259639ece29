//! `cargo xtask run`: the service on its embedded defaults, for a newcomer.

use crate::{cmd, frontend};

/// Builds the app, then builds and runs `unlock-server serve --demo` from the root, so its
/// data goes to ./var/ and it serves the app from frontend/dist.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    println!(
        "Building the app and the smartcard unlock service (the first time installs Trunk and \
         wasm-bindgen-cli and takes about 15 minutes)."
    );
    frontend::ensure_tools()?;
    frontend::build()?;
    println!("  open      http://127.0.0.1:8080");
    println!(
        "  email     {} (the demo holder)",
        unlock_server::demo::DEMO_EMAIL
    );
    println!("  emails    land as .eml files in ./var/mail/ (no SMTP relay is configured)");
    println!("  data      ./var/ (delete it to start afresh); stop with Ctrl-C");
    let mut command = cmd::cargo();
    command
        .args([
            "run",
            "--release",
            "-p",
            "unlock-server",
            "--",
            "serve",
            "--demo",
        ])
        .args(extra);
    cmd::run(&mut command)
}
