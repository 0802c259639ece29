//! The holder's journey with a **PIV card**, through every real part: the built app served by
//! the real `unlock-server` (trusting a test CA, the card's PUK escrowed by import), headless
//! Chromium with the real extension, the real bridge, a private pcscd and the virtual PIV
//! card (locked). The screens are the same as for any card; only the card work differs.

use std::path::{Path, PathBuf};

use serde_json::Value;
use unlock_e2e::journey::*;
use unlock_e2e::service::Holder;
use unlock_protocol::api::IneligibleReason;
use unlock_protocol::bridge::ErrorCode as BridgeCode;
use unlock_protocol::{CardId, ErrorCode};
use unlock_server::config::Config;
use unlock_server::piv::escrow;
use unlock_server::secrets::Keys;

/// The card's GUID, and its PUK as the card management system set it.
const GUID: &str = "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b";
const OTHER_GUID: &str = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";
const PUK: &str = "40719263";

fn binaries() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_virtual-card"))
        .parent()
        .expect("the target folder")
}

fn shots(test: &str) -> Option<PathBuf> {
    Some(artefacts(Path::new(env!("CARGO_TARGET_TMPDIR")), test))
}

/// The holder, whose profile has the PIV card `guid` with the escrowed PUK `puk`.
fn holder<'a>(guid: &'a str, puk: &'a str) -> Holder<'a> {
    Holder {
        id: HOLDER_ID,
        name: "Jane Doe",
        emails: &[EMAIL, SECOND_EMAIL],
        card_serial: guid,
        card_model: "piv/1",
        card_puk: puk,
    }
}

/// The virtual PIV card's own arguments: its GUID and PUK, and the old passcode.
fn card(guid: &str, more: &[&'static str]) -> Vec<String> {
    let mut args: Vec<String> = ["--guid", guid, "--puk", PUK, "--passcode", "284759"]
        .map(str::to_owned)
        .to_vec();
    args.extend(more.iter().map(|a| (*a).to_owned()));
    args
}

fn start(holder: Holder<'_>, issuer: &str, card_args: &[String]) -> World {
    let args: Vec<&str> = card_args.iter().map(String::as_str).collect();
    World::start_piv(binaries(), &[holder], issuer, &args)
}

async fn person(world: &World, test: &str) -> Person {
    Person {
        client: world.browser(true).await,
        shots: shots(test),
        screens: 0,
    }
}

/// The PUK the server escrows for `guid` now, opened with the server's own secret.
fn escrowed_puk(world: &World, guid: &str) -> String {
    let database = world.server.database();
    let output = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             row = sqlite3.connect(sys.argv[1]).execute(\n\
                 'SELECT hex(puk_sealed), puk_pending_sealed IS NULL FROM cards WHERE serial = ?',\n\
                 (sys.argv[2],)).fetchone()\n\
             print(row[0], row[1])",
        ])
        .arg(&database)
        .arg(guid)
        .output()
        .expect("read the escrow");
    let text = String::from_utf8_lossy(&output.stdout);
    let (sealed, settled) = text.trim().split_once(' ').expect("a card row");
    assert_eq!(settled, "1", "a rotation is still pending");
    let config = Config {
        data_dir: database.with_file_name("var"),
        ..Config::default()
    };
    let keys = Keys::load(&config).expect("the server's secret");
    let sealed = hex::decode(sealed).unwrap();
    escrow::open(&keys, &CardId::parse(guid).unwrap(), &sealed)
        .unwrap()
        .expose()
        .to_owned()
}

