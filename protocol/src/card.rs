use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes in a card serial as GET DATA returns it (`unlock-cr/1`).
const SERIAL_BYTES: usize = 8;

/// A card's serial number: 8 bytes, written as 16 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "2d6bddb8ad096c2d")
)]
#[serde(try_from = "String", into = "String")]
pub struct CardSerial(String);

/// Why a string is not a card serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardSerialError {
    #[error("A card serial is 16 characters, using 0 to 9 and A to F")]
    Format,
}

impl CardSerial {
    /// Parses hex digits, ignoring case and the spaces or colons printed between bytes.
    pub fn parse(raw: &str) -> Result<Self, CardSerialError> {
        let hex: String = raw
            .chars()
            .filter(|c| *c != ' ' && *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if hex.len() == SERIAL_BYTES * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(hex))
        } else {
            Err(CardSerialError::Format)
        }
    }

    /// The serial as the card reports it.
    pub fn from_bytes(bytes: [u8; SERIAL_BYTES]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The 8 raw bytes, as the card profile's cryptography uses them.
    pub fn to_bytes(&self) -> [u8; SERIAL_BYTES] {
        let mut bytes = [0; SERIAL_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            // parse() admitted only hex digits, so this cannot fail.
            *byte = u8::from_str_radix(&self.0[2 * i..2 * i + 2], 16).unwrap_or_default();
        }
        bytes
    }

    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CardSerial {
    type Error = CardSerialError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CardSerial> for String {
    fn from(value: CardSerial) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_separators() {
        let serial = CardSerial::parse("2D:6B:DD:B8 AD:09:6C:2D").unwrap();
        assert_eq!(serial.as_str(), "2d6bddb8ad096c2d");
        assert_eq!(
            serial.to_bytes(),
            [0x2d, 0x6b, 0xdd, 0xb8, 0xad, 0x09, 0x6c, 0x2d]
        );
        assert_eq!(CardSerial::from_bytes(serial.to_bytes()), serial);
    }

    #[test]
    fn refuses_wrong_length_or_digits() {
        for raw in [
            "",
            "2d6bddb8ad096c",
            "2d6bddb8ad096c2d00",
            "2d6bddb8ad096c2g",
        ] {
            assert_eq!(
                CardSerial::parse(raw),
                Err(CardSerialError::Format),
                "{raw}"
            );
        }
    }
}
