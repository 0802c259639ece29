//! Reading a frame's text as a request: JSON first, then the protocol's shape, keeping the
//! request's id when only the second fails so the refusal reaches the page that asked.

use unlock_protocol::bridge::Request;

/// Why a frame's text is not a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not JSON at all: refused under id 0.
    NotJson,
    /// JSON that does not match the protocol: refused under its id (0 when it has none).
    NotProtocol { id: u64 },
}

/// The request in `text`. serde's messages can quote the values they refuse, a passcode
/// among them, so none is kept.
pub fn parse(text: &str) -> Result<Request, Unreadable> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| Unreadable::NotJson)?;
    let id = value
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    serde_json::from_value(value).map_err(|_| Unreadable::NotProtocol { id })
}

#[cfg(test)]
mod tests {
    use unlock_protocol::bridge::Command;

    use super::*;

    #[test]
    fn a_request_parses_with_its_command() {
        let request =
            parse(r#"{"id":4,"origin":"https://unlock.example.org","type":"watch"}"#).unwrap();
        assert_eq!((request.id, request.command), (4, Command::Watch));
    }

    #[test]
    fn refusals_keep_the_id_when_there_is_one() {
        assert_eq!(parse("{\"id\":"), Err(Unreadable::NotJson));
        assert_eq!(
            parse(r#"{"id":9,"origin":"o","type":"raw_apdu"}"#),
            Err(Unreadable::NotProtocol { id: 9 })
        );
        assert_eq!(
            parse(r#"{"id":-1,"type":"watch"}"#),
            Err(Unreadable::NotProtocol { id: 0 })
        );
    }
}
