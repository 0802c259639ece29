//! The bridge's side of native messaging: the frame reader and the request parser, which
//! read whatever the browser (or a page behind the extension) sends.

use std::io::Cursor;

use unlock_bridge::framing::{FrameError, read_frame, write_frame};
use unlock_bridge::request::{self, Unreadable};
use unlock_protocol::bridge::MAX_REQUEST_BYTES;

/// A stream of frames, read as the host reads them (on past refused frames, stopping where
/// it stops), each frame's text parsed as a request.
pub fn bridge_frames(data: &[u8]) {
    let mut input = Cursor::new(data);
    loop {
        let start = position(&input);
        match read_frame(&mut input) {
            Ok(Some(text)) => {
                let frame = &data[start..position(&input)];
                assert!(text.len() <= MAX_REQUEST_BYTES);
                assert_eq!(
                    frame.len(),
                    4 + text.len(),
                    "a frame is a length and its text"
                );
                let mut written = Vec::new();
                write_frame(&mut written, &text).expect("a frame that was read can be written");
                assert_eq!(written, frame, "a frame is written as it was read");
                parse_request(&text);
            }
            Ok(None) => {
                assert_eq!(start, data.len(), "the stream ends between frames");
                break;
            }
            Err(FrameError::TooLarge(length)) => assert!(length > MAX_REQUEST_BYTES),
            Err(FrameError::Empty | FrameError::NotText) => {}
            Err(FrameError::Truncated | FrameError::Io(_)) => break,
        }
    }
}

/// One frame's text (when it is UTF-8, as the frame reader lets through) as a request.
pub fn bridge_request(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        parse_request(text);
    }
}

/// Parses `text`; a request must write back to JSON that parses to the same request.
fn parse_request(text: &str) {
    match request::parse(text) {
        Ok(parsed) => {
            let json = serde_json::to_string(&parsed).expect("a request writes as JSON");
            assert_eq!(request::parse(&json), Ok(parsed), "{json}");
        }
        Err(Unreadable::NotJson) => {
            assert!(serde_json::from_str::<serde_json::Value>(text).is_err());
        }
        Err(Unreadable::NotProtocol { .. }) => {}
    }
}

fn position(input: &Cursor<&[u8]>) -> usize {
    usize::try_from(input.position()).unwrap_or(usize::MAX)
}
