//! The envelope around requests and replies on the page's `window.postMessage` channel
//! with the extension's content script, and the reading of what comes back.

use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as ValueError, StrDeserializer};
use unlock_protocol::bridge::{BridgeError, ErrorCode, EventKind};

use super::unexpected_answer;
use crate::wire::{self, Json, Out};

/// Names the messages of this service among everything posted to the window.
pub const CHANNEL: &str = "smartcard-unlock";

/// A reply's answer as it came (read by the caller, who knows its type), or its error.
pub type Outcome<J> = Result<J, BridgeError>;

/// A request on its way to the extension: `{channel, direction: "to-extension", request}`,
/// the request being the page's id, then the command's own members (never an origin).
pub fn envelope(id: u64, body: Out) -> Out {
    let request = Out::new().number("id", id as f64).merge(body);
    Out::new()
        .text("channel", CHANNEL)
        .text("direction", "to-extension")
        .object("request", request)
}

/// Answered by the extension's content script alone.
pub fn ping() -> Out {
    Out::new().text("type", "ping")
}

/// A message from the extension to the page.
#[derive(Debug)]
pub enum Inbound<J> {
    Reply { id: u64, outcome: Outcome<J> },
    Event(EventKind),
}

/// Reads a message posted to the page; anything that is not a reply or an event on our
/// channel, towards the page, is `None`. Nothing past the channel and direction is read
/// of other messages: the page's own requests, which may carry a new passcode, come back
/// to its listener too.
pub fn classify<J: Json>(data: &J) -> Option<Inbound<J>> {
    if data.text("channel")? != CHANNEL || data.text("direction")? != "to-page" {
        return None;
    }
    // A malformed reply or event spoils the whole message.
    let reply = data.optional("reply", |reply| {
        Some((
            reply.whole::<u64>("id")?,
            reply.field("ok"),
            reply.optional("err", bridge_error)?,
        ))
    })?;
    let event = data.optional("event", wire::event)?;
    if let Some((id, ok, err)) = reply {
        let outcome = match (ok, err) {
            (Some(answer), None) => Ok(answer),
            (_, Some(error)) => Err(error),
            (None, None) => Err(unexpected_answer()),
        };
        return Some(Inbound::Reply { id, outcome });
    }
    Some(Inbound::Event(event?))
}

/// The extension's or host's error; a code newer than this page is treated as internal.
fn bridge_error<J: Json>(error: &J) -> Option<BridgeError> {
    let code = error.text("code")?;
    let message = error.optional("message", Json::string)?.unwrap_or_default();
    let de: StrDeserializer<'_, ValueError> = code.as_str().into_deserializer();
    let code = ErrorCode::deserialize(de).unwrap_or(ErrorCode::Internal);
    Some(if message.trim().is_empty() {
        BridgeError::new(code)
    } else {
        BridgeError::with_message(code, message)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::wire::testing::to_json;

    fn classify_text(text: &str) -> Option<Inbound<Value>> {
        classify(&serde_json::from_str::<Value>(text).unwrap())
    }

    #[test]
    fn requests_are_wrapped_in_the_envelope_with_an_id_and_no_origin() {
        let command = wire::Command::ReadCard {
            reader: "Virtual PCD 00 00",
        };
        assert_eq!(
            to_json(&envelope(7, wire::command(&command))),
            json!({"channel": "smartcard-unlock", "direction": "to-extension",
                   "request": {"id": 7, "type": "read_card", "reader": "Virtual PCD 00 00"}})
        );
        assert_eq!(
            to_json(&envelope(1, ping()))["request"],
            json!({"id": 1, "type": "ping"})
        );
    }

    #[test]
    fn replies_and_events_are_read_from_the_envelope() {
        let Some(Inbound::Reply {
            id: 3,
            outcome: Ok(answer),
        }) = classify_text(
            r#"{"channel":"smartcard-unlock","direction":"to-page",
                "reply":{"id":3,"ok":{"type":"watching"}}}"#,
        )
        else {
            panic!("not an answer");
        };
        assert_eq!(answer, json!({"type": "watching"}));
        let Some(Inbound::Reply {
            id: 4,
            outcome: Err(error),
        }) = classify_text(
            r#"{"channel":"smartcard-unlock","direction":"to-page",
                "reply":{"id":4,"err":{"code":"host_missing","message":"no host"}}}"#,
        )
        else {
            panic!("not an error reply");
        };
        assert_eq!(error.code, ErrorCode::HostMissing);
        assert_eq!(error.message, "no host");
        let Some(Inbound::Event(event)) = classify_text(
            r#"{"channel":"smartcard-unlock","direction":"to-page",
                "event":{"type":"event","event":"card_removed","reader":"R"}}"#,
        ) else {
            panic!("not an event");
        };
        assert_eq!(event, EventKind::CardRemoved { reader: "R".into() });
        let Some(Inbound::Reply {
            outcome: Err(error),
            ..
        }) = classify_text(
            r#"{"channel":"smartcard-unlock","direction":"to-page","reply":{"id":5}}"#,
        )
        else {
            panic!("not an empty reply");
        };
        assert_eq!(error, unexpected_answer());
    }

    #[test]
    fn other_messages_are_ignored() {
        for text in [
            r#"{"channel":"smartcard-unlock","direction":"to-extension","request":{"id":1,"type":"ping"}}"#,
            r#"{"channel":"other","direction":"to-page","reply":{"id":1,"ok":{}}}"#,
            r#"{"direction":"to-page","reply":{"id":1,"ok":{}}}"#,
            r#"{"channel":"smartcard-unlock","direction":"to-page","event":{"type":"event","event":"unknown","reader":"R"}}"#,
            r#"{"channel":"smartcard-unlock","direction":"to-page","reply":{"ok":{}}}"#,
            r#"{"channel":"smartcard-unlock","direction":"to-page","reply":{"id":1,"err":{"message":"m"}}}"#,
            r#"{"channel":"smartcard-unlock","direction":"to-page"}"#,
            r#""just a string""#,
        ] {
            assert!(classify_text(text).is_none(), "{text}");
        }
    }

    #[test]
    fn unknown_error_codes_become_internal_and_empty_messages_get_the_default() {
        let error = bridge_error(&json!({"code": "from_the_future", "message": "Something."}));
        assert_eq!(error.unwrap().code, ErrorCode::Internal);
        let error = bridge_error(&json!({"code": "card_in_use", "message": ""}));
        assert_eq!(error, Some(BridgeError::new(ErrorCode::CardInUse)));
        let error = bridge_error(&json!({"code": "card_in_use"}));
        assert_eq!(error, Some(BridgeError::new(ErrorCode::CardInUse)));
    }
}
