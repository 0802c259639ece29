//! The JSON shapes of the API and of the bridge's messages, read and written by hand on top
//! of the browser's own `JSON.parse` and `JSON.stringify`.
//!
//! Why not serde: its derived code for the protocol's tagged enums, with serde_json, was a
//! fifth of the page's WASM. The protocol crate's serde derives stay the definition of the
//! wire format: the tests below check every shape here against them.

use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::bridge::{CardState, EventKind, ReaderInfo};
use unlock_protocol::{CardId, Passcode};
use wasm_bindgen::JsValue;
use zeroize::Zeroize;

/// A parsed JSON value, as far as the page reads one: the browser's (`JsValue`) in the page,
/// serde_json's in the native tests.
pub trait Json: Sized {
    /// The member `name` of an object; `None` when absent or `null`.
    fn field(&self, name: &str) -> Option<Self>;
    fn string(&self) -> Option<String>;
    fn number(&self) -> Option<f64>;
    fn boolean(&self) -> Option<bool>;
    fn items(&self) -> Option<Vec<Self>>;
    /// The value as JSON text.
    fn to_text(&self) -> Option<String>;

    /// A string member.
    fn text(&self, name: &str) -> Option<String> {
        self.field(name)?.string()
    }

    /// An object member, carried on unread.
    fn carried(&self, name: &str) -> Option<Carried> {
        self.field(name)?
            .to_text()
            .filter(|text| text.starts_with('{'))
            .map(Carried)
    }

    /// A whole number that fits `T`.
    fn integer<T: TryFrom<u64>>(&self) -> Option<T> {
        let number = self.number()?;
        let fits = number >= 0.0 && number.fract() == 0.0 && number <= 9_007_199_254_740_991.0;
        fits.then(|| T::try_from(number as u64).ok()).flatten()
    }

    /// A whole-number member that fits `T`.
    fn whole<T: TryFrom<u64>>(&self, name: &str) -> Option<T> {
        self.field(name)?.integer()
    }

    /// An optional member: `Some(None)` when absent or `null`, `None` when malformed.
    fn optional<T>(&self, name: &str, read: impl FnOnce(&Self) -> Option<T>) -> Option<Option<T>> {
        match self.field(name) {
            None => Some(None),
            Some(value) => read(&value).map(Some),
        }
    }
}

impl Json for JsValue {
    fn field(&self, name: &str) -> Option<Self> {
        if !self.is_object() {
            return None;
        }
        let value = js_sys::Reflect::get(self, &JsValue::from_str(name)).ok()?;
        (!value.is_undefined() && !value.is_null()).then_some(value)
    }

    fn string(&self) -> Option<String> {
        self.as_string()
    }

    fn number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(&self) -> Option<Vec<Self>> {
        js_sys::Array::is_array(self).then(|| js_sys::Array::from(self).iter().collect())
    }

    fn to_text(&self) -> Option<String> {
        js_sys::JSON::stringify(self).ok()?.as_string()
    }
}

/// A JSON object the page carries between the bridge and the server without reading it, as
/// the text it arrived as: a card's identity, the server's challenge, the card's proof, the
/// server's release (which may hold a PUK, so it is wiped once used) and the card's receipt.
/// Each is tagged by the card's profile; only the two ends know what is inside.
#[derive(Clone, PartialEq, Eq)]
pub struct Carried(String);

impl std::fmt::Debug for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Carried(…)")
    }
}

impl Carried {
    /// An object's JSON text, carried as it came (the server's whole answer, say).
    pub fn from_text(text: String) -> Self {
        Self(text)
    }

    /// The JSON text, as a request body.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// Overwrites the text before its memory is given back.
    pub fn wipe(mut self) {
        self.0.zeroize();
    }
}

