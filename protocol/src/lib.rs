//! Serde types and parsing newtypes shared by the page (WASM), the server and the bridge.
//!
//! Nothing here pulls an async runtime or a database driver, so the crate compiles for
//! `wasm32-unknown-unknown` and the page refuses exactly what the server refuses.

pub mod api;
pub mod bridge;
mod card;
pub mod card_profile;
pub mod card_steps;
mod code;
mod email;
mod error;
mod holder;
pub mod iso7816;
mod passcode;
pub mod piv;
pub mod staff;
mod states;

pub use card::{CardGuid, CardGuidError, CardId, CardSerial, CardSerialError};
pub use code::{
    CODE_LENGTH, OneTimeCode, OneTimeCodeError, RA_CODE_ALPHABET, RA_CODE_LENGTH, RaUnlockCode,
    RaUnlockCodeError,
};
pub use email::{EmailAddress, EmailError, MAX_EMAIL_LENGTH};
pub use error::{ApiError, ErrorCode};
pub use holder::{HolderId, HolderIdError};
pub use passcode::{Passcode, PasscodeError};
pub use states::{CardStatus, DeliveryState, UnknownState};
