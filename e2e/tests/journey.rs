//! The holder's whole journey, as a person would go through it, through every real part: the
//! built app served by the real `unlock-server` (fresh SQLite, mail through aiosmtpd),
//! headless Chromium driven by ChromeDriver with the real extension, the real bridge
//! registered by its own installer, a private pcscd and the virtual card (locked, no tries
//! left). Elements are found by their visible text and reached with the keyboard alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::Value;
use unlock_e2e::bridge::install_copy;
use unlock_e2e::browser::extension_dir;
use unlock_e2e::harness::{Card, PrivatePcscd};
use unlock_e2e::mail::SmtpSink;
use unlock_e2e::service::{Holder, Server};
use unlock_e2e::webdriver::ChromeDriver;

const MASTER_KEY: &str = "0b2560610fce4019a51221a129d9cf4c";
const SERIAL: &str = "ac4d0ed99f033e05";
const OTHER_SERIAL: &str = "5be7c4a1d2e3f409";
const EMAIL: &str = "jane.doe@trust.example";
const SECOND_EMAIL: &str = "jane.d@trust.example";
const NEW_PASSCODE: &str = "905173";

fn target_binary(name: &str) -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_virtual-card")).with_file_name(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo xtask test` (it builds every binary)",
        binary.display()
    );
    binary
}

/// The built app; `cargo xtask test` builds it before the tests.
fn app_dir() -> PathBuf {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist");
    assert!(
        dist.join("index.html").exists(),
        "{} has no build of the app: run `cargo xtask test`",
        dist.display()
    );
    dist
}

/// Where the screenshots of each screen go.
fn artefacts(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("e2e-artefacts")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every real part, running.
struct World {
    server: Server,
    smtp: SmtpSink,
    card: Card,
    driver: ChromeDriver,
    profile: PathBuf,
    pcscd: PrivatePcscd,
    dir: tempfile::TempDir,
}

impl World {
    fn start(card_in_profile: &str, card_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let smtp = SmtpSink::start(dir.path());
        let server = Server::start(
            &target_binary("unlock-server"),
            &dir.path().join("server"),
            &smtp.url(),
            MASTER_KEY,
            &app_dir(),
            "trust.example",
            &[Holder {
                id: "1234 5678 9012",
                name: "Jane Doe",
                emails: &[EMAIL, SECOND_EMAIL],
                card_serial: card_in_profile,
            }],
        );
        let pcscd = PrivatePcscd::start(dir.path());
        let mut args = vec!["--master-key", MASTER_KEY, "--locked"];
        args.extend_from_slice(card_args);
        let card = Card::start(&target_binary("virtual-card"), pcscd.vpcd_port, &args);

        // The bridge, installed and registered for Chromium as a user would.
        let home = dir.path().join("home");
        let bridge = install_copy(
            &target_binary("unlock-bridge"),
            &dir.path().join("opt/unlock-bridge"),
            &format!(
                "allowed_origins = [{:?}]\nlog_file = {:?}\n",
                server.url,
                dir.path().join("bridge.log")
            ),
        );
        let install = std::process::Command::new(&bridge)
            .args(["install", "--user", "--browser", "chromium"])
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap();
        assert!(install.status.success(), "{install:?}");
        let driver =
            ChromeDriver::start(&pcscd.socket, &home, &dir.path().join("chromedriver.log"));
        Self {
            server,
            smtp,
            card,
            driver,
            profile: home.join(".config/chromium"),
            pcscd,
            dir,
        }
    }

    async fn browser(&self, with_extension: bool) -> Client {
        let extension = with_extension.then(extension_dir);
        self.driver
            .browser(&self.profile, extension.as_deref())
            .await
    }
}

/// A person in front of the browser, with the keyboard.
struct Person {
    client: Client,
    shots: PathBuf,
    screens: usize,
}

impl Person {
    /// Waits for the page whose main heading is `heading`, then checks it with axe-core and
    /// takes its screenshot.
    async fn sees_page(&mut self, heading: &str) {
        self.waits_for(&format!("//h1[normalize-space()={heading:?}]"))
            .await;
        self.checks_screen(heading).await;
    }

    /// Saves a screenshot of the screen as it is now, named after `what`, and checks it with
    /// axe-core: no violations.
    async fn checks_screen(&mut self, what: &str) {
        self.screens += 1;
        let png = self.client.screenshot().await.unwrap();
        let name = what
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        std::fs::write(
            self.shots.join(format!("{:02}-{name}.png", self.screens)),
            png,
        )
        .unwrap();
        let violations = axe(&self.client).await;
        assert!(
            violations.as_array().is_some_and(Vec::is_empty),
            "accessibility violations on {what:?}: {violations:#}"
        );
    }

    async fn waits_for(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|error| panic!("{xpath} never appeared: {error}"))
    }

    async fn sees_text(&self, text: &str) {
        self.waits_for(&format!("//*[contains(normalize-space(), {text:?})]"))
            .await;
    }

    /// Presses Tab until `target` has the focus (at most 40 times).
    async fn tabs_to(&self, target: &Element) {
        for _ in 0..40 {
            let active = self.client.active_element().await.unwrap();
            if active.element_id() == target.element_id() {
                return;
            }
            active.send_keys(&Key::Tab.to_string()).await.unwrap();
        }
        panic!("Tab never reached {:?}", target.element_id());
    }

    /// Tabs to the field labelled `label` and types `text`.
    async fn types_into(&self, label: &str, text: &str) {
        let label = self
            .waits_for(&format!("//label[normalize-space()={label:?}]"))
            .await;
        let id = label
            .attr("for")
            .await
            .unwrap()
            .expect("the label names its field");
        let field = self.client.find(Locator::Id(&id)).await.unwrap();
        self.tabs_to(&field).await;
        field.send_keys(text).await.unwrap();
    }

    /// Tabs to the button (or link styled as one) reading `text` and presses Enter.
    async fn presses(&self, text: &str) {
        let button = self
            .waits_for(&format!(
                "//*[(self::button or self::a) and normalize-space()={text:?} and not(@disabled)]"
            ))
            .await;
        self.tabs_to(&button).await;
        button.send_keys(&Key::Enter.to_string()).await.unwrap();
    }
}

