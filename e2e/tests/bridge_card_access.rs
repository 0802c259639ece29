//! The bridge's card conversations (`unlock_bridge::card_access`) against the virtual card in
//! a real, private `pcscd`: reading the card, both halves of an unblock, and the failures the
//! page must be able to tell apart.

use std::path::Path;

use unlock_bridge::card_access::{read_card, start_unblock};
use unlock_bridge::errors::from_pcsc;
use unlock_bridge::profile::{CardProfile, UnlockCr1};
use unlock_e2e::harness::{
    Card, PrivatePcscd, READER, run_client_test, run_client_test_on, wait_until,
};
use unlock_protocol::bridge::{Block, ErrorCode};
use unlock_protocol::card_profile::{card_key, cryptogram, receipt};
use unlock_protocol::{CardSerial, Passcode};

const MASTER_KEY: &str = "0b2560610fce4019a51221a129d9cf4c";
const SERIAL: &str = "ac4d0ed99f033e05";

#[test]
fn the_bridge_reads_and_unblocks_the_card_through_a_real_pcscd() {
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
    run_client_test("bridge_client_side", &pcscd);
    assert_eq!(card.command("pin-is 905173"), "true");
}

#[test]
fn no_pcsc_service_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    run_client_test_on(
        "no_service_client_side",
        &dir.path().join("nothing-listens-here"),
    );
}

#[test]
#[ignore = "run by no_pcsc_service_is_its_own_error in a child process"]
fn no_service_client_side() {
    let error = pcsc::Context::establish(pcsc::Scope::User)
        .map(drop)
        .map_err(from_pcsc)
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::PcscUnavailable);
}

/// Runs in a child process whose `PCSCLITE_CSOCK_NAME` names the private daemon.
#[test]
#[ignore = "run by the_bridge_reads_and_unblocks_the_card_through_a_real_pcscd in a child process"]
fn bridge_client_side() {
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let profiles: [&dyn CardProfile; 1] = [&UnlockCr1];
    let serial = CardSerial::parse(SERIAL).unwrap();
    wait_until(|| read_card(&context, READER, &profiles).is_ok());

    let info = read_card(&context, READER, &profiles).unwrap();
    assert_eq!(
        (info.profile.as_str(), info.serial.as_str(), info.tries_left),
        ("unlock-cr/1", SERIAL, 0)
    );
    assert_eq!(
        read_card(&context, "No Such Reader", &profiles)
            .unwrap_err()
            .code,
        ErrorCode::NoReader
    );

    // Another card, or another program holding this one, is told apart.
    let other = CardSerial::parse("0000000000000001").unwrap();
    assert_eq!(
        start_unblock(&context, READER, &other, &UnlockCr1)
            .unwrap_err()
            .code,
        ErrorCode::SerialMismatch
    );
    let reader = std::ffi::CString::new(READER).unwrap();
    let holder = context
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();
    assert_eq!(
        read_card(&context, READER, &profiles).unwrap_err().code,
        ErrorCode::CardInUse
    );
    assert_eq!(
        start_unblock(&context, READER, &serial, &UnlockCr1)
            .unwrap_err()
            .code,
        ErrorCode::CardInUse
    );
    holder
        .disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, e)| e)
        .unwrap();

    let master: [u8; 16] = hex::decode(MASTER_KEY).unwrap().try_into().unwrap();
    let key = card_key(&master, &serial.to_bytes());
    let passcode = Passcode::parse("905173").unwrap();

    // A wrong cryptogram is refused with its own code.
    let (unblocking, challenge) = start_unblock(&context, READER, &serial, &UnlockCr1).unwrap();
    let mut wrong = cryptogram(&key, &challenge.0, &serial.to_bytes());
    wrong[0] ^= 1;
    assert_eq!(
        unblocking
            .finish(&Block(wrong), &passcode)
            .unwrap_err()
            .code,
        ErrorCode::WrongCryptogram
    );

    // The right one unblocks; the receipt is the card's proof.
    let (unblocking, challenge) = start_unblock(&context, READER, &serial, &UnlockCr1).unwrap();
    let right = Block(cryptogram(&key, &challenge.0, &serial.to_bytes()));
    let (card_receipt, tries_left) = unblocking.finish(&right, &passcode).unwrap();
    assert_eq!(card_receipt.0, receipt(&key, &challenge.0));
    assert_eq!(tries_left, 3);
    assert_eq!(
        read_card(&context, READER, &profiles).unwrap().tries_left,
        3
    );
}
