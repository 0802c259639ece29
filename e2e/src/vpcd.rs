//! The `vpcd` wire protocol, from the card's side: the card connects to the driver as a TCP
//! client; every message is a 2-byte big-endian length and a payload. A 1-byte payload is
//! control (`00` power off, `01` power on, `02` reset, `04` get ATR); anything longer is a
//! command APDU, answered with the response APDU.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use crate::card::VirtualCard;
use crate::piv_card::VirtualPivCard;

const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// What the driver needs of a card, whatever its profile.
pub trait SmartCard {
    /// The answer to reset.
    fn atr(&self) -> Vec<u8>;
    /// Answers one command APDU.
    fn process(&mut self, apdu: &[u8]) -> Vec<u8>;
    /// Power-off, reset or removal.
    fn reset(&mut self);
}

impl SmartCard for VirtualCard {
    fn atr(&self) -> Vec<u8> {
        atr()
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        VirtualCard::process(self, apdu)
    }

    fn reset(&mut self) {
        VirtualCard::reset(self);
    }
}

impl SmartCard for VirtualPivCard {
    fn atr(&self) -> Vec<u8> {
        crate::piv_card::atr()
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        VirtualPivCard::process(self, apdu)
    }

    fn reset(&mut self) {
        VirtualPivCard::reset(self);
    }
}

/// The `unlock-cr/1` card's answer to reset: T=1, historical bytes "UNLOCKCR", with its check
/// byte.
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

/// When the card leaves the reader by itself, as when a holder pulls it out mid-command: on
/// the first command with one instruction, or on the first such command after a command with
/// another; before processing it, or (`processed`) once it has, its answer lost. Spent once
/// sprung.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullTrap {
    on: Option<u8>,
    after: Option<u8>,
    primed: bool,
    processed: bool,
}

impl PullTrap {
    /// Springs on the next command with `instruction`.
    pub fn on(instruction: u8) -> Self {
        Self {
            on: Some(instruction),
            after: None,
            primed: true,
            processed: false,
        }
    }

    /// Springs once the next command with `instruction` is processed: its answer is lost.
    pub fn once_processed(instruction: u8) -> Self {
        Self {
            processed: true,
            ..Self::on(instruction)
        }
    }

    /// Springs on the first command with `instruction` that follows a command with `after`.
    pub fn on_after(instruction: u8, after: u8) -> Self {
        Self {
            on: Some(instruction),
            after: Some(after),
            primed: false,
            processed: false,
        }
    }

    /// Whether the card leaves on this command, and when; told every command in order.
    pub fn springs(&mut self, instruction: u8) -> Option<Fault> {
        if self.primed && self.on == Some(instruction) {
            let fault = if self.processed {
                Fault::PullAfter
            } else {
                Fault::PullBefore
            };
            *self = Self::default();
            return Some(fault);
        }
        if self.on.is_some() && self.after == Some(instruction) {
            self.primed = true;
        }
        None
    }
}

/// What the card does to a command counted from when it was told (the first is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Leaves the reader as the command arrives: never processed, never answered.
    PullBefore,
    /// Processes the command, then leaves the reader: its answer is lost.
    PullAfter,
    /// Holds the command, unprocessed, until told to go on.
    Stall,
}

/// The faults a test sets on the card, and the instructions it has received, in order.
#[derive(Debug, Default)]
pub struct Faults {
    /// Springs on an instruction.
    pub trap: PullTrap,
    /// Springs on the n-th command to come.
    countdown: Option<(u32, Fault)>,
    stalled: bool,
    seen: Vec<u8>,
}

impl Faults {
    /// Sets `fault` on the `nth` command from now (1 is the next one).
    pub fn arm(&mut self, nth: u32, fault: Fault) {
        self.countdown = Some((nth.max(1), fault));
    }

    /// The instructions of the commands received since the last call.
    pub fn take_seen(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.seen)
    }

    /// Whether a command is held.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// Lets a held command through.
    pub fn go(&mut self) {
        self.stalled = false;
    }

    /// What happens to this command; told every command in order.
    pub fn next(&mut self, instruction: u8) -> Option<Fault> {
        self.seen.push(instruction);
        if let Some(fault) = self.trap.springs(instruction) {
            return Some(fault);
        }
        let (left, fault) = self.countdown?;
        if left > 1 {
            self.countdown = Some((left - 1, fault));
            return None;
        }
        self.countdown = None;
        self.stalled = fault == Fault::Stall;
        Some(fault)
    }
}

