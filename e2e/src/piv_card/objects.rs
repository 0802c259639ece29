//! The data a PIV card answers with, encoded as NIST SP 800-73-4 Part 1 lays it out: the
//! Application Property Template (SELECT), the Discovery object, the CHUID and certificate
//! objects (GET DATA).

use unlock_protocol::piv::{AID, algorithm, tag, tlv};

/// The PIV application's full AID: NIST's RID and PIX, then version `01 00`.
pub const FULL_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// A FASC-N with agency code 9999 (not issued by a US federal agency), as PIV-compatible cards
/// carry; OpenSC then names the card by its GUID.
const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// SELECT's answer: `61 { 4F PIX+version, 79 { 4F RID }, 50 label, AC { 80 11, 06 00 } }`.
pub fn application_property_template() -> Vec<u8> {
    let algorithms = [
        tlv::encode(&[tag::ALGORITHM_IDENTIFIER], &[algorithm::ECC_P256]),
        tlv::encode(&[tag::OBJECT_IDENTIFIER], &[0x00]),
    ]
    .concat();
    let template = [
        tlv::encode(&[tag::APPLICATION_IDENTIFIER], &FULL_AID[5..]),
        tlv::encode(
            &[tag::COEXISTENT_TAG_ALLOCATION_AUTHORITY],
            &tlv::encode(&[tag::APPLICATION_IDENTIFIER], &AID[..5]),
        ),
        tlv::encode(&[tag::APPLICATION_LABEL], b"Virtual PIV"),
        tlv::encode(&[tag::ALGORITHMS_SUPPORTED], &algorithms),
    ]
    .concat();
    tlv::encode(&[tag::APPLICATION_PROPERTY_TEMPLATE], &template)
}

/// The Discovery object: `7E { 4F AID, 5F2F PIN usage policy }`. The policy `40 00` says
/// only the PIV Card Application PIN is used; it has no global PIN and no pairing code.
pub fn discovery() -> Vec<u8> {
    let body = [
        tlv::encode(&[tag::APPLICATION_IDENTIFIER], &FULL_AID),
        tlv::encode(&tag::PIN_USAGE_POLICY, &[0x40, 0x00]),
    ]
    .concat();
    tlv::encode(&[0x7E], &body)
}

/// The Card Holder Unique Identifier: `53 { 30 FASC-N, 34 GUID, 35 expiry, 3E signature
/// (empty: unsigned), FE }`.
pub fn chuid(guid: &[u8; 16]) -> Vec<u8> {
    let body = [
        tlv::encode(&[tag::FASC_N], &FASC_N),
        tlv::encode(&[tag::GUID], guid),
        tlv::encode(&[tag::EXPIRATION], b"20401231"),
        tlv::encode(&[tag::ISSUER_SIGNATURE], &[]),
        tlv::encode(&[tag::ERROR_DETECTION], &[]),
    ]
    .concat();
    tlv::encode(&[tag::DATA], &body)
}

/// A certificate object: `53 { 70 certificate, 71 00 (not compressed), FE }`.
pub fn certificate(der: &[u8]) -> Vec<u8> {
    let body = [
        tlv::encode(&[tag::CERTIFICATE], der),
        tlv::encode(&[tag::CERT_INFO], &[0x00]),
        tlv::encode(&[tag::ERROR_DETECTION], &[]),
    ]
    .concat();
    tlv::encode(&[tag::DATA], &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_the_piv_application() {
        let apt = application_property_template();
        let inside = tlv::find(&apt, &[0x61]).unwrap();
        assert_eq!(
            tlv::find(inside, &[0x4F]).unwrap(),
            [0x00, 0x00, 0x10, 0x00, 0x01, 0x00]
        );
        let authority = tlv::find(inside, &[0x79]).unwrap();
        assert_eq!(tlv::find(authority, &[0x4F]).unwrap(), &AID[..5]);
        let algorithms = tlv::find(inside, &[0xAC]).unwrap();
        assert_eq!(tlv::find(algorithms, &[0x80]).unwrap(), [0x11]);
    }

    #[test]
    fn the_chuid_carries_the_guid_and_a_9999_fasc_n() {
        let guid = [7; 16];
        let chuid = chuid(&guid);
        let body = tlv::find(&chuid, &[0x53]).unwrap();
        assert_eq!(tlv::find(body, &[0x34]).unwrap(), guid);
        assert_eq!(tlv::find(body, &[0x30]).unwrap()[..3], [0xD4, 0xE7, 0x39]);
        assert_eq!(tlv::find(body, &[0x3E]).unwrap(), [0u8; 0]);
    }

    #[test]
    fn a_long_certificate_uses_two_byte_lengths() {
        let der = vec![0x30; 700];
        let object = certificate(&der);
        assert_eq!(object[..2], [0x53, 0x82]);
        let body = tlv::find(&object, &[0x53]).unwrap();
        assert_eq!(tlv::find(body, &[0x70]).unwrap(), &der[..]);
        assert_eq!(tlv::find(body, &[0x71]).unwrap(), [0x00]);
    }
}