fn state(world: &mut World) -> Value {
    world.card.state()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_unlocks_a_locked_piv_card_with_the_keyboard_alone() {
    let mut world = start(holder(GUID, PUK), PIV_CA, &card(GUID, &[]));
    let mut person = person(&world, "piv-happy-path").await;
    happy_path(&mut world, &mut person).await;
    person.client.close().await.unwrap();

    // The card takes the new passcode, and its PUK is the one the server now escrows: the
    // old one is dead.
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );
    let escrowed = escrowed_puk(&world, GUID);
    assert_ne!(escrowed, PUK);
    assert_eq!(world.card.command(&format!("puk-is {escrowed}")), "true");
    assert_eq!(world.card.command(&format!("puk-is {PUK}")), "false");
    let state = state(&mut world);
    assert_eq!(
        (state["pin_tries"].clone(), state["wrong_puks"].clone()),
        (3.into(), 0.into()),
        "{state}"
    );
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
    }
    let _ = (&world.pcscd, &world.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_pulled_after_its_puk_rotation_unlocks_in_a_new_journey_with_one_try_at_most() {
    let mut world = start(holder(GUID, PUK), PIV_CA, &card(GUID, &[]));
    let mut person = person(&world, "piv-pulled").await;
    person.client.goto(&world.server.url).await.unwrap();
    person.sees_page("Unlock your smartcard").await;
    assert_eq!(world.card.command("remove"), "ok");
    person.presses("Start now").await;
    person
        .sees_page("Enter your email address or mobile number")
        .await;
    verify_by_email(&world, &mut person).await;
    // The card leaves the reader right after the PUK is rotated, before the new PIN is
    // verified and the receipt signed.
    assert_eq!(world.card.command("pull-on 20 after 24"), "ok");
    assert_eq!(world.card.command("insert"), "ok");
    person.sees_page("Choose a new passcode").await;
    person.types_into("New passcode", NEW_PASSCODE).await;
    person
        .types_into("Confirm new passcode", NEW_PASSCODE)
        .await;
    person.presses("Unlock my card").await;
    person
        .sees_text("Your card was removed while we were setting your new passcode.")
        .await;
    assert_ne!(
        world.card.command(&format!("puk-is {PUK}")),
        "true",
        "rotated"
    );
    // Back in the reader, the page finds the new passcode set, and says so.
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text("Your card was unlocked, and your new passcode is set on it.")
        .await;
    person.client.close().await.unwrap();

    // Another day, another journey: the server offers both PUKs and the card unlocks.
    let mut again = start_journey(&mut world, None).await;
    verify_by_email(&world, &mut again).await;
    unlock_with_new_passcode(&mut world, &mut again).await;
    again.client.close().await.unwrap();
    let escrowed = escrowed_puk(&world, GUID);
    assert_eq!(world.card.command(&format!("puk-is {escrowed}")), "true");
    let state = state(&mut world);
    assert!(state["wrong_puks"].as_u64().unwrap() <= 1, "{state}");
    assert_eq!(
        world.card.command(&format!("pin-is {NEW_PASSCODE}")),
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piv_cards_the_service_must_not_unlock_are_refused_in_plain_words() {
    // A card whose certificates come from a CA the server does not trust.
    let mut world = start(holder(GUID, PUK), "rogue", &card(GUID, &[]));
    let mut person = start_journey(&mut world, shots("piv-untrusted")).await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text(ErrorCode::CertificateNotTrusted.default_message())
        .await;
    person.client.close().await.unwrap();
    drop(world);

    // A trusted card, but not the one on the holder's profile.
    let mut world = start(holder(OTHER_GUID, PUK), PIV_CA, &card(GUID, &[]));
    let mut person = start_journey(&mut world, shots("piv-not-on-profile")).await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text(ErrorCode::CardNotOnProfile.default_message())
        .await;
    person.client.close().await.unwrap();
    drop(world);

    // A card whose PUK is blocked: only the RA can help.
    let mut world = start(holder(GUID, PUK), PIV_CA, &card(GUID, &["--puk-blocked"]));
    let mut person = start_journey(&mut world, shots("piv-puk-blocked")).await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person
        .sees_text(IneligibleReason::PukBlocked.message())
        .await;
    person.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_escrowed_puk_is_tried_once_and_the_holder_is_sent_to_the_ra() {
    // The card management system's export held another PUK than the card's.
    let mut world = start(holder(GUID, "11112222"), PIV_CA, &card(GUID, &[]));
    let mut person = start_journey(&mut world, shots("piv-wrong-puk")).await;
    verify_by_email(&world, &mut person).await;
    assert_eq!(world.card.command("insert"), "ok");
    person.sees_page("Choose a new passcode").await;
    person.types_into("New passcode", NEW_PASSCODE).await;
    person
        .types_into("Confirm new passcode", NEW_PASSCODE)
        .await;
    person.presses("Unlock my card").await;
    person
        .sees_text(BridgeCode::AdminKeyBlocked.default_message())
        .await;
    person.client.close().await.unwrap();
    // One refusal, no more: the card's PUK counter is far from blocked, its PIN still locked.
    let state = state(&mut world);
    assert_eq!(state["wrong_puks"], 1, "{state}");
    assert_eq!(state["puk_tries"], 2, "{state}");
    assert_eq!(state["pin_tries"], 0, "{state}");
    assert_eq!(world.card.command(&format!("puk-is {PUK}")), "true");
}