/// A JSON object on its way out, members in order.
pub struct Out(Vec<(&'static str, Value)>);

/// A member's value.
pub enum Value {
    Text(String),
    Number(f64),
    Object(Out),
    Carried(Carried),
}

impl Out {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn text(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, Value::Text(value.into())));
        self
    }

    pub fn number(mut self, name: &'static str, value: impl Into<f64>) -> Self {
        self.0.push((name, Value::Number(value.into())));
        self
    }

    pub fn object(mut self, name: &'static str, value: Out) -> Self {
        self.0.push((name, Value::Object(value)));
        self
    }

    pub fn carried(mut self, name: &'static str, value: &Carried) -> Self {
        self.0.push((name, Value::Carried(value.clone())));
        self
    }

    /// Adds the members of `other` after this object's own.
    pub fn merge(mut self, other: Out) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The object in the browser's hands.
    pub fn to_js(&self) -> JsValue {
        let object = js_sys::Object::new();
        for (name, value) in &self.0 {
            let value = match value {
                Value::Text(text) => JsValue::from_str(text),
                Value::Number(number) => JsValue::from_f64(*number),
                Value::Object(inner) => inner.to_js(),
                Value::Carried(carried) => {
                    js_sys::JSON::parse(carried.text()).unwrap_or(JsValue::NULL)
                }
            };
            // Setting a plain data property on a fresh object cannot fail.
            let _ = js_sys::Reflect::set(&object, &JsValue::from_str(name), &value);
        }
        object.into()
    }

    /// The JSON text, for a request body.
    pub fn to_text(&self) -> String {
        js_sys::JSON::stringify(&self.to_js())
            .ok()
            .and_then(|text| text.as_string())
            .unwrap_or_default()
    }

    /// Overwrites every string in the object (it may hold a new passcode).
    pub fn wipe(mut self) {
        for (_, value) in &mut self.0 {
            match value {
                Value::Text(text) => text.zeroize(),
                Value::Number(_) => {}
                Value::Object(inner) => std::mem::replace(inner, Out::new()).wipe(),
                Value::Carried(carried) => carried.0.zeroize(),
            }
        }
    }
}

/// Where a journey stands, from the body of a successful journey request.
pub fn journey_view<J: Json>(json: &J) -> Option<JourneyView> {
    let view = match json.text("stage")?.as_str() {
        "awaiting_code" => JourneyView::AwaitingCode {
            email_hint: json.text("email_hint")?,
            expires_in_seconds: json.whole("expires_in_seconds")?,
            tries_left: json.whole("tries_left")?,
            resend_in_seconds: json.whole("resend_in_seconds")?,
        },
        "verified" => JourneyView::Verified {
            expires_in_seconds: json.whole("expires_in_seconds")?,
        },
        // The challenge is carried on unread: see [`challenge_of`].
        "card_accepted" => JourneyView::CardAccepted {
            card: card_id(json.text("card")?)?,
            expires_in_seconds: json.whole("expires_in_seconds")?,
            challenge: None,
        },
        "unlocked" => JourneyView::Unlocked {
            card: card_id(json.text("card")?)?,
        },
        "contact_ra" => JourneyView::ContactRa {
            reason: IneligibleReason::from_name(&json.text("reason")?)?,
        },
        "expired" => JourneyView::Expired,
        _ => return None,
    };
    Some(view)
}

/// The server's challenge for the accepted card, in the answer to presenting it.
pub fn challenge_of<J: Json>(json: &J) -> Option<Carried> {
    json.carried("challenge")
}

/// The answer to a bridge command, as the page reads it: [`unlock_protocol::bridge::Answer`]
/// with the card steps' objects carried on unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Hello {
        protocol_major: u16,
        protocol_minor: u16,
        host_version: String,
        profiles: Vec<String>,
    },
    Readers {
        readers: Vec<ReaderInfo>,
    },
    Watching,
    Card(ReadCard),
    /// The card's proof, for the server's release.
    Proof(Carried),
    /// The card's receipt, for the server.
    Unblocked {
        receipt: Carried,
        tries_left: u8,
    },
    /// Whether an unblock cut short took.
    UnblockChecked {
        card_state: CardState,
        tries_left: u8,
    },
}

/// What `read_card` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCard {
    /// The card's identity, presented to the server as it is.
    pub card: Carried,
    /// How the service names the card (its serial, or a PIV card's GUID).
    pub id: CardId,
    pub tries_left: u8,
}

