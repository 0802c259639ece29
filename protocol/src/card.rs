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
    #[error("A card number is 16 or 32 characters, using 0 to 9 and A to F")]
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

/// Bytes in a PIV card's GUID (the CHUID's tag `34`).
const GUID_BYTES: usize = 16;

/// A PIV card's GUID, from its CHUID: 16 bytes, written as 32 lower-case hex digits. It is
/// the card's identity in the service, and its certificates name it as `urn:uuid:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b")
)]
#[serde(try_from = "String", into = "String")]
pub struct CardGuid(String);

/// Why a string is not a card GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardGuidError {
    #[error("A card GUID is 32 characters, using 0 to 9 and A to F")]
    Format,
}

impl CardGuid {
    /// Parses 32 hex digits, or a UUID with its dashes (`urn:uuid:` prefix allowed).
    pub fn parse(raw: &str) -> Result<Self, CardGuidError> {
        let raw = raw.strip_prefix("urn:uuid:").unwrap_or(raw);
        let hex: String = raw
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if hex.len() == GUID_BYTES * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(hex))
        } else {
            Err(CardGuidError::Format)
        }
    }

    /// The GUID as the card's CHUID holds it.
    pub fn from_bytes(bytes: [u8; GUID_BYTES]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as a certificate's subject
    /// alternative name carries it.
    pub fn urn(&self) -> String {
        let h = &self.0;
        format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

impl fmt::Display for CardGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CardGuid {
    type Error = CardGuidError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CardGuid> for String {
    fn from(value: CardGuid) -> Self {
        value.0
    }
}

/// How the service names a card, whatever its profile: an `unlock-cr/1` card's serial (16 hex
/// digits) or a PIV card's GUID (32). Cards are stored and shown by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "2d6bddb8ad096c2d")
)]
#[serde(try_from = "String", into = "String")]
pub struct CardId(String);

impl CardId {
    /// A serial or a GUID, normalised as each parses.
    pub fn parse(raw: &str) -> Result<Self, CardSerialError> {
        CardSerial::parse(raw)
            .map(Self::from)
            .or_else(|_| CardGuid::parse(raw).map(Self::from))
            .map_err(|_| CardSerialError::Format)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<CardSerial> for CardId {
    fn from(serial: CardSerial) -> Self {
        Self(serial.0)
    }
}

impl From<CardGuid> for CardId {
    fn from(guid: CardGuid) -> Self {
        Self(guid.0)
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CardId {
    type Error = CardSerialError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CardId> for String {
    fn from(value: CardId) -> Self {
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

    #[test]
    fn guids_parse_from_hex_or_uuid_and_name_their_urn() {
        let guid = CardGuid::parse("urn:uuid:3F2A9C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B").unwrap();
        assert_eq!(guid.as_str(), "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b");
        assert_eq!(guid.urn(), "urn:uuid:3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b");
        assert_eq!(CardGuid::parse(&guid.urn()).unwrap(), guid);
        assert_eq!(CardGuid::from_bytes([0xAB; 16]).as_str(), "ab".repeat(16));
        for bad in ["", "3f2a9c1e5b7d4e8f", "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6g"] {
            assert_eq!(CardGuid::parse(bad), Err(CardGuidError::Format), "{bad}");
        }
    }

    #[test]
    fn a_card_id_is_a_serial_or_a_guid() {
        assert_eq!(
            CardId::parse("2D6BDDB8AD096C2D").unwrap().as_str(),
            "2d6bddb8ad096c2d"
        );
        assert_eq!(
            CardId::parse("3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")
                .unwrap()
                .as_str(),
            "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b"
        );
        assert!(CardId::parse("2d6bddb8ad096c2d00").is_err());
    }
}
