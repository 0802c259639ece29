//! The holder's journey as a person goes through it, on every real part: the built app served
//! by the real `unlock-server` (fresh SQLite, mail through aiosmtpd), headless Chromium driven
//! by ChromeDriver with the real extension, the real bridge registered by its own installer,
//! a private pcscd and the virtual card. Elements are found by their visible text and reached
//! with the keyboard alone. Shared by the end-to-end tests and the app benchmark.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::bridge::{install_copy, register_for_chromium};
use crate::browser::extension_dir;
use crate::harness::{Card, PrivatePcscd};
use crate::mail::SmtpSink;
use crate::piv_ca::{CaFiles, TestCa};
use crate::service::{Holder, Server};
use crate::webdriver::{ChromeDriver, console_errors};

pub const MASTER_KEY: &str = "0b2560610fce4019a51221a129d9cf4c";
pub const SERIAL: &str = "ac4d0ed99f033e05";
pub const OTHER_SERIAL: &str = "5be7c4a1d2e3f409";
/// The holder's 12-digit user id, as typed.
pub const HOLDER_ID: &str = "1234 5678 9012";
pub const EMAIL: &str = "jane.doe@trust.example";
pub const SECOND_EMAIL: &str = "jane.d@trust.example";
pub const NEW_PASSCODE: &str = "905173";
/// The name of the PIV test CA the server trusts (its files in the world's folder); a card
/// issued by any other name is from an untrusted CA.
pub const PIV_CA: &str = "trusted";