/// The answer to a bridge command.
pub fn answer<J: Json>(json: &J) -> Option<Answer> {
    let answer = match json.text("type")?.as_str() {
        "hello" => Answer::Hello {
            protocol_major: json.whole("protocol_major")?,
            protocol_minor: json.whole("protocol_minor")?,
            host_version: json.text("host_version")?,
            profiles: json
                .field("profiles")?
                .items()?
                .iter()
                .map(Json::string)
                .collect::<Option<_>>()?,
        },
        "readers" => Answer::Readers {
            readers: json
                .field("readers")?
                .items()?
                .iter()
                .map(reader_info)
                .collect::<Option<_>>()?,
        },
        "watching" => Answer::Watching,
        "card" => {
            let card = json.field("card")?;
            Answer::Card(ReadCard {
                id: card_id(card.text("serial").or_else(|| card.text("guid"))?)?,
                card: json.carried("card")?,
                tries_left: json.whole("tries_left")?,
            })
        }
        "proof" => Answer::Proof(json.carried("proof")?),
        "unblocked" => Answer::Unblocked {
            receipt: json.carried("receipt")?,
            tries_left: json.whole("tries_left")?,
        },
        "unblock_checked" => Answer::UnblockChecked {
            card_state: match json.text("card_state")?.as_str() {
                "untouched" => CardState::Untouched,
                "unblocked" => CardState::Unblocked,
                _ => return None,
            },
            tries_left: json.whole("tries_left")?,
        },
        _ => return None,
    };
    Some(answer)
}

fn reader_info<J: Json>(json: &J) -> Option<ReaderInfo> {
    Some(ReaderInfo {
        name: json.text("name")?,
        card_present: json.field("card_present")?.boolean()?,
        atr: json.optional("atr", Json::string)?,
    })
}

/// A pushed card or reader event: `{"type": "event", "event": ..., "reader": ...}`.
pub fn event<J: Json>(json: &J) -> Option<EventKind> {
    if json.text("type")? != "event" {
        return None;
    }
    let reader = json.text("reader")?;
    let kind = match json.text("event")?.as_str() {
        "card_inserted" => EventKind::CardInserted { reader },
        "card_removed" => EventKind::CardRemoved { reader },
        "reader_added" => EventKind::ReaderAdded { reader },
        "reader_removed" => EventKind::ReaderRemoved { reader },
        _ => return None,
    };
    Some(kind)
}

/// `GET /api/allowed-domains`: `{"domains": [...]}`.
pub fn allowed_domains<J: Json>(json: &J) -> Option<Vec<String>> {
    json.field("domains")?
        .items()?
        .iter()
        .map(Json::string)
        .collect()
}

fn card_id(text: String) -> Option<CardId> {
    CardId::parse(&text).ok()
}

/// A bridge command, as the page sends it: [`unlock_protocol::bridge::Command`] with the
/// card steps' objects carried on unread.
#[derive(Debug)]
pub enum Command<'a> {
    Hello {
        protocol_major: u16,
        protocol_minor: u16,
    },
    Readers,
    Watch,
    ReadCard {
        reader: &'a str,
    },
    Challenge {
        reader: &'a str,
        challenge: &'a Carried,
    },
    Unblock {
        reader: &'a str,
        release: &'a Carried,
        new_passcode: &'a Passcode,
    },
    CheckUnblock {
        reader: &'a str,
        card: &'a CardId,
        new_passcode: &'a Passcode,
    },
}

/// A bridge command's own members, `type` first.
pub fn command(command: &Command<'_>) -> Out {
    let out = Out::new();
    match command {
        Command::Hello {
            protocol_major,
            protocol_minor,
        } => out
            .text("type", "hello")
            .number("protocol_major", *protocol_major)
            .number("protocol_minor", *protocol_minor),
        Command::Readers => out.text("type", "readers"),
        Command::Watch => out.text("type", "watch"),
        Command::ReadCard { reader } => out.text("type", "read_card").text("reader", *reader),
        Command::Challenge { reader, challenge } => out
            .text("type", "challenge")
            .text("reader", *reader)
            .carried("challenge", challenge),
        Command::Unblock {
            reader,
            release,
            new_passcode,
        } => out
            .text("type", "unblock")
            .text("reader", *reader)
            .carried("release", release)
            .text("new_passcode", new_passcode.expose()),
        Command::CheckUnblock {
            reader,
            card,
            new_passcode,
        } => out
            .text("type", "check_unblock")
            .text("reader", *reader)
            .text("card", card.as_str())
            .text("new_passcode", new_passcode.expose()),
    }
}

/// The native tests' side of [`Json`] and [`Out`]: serde_json values.
#[cfg(test)]
pub mod testing {
    use serde_json::{Value as JsonValue, json};

    use super::{Json, Out, Value};

    impl Json for JsonValue {
        fn field(&self, name: &str) -> Option<Self> {
            self.get(name).filter(|value| !value.is_null()).cloned()
        }

