//! The `unlock-cr/1` card profile (ISO/IEC 7816-4, short APDUs): the commands the bridge
//! sends and the virtual card answers, and (feature `card-crypto`) the key derivation,
//! cryptogram and receipt the server and the card compute.

/// The profile's name, as the bridge reports it.
pub const PROFILE: &str = "unlock-cr/1";

/// The application identifier selected before anything else.
pub const AID: [u8; 8] = [0xF0, 0x55, 0x4E, 0x4C, 0x4F, 0x43, 0x4B, 0x01];

/// Bytes in a card serial, a challenge, a cryptogram and a receipt.
pub const SERIAL_LEN: usize = 8;
pub const BLOCK_LEN: usize = 16;
/// A PIN block: ASCII digits padded with `FF` to 8 bytes.
pub const PIN_BLOCK_LEN: usize = 8;

/// Wrong passcodes before the card blocks, and wrong cryptograms before the admin key does.
pub const PIN_TRIES: u8 = 3;
pub const ADMIN_TRIES: u8 = 10;

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCA;
    pub const VERIFY: u8 = 0x20;
    pub const GET_CHALLENGE: u8 = 0x84;
    pub const EXTERNAL_AUTHENTICATE: u8 = 0x82;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
}

/// Status words (ISO/IEC 7816-4's).
pub use crate::iso7816::sw;

/// The passcode as the card takes it: ASCII digits padded with `FF`.
pub fn pin_block(digits: &str) -> Option<[u8; PIN_BLOCK_LEN]> {
    if digits.is_empty()
        || digits.len() > PIN_BLOCK_LEN
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut block = [0xFF; PIN_BLOCK_LEN];
    block[..digits.len()].copy_from_slice(digits.as_bytes());
    Some(block)
}

/// The digits of a PIN block, if it is well formed (digits, then only `FF`).
pub fn pin_digits(block: &[u8]) -> Option<String> {
    if block.len() != PIN_BLOCK_LEN {
        return None;
    }
    let digits = block.iter().take_while(|b| **b != 0xFF).count();
    let (pin, padding) = block.split_at(digits);
    (pin.iter().all(u8::is_ascii_digit) && padding.iter().all(|b| *b == 0xFF))
        .then(|| pin.iter().map(|b| char::from(*b)).collect())
}

/// Bytes in what the card master key MACs to derive a card's admin key.
pub const CARD_KEY_INPUT_LEN: usize = 1 + 15 + 1 + SERIAL_LEN + 2;

/// What the card master key MACs to derive the admin key of the card `serial` (NIST SP
/// 800-108 counter mode, one block): `0x01 ‖ "unlock-cr admin" ‖ 0x00 ‖ serial ‖ 0x0080`. An
/// HSM that has the master key computes the AES-CMAC of this itself.
pub fn card_key_input(serial: &[u8; SERIAL_LEN]) -> [u8; CARD_KEY_INPUT_LEN] {
    let mut input = [0u8; CARD_KEY_INPUT_LEN];
    input[0] = 0x01;
    input[1..16].copy_from_slice(b"unlock-cr admin");
    input[17..17 + SERIAL_LEN].copy_from_slice(serial);
    input[17 + SERIAL_LEN..].copy_from_slice(&[0x00, 0x80]);
    input
}

#[cfg(feature = "card-crypto")]
pub use crypto::{card_key, cryptogram, receipt};

#[cfg(feature = "card-crypto")]
mod crypto {
    use aes::Aes128;
    use cmac::{Cmac, Mac};

    use super::{BLOCK_LEN, SERIAL_LEN, card_key_input};