/// Answers the driver until it closes the connection (or the card is pulled, as `faults`
/// say: then the command that sprang it goes unanswered).
pub fn serve<C: SmartCard + ?Sized>(
    stream: &mut TcpStream,
    card: &Mutex<C>,
    faults: &Mutex<Faults>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // vpcd writes the length and the payload separately, and Nagle holds the payload back
    // until the length is acknowledged: each read must be acknowledged at once, or every
    // APDU waits ~40 ms for a delayed ACK.
    let mut acking = QuickAck(stream);
    while let Some(message) = read_frame(&mut acking)? {
        let stream = &mut *acking.0;
        let fault = match message.as_slice() {
            [_, instruction, ..] => lock(faults).next(*instruction),
            _ => None,
        };
        if fault == Some(Fault::Stall) {
            while lock(faults).stalled() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let mut card = card
            .lock()
            .map_err(|_| io::Error::other("the card's state is poisoned"))?;
        match (message.as_slice(), fault) {
            ([POWER_OFF] | [POWER_ON] | [RESET], _) => card.reset(),
            ([GET_ATR], _) => write_frame(stream, &card.atr())?,
            ([_], _) => {}
            (_, Some(Fault::PullBefore)) => {
                card.reset();
                return stream.shutdown(std::net::Shutdown::Both);
            }
            (apdu, Some(Fault::PullAfter)) => {
                card.process(apdu);
                card.reset();
                return stream.shutdown(std::net::Shutdown::Both);
            }
            (apdu, _) => write_frame(stream, &card.process(apdu))?,
        }
    }
    Ok(())
}

fn lock(faults: &Mutex<Faults>) -> std::sync::MutexGuard<'_, Faults> {
    faults.lock().unwrap_or_else(|e| e.into_inner())
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
    fn a_trap_springs_once_on_its_instruction() {
        let mut trap = PullTrap::on(0x2C);
        assert_eq!(trap.springs(0x20), None);
        assert_eq!(trap.springs(0x2C), Some(Fault::PullBefore));
        assert_eq!(trap.springs(0x2C), None, "spent");
        assert_eq!(PullTrap::default().springs(0x2C), None);
    }

    #[test]
    fn a_trap_with_after_springs_only_once_that_instruction_went_by() {
        let mut trap = PullTrap::on_after(0x20, 0x24);
        assert_eq!(
            trap.springs(0x20),
            None,
            "VERIFY before the rotation is answered"
        );
        assert_eq!(trap.springs(0x2C), None);
        assert_eq!(trap.springs(0x24), None);
        assert_eq!(trap.springs(0x87), None);
        assert_eq!(trap.springs(0x20), Some(Fault::PullBefore));
        assert_eq!(trap.springs(0x20), None);
    }

    #[test]
    fn a_trap_once_processed_loses_the_answer_instead() {
        let mut trap = PullTrap::once_processed(0x2C);
        assert_eq!(trap.springs(0x82), None);
        assert_eq!(trap.springs(0x2C), Some(Fault::PullAfter));
        assert_eq!(trap.springs(0x2C), None, "spent");
    }

    #[test]
    fn a_counted_fault_springs_once_on_the_nth_command_and_every_instruction_is_logged() {
        let mut faults = Faults::default();
        faults.arm(3, Fault::PullAfter);
        assert_eq!(faults.next(0xA4), None);
        assert_eq!(faults.next(0x2C), None);
        assert_eq!(faults.next(0x20), Some(Fault::PullAfter));
        assert_eq!(faults.next(0x20), None, "spent");
        assert_eq!(faults.take_seen(), [0xA4, 0x2C, 0x20, 0x20]);
        assert!(faults.take_seen().is_empty());

        faults.arm(1, Fault::Stall);
        assert_eq!(faults.next(0x2C), Some(Fault::Stall));
        assert!(faults.stalled());
        faults.go();
        assert!(!faults.stalled());

        faults.trap = PullTrap::on(0x2C);
        faults.arm(2, Fault::Stall);
        assert_eq!(faults.next(0x2C), Some(Fault::PullBefore));
    }

    #[test]
    fn the_atr_carries_a_valid_check_byte() {
        let atr = atr();
        assert_eq!(atr[..2], [0x3B, 0x88]);
        assert_eq!(atr[1..].iter().fold(0, |acc, b| acc ^ b), 0);
    }
}
