//! The `unlock-cr/1` unblock (challenge, then unblock with the cryptogram) through the bridge,
//! and the same APDUs straight through PC/SC.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use unlock_e2e::bridge::{BridgeProcess, extension_caller};
use unlock_e2e::harness::wait_until;
use unlock_protocol::card_profile::{self, card_key, cryptogram, pin_block};

pub const MASTER_KEY: [u8; 16] = *b"bench-master-key";
pub const SERIAL: &str = "5be7c4a1d2e3f409";
const PASSCODE: &str = "905173";

pub fn through_bridge(
    installed: &Path,
    socket: &Path,
    reader: &str,
    runs: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut bridge = BridgeProcess::spawn(installed, &extension_caller(), socket);
    wait_until(|| {
        bridge.request(json!({"type": "read_card", "reader": reader}))["ok"]["type"] == "card"
    });
    let key = card_key(&MASTER_KEY, &serial_bytes());
    let times = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let challenge = bridge.request(json!({
                "type": "challenge", "reader": reader,
                "challenge": {"profile": "unlock-cr/1", "serial": SERIAL},
            }));
            let answer = server_cryptogram(&key, &challenge)?;
            let unblocked = bridge.request(json!({
                "type": "unblock", "reader": reader,
                "release": {"profile": "unlock-cr/1", "serial": SERIAL, "cryptogram": answer},
                "new_passcode": PASSCODE,
            }));
            let elapsed = started.elapsed();
            if unblocked["ok"]["type"] != "unblocked" {
                bail!("the unblock failed: {unblocked}");
            }
            Ok(elapsed)
        })
        .collect();
    bridge.close();
    times
}

fn server_cryptogram(key: &[u8; 16], challenge: &Value) -> anyhow::Result<String> {
    let challenge: [u8; 16] = hex::decode(
        challenge["ok"]["proof"]["challenge"]
            .as_str()
            .with_context(|| format!("a challenge: {challenge}"))?,
    )?
    .try_into()
    .map_err(|_| anyhow::anyhow!("16 bytes"))?;
    Ok(hex::encode(cryptogram(key, &challenge, &serial_bytes())))
}

fn serial_bytes() -> [u8; 8] {
    hex::decode(SERIAL)
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default()
}

/// The unblock's APDUs without the bridge: connect exclusively, select, serial, challenge,
/// authenticate, reset the retry counter, tries left, disconnect.
pub fn direct(reader: &str, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let context = pcsc::Context::establish(pcsc::Scope::User)?;
    let reader = std::ffi::CString::new(reader)?;
    let key = card_key(&MASTER_KEY, &serial_bytes());
    let pin = pin_block(PASSCODE).context("a passcode")?;
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut send = |card: &pcsc::Card, apdu: &[u8]| -> anyhow::Result<Vec<u8>> {
        let response = card.transmit(apdu, &mut buffer)?.to_vec();
        Ok(response)
    };
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let card =
                context.connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)?;
            send(
                &card,
                &[&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &card_profile::AID].concat(),
            )?;
            send(&card, &[0x00, 0xCA, 0x00, 0x5A, 0x00])?;
            let challenge = send(&card, &[0x00, 0x84, 0x00, 0x00, 0x10])?;
            let challenge: [u8; 16] = challenge[..16].try_into()?;
            let answer = cryptogram(&key, &challenge, &serial_bytes());
            let authenticated = send(
                &card,
                &[&[0x00, 0x82, 0x00, 0x01, 0x10][..], &answer].concat(),
            )?;
            if authenticated != [0x90, 0x00] {
                bail!("the card refused the cryptogram");
            }
            send(&card, &[&[0x00, 0x2C, 0x02, 0x80, 0x08][..], &pin].concat())?;
            send(&card, &[0x00, 0x20, 0x00, 0x80])?;
            card.disconnect(pcsc::Disposition::LeaveCard)
                .map_err(|(_, error)| error)?;
            Ok(started.elapsed())
        })
        .collect()
}
