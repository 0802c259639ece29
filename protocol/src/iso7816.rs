//! What ISO/IEC 7816-4 fixes for every card profile: the status words cards answer with.

/// Status words.
pub mod sw {
    pub const OK: u16 = 0x9000;
    /// `61xx`: more response data; fetch it with GET RESPONSE (`xx` bytes, 0 = 256).
    pub const MORE_DATA_BASE: u16 = 0x6100;
    /// `63Cx`: wrong PIN (or PUK), x tries left (also the answer to VERIFY without data).
    pub const TRIES_LEFT_BASE: u16 = 0x63C0;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    pub const BLOCKED: u16 = 0x6983;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    /// Incorrect P1 or P2, as PIV cards say it.
    pub const INCORRECT_P1P2: u16 = 0x6A86;
    pub const REFERENCE_NOT_FOUND: u16 = 0x6A88;
    /// Wrong P1 or P2, as `unlock-cr/1` says it.
    pub const WRONG_P1P2: u16 = 0x6B00;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
}
