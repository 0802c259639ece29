//! The fuzz targets' bodies. Each feeds its bytes to the real parsers and checks what is cheap
//! to check about the result; none may panic on any input. `fuzz/fuzz_targets/<name>.rs`
//! hands libFuzzer's inputs to [`TARGETS`]' function of that name (`cargo xtask fuzz`), and
//! `tests/replay.rs` runs every file of `fuzz/corpus/<name>/` (and the crash reproducers kept
//! in `fuzz/artifacts/<name>/`) through it in an ordinary `cargo test`.

mod bridge;
mod cards;
mod input;
mod protocol;
mod server;

pub use bridge::{bridge_frames, bridge_request};
pub use cards::{UNLOCK_CR_PIN, piv_card, unlock_cr_card};
pub use input::{parts, split};
pub use protocol::{protocol_newtypes, protocol_tlv};
pub use server::{SIGNED_NONCE, TRUST_ANCHOR_PEM, piv_certificates, piv_signature};

/// One fuzz target: its name (of its `fuzz/fuzz_targets/` file and corpus folder) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 8] = [
    ("bridge_frames", bridge_frames),
    ("bridge_request", bridge_request),
    ("protocol_newtypes", protocol_newtypes),
    ("protocol_tlv", protocol_tlv),
    ("unlock_cr_card", unlock_cr_card),
    ("piv_card", piv_card),
    ("piv_certificates", piv_certificates),
    ("piv_signature", piv_signature),
];

/// The GUID the PIV targets' card and certificates carry (the virtual card's default).
pub const PIV_GUID: &str = unlock_e2e::piv_card::DEFAULT_GUID;
