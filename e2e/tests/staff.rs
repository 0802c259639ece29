//! The staff pages through every real part, by visible labels and the keyboard: staff sign
//! in with a password and a code computed from the authenticator enrolment `staff add`
//! printed, an RA officer adds an email address to a holder's profile, and the holder then
//! unlocks their card alone with it: the remote unlock the service promises. axe-core checks
//! every staff screen, and each is saved as a screenshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::Value;
use unlock_e2e::journey::*;
use unlock_e2e::service::Holder;
use unlock_e2e::staff::{StaffAccount, first_sign_in};

fn binaries() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_virtual-card"))
        .parent()
        .expect("the target folder")
}

fn shots(test: &str) -> Option<PathBuf> {
    Some(artefacts(Path::new(env!("CARGO_TARGET_TMPDIR")), test))
}

/// The holder's address before the RA adds one: outside the allow list.
const OLD_ADDRESS: &str = "jane.doe@oldtrust.example";
/// The RA officer's and the manager's own smartcard profiles.
const RITA: &str = "999988887777";
const MAX: &str = "999988886666";

fn holders(card: &str) -> Vec<Holder<'_>> {
    vec![
        Holder {
            id: HOLDER_ID,
            name: "Jane Doe",
            emails: &[OLD_ADDRESS],
            card_serial: card,
            ..Holder::default()
        },
        Holder {
            id: "9999 8888 7777",
            name: "Rita Ra",
            emails: &["rita.ra@trust.example"],
            card_serial: "",
            ..Holder::default()
        },
        Holder {
            id: "9999 8888 6666",
            name: "Max Manager",
            emails: &["max.manager@trust.example"],
            card_serial: "",
            ..Holder::default()
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ra_officer_adds_an_address_and_the_holder_then_unlocks_their_card_alone() {
    let mut world = World::start_with(
        binaries(),
        &holders(SERIAL),
        &["--serial", SERIAL, "--passcode", "284759"],
    );
    let rita = StaffAccount::add(&world.server, "rita", "ra", RITA);
    let mut staff = Person {
        client: world.other_browser("rita-browser").await,
        shots: shots("staff-ra"),
        screens: 0,
    };
    staff
        .client
        .goto(&format!("{}/status", world.server.url))
        .await
        .unwrap();
    first_sign_in(&mut staff, &rita).await;

    // The holder is found by their user id and has no address they could use.
    staff.presses("Find a holder").await;
    staff.sees_page("Find a holder").await;
    staff
        .types_into("User id, email address or name", HOLDER_ID)
        .await;
    staff.presses("Search").await;
    staff.sees_text("Holders found").await;
    staff.checks_screen("holder found").await;
    staff.presses("123456789012").await;
    staff.sees_page("Jane Doe").await;
    staff.sees_text("No: domain not allowed").await;

    staff
        .types_into("Email address or mobile number", EMAIL)
        .await;
    staff.presses("Add to profile").await;
    staff.sees_text("was added to the profile").await;
    staff.checks_screen("address added").await;

    // Both addresses on the profile are told.
    for address in [OLD_ADDRESS, EMAIL] {
        let notice = world.smtp.wait_for(address, 1);
        assert_eq!(
            notice.subject,
            "An email address was added to your smartcard profile"
        );
        assert!(notice.text.contains(EMAIL), "{}", notice.text);
    }

    // The holder, in their own browser with the extension, unlocks the card with it.
    let mut holder = Person {
        client: world.browser(true).await,
        shots: shots("staff-ra-holder"),
        screens: 0,
    };
    happy_path(&mut world, &mut holder).await;
    holder.client.close().await.unwrap();
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );

    // The overview shows the unlock without a reload: it refreshes itself.
    staff.presses("Overview").await;
    staff.sees_page("Overview").await;
    let unlocks = "//tr[th[normalize-space()='Cards unlocked']]/td[1]";
    let today = staff.waits_for(unlocks).await.text().await.unwrap();
    if today.trim() != "1" {
        staff
            .client
            .wait()
            .at_most(Duration::from_secs(40))
            .for_element(Locator::XPath(
                "//tr[th[normalize-space()='Cards unlocked']]/td[1][normalize-space()='1']",
            ))
            .await
            .expect("the overview refreshed to show the unlock");
    }
    staff.sees_text("Hours saved today").await;
    staff.checks_screen("overview after the unlock").await;

    // The profile now shows the journey step by step.
    staff.client.back().await.unwrap();
    staff
        .client
        .goto(&format!("{}/status/holders/123456789012", world.server.url))
        .await
        .unwrap();
    staff.sees_page("Jane Doe").await;
    staff
        .waits_for("//summary[contains(normalize-space(), 'Unlocked')]")
        .await
        .click()
        .await
        .unwrap();
    staff.sees_text("Card unlocked").await;
    staff.checks_screen("holder profile with the journey").await;

    staff.presses("Audit log").await;
    staff.sees_page("Audit log").await;
    staff.sees_text("staff.email_add").await;
    staff.checks_screen("audit log").await;

    staff.presses("Sign out").await;
    staff.sees_page("Sign in").await;
    staff.sees_text("You have signed out.").await;
    staff.checks_screen("signed out").await;
    staff.client.close().await.unwrap();

    let trail = audit_trail(&world);
    for (actor, action) in [
        ("staff:rita", "staff.sign_in"),
        ("staff:rita", "staff.password_change"),
        ("staff:rita", "staff.holder_search"),
        ("staff:rita", "staff.email_add"),
        ("holder", "journey.receipt"),
        ("staff:rita", "staff.sign_out"),
    ] {
        assert!(
            trail.iter().any(|(a, b)| a == actor && b == action),
            "no {actor} {action} in {trail:?}"
        );
    }
}

/// RA-assisted remote unlock: the holder can reach no address on their profile and phones
/// their RA. The RA (in one browser) finds them, records how they checked who they are and
/// issues a one-time unlock code, shown once; the holder (in another browser, with the
/// extension) chooses "I have a code from my Registration Authority", types it in, and goes
/// on from the card step to an unlocked card. Every address on the profile is told, and the
/// overview counts the remote unlock with RA help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ra_issues_an_unlock_code_over_the_phone_and_the_holder_unlocks_their_card_with_it() {
    let mut world = World::start_with(
        binaries(),
        &holders(SERIAL),
        &["--serial", SERIAL, "--passcode", "284759"],
    );
    let rita = StaffAccount::add(&world.server, "rita", "ra", RITA);
    let mut staff = Person {
        client: world.other_browser("rita-browser").await,
        shots: shots("staff-ra-unlock-code"),
        screens: 0,
    };
    staff
        .client
        .goto(&format!("{}/status", world.server.url))
        .await
        .unwrap();
    first_sign_in(&mut staff, &rita).await;
    staff.presses("Find a holder").await;
    staff.sees_page("Find a holder").await;
    staff
        .types_into("User id, email address or name", HOLDER_ID)
        .await;
    staff.presses("Search").await;
    staff.presses("123456789012").await;
    staff.sees_page("Jane Doe").await;
    staff.sees_text("Remote unlock with a one-time code").await;

    // Nothing chosen or written: the form says what is missing.
    staff.presses("Issue an unlock code").await;
    staff
        .sees_text("Select how you checked who the holder is")
        .await;
    staff.sees_text("Write what you checked").await;
    staff.checks_screen("unlock code form with errors").await;

    chooses(
        &staff,
        "I called them back on a number from the staff directory",
    )
    .await;
    staff
        .types_into(
            "What did you check?",
            "Called back on 0113 496 0000 from the directory; date of birth confirmed.",
        )
        .await;
    staff.presses("Issue an unlock code").await;
    staff.sees_text("Read this code out to the holder").await;
    staff.checks_screen("unlock code issued").await;
    let code = staff
        .waits_for("//*[@id='unlock-code']")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(code.len(), 14, "{code}");

    // The address on the profile is told who issued a code, and never the code.
    let notice = world.smtp.wait_for(OLD_ADDRESS, 1);
    assert_eq!(
        notice.subject,
        "A Registration Authority gave out an unlock code for your smartcard"
    );
    assert!(notice.text.contains("(rita)"), "{}", notice.text);
    assert!(!notice.text.contains(&code), "{}", notice.text);
    assert!(!notice.text.contains(&code.replace('-', "")));

    // The holder, in their own browser with the extension, types it in instead of an
    // emailed code and carries on from the card step.
    let mut holder = Person {
        client: world.browser(true).await,
        shots: shots("staff-ra-unlock-code-holder"),
        screens: 0,
    };
    holder.client.goto(&world.server.url).await.unwrap();
    holder.sees_page("Unlock your smartcard").await;
    assert_eq!(world.card.command("remove"), "ok");
    holder.presses("Start now").await;
    holder
        .sees_page("Enter your email address or mobile number")
        .await;
    holder
        .presses("I have a code from my Registration Authority")
        .await;
    holder
        .sees_page("Enter the code from your Registration Authority")
        .await;
    // A mistyped code is refused on the page, with an error summary.
    holder.types_into("Unlock code", "ABCD-EFGH-JKM").await;
    holder.presses("Continue").await;
    holder
        .sees_text("The unlock code must be 12 letters and numbers")
        .await;
    holder.checks_screen("unlock code mistyped").await;
    let field = holder
        .client
        .find(Locator::Id("unlock-code"))
        .await
        .unwrap();
    field.clear().await.unwrap();
    // Read out over the phone and typed as heard: lower case, spaces for dashes.
    holder
        .types_into("Unlock code", &code.to_lowercase().replace('-', " "))
        .await;
    holder.presses("Continue").await;
    holder.sees_page("Insert your smartcard").await;
    unlock_with_new_passcode(&mut world, &mut holder).await;
    holder.client.close().await.unwrap();
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );

    // The overview counts it as a remote unlock with RA help.
    staff.presses("Overview").await;
    staff.sees_page("Overview").await;
    staff
        .client
        .wait()
        .at_most(Duration::from_secs(40))
        .for_element(Locator::XPath(
            "//tr[th[normalize-space()='Remote unlocks with RA help']]/td[1][normalize-space()='1']",
        ))
        .await
        .expect("the overview shows the remote unlock with RA help");
    staff.sees_text("remote unlocks with RA help").await;
    staff
        .checks_screen("overview after the remote unlock")
        .await;
    staff.client.close().await.unwrap();

    let trail = audit_trail(&world);
    for (actor, action) in [
        ("staff:rita", "staff.unlock_code_issue"),
        ("holder", "journey.ra_code"),
        ("holder", "journey.receipt"),
    ] {
        assert!(
            trail.iter().any(|(a, b)| a == actor && b == action),
            "no {actor} {action} in {trail:?}"
        );
    }
}

