//! Messages between the page, the browser extension and the native bridge.
//!
//! The page posts a [`Request`] without an origin; the extension adds the origin the browser
//! vouches for (`sender.origin`) and passes it to the host, which answers every request with
//! exactly one [`Reply`] and pushes [`Event`]s to pages that asked to `watch`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::card_steps::{CardChallenge, CardIdentity, CardProof, CardReceipt, CardRelease};
use crate::{CardId, Passcode};

/// The bridge protocol's version: a different major version cannot talk to this one.
pub const PROTOCOL_MAJOR: u16 = 1;
/// 1: `check_unblock`. A page meeting a host of minor version 0 gets `bad_request` for it.
pub const PROTOCOL_MINOR: u16 = 1;

/// Largest message the host reads; larger ones are refused with [`ErrorCode::FrameTooLarge`].
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Chrome refuses native messages of 1 MB or more from the host.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024 - 1;

/// A request as the host receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the page; echoed in the reply.
    pub id: u64,
    /// The page's origin as the browser reported it to the extension.
    pub origin: String,
    #[serde(flatten)]
    pub command: Command,
}

/// What the page asks the card reader to do. There is deliberately no raw APDU command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// The first exchange: versions and supported card profiles.
    Hello {
        protocol_major: u16,
        protocol_minor: u16,
    },
    /// Readers, with whether a card is in each.
    Readers,
    /// Push card and reader events to this page from now on.
    Watch,
    /// The card in `reader`: its profile and identity, and its passcode tries.
    ReadCard { reader: String },
    /// The card's answer to the server's challenge (`unlock-cr/1`: a fresh challenge of its
    /// own, the card then held until the unblock; `piv/1`: a signature with key 9E), after
    /// checking the card is the one the challenge names.
    Challenge {
        reader: String,
        challenge: CardChallenge,
    },
    /// Unblocks the card with what the server released and sets the new passcode, in one
    /// exclusive card transaction, after re-checking the card; answers with its receipt.
    Unblock {
        reader: String,
        release: CardRelease,
        new_passcode: Passcode,
    },
    /// After an unblock cut short by the card leaving (or being reset), once the card is
    /// back: whether the unblock took, so the page can say which. The card must be `card`.
    /// An unblock leaves the passcode counter full, so a card with fewer than
    /// [`FULL_TRIES`] tries left was not unblocked; one with a full counter is asked to VERIFY
    /// `new_passcode`, which costs a try only if the unblock never reached it (and the retry's
    /// unblock fills the counter again). A card with fewer tries is never asked, so this
    /// cannot block a card; on a card that allows three tries (both profiles' cards, as
    /// issued) it can test one passcode between the holder's logins, and on one set to allow
    /// more, one for each try above two. The card is reset afterwards, so a passcode it took
    /// does not leave it unlocked for other programs.
    CheckUnblock {
        reader: String,
        card: CardId,
        new_passcode: Passcode,
    },
}

/// Passcode tries left that [`Command::CheckUnblock`] takes for a full counter: both
/// profiles' cards allow three.
pub const FULL_TRIES: u8 = 3;
const _: () = assert!(
    FULL_TRIES == crate::card_profile::PIN_TRIES && FULL_TRIES == crate::piv::PIN_TRIES,
    "both profiles' cards allow FULL_TRIES passcode tries"
);

/// A reply: `{"id": 1, "ok": {...}}` or `{"id": 1, "err": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Answer),
    Err(BridgeError),
}

/// The successful answer to each command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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
    Card(CardInfo),
    /// The card's answer to the challenge, for the server.
    Proof {
        proof: CardProof,
    },
    /// The card's receipt, which the server checks, and the passcode tries now left.
    Unblocked {
        receipt: CardReceipt,
        tries_left: u8,
    },
    /// Whether an unblock cut short took.
    UnblockChecked {
        card_state: CardState,
        tries_left: u8,
    },
}

/// Where an unblock cut short left the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// Not unblocked: its passcode is the old one (and a blocked card is still blocked).
    Untouched,
    /// Unblocked, with the new passcode set; the service has not had the card's receipt.
    Unblocked,
}

/// One reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderInfo {
    pub name: String,
    pub card_present: bool,
    /// The card's answer to reset, as hex, when a card is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atr: Option<String>,
}

