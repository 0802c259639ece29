//! The holder's whole journey, as a person would go through it, through every real part: the
//! built app served by the real `unlock-server` (fresh SQLite, mail through aiosmtpd),
//! headless Chromium driven by ChromeDriver with the real extension, the real bridge
//! registered by its own installer, a private pcscd and the virtual card (locked, no tries
//! left). Elements are found by their visible text and reached with the keyboard alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use unlock_e2e::journey::*;
use unlock_e2e::service::{Holder, Server};

/// Where cargo put this package's binaries, and the others' beside them.
fn binaries() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_virtual-card"))
        .parent()
        .expect("the target folder")
}

/// Where this test's screenshots go.
fn shots(test: &str) -> Option<PathBuf> {
    Some(artefacts(Path::new(env!("CARGO_TARGET_TMPDIR")), test))
}

/// The audit trail's actions, oldest first.
fn audit_actions(server: &Server) -> Vec<String> {
    let output = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             for (a,) in sqlite3.connect(sys.argv[1]).execute('SELECT action FROM audit_events ORDER BY id'): print(a)",
        ])
        .arg(server.database())
        .output()
        .expect("read the audit trail");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_unlocks_their_card_with_the_keyboard_alone() {
    let mut world = World::start(
        binaries(),
        SERIAL,
        &["--serial", SERIAL, "--passcode", "284759"],
    );
    let started = Instant::now();
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots: shots("happy-path"),
        screens: 0,
    };
    happy_path(&mut world, &mut person).await;
    let wall = started.elapsed();
    person.client.close().await.unwrap();
    println!("happy path wall time: {:.1} s", wall.as_secs_f64());

    // The card really is unlocked, with the new passcode and a full retry counter.
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );
    let state: Value = serde_json::from_str(&world.card.command("state")).unwrap();
    assert_eq!(state["pin_tries"], 3, "{state}");
    // Every address on the profile is told the unlock began (at the release), then that it
    // is done.
    for address in [EMAIL, SECOND_EMAIL] {
        let first = if address == EMAIL { 2 } else { 1 };
        let started = world.smtp.wait_for(address, first);
        assert!(
            started
                .subject
                .contains("unlock of your smartcard was started"),
            "{started:?}"
        );
        let notice = world.smtp.wait_for(address, first + 1);
        assert!(
            notice.subject.to_lowercase().contains("unlocked"),
            "{notice:?}"
        );
        assert!(!notice.text.contains(NEW_PASSCODE));
    }
    // The audit trail shows each step.
    let actions = audit_actions(&world.server);
    for step in [
        "journey.start",
        "journey.verify_code",
        "journey.present_card",
        "journey.cryptogram",
        "journey.receipt",
        "outbox.unlock_notice",
    ] {
        assert!(
            actions.iter().any(|action| action == step),
            "no {step} step in the audit trail: {actions:?}"
        );
    }
    let _ = (&world.pcscd, &world.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_unlocks_their_card_on_a_server_backed_by_postgresql() {
    let cluster = unlock_testkit::postgres::shared();
    let database = cluster.create_database();
    let holder = Holder {
        id: HOLDER_ID,
        name: "Jane Doe",
        emails: &[EMAIL, SECOND_EMAIL],
        card_serial: SERIAL,
        ..Holder::default()
    };
    let mut world = World::start_on(
        binaries(),
        Some(&database),
        &[holder],
        &["--serial", SERIAL, "--passcode", "284759"],
    );
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots: shots("postgresql"),
        screens: 0,
    };
    happy_path(&mut world, &mut person).await;
    person.client.close().await.unwrap();

    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );
    // The journey, its steps and its emails are in PostgreSQL.
    let closed = cluster
        .query(
            &database,
            "SELECT state || ' ' || closed_reason FROM journeys",
        )
        .unwrap();
    assert_eq!(closed, "closed unlocked");
    let steps = cluster
        .query(&database, "SELECT action FROM audit_events ORDER BY id")
        .unwrap();
    for step in ["journey.start", "journey.verify_code", "journey.receipt"] {
        assert!(steps.lines().any(|line| line == step), "{steps}");
    }
    // The notices are sent by the outbox worker: wait for the last ones to be recorded.
    let mut sent = String::new();
    for _ in 0..100 {
        sent = cluster
            .query(
                &database,
                "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
            )
            .unwrap();
        if sent == "5" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        sent, "5",
        "a code, and the unlock-started and unlocked notices to both addresses"
    );
    let _ = (&world.pcscd, &world.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_three_times_voids_it() {
    let mut world = World::start(binaries(), SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, shots("wrong-code")).await;
    person
        .types_into("Email address or mobile number", EMAIL)
        .await;
    person.presses("Continue").await;
    person.sees_page("Check your email").await;
    let code = world.smtp.wait_for(EMAIL, 1).code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let field = person
            .waits_for("//input[@autocomplete='one-time-code']")
            .await;
        field.clear().await.unwrap();
        person.types_into("Security code", wrong).await;
        person.presses("Continue").await;
    }
    person
        .sees_text("You entered the wrong code 3 times, so it no longer works.")
        .await;
    person.checks_screen("code voided").await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_on_a_domain_not_allowed_is_refused_plainly() {
    let mut world = World::start(binaries(), SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, shots("domain-not-allowed")).await;
    person
        .sees_text("Addresses ending in @trust.example can be used.")
        .await;
    person
        .types_into("Email address or mobile number", "jane@elsewhere.example")
        .await;
    person.presses("Continue").await;
    person.sees_text("This email domain can't be used.").await;
    person.checks_screen("domain not allowed").await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_not_on_the_profile_is_refused_with_what_to_do() {
    // The profile has another card; the one in the reader is not the holder's.
    let mut world = World::start(binaries(), OTHER_SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, shots("card-not-on-profile")).await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text("This card is not the one on your profile.")
        .await;
    person.checks_screen("card not on profile").await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_pulled_during_the_unblock_is_checked_when_put_back_and_the_page_says_whether_it_was_unlocked()
 {
    let mut world = World::start(binaries(), SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, shots("card-pulled")).await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person.sees_page("Choose a new passcode").await;
    person.types_into("New passcode", NEW_PASSCODE).await;
    person
        .types_into("Confirm new passcode", NEW_PASSCODE)
        .await;
    // The card leaves the reader as RESET RETRY COUNTER reaches it: never unblocked.
    assert_eq!(world.card.command("pull-on 2C"), "ok");
    person.presses("Unlock my card").await;
    person
        .sees_text("Your card was removed while we were setting your new passcode.")
        .await;
    person
        .sees_text("Put your smartcard back in the reader.")
        .await;
    person.checks_screen("card removed while unlocking").await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text("Your card has not been changed. It is still locked.")
        .await;
    person.checks_screen("card back, not changed").await;
    assert_eq!(world.card.state()["pin_tries"], 0, "the check spent no try");

    // This time it leaves once RESET RETRY COUNTER is done, its answer (the receipt) lost.
    assert_eq!(world.card.command("pull-after-on 2C"), "ok");
    person.presses("Try again").await;
    person
        .sees_text("Your card was removed while we were setting your new passcode.")
        .await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text("Your card was unlocked, and your new passcode is set on it.")
        .await;
    person.checks_screen("card back, unlocked").await;
    person.presses("Finish").await;
    person.sees_page("Your card is unlocked").await;
    person.client.close().await.unwrap();
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extension_the_holder_is_shown_how_to_install_it() {
    let world = World::start(binaries(), SERIAL, &["--serial", SERIAL]);
    let client = world.browser(false).await;
    let mut person = Person {
        client,
        shots: shots("no-extension"),
        screens: 0,
    };
    person.client.goto(&world.server.url).await.unwrap();
    person
        .sees_page("Install the smartcard unlock browser extension")
        .await;
    sees_checks(
        &mut person,
        "no extension, checked",
        &[("Browser extension", "Not found in this browser")],
    )
    .await;
    person.client.close().await.unwrap();
}

/// The help page's "What this page can see": the parts the page reached, as `seen`, and
/// nothing more; and where to look further.
async fn sees_checks(person: &mut Person, what: &str, seen: &[(&str, &str)]) {
    for (key, value) in seen {
        person
            .waits_for(&format!(
                "//dt[normalize-space()={key:?}]/following-sibling::dd[normalize-space()={value:?}]"
            ))
            .await;
    }
    person
        .sees_text("run unlock-bridge diagnose on this computer")
        .await;
    let rows = person
        .client
        .find_all(fantoccini::Locator::XPath("//dl/div/dt"))
        .await
        .unwrap();
    assert_eq!(rows.len(), seen.len(), "only the parts the page reached");
    person.checks_screen(what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_helper_program_the_help_page_shows_the_extension_found_and_the_helper_not() {
    let world = World::start(binaries(), SERIAL, &["--serial", SERIAL]);
    // As if the helper program was never installed: the browser finds no registration.
    std::fs::remove_file(
        world
            .profile
            .join("NativeMessagingHosts/uk.nhs.smartcard_unlock.json"),
    )
    .unwrap();
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots: shots("no-helper"),
        screens: 0,
    };
    person.client.goto(&world.server.url).await.unwrap();
    person
        .sees_page("Install the smartcard unlock helper program")
        .await;
    sees_checks(
        &mut person,
        "no helper, checked",
        &[
            ("Browser extension", "Found (version 0.1.0)"),
            ("Helper program", "Not found on this computer"),
        ],
    )
    .await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_card_service_the_help_page_shows_the_helper_working_and_the_service_off() {
    let mut world = World::start(binaries(), SERIAL, &["--serial", SERIAL]);
    world.pcscd.stop();
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots: shots("no-card-service"),
        screens: 0,
    };
    person.client.goto(&world.server.url).await.unwrap();
    person.sees_page("Connect your card reader").await;
    sees_checks(
        &mut person,
        "no card service, checked",
        &[
            ("Browser extension", "Found (version 0.1.0)"),
            (
                "Helper program",
                &format!("Working (version {})", env!("CARGO_PKG_VERSION")),
            ),
            (
                "Card reader",
                "The computer's smart card service is not running",
            ),
        ],
    )
    .await;
    person.client.close().await.unwrap();
}
