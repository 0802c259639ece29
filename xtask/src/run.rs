//! `cargo xtask run`: the service on its embedded defaults, for a newcomer.

use crate::cmd;

/// Builds and runs `unlock-server serve --demo` from the root, so its data goes to ./var/.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    println!(
        "Starting the smartcard unlock service (release build; the first build takes a few minutes)."
    );
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