/// What `read_card` learns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInfo {
    /// The card's profile and identity, which the page presents to the server as it is.
    pub card: CardIdentity,
    /// 0 means the passcode is blocked.
    pub tries_left: u8,
}

/// Pushed to watching pages: `{"type": "event", "event": "card_inserted", "reader": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "event")]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    CardInserted { reader: String },
    CardRemoved { reader: String },
    ReaderAdded { reader: String },
    ReaderRemoved { reader: String },
}

/// A failure, with a stable code the page turns into plain guidance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeError {
    pub code: ErrorCode,
    pub message: String,
}

impl BridgeError {
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.default_message().to_owned(),
        }
    }

    /// An error with a sentence more specific than the code's default.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Every way reaching the card can fail. The first three are detected by the page itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ExtensionMissing,
    HostMissing,
    HostOutdated,
    OriginRefused,
    BadRequest,
    FrameTooLarge,
    PcscUnavailable,
    NoReader,
    NoCard,
    CardPresent,
    UnsupportedCard,
    CardRemoved,
    CardReset,
    CardInUse,
    SerialMismatch,
    PasscodeBlocked,
    PasscodeRejected,
    WrongCryptogram,
    AdminKeyBlocked,
    PukRejected,
    PukBlocked,
    Timeout,
    Cancelled,
    Internal,
}

impl ErrorCode {
    /// The sentence the page shows when it has nothing more specific.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::ExtensionMissing => {
                "The smartcard unlock browser extension is not installed or not switched on."
            }
            Self::HostMissing => {
                "The smartcard unlock helper program is not installed on this computer."
            }
            Self::HostOutdated => {
                "The smartcard unlock helper program on this computer needs updating."
            }
            Self::OriginRefused => "The helper program does not accept requests from this website.",
            Self::BadRequest => "The helper program did not understand the request.",
            Self::FrameTooLarge => "The request to the helper program was too large.",
            Self::PcscUnavailable => "The smart card service on this computer is not running.",
            Self::NoReader => "No smartcard reader was found. Check it is plugged in.",
            Self::NoCard => "There is no card in the reader.",
            Self::CardPresent => "Remove your card from the reader.",
            Self::UnsupportedCard => "This service cannot unlock this type of card.",
            Self::CardRemoved => "The card was removed before we finished.",
            Self::CardReset => "The card was reset by another program before we finished.",
            Self::CardInUse => "Another program is using the card. Close it and try again.",
            Self::SerialMismatch => "This is not the card you started with.",
            Self::PasscodeBlocked => "The card's passcode is blocked.",
            Self::PasscodeRejected => "The card did not accept that passcode.",
            Self::WrongCryptogram => "The card did not accept the unlock key.",
            Self::AdminKeyBlocked => {
                "The card can no longer be unlocked here. Contact your Registration Authority."
            }
            Self::PukRejected => {
                "The card did not accept the unlock key held for it. Contact your Registration \
                 Authority."
            }
            Self::PukBlocked => {
                "The card's unlock key is blocked, so it can't be unlocked here. Contact your \
                 Registration Authority."
            }
            Self::Timeout => "The card reader took too long to answer.",
            Self::Cancelled => "The request was cancelled.",
            Self::Internal => "Something went wrong in the helper program.",
        }
    }
}

/// 16 bytes as 32 hex digits: a challenge, a cryptogram or a receipt. `Debug` hides them:
/// a cryptogram unlocks a card.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        value_type = String,
        description = "16 bytes as 32 hex digits: a challenge, a cryptogram or a receipt.",
        example = "d206290d1935d00cc7a1d6d9754a930f"
    )
)]
#[serde(try_from = "String", into = "String")]
pub struct Block(pub [u8; 16]);

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Block(***)")
    }
}

impl TryFrom<String> for Block {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bytes = value.as_bytes();
        if bytes.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("expected 32 hex digits".into());
        }
        let mut block = [0u8; 16];
        for (i, byte) in block.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&value[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Self(block))
    }
}

