//! Native messaging's framing: each message is a 32-bit length in the machine's byte order,
//! then that many bytes of UTF-8 JSON. Standard output carries frames and nothing else.

use std::io::{self, Read, Write};

use unlock_protocol::bridge::{MAX_REPLY_BYTES, MAX_REQUEST_BYTES};

/// Why an inbound frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length says more than the host accepts; the body has been skipped so the stream
    /// stays in step.
    #[error("a request of {0} bytes is over the limit of {MAX_REQUEST_BYTES}")]
    TooLarge(usize),
    #[error("an empty request")]
    Empty,
    #[error("a request that is not UTF-8 text")]
    NotText,
    /// The browser closed the pipe mid-frame.
    #[error("the browser closed the connection in the middle of a request")]
    Truncated,
    #[error("reading a request: {0}")]
    Io(#[from] io::Error),
}

/// Reads one frame's text; `Ok(None)` when the browser closed the pipe between frames.
pub fn read_frame(input: &mut impl Read) -> Result<Option<String>, FrameError> {
    let mut length = [0u8; 4];
    match read_full(input, &mut length)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(FrameError::Truncated),
    }
    let length = usize::try_from(u32::from_ne_bytes(length)).unwrap_or(usize::MAX);
    if length == 0 {
        return Err(FrameError::Empty);
    }
    if length > MAX_REQUEST_BYTES {
        let skipped = io::copy(&mut input.take(length as u64), &mut io::sink())?;
        if usize::try_from(skipped).unwrap_or(0) < length {
            return Err(FrameError::Truncated);
        }
        return Err(FrameError::TooLarge(length));
    }
    let mut body = vec![0u8; length];
    if read_full(input, &mut body)? < length {
        return Err(FrameError::Truncated);
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| FrameError::NotText)
}

/// Reads until `buffer` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Writes one frame and flushes it. Messages of 1 MB or more are refused before anything is
/// written, since the browser would drop the connection.
pub fn write_frame(output: &mut impl Write, json: &str) -> io::Result<()> {
    if json.len() > MAX_REPLY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a reply must be under 1 MB",
        ));
    }
    let length = u32::try_from(json.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "reply too long"))?;
    output.write_all(&[&length.to_ne_bytes()[..], json.as_bytes()].concat())?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        [&u32::try_from(body.len()).unwrap().to_ne_bytes()[..], body].concat()
    }

    /// Hands out at most one byte per read, as a pipe may.
    struct Trickle(Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let end = buffer.len().min(1);
            self.0.read(&mut buffer[..end])
        }
    }

    #[test]
    fn reads_frames_even_from_short_reads() {
        let bytes = [frame(br#"{"id":1}"#), frame(br#"{"id":2}"#)].concat();
        let mut input = Trickle(Cursor::new(bytes));
        assert_eq!(
            read_frame(&mut input).unwrap().as_deref(),
            Some(r#"{"id":1}"#)
        );
        assert_eq!(
            read_frame(&mut input).unwrap().as_deref(),
            Some(r#"{"id":2}"#)
        );
        assert!(read_frame(&mut input).unwrap().is_none());
    }

    #[test]
    fn refuses_empty_oversize_truncated_and_non_text_frames() {
        assert!(matches!(
            read_frame(&mut Cursor::new(frame(b""))),
            Err(FrameError::Empty)
        ));
        assert!(matches!(
            read_frame(&mut Cursor::new(frame(&[0xFF, 0xFE]))),
            Err(FrameError::NotText)
        ));
        assert!(matches!(
            read_frame(&mut Cursor::new(vec![1, 0])),
            Err(FrameError::Truncated)
        ));
        let mut cut = frame(br#"{"id":1}"#);
        cut.truncate(6);
        assert!(matches!(
            read_frame(&mut Cursor::new(cut)),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn an_oversize_frame_is_skipped_so_the_next_one_still_reads() {
        let big = vec![b' '; MAX_REQUEST_BYTES + 1];
        let mut input = Cursor::new([frame(&big), frame(br#"{"id":9}"#)].concat());
        assert!(
            matches!(read_frame(&mut input), Err(FrameError::TooLarge(n)) if n == MAX_REQUEST_BYTES + 1)
        );
        assert_eq!(
            read_frame(&mut input).unwrap().as_deref(),
            Some(r#"{"id":9}"#)
        );
    }

    #[test]
    fn writes_length_prefixed_frames_under_one_megabyte() {
        let mut output = Vec::new();
        write_frame(&mut output, r#"{"id":1,"ok":{"type":"watching"}}"#).unwrap();
        assert_eq!(output[..4], 33u32.to_ne_bytes());
        assert_eq!(&output[4..], br#"{"id":1,"ok":{"type":"watching"}}"#);
        let too_big = "x".repeat(MAX_REPLY_BYTES + 1);
        let mut untouched = Vec::new();
        assert!(write_frame(&mut untouched, &too_big).is_err());
        assert!(untouched.is_empty());
    }
}
