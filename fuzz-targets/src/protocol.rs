//! The shared crate's parsers: the newtypes the page, the server and the bridge build from
//! what people type and what crosses the wire, and the BER-TLV of PIV data objects.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use unlock_protocol::api::IneligibleReason;
use unlock_protocol::bridge::Block;
use unlock_protocol::card_profile::{PIN_BLOCK_LEN, pin_block, pin_digits};
use unlock_protocol::card_steps::{Certificate, Nonce, Signature};
use unlock_protocol::piv::{Puk, tlv};
use unlock_protocol::staff::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Role, StaffPassword, StaffUsername,
};
use unlock_protocol::{
    CardGuid, CardId, CardSerial, CardStatus, DeliveryState, EmailAddress, ErrorCode, HolderId,
    MAX_EMAIL_LENGTH, OneTimeCode, Passcode,
};

/// The input as text (invalid UTF-8 replaced, as a page's form would never send it) through
/// every parser. What one accepts parses again from its normal form to the same value, and
/// parses the same through serde as through `parse`.
pub fn protocol_newtypes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    if let Some(email) = reparses(text, EmailAddress::parse, |e| e.to_string()) {
        assert!(email.as_str().len() <= MAX_EMAIL_LENGTH);
        assert!(email.as_str().ends_with(&format!("@{}", email.domain())));
        assert!(email.masked().ends_with(email.domain()));
    }
    reparses(text, HolderId::parse, |id| id.to_string());
    reparses(text, OneTimeCode::parse, |code| code.expose().to_owned());
    if let Some(passcode) = reparses(text, Passcode::parse, |p| p.expose().to_owned()) {
        assert!(
            pin_block(passcode.expose()).is_some(),
            "a passcode fits the card"
        );
    }
    if let Some(serial) = reparses(text, CardSerial::parse, |s| s.to_string()) {
        assert_eq!(CardSerial::from_bytes(serial.to_bytes()), serial);
    }
    if let Some(guid) = reparses(text, CardGuid::parse, |g| g.to_string()) {
        assert_eq!(CardGuid::parse(&guid.urn()), Ok(guid));
    }
    reparses(text, CardId::parse, |id| id.to_string());
    reparses(text, StaffUsername::parse, |name| name.to_string());
    reparses(text, Puk::parse, |puk| puk.expose().to_owned());
    staff_password(text);
    for hex in [
        hex::<Block>,
        hex::<Nonce>,
        hex::<Signature>,
        hex::<Certificate>,
    ] {
        hex(text);
    }
    named(text, CardStatus::from_name, |s| s.as_str());
    named(text, DeliveryState::from_name, |s| s.as_str());
    named(text, Role::from_name, |r| r.as_str());
    named(text, ErrorCode::from_name, |c| c.as_str());
    named(text, IneligibleReason::from_name, |r| r.as_str());
}

/// `parse(text)`, which must agree with serde, and parse again from `normal(value)` to the
/// same value.
fn reparses<T, E>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    normal: impl Fn(&T) -> String,
) -> Option<T>
where
    T: PartialEq + Debug + DeserializeOwned,
    E: PartialEq + Debug,
{
    let parsed = parse(text).ok();
    let through_serde = serde_json::from_value::<T>(serde_json::Value::from(text)).ok();
    assert_eq!(through_serde, parsed, "serde and parse agree on {text:?}");
    let parsed = parsed?;
    assert_eq!(parse(&normal(&parsed)).as_ref(), Ok(&parsed), "{text:?}");
    Some(parsed)
}

/// A new staff password: the whole text for a fixed account, and the text after its first
/// line for the account its first line names.
fn staff_password(text: &str) {
    let fixed = StaffUsername::parse("rita.ra").expect("a username");
    let mut tries = vec![(fixed, text)];
    if let Some((name, password)) = text.split_once('\n')
        && let Ok(name) = StaffUsername::parse(name)
    {
        tries.push((name, password));
    }
    for (name, raw) in tries {
        let Ok(password) = StaffPassword::parse(raw, &name) else {
            continue;
        };
        assert_eq!(password.expose(), raw);
        assert!((MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&raw.chars().count()));
        assert!(!raw.to_lowercase().contains(name.as_str()));
    }
}

/// Bytes as hex (a block, a nonce, a signature, a certificate): only hex digits are taken,
/// and they write back as the same digits in lower case.
fn hex<T>(text: &str)
where
    T: TryFrom<String> + Into<String> + PartialEq + Debug + DeserializeOwned,
{
    let Ok(parsed) = T::try_from(text.to_owned()) else {
        return;
    };
    assert!(
        text.bytes().all(|b| b.is_ascii_hexdigit()),
        "only hex digits are bytes: {text:?}"
    );
    let through_serde = serde_json::from_value::<T>(serde_json::Value::from(text)).ok();
    assert_eq!(through_serde.as_ref(), Some(&parsed));
    assert_eq!(Into::<String>::into(parsed), text.to_ascii_lowercase());
}

/// A closed list's name: what it accepts is exactly a name it writes.
fn named<T>(text: &str, from_name: impl Fn(&str) -> Option<T>, name: impl Fn(T) -> &'static str) {
    if let Some(value) = from_name(text) {
        assert_eq!(name(value), text);
    }
}

/// The input as BER-TLV elements, as the virtual PIV card and the bridge read data objects
/// and GENERAL AUTHENTICATE templates, nested a few levels; and its first 8 bytes as a PIN
/// block.
pub fn protocol_tlv(data: &[u8]) {
    decode_nested(data, 3);
    if let Some(block) = data.first_chunk::<PIN_BLOCK_LEN>()
        && let Some(digits) = pin_digits(block)
        && !digits.is_empty()
    {
        assert_eq!(pin_block(&digits).as_ref(), Some(block));
    }
}

/// Decodes `data`: written again with the shortest lengths, the elements read back the same
/// and take no more room; `find` finds the first of the first few tags. Values are decoded
/// in turn, `depth` levels down.
fn decode_nested(data: &[u8], depth: u8) {
    let Some(elements) = tlv::decode(data) else {
        return;
    };
    let written: Vec<u8> = elements
        .iter()
        .flat_map(|(tag, value)| tlv::encode(tag, value))
        .collect();
    assert!(written.len() <= data.len());
    assert_eq!(tlv::decode(&written).as_ref(), Some(&elements));
    // `find` decodes all of `data` each time: a few tags are enough, not one per element.
    for (tag, _) in elements.iter().take(4) {
        let first = elements.iter().find(|(t, _)| t == tag).map(|(_, v)| *v);
        assert_eq!(tlv::find(data, tag), first);
    }
    if depth > 0 {
        for (_, value) in &elements {
            decode_nested(value, depth - 1);
        }
    }
}
