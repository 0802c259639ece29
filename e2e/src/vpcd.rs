//! The `vpcd` wire protocol, from the card's side: the card connects to the driver as a TCP
//! client; every message is a 2-byte big-endian length and a payload. A 1-byte payload is
//! control (`00` power off, `01` power on, `02` reset, `04` get ATR); anything longer is a
//! command APDU, answered with the response APDU.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use crate::card::VirtualCard;

const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// The card's answer to reset: T=1, historical bytes "UNLOCKCR", with its check byte.
pub fn atr() -> Vec<u8> {
    let mut atr = vec![0x3B, 0x88, 0x80, 0x01];
    atr.extend_from_slice(b"UNLOCKCR");
    let check = atr[1..].iter().fold(0, |acc, b| acc ^ b);
    atr.push(check);
    atr
}

/// Reads one message; `None` when the driver closed the connection.
pub fn read_frame(stream: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 2];
    match stream.read_exact(&mut length) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Writes one message in a single write, so it leaves in one segment.
pub fn write_frame(stream: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let length = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a vpcd message is at most 65535 bytes",
        )
    })?;
    stream.write_all(&[&length.to_be_bytes()[..], payload].concat())
}

/// Answers the driver until it closes the connection (or the card is pulled). If `pull_on`
/// holds an instruction byte, the card leaves the reader the moment a command with that
/// instruction arrives, unanswered, as when a holder pulls it out mid-command.
pub fn serve(
    stream: &mut TcpStream,
    card: &Mutex<VirtualCard>,
    pull_on: &Mutex<Option<u8>>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // vpcd writes the length and the payload separately, and Nagle holds the payload back
    // until the length is acknowledged: each read must be acknowledged at once, or every
    // APDU waits ~40 ms for a delayed ACK.
    let mut acking = QuickAck(stream);
    while let Some(message) = read_frame(&mut acking)? {
        let stream = &mut *acking.0;
        let mut card = card
            .lock()
            .map_err(|_| io::Error::other("the card's state is poisoned"))?;
        match message.as_slice() {
            [POWER_OFF] | [POWER_ON] | [RESET] => card.reset(),
            [GET_ATR] => write_frame(stream, &atr())?,
            [_] => {}
            [_, instruction, ..] if pulled(pull_on, *instruction) => {
                card.reset();
                return stream.shutdown(std::net::Shutdown::Both);
            }
            apdu => write_frame(stream, &card.process(apdu))?,
        }
    }
    Ok(())
}

/// Whether a command with `instruction` is the one the card is to be pulled on; the trap is
/// spent once sprung.
fn pulled(pull_on: &Mutex<Option<u8>>, instruction: u8) -> bool {
    let mut trap = pull_on.lock().unwrap_or_else(|e| e.into_inner());
    if *trap == Some(instruction) {
        *trap = None;
        return true;
    }
    false
}

/// Reads from the stream, acknowledging what arrived straight away.
struct QuickAck<'s>(&'s mut TcpStream);

impl Read for QuickAck<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.0.read(buffer)?;
        quick_ack(self.0);
        Ok(read)
    }
}

#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_: &TcpStream) {}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn frames_round_trip_and_eof_ends_cleanly() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, &[0x00, 0xA4, 0x04, 0x00]).unwrap();
        write_frame(&mut buffer, &[GET_ATR]).unwrap();
        assert_eq!(buffer[..2], [0x00, 0x04]);
        let mut reader = Cursor::new(buffer);
        assert_eq!(
            read_frame(&mut reader).unwrap(),
            Some(vec![0x00, 0xA4, 0x04, 0x00])
        );
        assert_eq!(read_frame(&mut reader).unwrap(), Some(vec![GET_ATR]));
        assert_eq!(read_frame(&mut reader).unwrap(), None);
    }

    #[test]
    fn a_truncated_frame_is_an_error() {
        let mut reader = Cursor::new(vec![0x00, 0x05, 0x01, 0x02]);
        assert!(read_frame(&mut reader).is_err());
    }

    #[test]
    fn the_atr_carries_a_valid_check_byte() {
        let atr = atr();
        assert_eq!(atr[..2], [0x3B, 0x88]);
        assert_eq!(atr[1..].iter().fold(0, |acc, b| acc ^ b), 0);
    }
}
