//! The JSON shapes of the API and of the bridge's messages, read and written by hand on top
//! of the browser's own `JSON.parse` and `JSON.stringify`.
//!
//! Why not serde: its derived code for the protocol's tagged enums, with serde_json, was a
//! fifth of the page's WASM. The protocol crate's serde derives stay the definition of the
//! wire format: the tests below check every shape here against them.

use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::bridge::{Answer, Block, CardInfo, Command, EventKind, ReaderInfo};
use unlock_protocol::{CardSerial, Passcode};
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

    /// A string member.
    fn text(&self, name: &str) -> Option<String> {
        self.field(name)?.string()
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
}

/// A JSON object on its way out, members in order.
pub struct Out(Vec<(&'static str, Value)>);

/// A member's value.
pub enum Value {
    Text(String),
    Number(f64),
    Object(Out),
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
        "card_accepted" => JourneyView::CardAccepted {
            serial: serial(json)?,
            expires_in_seconds: json.whole("expires_in_seconds")?,
        },
        "unlocked" => JourneyView::Unlocked {
            serial: serial(json)?,
        },
        "contact_ra" => JourneyView::ContactRa {
            reason: IneligibleReason::from_name(&json.text("reason")?)?,
        },
        "expired" => JourneyView::Expired,
        _ => return None,
    };
    Some(view)
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
        "card" => Answer::Card(CardInfo {
            profile: json.text("profile")?,
            serial: serial(json)?,
            tries_left: json.whole("tries_left")?,
        }),
        "challenge" => Answer::Challenge {
            challenge: block(json, "challenge")?,
        },
        "unblocked" => Answer::Unblocked {
            receipt: block(json, "receipt")?,
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

/// A 16-byte block (challenge, cryptogram, receipt) member, as 32 hex digits.
/// `GET /api/allowed-domains`: `{"domains": [...]}`.
pub fn allowed_domains<J: Json>(json: &J) -> Option<Vec<String>> {
    json.field("domains")?
        .items()?
        .iter()
        .map(Json::string)
        .collect()
}

pub fn block<J: Json>(json: &J, name: &str) -> Option<Block> {
    Block::try_from(json.text(name)?).ok()
}

fn serial<J: Json>(json: &J) -> Option<CardSerial> {
    CardSerial::parse(&json.text("serial")?).ok()
}

/// A bridge command's own members, `type` first.
pub fn command(command: &Command) -> Out {
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
        Command::ReadCard { reader } => out.text("type", "read_card").text("reader", reader),
        Command::Challenge { reader, serial } => out
            .text("type", "challenge")
            .text("reader", reader)
            .text("serial", serial.as_str()),
        Command::Unblock {
            reader,
            serial,
            cryptogram,
            new_passcode,
        } => out
            .text("type", "unblock")
            .text("reader", reader)
            .text("serial", serial.as_str())
            .text("cryptogram", *cryptogram)
            .text("new_passcode", Passcode::expose(new_passcode)),
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
    }

    /// What the browser would make of an [`Out`].
    pub fn to_json(out: &Out) -> JsonValue {
        let members = out.0.iter().map(|(name, value)| {
            let value = match value {
                Value::Text(text) => json!(text),
                Value::Number(number) => json!(*number as u64),
                Value::Object(inner) => to_json(inner),
            };
            ((*name).to_owned(), value)
        });
        JsonValue::Object(members.collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use unlock_protocol::bridge::{Event, PROTOCOL_MAJOR, PROTOCOL_MINOR};

    use super::testing::to_json;
    use super::*;

    fn serial() -> CardSerial {
        CardSerial::parse("2d6bddb8ad096c2d").unwrap()
    }

    fn a_block() -> Block {
        Block::try_from("d206290d1935d00cc7a1d6d9754a930f".to_owned()).unwrap()
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
                serial: serial(),
                expires_in_seconds: 600,
            },
            JourneyView::Unlocked { serial: serial() },
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
    fn journey_views_serde_refuses_are_refused() {
        for json in [
            json!({"stage": "verified"}),
            json!({"stage": "verified", "expires_in_seconds": -1}),
            json!({"stage": "verified", "expires_in_seconds": "900"}),
            json!({"stage": "awaiting_code", "email_hint": "d", "expires_in_seconds": 9,
                   "tries_left": 300, "resend_in_seconds": 0}),
            json!({"stage": "unlocked", "serial": "not hex"}),
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
        let answers = [
            Answer::Hello {
                protocol_major: PROTOCOL_MAJOR,
                protocol_minor: PROTOCOL_MINOR,
                host_version: "0.1.0".into(),
                profiles: vec!["unlock-cr/1".into()],
            },
            Answer::Readers {
                readers: vec![
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
                ],
            },
            Answer::Readers { readers: vec![] },
            Answer::Watching,
            Answer::Card(CardInfo {
                profile: "unlock-cr/1".into(),
                serial: serial(),
                tries_left: 0,
            }),
            Answer::Challenge {
                challenge: a_block(),
            },
            Answer::Unblocked {
                receipt: a_block(),
                tries_left: 3,
            },
        ];
        for answer in answers {
            let json = serde_json::to_value(&answer).unwrap();
            assert_eq!(super::answer(&json), Some(answer), "{json}");
        }
        for json in [
            json!({"type": "challenge", "challenge": "00"}),
            json!({"type": "readers", "readers": [{"name": "R"}]}),
            json!({"type": "readers", "readers": [{"name": "R", "card_present": true, "atr": 5}]}),
            json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0, "host_version": "1",
                   "profiles": [1]}),
            json!({"type": "raw_apdu"}),
        ] {
            assert!(serde_json::from_value::<Answer>(json.clone()).is_err());
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
        let commands = [
            Command::Hello {
                protocol_major: PROTOCOL_MAJOR,
                protocol_minor: PROTOCOL_MINOR,
            },
            Command::Readers,
            Command::Watch,
            Command::ReadCard { reader: "R".into() },
            Command::Challenge {
                reader: "R".into(),
                serial: serial(),
            },
            Command::Unblock {
                reader: "R".into(),
                serial: serial(),
                cryptogram: a_block(),
                new_passcode: Passcode::parse("905173").unwrap(),
            },
        ];
        for command in commands {
            assert_eq!(
                to_json(&super::command(&command)),
                serde_json::to_value(&command).unwrap()
            );
        }
    }
}
