//! Carrying commands to the card: one APDU at a time over a [`Transmit`], and whole commands
//! with [`send`], which chains data longer than a short APDU holds (CLA bit `10`), fetches long
//! answers with GET RESPONSE (`61xx`) and repeats a command with the length the card asks for
//! (`6Cxx`). Commands may carry a PIN or PUK, so nothing here logs them.

use std::time::{Duration, Instant};

use unlock_protocol::bridge::{BridgeError, ErrorCode};

use crate::errors::{fail, from_pcsc};

/// Response data and status word.
pub type Answer = (Vec<u8>, u16);

const OK: u16 = 0x9000;
/// Most data in one short command APDU.
const MAX_SHORT_DATA: usize = 255;
/// Most response data the bridge collects for one command: no PIV object comes near it.
const MAX_RESPONSE: usize = 64 * 1024;
const CHAINING: u8 = 0x10;
const GET_RESPONSE: u8 = 0xC0;

/// Something that carries one command APDU to the card and brings back its answer: a PC/SC
/// card handle (or transaction), or in tests a virtual card in the same process.
pub trait Transmit {
    fn transmit(&self, apdu: &[u8]) -> Result<Answer, BridgeError>;
}

/// A whole command: its header (CLA, INS, P1, P2), its data, and the answer length it asks
/// for (`Some(0)`: as much as the card has, up to 256 at a time). `Debug` leaves the data
/// out: it may be a PIN or a PUK.
#[derive(Clone, Copy)]
pub struct Command<'a> {
    pub header: [u8; 4],
    pub data: &'a [u8],
    pub le: Option<u8>,
}

impl std::fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("header", &self.header)
            .field("data_len", &self.data.len())
            .field("le", &self.le)
            .finish()
    }
}

/// Sends `command`, in pieces if it is long, and returns the whole answer.
pub fn send(card: &dyn Transmit, command: &Command<'_>) -> Result<Answer, BridgeError> {
    let [cla, ins, p1, p2] = command.header;
    let mut pieces = command.data.chunks(MAX_SHORT_DATA).peekable();
    let mut last = command.data;
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_none() {
            last = piece;
            break;
        }
        let answer = card.transmit(&encode([cla | CHAINING, ins, p1, p2], piece, None))?;
        if answer.1 != OK {
            return Ok(answer);
        }
    }
    let mut answer = card.transmit(&encode(command.header, last, command.le))?;
    if answer.1 >> 8 == 0x6C {
        // Wrong length: the card says how much it has.
        let le = Some(answer.1 as u8);
        answer = card.transmit(&encode(command.header, last, le))?;
    }
    let (mut data, mut word) = answer;
    while word >> 8 == 0x61 {
        let (more, next) = card.transmit(&[0x00, GET_RESPONSE, 0x00, 0x00, word as u8])?;
        data.extend_from_slice(&more);
        if data.len() > MAX_RESPONSE {
            return Err(fail(ErrorCode::UnsupportedCard));
        }
        word = next;
    }
    Ok((data, word))
}

/// A short APDU: header, `Lc` and data if any, `Le` if any.
fn encode(header: [u8; 4], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut apdu = header.to_vec();
    if !data.is_empty() {
        // `send` cuts data into pieces that fit.
        apdu.push(data.len() as u8);
        apdu.extend_from_slice(data);
    }
    apdu.extend(le);
    apdu
}

impl Transmit for pcsc::Card {
    fn transmit(&self, apdu: &[u8]) -> Result<Answer, BridgeError> {
        let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
        let response =
            pcsc::Card::transmit(self, apdu, &mut buffer).map_err(|error| match error {
                pcsc::Error::NotTransacted | pcsc::Error::CommError => {
                    after_lost_contact(self, ErrorCode::Internal)
                }
                error => from_pcsc(error),
            })?;
        match response {
            [data @ .., high, low] => Ok((data.to_vec(), u16::from_be_bytes([*high, *low]))),
            _ => Err(after_lost_contact(self, ErrorCode::UnsupportedCard)),
        }
    }
}