impl From<Block> for String {
    fn from(value: Block) -> Self {
        value.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_carry_id_origin_and_a_typed_command() {
        let request: Request = serde_json::from_value(json!({
            "id": 7, "origin": "https://unlock.example.org", "type": "unblock",
            "reader": "Virtual PCD 00 00",
            "release": {"profile": "unlock-cr/1", "serial": "2d6bddb8ad096c2d",
                        "cryptogram": "d206290d1935d00cc7a1d6d9754a930f"},
            "new_passcode": "905173"
        }))
        .unwrap();
        assert_eq!(request.id, 7);
        let Command::Unblock {
            release: CardRelease::UnlockCr { serial, cryptogram },
            new_passcode,
            ..
        } = &request.command
        else {
            panic!("not an unlock-cr/1 unblock: {request:?}");
        };
        assert_eq!(serial.as_str(), "2d6bddb8ad096c2d");
        assert_eq!(cryptogram.0[0], 0xd2);
        assert_eq!(new_passcode.expose(), "905173");
        let printed = format!("{request:?}");
        assert!(
            !printed.contains("905173") && !printed.contains("d206290d"),
            "{printed}"
        );

        let piv: Request = serde_json::from_value(json!({
            "id": 8, "origin": "o", "type": "unblock", "reader": "r",
            "release": {"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                        "puks": ["40719263", "11223344"], "next_puk": "88120457",
                        "receipt_nonce": "5a".repeat(32)},
            "new_passcode": "905173"
        }))
        .unwrap();
        let printed = format!("{piv:?}");
        for secret in ["40719263", "11223344", "88120457", "905173", "5a5a"] {
            assert!(!printed.contains(secret), "{printed}");
        }

        let check: Request = serde_json::from_value(json!({
            "id": 9, "origin": "o", "type": "check_unblock", "reader": "r",
            "card": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b", "new_passcode": "905173"
        }))
        .unwrap();
        let Command::CheckUnblock { card, .. } = &check.command else {
            panic!("not a check: {check:?}");
        };
        assert_eq!(card.as_str(), "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b");
        assert!(!format!("{check:?}").contains("905173"));
        let answer = Answer::UnblockChecked {
            card_state: CardState::Unblocked,
            tries_left: 3,
        };
        assert_eq!(
            serde_json::to_value(answer).unwrap(),
            json!({"type": "unblock_checked", "card_state": "unblocked", "tries_left": 3})
        );
    }

    #[test]
    fn bad_requests_are_refused_by_type() {
        let release = json!({"profile": "unlock-cr/1", "serial": "2d6bddb8ad096c2d",
                             "cryptogram": "d206290d1935d00cc7a1d6d9754a930f"});
        for bad in [
            json!({"id": 1, "origin": "o", "type": "raw_apdu", "apdu": "00a40400"}),
            json!({"id": 1, "origin": "o", "type": "unblock", "reader": "r",
                   "release": {"profile": "unlock-cr/1", "serial": "2d6bddb8ad096c2d", "cryptogram": "00"},
                   "new_passcode": "905173"}),
            json!({"id": 1, "origin": "o", "type": "unblock", "reader": "r", "release": release,
                   "new_passcode": "123456"}),
            json!({"id": 1, "origin": "o", "type": "unblock", "reader": "r",
                   "release": {"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                               "puks": ["4071"], "next_puk": "88120457", "receipt_nonce": "5a".repeat(32)},
                   "new_passcode": "905173"}),
            json!({"origin": "o", "type": "readers"}),
        ] {
            assert!(
                serde_json::from_value::<Request>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn replies_and_events_have_the_documented_shape() {
        let ok = Reply {
            id: 3,
            outcome: Outcome::Ok(Answer::Card(CardInfo {
                card: CardIdentity::UnlockCr {
                    serial: crate::CardSerial::parse("2d6bddb8ad096c2d").unwrap(),
                },
                tries_left: 0,
            })),
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"id": 3, "ok": {"type": "card",
                   "card": {"profile": "unlock-cr/1", "serial": "2d6bddb8ad096c2d"},
                   "tries_left": 0}})
        );
        let err = Reply {
            id: 4,
            outcome: Outcome::Err(BridgeError::new(ErrorCode::CardInUse)),
        };
        assert_eq!(
            serde_json::to_value(&err).unwrap()["err"]["code"],
            "card_in_use"
        );
        let event = Event {
            kind: EventKind::CardRemoved { reader: "r".into() },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"type": "event", "event": "card_removed", "reader": "r"})
        );
        for value in [
            serde_json::to_value(&ok).unwrap(),
            serde_json::to_value(&err).unwrap(),
        ] {
            assert_eq!(
                serde_json::from_value::<Reply>(value.clone()).unwrap(),
                serde_json::from_value(value).unwrap()
            );
        }
    }
}
