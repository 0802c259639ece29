//! The `piv/1` card work (the possession signature with 9E, then the unblock: PUK, rotation,
//! PIN verified, receipt signed with 9A) through the bridge, and the same APDUs straight
//! through PC/SC. Each run rotates the PUK, so the two PUKs below take turns.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use sha2::{Digest, Sha256};
use unlock_e2e::bridge::{BridgeProcess, extension_caller};
use unlock_e2e::harness::wait_until;
use unlock_e2e::piv_card::{DEFAULT_GUID, DEFAULT_PUK};
use unlock_protocol::piv::{self, AID, Purpose, object, pin_block, tlv};

const PASSCODE: &str = "905173";
const OTHER_PUK: &str = "88120457";

/// The PUK after `puk`.
fn next(puk: &str) -> &'static str {
    if puk == DEFAULT_PUK {
        OTHER_PUK
    } else {
        DEFAULT_PUK
    }
}

fn nonce() -> anyhow::Result<[u8; 32]> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).context("a nonce")?;
    Ok(nonce)
}

/// Runs through the bridge; returns the times and the PUK the card holds afterwards.
pub fn through_bridge(
    installed: &Path,
    socket: &Path,
    reader: &str,
    runs: usize,
) -> anyhow::Result<(Vec<Duration>, &'static str)> {
    let mut bridge = BridgeProcess::spawn(installed, &extension_caller(), socket);
    wait_until(|| {
        bridge.request(json!({"type": "read_card", "reader": reader}))["ok"]["type"] == "card"
    });
    let mut puk = DEFAULT_PUK;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (possession, receipt) = (nonce()?, nonce()?);
        let started = Instant::now();
        let proof = bridge.request(json!({
            "type": "challenge", "reader": reader,
            "challenge": {"profile": "piv/1", "guid": DEFAULT_GUID,
                          "nonce": hex::encode(possession)},
        }));
        let unblocked = bridge.request(json!({
            "type": "unblock", "reader": reader,
            "release": {"profile": "piv/1", "guid": DEFAULT_GUID, "puks": [puk],
                        "next_puk": next(puk), "receipt_nonce": hex::encode(receipt)},
            "new_passcode": PASSCODE,
        }));
        times.push(started.elapsed());
        if proof["ok"]["type"] != "proof" || unblocked["ok"]["type"] != "unblocked" {
            bail!("the PIV card work failed: {proof} {unblocked}");
        }
        puk = next(puk);
    }
    bridge.close();
    Ok((times, puk))
}

/// Sends one APDU and fetches the rest of a long answer with GET RESPONSE.
fn exchange(card: &pcsc::Card, apdu: &[u8]) -> anyhow::Result<(Vec<u8>, u16)> {
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut data = Vec::new();
    let mut response = card.transmit(apdu, &mut buffer)?.to_vec();
    loop {
        let split = response.len().checked_sub(2).context("no status word")?;
        let word = u16::from_be_bytes([response[split], response[split + 1]]);
        data.extend_from_slice(&response[..split]);
        if word >> 8 != 0x61 {
            return Ok((data, word));
        }
        response = card
            .transmit(&[0x00, 0xC0, 0x00, 0x00, word as u8], &mut buffer)?
            .to_vec();
    }
}

/// Sends one APDU that must answer `9000`; returns its data.
fn ok(card: &pcsc::Card, apdu: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (data, word) = exchange(card, apdu)?;
    if word != 0x9000 {
        bail!("the card answered {word:04X} to {:02X?}", &apdu[..4]);
    }
    Ok(data)
}

fn select(card: &pcsc::Card) -> anyhow::Result<()> {
    ok(
        card,
        &[&[0x00, 0xA4, 0x04, 0x00, 0x09][..], &AID, &[0x00]].concat(),
    )
    .map(drop)
}

fn get_data(card: &pcsc::Card, object: &[u8]) -> anyhow::Result<Vec<u8>> {
    let list = tlv::encode(&[0x5C], object);
    ok(
        card,
        &[
            &[0x00, 0xCB, 0x3F, 0xFF, list.len() as u8][..],
            &list,
            &[0x00],
        ]
        .concat(),
    )
}

fn sign(card: &pcsc::Card, key: u8, purpose: Purpose, nonce: &[u8; 32]) -> anyhow::Result<()> {
    let digest = Sha256::digest(piv::message(purpose, nonce));
    let template = [tlv::encode(&[0x82], &[]), tlv::encode(&[0x81], &digest)].concat();
    let template = tlv::encode(&[0x7C], &template);
    ok(
        card,
        &[
            &[0x00, 0x87, 0x11, key, template.len() as u8][..],
            &template,
            &[0x00],
        ]
        .concat(),
    )
    .map(drop)
}

/// The APDUs the bridge sends for the same work, in the same two transactions, starting with
/// the card holding `puk`.
pub fn direct(reader: &str, runs: usize, mut puk: &'static str) -> anyhow::Result<Vec<Duration>> {
    let context = pcsc::Context::establish(pcsc::Scope::User)?;
    let reader = std::ffi::CString::new(reader)?;
    let pin = pin_block(PASSCODE).context("a passcode")?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (possession, receipt) = (nonce()?, nonce()?);
        let started = Instant::now();

        let mut card = context.connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
        let transaction = card.transaction()?;
        select(&transaction)?;
        get_data(&transaction, &object::CHUID)?;
        get_data(&transaction, &object::CARD_AUTHENTICATION_CERT)?;
        sign(&transaction, 0x9E, Purpose::Possession, &possession)?;
        transaction
            .end(pcsc::Disposition::LeaveCard)
            .map_err(|(_, error)| error)?;
        card.disconnect(pcsc::Disposition::LeaveCard)
            .map_err(|(_, error)| error)?;

        let mut card = context.connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
        let transaction = card.transaction()?;
        select(&transaction)?;
        get_data(&transaction, &object::CHUID)?;
        exchange(&transaction, &[0x00, 0x20, 0x00, 0x81])?;
        let reset = [&[0x00, 0x2C, 0x00, 0x80, 0x10][..], puk.as_bytes(), &pin].concat();
        ok(&transaction, &reset)?;
        let change = [
            &[0x00, 0x24, 0x00, 0x81, 0x10][..],
            puk.as_bytes(),
            next(puk).as_bytes(),
        ]
        .concat();
        ok(&transaction, &change)?;
        ok(
            &transaction,
            &[&[0x00, 0x20, 0x00, 0x80, 0x08][..], &pin].concat(),
        )?;
        get_data(&transaction, &object::PIV_AUTHENTICATION_CERT)?;
        sign(&transaction, 0x9A, Purpose::Receipt, &receipt)?;
        exchange(&transaction, &[0x00, 0x20, 0x00, 0x80])?;
        transaction
            .end(pcsc::Disposition::LeaveCard)
            .map_err(|(_, error)| error)?;
        card.disconnect(pcsc::Disposition::LeaveCard)
            .map_err(|(_, error)| error)?;

        times.push(started.elapsed());
        puk = next(puk);
    }
    Ok(times)
}

/// Parses the PUK the card holds, as handed to the child that measures [`direct`].
pub fn puk_named(digits: &str) -> anyhow::Result<&'static str> {
    [DEFAULT_PUK, OTHER_PUK]
        .into_iter()
        .find(|puk| *puk == digits)
        .context("one of the bench's two PUKs")
}