/// axe-core's violations on the current page (injected from the npm package).
async fn axe(client: &Client) -> Value {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/axe-core/axe.min.js"),
    )
    .expect("node_modules/axe-core (cargo xtask test runs npm ci)");
    client.execute(&source, vec![]).await.unwrap();
    client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(
               (r) => done(r.violations.map((v) => ({id: v.id, help: v.help, nodes: v.nodes.map((n) => n.html)}))),
               (e) => done([{id: 'axe-error', help: String(e)}]));",
            vec![],
        )
        .await
        .unwrap()
}

/// Opens the app and goes through the start page with the card out of the reader.
async fn start_journey(world: &mut World, test: &str) -> Person {
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots: artefacts(test),
        screens: 0,
    };
    assert_eq!(world.card.command("remove"), "ok");
    person.client.goto(&world.server.url).await.unwrap();
    person.sees_page("Unlock your smartcard").await;
    person.presses("Start now").await;
    person.sees_page("Enter your email address").await;
    person
}

/// From the email page to the card page, with the code from the real email.
async fn verify_by_email(world: &World, person: &mut Person) {
    person.types_into("Email address", EMAIL).await;
    person.presses("Continue").await;
    person.sees_page("Check your email").await;
    let code = world
        .smtp
        .wait_for(EMAIL, 1)
        .code()
        .expect("a code in the email");
    person.types_into("Security code", &code).await;
    person.presses("Continue").await;
    person.sees_page("Insert your smartcard").await;
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
    let mut world = World::start(SERIAL, &["--serial", SERIAL, "--passcode", "284759"]);
    let started = Instant::now();
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots: artefacts("happy-path"),
        screens: 0,
    };
    let outcome = async {
        person.client.goto(&world.server.url).await.unwrap();
        person.sees_page("Unlock your smartcard").await;
        person
            .sees_text("Remove your smartcard from the reader")
            .await;
        assert_eq!(world.card.command("remove"), "ok");
        person.presses("Start now").await;

        person.sees_page("Enter your email address").await;
        person.types_into("Email address", EMAIL).await;
        person.presses("Continue").await;

        person.sees_page("Check your email").await;
        let code = world
            .smtp
            .wait_for(EMAIL, 1)
            .code()
            .expect("a code in the email");
        person.types_into("Security code", &code).await;
        person.presses("Continue").await;

        person.sees_page("Insert your smartcard").await;
        assert_eq!(world.card.command("insert"), "ok");

        person.sees_page("Choose a new passcode").await;
        person.types_into("New passcode", NEW_PASSCODE).await;
        person
            .types_into("Confirm new passcode", NEW_PASSCODE)
            .await;
        person.presses("Unlock my card").await;

        person.sees_page("Your card is unlocked").await;
    };
    outcome.await;
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
    // Every address on the profile is told.
    for address in [EMAIL, SECOND_EMAIL] {
        let notice = world
            .smtp
            .wait_for(address, if address == EMAIL { 2 } else { 1 });
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
async fn a_wrong_code_three_times_voids_it() {
    let mut world = World::start(SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, "wrong-code").await;
    person.types_into("Email address", EMAIL).await;
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
    let mut world = World::start(SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, "domain-not-allowed").await;
    person
        .types_into("Email address", "jane@elsewhere.example")
        .await;
    person.presses("Continue").await;
    person.sees_text("This email domain can't be used.").await;
    person.checks_screen("domain not allowed").await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_not_on_the_profile_is_refused_with_what_to_do() {
    // The profile has another card; the one in the reader is not the holder's.
    let mut world = World::start(OTHER_SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, "card-not-on-profile").await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text("This card is not the one on your profile.")
        .await;
    person.checks_screen("card not on profile").await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_pulled_during_the_unblock_can_be_put_back_and_the_unlock_retried() {
    let mut world = World::start(SERIAL, &["--serial", SERIAL]);
    let mut person = start_journey(&mut world, "card-pulled").await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person.sees_page("Choose a new passcode").await;
    person.types_into("New passcode", NEW_PASSCODE).await;
    person
        .types_into("Confirm new passcode", NEW_PASSCODE)
        .await;
    // The card leaves the reader as RESET RETRY COUNTER reaches it.
    assert_eq!(world.card.command("pull-on 2C"), "ok");
    person.presses("Unlock my card").await;
    person
        .sees_text("Your card was removed before we finished.")
        .await;
    person.checks_screen("card removed while unlocking").await;
    assert_eq!(world.card.command("insert"), "ok");
    person.presses("Try again").await;
    person.sees_page("Your card is unlocked").await;
    person.client.close().await.unwrap();
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extension_the_holder_is_shown_how_to_install_it() {
    let world = World::start(SERIAL, &["--serial", SERIAL]);
    let client = world.browser(false).await;
    let mut person = Person {
        client,
        shots: artefacts("no-extension"),
        screens: 0,
    };
    person.client.goto(&world.server.url).await.unwrap();
    person
        .sees_page("Install the smartcard unlock browser extension")
        .await;
    person.client.close().await.unwrap();
}