/// A command that failed half-way (or came back without a status word) usually means the card
/// left the reader before the service noticed: ask the reader, for up to a second, so the
/// page can say "card removed"; if the card is still there, the failure is `otherwise`.
fn after_lost_contact(card: &pcsc::Card, otherwise: ErrorCode) -> BridgeError {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match card.status2_owned() {
            Err(error) => return from_pcsc(error),
            Ok(status) if !status.status().contains(pcsc::Status::PRESENT) => {
                return fail(ErrorCode::CardRemoved);
            }
            Ok(_) if Instant::now() >= deadline => return fail(otherwise),
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A card that answers from a script and records what it was sent.
    struct Scripted {
        answers: RefCell<Vec<Answer>>,
        sent: RefCell<Vec<Vec<u8>>>,
    }

    impl Scripted {
        fn new(answers: Vec<Answer>) -> Self {
            Self {
                answers: RefCell::new(answers.into_iter().rev().collect()),
                sent: RefCell::new(Vec::new()),
            }
        }
    }

    impl Transmit for Scripted {
        fn transmit(&self, apdu: &[u8]) -> Result<Answer, BridgeError> {
            self.sent.borrow_mut().push(apdu.to_vec());
            Ok(self
                .answers
                .borrow_mut()
                .pop()
                .expect("an answer for every command"))
        }
    }

    #[test]
    fn short_commands_go_as_they_are() {
        let card = Scripted::new(vec![(vec![1, 2], OK)]);
        let command = Command {
            header: [0x00, 0xCA, 0x00, 0x5A],
            data: &[],
            le: Some(0),
        };
        assert_eq!(send(&card, &command).unwrap(), (vec![1, 2], OK));
        assert_eq!(card.sent.borrow()[..], [vec![0x00, 0xCA, 0x00, 0x5A, 0x00]]);
        let case1 = Scripted::new(vec![(vec![], 0x63C3)]);
        let verify = Command {
            header: [0x00, 0x20, 0x00, 0x80],
            data: &[],
            le: None,
        };
        assert_eq!(send(&case1, &verify).unwrap(), (vec![], 0x63C3));
        assert_eq!(case1.sent.borrow()[..], [vec![0x00, 0x20, 0x00, 0x80]]);
    }

    #[test]
    fn long_data_is_chained_and_long_answers_are_fetched() {
        let data: Vec<u8> = (0..266).map(|i| i as u8).collect();
        let card = Scripted::new(vec![
            (vec![], OK),
            (vec![0xAA; 256], 0x6108),
            (vec![0xBB; 8], OK),
        ]);
        let command = Command {
            header: [0x00, 0x87, 0x07, 0x9E],
            data: &data,
            le: Some(0),
        };
        let (answer, word) = send(&card, &command).unwrap();
        assert_eq!(word, OK);
        assert_eq!(answer.len(), 264);
        let sent = card.sent.borrow();
        assert_eq!(sent[0][..5], [0x10, 0x87, 0x07, 0x9E, 0xFF]);
        assert_eq!(sent[0][5..], data[..255]);
        assert_eq!(sent[1][..5], [0x00, 0x87, 0x07, 0x9E, 0x0B]);
        assert_eq!(sent[1][5..16], data[255..]);
        assert_eq!(sent[1][16..], [0x00]);
        assert_eq!(sent[2], [0x00, 0xC0, 0x00, 0x00, 0x08]);
    }

    #[test]
    fn a_refused_piece_of_a_chain_ends_it() {
        let card = Scripted::new(vec![(vec![], 0x6A80)]);
        let data = [0u8; 300];
        let command = Command {
            header: [0x00, 0x87, 0x07, 0x9E],
            data: &data,
            le: Some(0),
        };
        assert_eq!(send(&card, &command).unwrap(), (vec![], 0x6A80));
        assert_eq!(card.sent.borrow().len(), 1);
    }

    #[test]
    fn a_wrong_length_is_asked_again_with_the_length_the_card_gives() {
        let card = Scripted::new(vec![(vec![], 0x6C10), (vec![5; 16], OK)]);
        let command = Command {
            header: [0x00, 0x84, 0x00, 0x00],
            data: &[],
            le: Some(0),
        };
        assert_eq!(send(&card, &command).unwrap(), (vec![5; 16], OK));
        assert_eq!(card.sent.borrow()[1], [0x00, 0x84, 0x00, 0x00, 0x10]);
    }

    #[test]
    fn an_endless_answer_is_cut_off() {
        let answers = std::iter::repeat_n((vec![0u8; 256], 0x6100), 300).collect();
        let card = Scripted::new(answers);
        let command = Command {
            header: [0x00, 0xCB, 0x3F, 0xFF],
            data: &[0x5C, 0x01, 0x7E],
            le: Some(0),
        };
        assert_eq!(
            send(&card, &command).unwrap_err().code,
            ErrorCode::UnsupportedCard
        );
    }
}