        fn string(&self) -> Option<String> {
            self.as_str().map(str::to_owned)
        }

        fn number(&self) -> Option<f64> {
            self.as_f64()
        }

        fn boolean(&self) -> Option<bool> {
            self.as_bool()
        }

        fn items(&self) -> Option<Vec<Self>> {
            self.as_array().cloned()
        }

        fn to_text(&self) -> Option<String> {
            Some(self.to_string())
        }
    }

    /// What a [`super::Carried`] holds, as serde reads it.
    pub fn carried_json(carried: &super::Carried) -> JsonValue {
        serde_json::from_str(carried.text()).expect("carried JSON")
    }

    /// A carried object made from a serde value.
    pub fn carry(value: &JsonValue) -> super::Carried {
        super::Carried(value.to_string())
    }

    /// What the browser would make of an [`Out`].
    pub fn to_json(out: &Out) -> JsonValue {
        let members = out.0.iter().map(|(name, value)| {
            let value = match value {
                Value::Text(text) => json!(text),
                Value::Number(number) => json!(*number as u64),
                Value::Object(inner) => to_json(inner),
                Value::Carried(carried) => carried_json(carried),
            };
            ((*name).to_owned(), value)
        });
        JsonValue::Object(members.collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use unlock_protocol::bridge::{self, Event, PROTOCOL_MAJOR, PROTOCOL_MINOR};
    use unlock_protocol::card_steps::{
        CardChallenge, CardIdentity, CardProof, CardReceipt, CardRelease, Certificate, Nonce,
        Signature,
    };
    use unlock_protocol::piv::Puk;
    use unlock_protocol::{CardGuid, CardSerial};

    use super::testing::{carried_json, carry, to_json};
    use super::*;

    fn serial() -> CardSerial {
        CardSerial::parse("2d6bddb8ad096c2d").unwrap()
    }

    fn guid() -> CardGuid {
        CardGuid::parse("3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b").unwrap()
    }

    fn a_block() -> bridge::Block {
        bridge::Block::try_from("d206290d1935d00cc7a1d6d9754a930f".to_owned()).unwrap()
    }

    fn identities() -> [CardIdentity; 2] {
        [
            CardIdentity::UnlockCr { serial: serial() },
            CardIdentity::Piv {
                guid: guid(),
                card_authentication: Certificate(vec![0x30, 0x82, 1, 2]),
                piv_authentication: Certificate(vec![0x30, 0x82, 3, 4]),
                puk_tries_left: Some(2),
            },
        ]
    }

    #[test]
    fn every_journey_view_reads_as_serde_writes_it() {
        let views = [
            JourneyView::AwaitingCode {
                email_hint: "d****@demo.example".into(),
                expires_in_seconds: 900,
                tries_left: 3,
                resend_in_seconds: 30,
            },
            JourneyView::Verified {
                expires_in_seconds: 900,
            },
            JourneyView::CardAccepted {
                card: serial().into(),
                expires_in_seconds: 600,
                challenge: None,
            },
            JourneyView::Unlocked {
                card: serial().into(),
            },
            JourneyView::Unlocked {
                card: guid().into(),
            },
            JourneyView::Expired,
        ]
        .into_iter()
        .chain(IneligibleReason::ALL.map(|reason| JourneyView::ContactRa { reason }));
        for view in views {
            let json = serde_json::to_value(&view).unwrap();
            assert_eq!(journey_view(&json), Some(view), "{json}");
        }
    }

    #[test]
    fn the_challenge_in_an_accepted_card_is_carried_as_serde_wrote_it() {
        for challenge in [
            CardChallenge::UnlockCr { serial: serial() },
            CardChallenge::Piv {
                guid: guid(),
                nonce: Nonce([7; 32]),
            },
        ] {
            let view = JourneyView::CardAccepted {
                card: guid().into(),
                expires_in_seconds: 600,
                challenge: Some(challenge.clone()),
            };
            let json = serde_json::to_value(&view).unwrap();
            let carried = challenge_of(&json).expect("a challenge");
            assert_eq!(
                carried_json(&carried),
                serde_json::to_value(&challenge).unwrap()
            );
            assert!(matches!(
                journey_view(&json),
                Some(JourneyView::CardAccepted {
                    challenge: None,
                    ..
                })
            ));
        }
    }

    #[test]
    fn journey_views_serde_refuses_are_refused() {
        for json in [
            json!({"stage": "verified"}),
            json!({"stage": "verified", "expires_in_seconds": -1}),
            json!({"stage": "verified", "expires_in_seconds": "900"}),
            json!({"stage": "awaiting_code", "email_hint": "d", "expires_in_seconds": 9,
                   "tries_left": 300, "resend_in_seconds": 0}),
            json!({"stage": "unlocked", "card": "not hex"}),
            json!({"stage": "contact_ra", "reason": "bored"}),
            json!({"stage": "on_the_moon"}),
            json!({"expires_in_seconds": 900}),
            json!("expired"),
        ] {
            assert!(
                serde_json::from_value::<JourneyView>(json.clone()).is_err(),
                "serde accepts {json}"
            );
            assert_eq!(journey_view(&json), None, "{json}");
        }
        // Members a newer server adds are ignored, as serde ignores them.
        let json = json!({"stage": "verified", "expires_in_seconds": 5, "new": true});
        assert_eq!(
            journey_view(&json),
            serde_json::from_value::<JourneyView>(json).ok()
        );
    }

    #[test]
    fn every_answer_reads_as_serde_writes_it() {
        let readers = vec![
            ReaderInfo {
                name: "Virtual PCD 00 00".into(),
                card_present: true,
                atr: Some("3b8880".into()),
            },
            ReaderInfo {
                name: "Other".into(),
                card_present: false,
                atr: None,
            },
        ];
        let plain = [
            (
                bridge::Answer::Hello {
                    protocol_major: PROTOCOL_MAJOR,
                    protocol_minor: PROTOCOL_MINOR,
                    host_version: "0.1.0".into(),
                    profiles: vec!["unlock-cr/1".into(), "piv/1".into()],
                },
                Answer::Hello {
                    protocol_major: PROTOCOL_MAJOR,
                    protocol_minor: PROTOCOL_MINOR,
                    host_version: "0.1.0".into(),
                    profiles: vec!["unlock-cr/1".into(), "piv/1".into()],
                },
            ),
            (
                bridge::Answer::Readers {
                    readers: readers.clone(),
                },
                Answer::Readers { readers },
            ),
            (
                bridge::Answer::Readers { readers: vec![] },
                Answer::Readers { readers: vec![] },
            ),
            (bridge::Answer::Watching, Answer::Watching),
        ];
        for (sent, read) in plain {
            let json = serde_json::to_value(&sent).unwrap();
            assert_eq!(answer(&json), Some(read), "{json}");
        }
        // The card steps' objects arrive carried, exactly as serde wrote them.
        for card in identities() {
            let sent = bridge::Answer::Card(bridge::CardInfo {
                card: card.clone(),
                tries_left: 0,
            });
            let json = serde_json::to_value(&sent).unwrap();
            let Some(Answer::Card(read)) = answer(&json) else {
                panic!("not a card: {json}");
            };
            assert_eq!(read.id, card.card_id());
            assert_eq!(read.tries_left, 0);
            assert_eq!(
                carried_json(&read.card),
                serde_json::to_value(&card).unwrap()
            );
        }
        for proof in [
            CardProof::UnlockCr {
                challenge: a_block(),
            },
            CardProof::Piv {
                signature: Signature(vec![0x30, 0x45, 2]),
            },
        ] {
            let json = serde_json::to_value(bridge::Answer::Proof {
                proof: proof.clone(),
            })
            .unwrap();
            let Some(Answer::Proof(read)) = answer(&json) else {
                panic!("not a proof: {json}");
            };
            assert_eq!(carried_json(&read), serde_json::to_value(&proof).unwrap());
        }
        for receipt in [
            CardReceipt::UnlockCr { receipt: a_block() },
            CardReceipt::Piv {
                signature: Signature(vec![0x30, 0x44]),
            },
        ] {
            let json = serde_json::to_value(bridge::Answer::Unblocked {
                receipt: receipt.clone(),
                tries_left: 3,
            })
            .unwrap();
            let Some(Answer::Unblocked {
                receipt: read,
                tries_left: 3,
            }) = answer(&json)
            else {
                panic!("not an unblock: {json}");
            };
            assert_eq!(carried_json(&read), serde_json::to_value(&receipt).unwrap());
        }
        for (card_state, tries_left) in [(CardState::Untouched, 0), (CardState::Unblocked, 3)] {
            let sent = bridge::Answer::UnblockChecked {
                card_state,
                tries_left,
            };
            let json = serde_json::to_value(&sent).unwrap();
            assert_eq!(
                answer(&json),
                Some(Answer::UnblockChecked {
                    card_state,
                    tries_left
                }),
                "{json}"
            );
        }
        for json in [
            json!({"type": "unblock_checked", "card_state": "half", "tries_left": 3}),
            json!({"type": "proof", "proof": "00"}),
            json!({"type": "card", "card": {"profile": "unlock-cr/1", "serial": "00"}, "tries_left": 3}),
            json!({"type": "readers", "readers": [{"name": "R"}]}),
            json!({"type": "readers", "readers": [{"name": "R", "card_present": true, "atr": 5}]}),
            json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0, "host_version": "1",
                   "profiles": [1]}),
            json!({"type": "raw_apdu"}),
        ] {
            assert!(serde_json::from_value::<bridge::Answer>(json.clone()).is_err());
            assert_eq!(answer(&json), None, "{json}");
        }
    }

