//! The virtual card plugged into a real, private `pcscd` through the `vpcd` driver, driven by
//! the real `pcsc` crate: what the bridge will see.

use std::ffi::CString;
use std::path::Path;
use std::time::Duration;

use unlock_e2e::harness::{Card, PrivatePcscd, READER, run_client_test, wait_until};
use unlock_protocol::card_profile::{AID, card_key, cryptogram, pin_block, receipt};

const MASTER_KEY: &str = "35a47d45d75853e026695fffa198b79d";
const SERIAL: &str = "2d6bddb8ad096c2d";

#[test]
fn the_virtual_card_answers_through_a_real_pcscd() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let binary = Path::new(env!("CARGO_BIN_EXE_virtual-card"));
    let args = [
        "--serial",
        SERIAL,
        "--master-key",
        MASTER_KEY,
        "--locked",
        "--passcode",
        "284759",
    ];
    let mut card = Card::start(binary, pcscd.vpcd_port, &args);
    run_client_test("client_side", &pcscd);

    // The card itself agrees: a new passcode and a full retry counter.
    assert_eq!(card.command("pin-is 905173"), "true");
    let state: serde_json::Value = serde_json::from_str(&card.command("state")).unwrap();
    assert_eq!(state["pin_tries"], 3);
    // The wrong cryptogram cost a try; the right one that followed restored the counter.
    assert_eq!(state["admin_tries"], 10);
    assert_eq!(card.command("remove"), "ok");
    assert_eq!(card.command("quit"), "");
}

/// Runs in a child process whose `PCSCLITE_CSOCK_NAME` names the private daemon.
#[test]
#[ignore = "run by the_virtual_card_answers_through_a_real_pcscd in a child process"]
fn client_side() {
    let context = pcsc::Context::establish(pcsc::Scope::User).expect("reach the private pcscd");
    let readers: Vec<String> = context
        .list_readers_owned()
        .unwrap()
        .into_iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    assert!(readers.iter().any(|r| r == READER), "{readers:?}");

    let reader = CString::new(READER).unwrap();
    wait_until(|| {
        let mut states = [pcsc::ReaderState::new(
            reader.as_c_str(),
            pcsc::State::UNAWARE,
        )];
        context
            .get_status_change(Duration::from_millis(100), &mut states)
            .is_ok()
            && states[0].event_state().contains(pcsc::State::PRESENT)
    });
    let card = context
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("connect to the card");
    let mut buffer = [0u8; 258];
    let mut send =
        |apdu: &[u8]| -> Vec<u8> { card.transmit(apdu, &mut buffer).expect("transmit").to_vec() };

    assert_eq!(
        send(&[&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &AID].concat()),
        [0x90, 0x00]
    );
    let serial: [u8; 8] = send(&[0x00, 0xCA, 0x00, 0x5A, 0x00])[..8]
        .try_into()
        .unwrap();
    assert_eq!(hex::encode(serial), SERIAL);
    assert_eq!(
        send(&[0x00, 0x20, 0x00, 0x80]),
        [0x69, 0x83],
        "the card starts blocked"
    );

    let master: [u8; 16] = hex::decode(MASTER_KEY).unwrap().try_into().unwrap();
    let key = card_key(&master, &serial);
    let challenge = |send: &mut dyn FnMut(&[u8]) -> Vec<u8>| -> [u8; 16] {
        let answer = send(&[0x00, 0x84, 0x00, 0x00, 0x10]);
        assert_eq!(answer[16..], [0x90, 0x00]);
        answer[..16].try_into().unwrap()
    };

    // A wrong cryptogram is refused and counted.
    let first = challenge(&mut send);
    let mut wrong = cryptogram(&key, &first, &serial);
    wrong[15] ^= 0x55;
    assert_eq!(
        send(&[&[0x00, 0x82, 0x00, 0x01, 0x10][..], &wrong].concat()),
        [0x69, 0x82]
    );

    // The right one unblocks and sets the new passcode; the receipt proves it.
    let second = challenge(&mut send);
    let right = cryptogram(&key, &second, &serial);
    assert_eq!(
        send(&[&[0x00, 0x82, 0x00, 0x01, 0x10][..], &right].concat()),
        [0x90, 0x00]
    );
    let answer = send(
        &[
            &[0x00, 0x2C, 0x02, 0x80, 0x08][..],
            &pin_block("905173").unwrap(),
        ]
        .concat(),
    );
    assert_eq!(answer[16..], [0x90, 0x00]);
    assert_eq!(answer[..16], receipt(&key, &second));
    assert_eq!(
        send(
            &[
                &[0x00, 0x20, 0x00, 0x80, 0x08][..],
                &pin_block("905173").unwrap()
            ]
            .concat()
        ),
        [0x90, 0x00]
    );

    card.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, error)| error)
        .unwrap();
}