/// `name` among the built binaries in `binaries`.
fn binary(binaries: &Path, name: &str) -> PathBuf {
    let binary = binaries.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo xtask test` (it builds every binary)",
        binary.display()
    );
    binary
}

/// The built app; `cargo xtask test` builds it before the tests.
pub fn app_dir() -> PathBuf {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist");
    assert!(
        dist.join("index.html").exists(),
        "{} has no build of the app: run `cargo xtask test`",
        dist.display()
    );
    dist
}

/// Where the screenshots of each screen of `test` go, under `root`, emptied first.
pub fn artefacts(root: &Path, test: &str) -> PathBuf {
    let dir = root.join("e2e-artefacts").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every real part, running; all stopped when dropped.
#[derive(Debug)]
pub struct World {
    pub server: Server,
    pub smtp: SmtpSink,
    pub card: Card,
    pub driver: ChromeDriver,
    pub profile: PathBuf,
    pub pcscd: PrivatePcscd,
    pub dir: tempfile::TempDir,
}

impl World {
    /// Starts everything from the built binaries in `binaries`: a holder whose profile has
    /// the card `card_in_profile`, and the virtual card (locked) with `card_args`.
    pub fn start(binaries: &Path, card_in_profile: &str, card_args: &[&str]) -> Self {
        let holder = Holder {
            id: HOLDER_ID,
            name: "Jane Doe",
            emails: &[EMAIL, SECOND_EMAIL],
            card_serial: card_in_profile,
            ..Holder::default()
        };
        Self::start_with(binaries, &[holder], card_args)
    }

    /// As [`World::start`], with these holders on record.
    pub fn start_with(binaries: &Path, holders: &[Holder<'_>], card_args: &[&str]) -> Self {
        Self::start_on(binaries, None, holders, card_args)
    }

    /// As [`World::start_with`], the server on the empty database `database_url` (a fresh
    /// SQLite file when `None`).
    pub fn start_on(
        binaries: &Path,
        database_url: Option<&str>,
        holders: &[Holder<'_>],
        card_args: &[&str],
    ) -> Self {
        let card = |_: &Path, vpcd_port| {
            let mut args = vec!["--master-key", MASTER_KEY, "--locked"];
            args.extend_from_slice(card_args);
            Card::start(&binary(binaries, "virtual-card"), vpcd_port, &args)
        };
        Self::launch(binaries, database_url, holders, "", card)
    }

    /// Everything, with a locked virtual **PIV** card (`card_args` added) whose certificates
    /// come from `issuer`, and a server trusting the test CA [`PIV_CA`].
    pub fn start_piv(
        binaries: &Path,
        holders: &[Holder<'_>],
        issuer: &str,
        card_args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trusted = CaFiles::in_dir(dir.path(), PIV_CA);
        TestCa::load_or_create(&trusted, "Trusted PIV CA").expect("the trusted CA");
        let anchors = format!("[cards]\npiv_trust_anchors_file = {:?}\n", trusted.cert);
        let card = |dir: &Path, vpcd_port| {
            let issuer = CaFiles::in_dir(dir, issuer);
            let mut args = vec!["--locked"];
            args.extend_from_slice(card_args);
            Card::start_piv(&binary(binaries, "virtual-card"), vpcd_port, &issuer, &args)
        };
        Self::launch_in(dir, binaries, None, holders, &anchors, card)
    }

    fn launch(
        binaries: &Path,
        database_url: Option<&str>,
        holders: &[Holder<'_>],
        more_config: &str,
        card: impl FnOnce(&Path, u16) -> Card,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::launch_in(dir, binaries, database_url, holders, more_config, card)
    }

    fn launch_in(
        dir: tempfile::TempDir,
        binaries: &Path,
        database_url: Option<&str>,
        holders: &[Holder<'_>],
        more_config: &str,
        card: impl FnOnce(&Path, u16) -> Card,
    ) -> Self {
        let smtp = SmtpSink::start(dir.path());
        let server_dir = dir.path().join("server");
        let sqlite = format!("sqlite://{}", server_dir.join("unlock.db").display());
        let server = Server::start_on(
            &binary(binaries, "unlock-server"),
            &server_dir,
            database_url.unwrap_or(&sqlite),
            &smtp.url(),
            MASTER_KEY,
            &app_dir(),
            "trust.example",
            holders,
            more_config,
        );
        let pcscd = PrivatePcscd::start(dir.path());
        let card = card(dir.path(), pcscd.vpcd_port);

        // The bridge, installed and registered for Chromium as a user would.
        let home = dir.path().join("home");
        let bridge = install_copy(
            &binary(binaries, "unlock-bridge"),
            &dir.path().join("opt/unlock-bridge"),
            &format!(
                "allowed_origins = [{:?}]\nlog_file = {:?}\n",
                server.url,
                dir.path().join("bridge.log")
            ),
        );
        let profile = register_for_chromium(&bridge, &home);
        let driver =
            ChromeDriver::start(&pcscd.socket, &home, &dir.path().join("chromedriver.log"));
        Self {
            server,
            smtp,
            card,
            driver,
            profile,
            pcscd,
            dir,
        }
    }

    /// A new browser session, with the extension or without.
    pub async fn browser(&self, with_extension: bool) -> Client {
        let extension = with_extension.then(extension_dir);
        self.driver
            .browser(&self.profile, extension.as_deref())
            .await
    }

    /// A second browser beside the holder's, with a profile of its own named `name` and
    /// no extension: a member of staff's, at their own desk.
    pub async fn other_browser(&self, name: &str) -> Client {
        self.driver.browser(&self.dir.path().join(name), None).await
    }
}

/// A person in front of the browser, with the keyboard.
#[derive(Debug)]
pub struct Person {
    pub client: Client,
    /// Where each screen's screenshot goes, after axe-core has checked it; `None` to do
    /// neither (when timing the journey).
    pub shots: Option<PathBuf>,
    pub screens: usize,
}

impl Person {
    /// Waits for the page whose main heading is `heading`, then checks it with axe-core and
    /// takes its screenshot.
    pub async fn sees_page(&mut self, heading: &str) {
        self.waits_for(&format!("//h1[normalize-space()={heading:?}]"))
            .await;
        self.checks_screen(heading).await;
    }

    /// Saves a screenshot of the screen as it is now, named after `what`, and checks it with
    /// axe-core: no violations; and nothing in the browser's console at error level since
    /// the last screen (a CSP refusal, a failed load, a script's error).
    pub async fn checks_screen(&mut self, what: &str) {
        let Some(shots) = &self.shots else {
            return;
        };
        self.screens += 1;
        let png = self.client.screenshot().await.unwrap();
        let name = what
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        std::fs::write(shots.join(format!("{:02}-{name}.png", self.screens)), png).unwrap();
        let violations = axe(&self.client).await;
        assert!(
            violations.as_array().is_some_and(Vec::is_empty),
            "accessibility violations on {what:?}: {violations:#}"
        );
        let errors = console_errors(&self.client).await;
        assert!(
            errors.is_empty(),
            "the browser logged errors by {what:?}:\n{}",
            errors.join("\n")
        );
    }

    pub async fn waits_for(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|error| panic!("{xpath} never appeared: {error}"))
    }

    pub async fn sees_text(&self, text: &str) {
        self.waits_for(&format!("//*[contains(normalize-space(), {text:?})]"))
            .await;
    }

    /// Presses Tab until `target` has the focus (at most 40 times).
    pub async fn tabs_to(&self, target: &Element) {
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
    pub async fn types_into(&self, label: &str, text: &str) {
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
    pub async fn presses(&self, text: &str) {
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
pub async fn axe(client: &Client) -> Value {
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
pub async fn start_journey(world: &mut World, shots: Option<PathBuf>) -> Person {
    let client = world.browser(true).await;
    let mut person = Person {
        client,
        shots,
        screens: 0,
    };
    assert_eq!(world.card.command("remove"), "ok");
    person.client.goto(&world.server.url).await.unwrap();
    person.sees_page("Unlock your smartcard").await;
    person.presses("Start now").await;
    person
        .sees_page("Enter your email address or mobile number")
        .await;
    person
}

/// From the email page to the card page, with the code from the real email.
pub async fn verify_by_email(world: &World, person: &mut Person) {
    // Earlier journeys' mail is still in the box (and their notices may still be arriving):
    // the code is in the first message after them that has one.
    let earlier = world.smtp.messages_to(EMAIL).len();
    person
        .types_into("Email address or mobile number", EMAIL)
        .await;
    person.presses("Continue").await;
    person.sees_page("Check your email").await;
    let code = (earlier + 1..earlier + 10)
        .find_map(|n| world.smtp.wait_for(EMAIL, n).code())
        .expect("a code in the email");
    person.types_into("Security code", &code).await;
    person.presses("Continue").await;
    person.sees_page("Insert your smartcard").await;
}

/// The rest of the happy path: the card goes in, a new passcode twice, and the card is
/// unlocked.
pub async fn unlock_with_new_passcode(world: &mut World, person: &mut Person) {
    assert_eq!(world.card.command("insert"), "ok");
    person.sees_page("Choose a new passcode").await;
    person.types_into("New passcode", NEW_PASSCODE).await;
    person
        .types_into("Confirm new passcode", NEW_PASSCODE)
        .await;
    person.presses("Unlock my card").await;
    person.sees_page("Your card is unlocked").await;
}

/// The whole happy path: the app opened with the card still in the reader, the card taken
/// out, the email, the code from the real email, the card back in, a new passcode, unlocked.
pub async fn happy_path(world: &mut World, person: &mut Person) {
    person.client.goto(&world.server.url).await.unwrap();
    person.sees_page("Unlock your smartcard").await;
    person
        .sees_text("Remove your smartcard from the reader")
        .await;
    assert_eq!(world.card.command("remove"), "ok");
    person.presses("Start now").await;
    person
        .sees_page("Enter your email address or mobile number")
        .await;
    verify_by_email(world, person).await;
    unlock_with_new_passcode(world, person).await;
}