    fn aes_cmac(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
        // AES-128 takes any 16-byte key, so this cannot fail.
        let mut mac = <Cmac<Aes128> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The card's admin key: NIST SP 800-108 counter-mode KDF with AES-CMAC,
    /// `AES-CMAC(K_master, 0x01 ‖ "unlock-cr admin" ‖ 0x00 ‖ serial ‖ 0x0080)`.
    pub fn card_key(master: &[u8; 16], serial: &[u8; SERIAL_LEN]) -> [u8; 16] {
        aes_cmac(master, &[&card_key_input(serial)])
    }

    /// What the server releases for a challenge: `AES-CMAC(K_card, challenge ‖ serial)`.
    pub fn cryptogram(
        card_key: &[u8; 16],
        challenge: &[u8; BLOCK_LEN],
        serial: &[u8; SERIAL_LEN],
    ) -> [u8; 16] {
        aes_cmac(card_key, &[challenge, serial])
    }

    /// What the card returns once unblocked: `AES-CMAC(K_card, "unblocked" ‖ challenge)`.
    pub fn receipt(card_key: &[u8; 16], challenge: &[u8; BLOCK_LEN]) -> [u8; 16] {
        aes_cmac(card_key, &[b"unblocked", challenge])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_blocks_round_trip() {
        assert_eq!(
            pin_block("284759"),
            Some([b'2', b'8', b'4', b'7', b'5', b'9', 0xFF, 0xFF])
        );
        assert_eq!(
            pin_digits(&pin_block("50918263").unwrap()).as_deref(),
            Some("50918263")
        );
        assert_eq!(pin_block("123456789"), None);
        assert_eq!(pin_block("12a4"), None);
        assert_eq!(
            pin_digits(&[b'1', 0xFF, b'2', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            None
        );
        assert_eq!(pin_digits(&[b'1'; 7]), None);
    }

    /// The independent vectors in `shared/test-vectors/unlock-cr-1.json`, written in here so
    /// the test needs nothing outside the repository.
    #[cfg(feature = "card-crypto")]
    #[test]
    fn crypto_reproduces_the_independent_vectors() {
        let vectors = [
            (
                "35a47d45d75853e026695fffa198b79d",
                "2d6bddb8ad096c2d",
                "e2f9c4a79e98c221a0561065e0626dfa",
                "f4764e763f3777ea6043a50dff0cfb65",
                "d206290d1935d00cc7a1d6d9754a930f",
                "05c81625313a68973efa8058c4eace12",
            ),
            (
                "0b2560610fce4019a51221a129d9cf4c",
                "ac4d0ed99f033e05",
                "7e00ff373944d6b04eee172fedaf159a",
                "6dd281b62de622786112a46b6460ead6",
                "7b012b44cb131fcd33f5a25bd9fccfef",
                "71150559af4438442722ae7417b99f07",
            ),
            (
                "61db30f276cc05e78607f0601d707b3c",
                "93e303ebd1a5a8d6",
                "2043fb0677bfea8b544badf488bd7f52",
                "aacc8dfbe13bd8c2a98a060fd94166ae",
                "4aa053ddda96f94692f25a7d6201ed24",
                "d9b9418ede7c20e2960ddd0717ba9e62",
            ),
            (
                "cf936b2a7ef50df37edb410f4aa9c4a2",
                "ec09f185cbccfcb9",
                "e6dbb589580994f2cc9135cd28aeab3f",
                "84f42f4ba2f122543b68b1297efe91b8",
                "2c8598116794b3e1de38cb721eddde42",
                "e0d1173c59c5f3c95eb6fc3fcafa751a",
            ),
            (
                "f181bb08dbea3f3349a7e7d9a8128c4c",
                "50d9ffd35716f137",
                "0006d178faf1f7de2dd533a381afd90d",
                "4762be70b15467b2f973d75693bc4670",
                "0bb434c1f502e5543be9b5cd49de160d",
                "c9748aa07f24f6b50356e44bf7eff900",
            ),
            (
                "259aa062636e599eefa95907b15f53e2",
                "1a052160b9017cbe",
                "1701d798e8cf39dad0e80acf6bf2cf24",
                "eef4b20be01efabdc9cbb3c1e431ef87",
                "a4b6c1c4db7fbe2a1e2c9ccfc13711d1",
                "cc7c296ec2a50bdb82ba239baa466a1b",
            ),
            (
                "ccb10e79159a33a576bdeb456e596bcf",
                "8c3184de5a4e8d38",
                "0152f8c6b48fdc12a637b7dcbae9f533",
                "7f0a0ddf072cbfb23cce0739cf2d6186",
                "19746f4cae83cf783fec9ef59c29c770",
                "243eaae244c6de9d7c607d0489978967",
            ),
            (
                "ec18cea327910ae8db3ec6cac491240e",
                "40d87cdd6b2825ce",
                "ab49fd5e9b86408b5104e58d5f1c0a77",
                "070f797790bd006e1670d8dacb4a69f4",
                "1f68859d4aa4b90f35cffb3c99b970c2",
                "4c7a697c7ef62a55585eeb85207adec9",
            ),
        ];
        for (master, serial, challenge, key, crypt, rcpt) in vectors {
            let master: [u8; 16] = hex::decode(master).unwrap().try_into().unwrap();
            let serial: [u8; 8] = hex::decode(serial).unwrap().try_into().unwrap();
            let challenge: [u8; 16] = hex::decode(challenge).unwrap().try_into().unwrap();
            let derived = card_key(&master, &serial);
            assert_eq!(hex::encode(derived), key);
            assert_eq!(
                hex::encode(cryptogram(&derived, &challenge, &serial)),
                crypt
            );
            assert_eq!(hex::encode(receipt(&derived, &challenge)), rcpt);
        }
    }
}