/// Selects the radio labelled `label` by keyboard: Tab into its group (which stops on the
/// first radio while none is chosen), the arrow keys to it, and the space bar.
async fn chooses(person: &Person, label: &str) {
    let label = person
        .waits_for(&format!("//label[normalize-space()={label:?}]"))
        .await;
    let id = label
        .attr("for")
        .await
        .unwrap()
        .expect("the label names its radio");
    let radio = person.client.find(Locator::Id(&id)).await.unwrap();
    let name = radio.attr("name").await.unwrap().expect("a radio group");
    let first = person
        .client
        .find(Locator::XPath(&format!("(//input[@name={name:?}])[1]")))
        .await
        .unwrap();
    person.tabs_to(&first).await;
    for _ in 0..8 {
        let active = person.client.active_element().await.unwrap();
        if active.element_id() == radio.element_id() {
            break;
        }
        active.send_keys(&Key::Down.to_string()).await.unwrap();
    }
    radio.send_keys(" ").await.unwrap();
    assert_eq!(
        radio.prop("checked").await.unwrap().as_deref(),
        Some("true"),
        "{id} is chosen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ra_manager_changes_the_allow_list_and_downloads_the_report() {
    let world = World::start_with(binaries(), &holders(SERIAL), &["--serial", SERIAL]);
    let max = StaffAccount::add(&world.server, "max", "ra-manager", MAX);
    let mut staff = Person {
        client: world.other_browser("max-browser").await,
        shots: shots("staff-manager"),
        screens: 0,
    };
    staff
        .client
        .goto(&format!("{}/status/allowlist", world.server.url))
        .await
        .unwrap();
    first_sign_in(&mut staff, &max).await;

    staff.presses("Email domains").await;
    staff.sees_page("Email domains").await;
    staff.types_into("Domain", "oldtrust.example").await;
    staff.presses("Allow domain").await;
    staff
        .sees_text("Addresses ending in @oldtrust.example can now be used for self-service.")
        .await;
    staff.checks_screen("domain allowed").await;
    let listed = world.server.cli(&["allowlist", "list"]);
    assert!(
        listed.lines().any(|line| line == "oldtrust.example"),
        "{listed}"
    );

    staff.presses("Reports").await;
    staff.sees_page("Reports").await;
    staff.checks_screen("reports").await;
    let href = staff
        .client
        .execute(
            "const days = ['from', 'to'].map((id) => document.getElementById(id).value);
             return `/api/staff/reports/organisations.csv?from=${days[0]}&to=${days[1]}`;",
            vec![],
        )
        .await
        .unwrap();
    // The browser fetches the file with the session cookie, as the download does.
    let csv: Value = staff
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(async (r) => done({status: r.status,
                 type: r.headers.get('content-type'), body: await r.text()}));",
            vec![href],
        )
        .await
        .unwrap();
    assert_eq!(csv["status"], 200, "{csv}");
    assert_eq!(csv["type"], "text/csv; charset=utf-8");
    let body = csv["body"].as_str().unwrap();
    assert!(
        body.starts_with("organisation,unlocks,hours_saved,emails_added,emails_removed,from,to\n"),
        "{body}"
    );
    assert!(body.contains("\nTest Trust,0,0.0,0,0,"), "{body}");

    staff.presses("Overview").await;
    staff.sees_page("Overview").await;
    staff.sees_text("Why journeys failed").await;
    staff.checks_screen("overview").await;
    staff.client.close().await.unwrap();
}

/// (actor, action) of every audit event, oldest first.
fn audit_trail(world: &World) -> Vec<(String, String)> {
    let output = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             for (a, b) in sqlite3.connect(sys.argv[1]).execute('SELECT actor, action FROM audit_events ORDER BY id'): print(a + ' ' + b)",
        ])
        .arg(world.server.database())
        .output()
        .expect("read the audit trail");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}
