//! The envelope around requests and replies on the page's `window.postMessage` channel
//! with the extension's content script, and the reading of what comes back.

use serde::de::IntoDeserializer;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use unlock_protocol::bridge::{BridgeError, ErrorCode, Event, EventKind};

use super::unexpected_answer;

/// Names the messages of this service among everything posted to the window.
pub const CHANNEL: &str = "smartcard-unlock";

/// A reply's answer as it came (parsed by the caller, who knows its type), or its error.
pub type Outcome = Result<Box<RawValue>, BridgeError>;

/// A request on its way to the extension: `{channel, direction: "to-extension", request}`.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, B: Serialize> {
    pub channel: &'static str,
    pub direction: &'static str,
    pub request: Outgoing<'a, B>,
}

/// The request itself: the page's id, then the command's own fields (never an origin).
#[derive(Debug, Serialize)]
pub struct Outgoing<'a, B: Serialize> {
    pub id: u64,
    #[serde(flatten)]
    pub body: &'a B,
}

/// Answered by the extension's content script alone.
#[derive(Debug, Serialize)]
pub struct Ping {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A message from the extension to the page.
#[derive(Debug)]
pub enum Inbound {
    Reply { id: u64, outcome: Outcome },
    Event(EventKind),
}

#[derive(Deserialize)]
struct IncomingEnvelope {
    channel: String,
    direction: String,
    #[serde(default)]
    reply: Option<RawReply>,
    #[serde(default)]
    event: Option<Event>,
}

#[derive(Deserialize)]
struct RawReply {
    id: u64,
    #[serde(default)]
    ok: Option<Box<RawValue>>,
    #[serde(default)]
    err: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads a message posted to the page; anything that is not a reply or an event on our
/// channel, towards the page, is `None`.
pub fn classify(text: &str) -> Option<Inbound> {
    let envelope: IncomingEnvelope = serde_json::from_str(text).ok()?;
    if envelope.channel != CHANNEL || envelope.direction != "to-page" {
        return None;
    }
    if let Some(reply) = envelope.reply {
        let outcome = match (reply.ok, reply.err) {
            (Some(answer), None) => Ok(answer),
            (_, Some(error)) => Err(bridge_error(&error)),
            (None, None) => Err(unexpected_answer()),
        };
        return Some(Inbound::Reply {
            id: reply.id,
            outcome,
        });
    }
    Some(Inbound::Event(envelope.event?.kind))
}

/// The extension's or host's error; a code newer than this page is treated as internal.
fn bridge_error(error: &RawError) -> BridgeError {
    let de: StrDeserializer<'_, ValueError> = error.code.as_str().into_deserializer();
    let code = ErrorCode::deserialize(de).unwrap_or(ErrorCode::Internal);
    if error.message.trim().is_empty() {
        BridgeError::new(code)
    } else {
        BridgeError::with_message(code, error.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use unlock_protocol::bridge::Command;

    use super::*;

    #[test]
    fn requests_are_wrapped_in_the_envelope_with_an_id_and_no_origin() {
        let command = Command::ReadCard {
            reader: "Virtual PCD 00 00".into(),
        };
        let envelope = Envelope {
            channel: CHANNEL,
            direction: "to-extension",
            request: Outgoing {
                id: 7,
                body: &command,
            },
        };
        assert_eq!(
            serde_json::to_value(&envelope).unwrap(),
            json!({"channel": "smartcard-unlock", "direction": "to-extension",
                   "request": {"id": 7, "type": "read_card", "reader": "Virtual PCD 00 00"}})
        );
        let ping = Outgoing {
            id: 1,
            body: &Ping { kind: "ping" },
        };
        assert_eq!(
            serde_json::to_value(&ping).unwrap(),
            json!({"id": 1, "type": "ping"})
        );
    }

    #[test]
    fn replies_and_events_are_read_from_the_envelope() {
        let Some(Inbound::Reply {
            id: 3,
            outcome: Ok(answer),
        }) = classify(
            r#"{"channel":"smartcard-unlock","direction":"to-page",
                "reply":{"id":3,"ok":{"type":"watching"}}}"#,
        )
        else {
            panic!("not an answer");
        };
        assert_eq!(answer.get(), r#"{"type":"watching"}"#);
        let Some(Inbound::Reply {
            id: 4,
            outcome: Err(error),
        }) = classify(
            r#"{"channel":"smartcard-unlock","direction":"to-page",
                "reply":{"id":4,"err":{"code":"host_missing","message":"no host"}}}"#,
        )
        else {
            panic!("not an error reply");
        };
        assert_eq!(error.code, ErrorCode::HostMissing);
        assert_eq!(error.message, "no host");
        let Some(Inbound::Event(event)) = classify(
            r#"{"channel":"smartcard-unlock","direction":"to-page",
                "event":{"type":"event","event":"card_removed","reader":"R"}}"#,
        ) else {
            panic!("not an event");
        };
        assert_eq!(event, EventKind::CardRemoved { reader: "R".into() });
    }

    #[test]
    fn other_messages_are_ignored() {
        for text in [
            r#"{"channel":"smartcard-unlock","direction":"to-extension","request":{"id":1,"type":"ping"}}"#,
            r#"{"channel":"other","direction":"to-page","reply":{"id":1,"ok":{}}}"#,
            r#"{"direction":"to-page","reply":{"id":1,"ok":{}}}"#,
            r#"{"channel":"smartcard-unlock","direction":"to-page","event":{"type":"event","event":"unknown","reader":"R"}}"#,
            r#""just a string""#,
        ] {
            assert!(classify(text).is_none(), "{text}");
        }
    }

    #[test]
    fn unknown_error_codes_become_internal_and_empty_messages_get_the_default() {
        let error = bridge_error(&RawError {
            code: "from_the_future".into(),
            message: "Something.".into(),
        });
        assert_eq!(error.code, ErrorCode::Internal);
        let error = bridge_error(&RawError {
            code: "card_in_use".into(),
            message: String::new(),
        });
        assert_eq!(error, BridgeError::new(ErrorCode::CardInUse));
    }
}