    #[test]
    fn every_event_reads_as_serde_writes_it() {
        for kind in [
            EventKind::CardInserted { reader: "R".into() },
            EventKind::CardRemoved { reader: "R".into() },
            EventKind::ReaderAdded { reader: "R".into() },
            EventKind::ReaderRemoved { reader: "R".into() },
        ] {
            let json = serde_json::to_value(Event { kind: kind.clone() }).unwrap();
            assert_eq!(event(&json), Some(kind), "{json}");
        }
        let json = json!({"type": "event", "event": "unknown", "reader": "R"});
        assert!(serde_json::from_value::<Event>(json.clone()).is_err());
        assert_eq!(event(&json), None);
    }

    #[test]
    fn every_command_is_written_as_serde_writes_it() {
        let passcode = Passcode::parse("905173").unwrap();
        let challenges = [
            CardChallenge::UnlockCr { serial: serial() },
            CardChallenge::Piv {
                guid: guid(),
                nonce: Nonce([9; 32]),
            },
        ];
        let releases = [
            CardRelease::UnlockCr {
                serial: serial(),
                cryptogram: a_block(),
            },
            CardRelease::Piv {
                guid: guid(),
                puks: vec![Puk::parse("40719263").unwrap()],
                next_puk: Puk::parse("88120457").unwrap(),
                receipt_nonce: Nonce([5; 32]),
            },
        ];
        let mut pairs = vec![
            (
                bridge::Command::Hello {
                    protocol_major: PROTOCOL_MAJOR,
                    protocol_minor: PROTOCOL_MINOR,
                },
                command(&Command::Hello {
                    protocol_major: PROTOCOL_MAJOR,
                    protocol_minor: PROTOCOL_MINOR,
                }),
            ),
            (bridge::Command::Readers, command(&Command::Readers)),
            (bridge::Command::Watch, command(&Command::Watch)),
            (
                bridge::Command::ReadCard { reader: "R".into() },
                command(&Command::ReadCard { reader: "R" }),
            ),
        ];
        for card in [CardId::from(serial()), CardId::from(guid())] {
            pairs.push((
                bridge::Command::CheckUnblock {
                    reader: "R".into(),
                    card: card.clone(),
                    new_passcode: passcode.clone(),
                },
                command(&Command::CheckUnblock {
                    reader: "R",
                    card: &card,
                    new_passcode: &passcode,
                }),
            ));
        }
        for challenge in challenges {
            let carried = carry(&serde_json::to_value(&challenge).unwrap());
            pairs.push((
                bridge::Command::Challenge {
                    reader: "R".into(),
                    challenge,
                },
                command(&Command::Challenge {
                    reader: "R",
                    challenge: &carried,
                }),
            ));
        }
        for release in releases {
            let carried = carry(&serde_json::to_value(&release).unwrap());
            pairs.push((
                bridge::Command::Unblock {
                    reader: "R".into(),
                    release,
                    new_passcode: passcode.clone(),
                },
                command(&Command::Unblock {
                    reader: "R",
                    release: &carried,
                    new_passcode: &passcode,
                }),
            ));
        }
        for (typed, written) in pairs {
            assert_eq!(to_json(&written), serde_json::to_value(&typed).unwrap());
        }
    }
}
