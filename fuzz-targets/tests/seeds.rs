//! Writes the seed corpus from real inputs: framed requests as the extension sends them, the
//! strings people type, the data objects and APDU runs of both card profiles, a card's
//! certificates from a test CA (whose certificate it writes to `fixtures/piv-ca.pem`, the
//! certificate target's trust anchor) and its signatures. Run by hand, then grow the corpus
//! with the fuzzer and minimise it (README, "Fuzzing"):
//!
//! `cargo test -p unlock-fuzz-targets --test seeds -- --ignored`

use std::path::{Path, PathBuf};

use p256::pkcs8::EncodePublicKey;
use unlock_e2e::piv_card::{FULL_AID, PivCardOptions, VirtualPivCard};
use unlock_fuzz_targets::{PIV_GUID, SIGNED_NONCE, UNLOCK_CR_PIN};
use unlock_protocol::bridge::MAX_REQUEST_BYTES;
use unlock_protocol::card_profile::{self, pin_block};
use unlock_protocol::piv::{self, Purpose, tag, tlv};
use unlock_testkit::piv::{Period, TestCa, TestPivCard, new_guid};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes `fuzz/corpus/<target>/seed-<name>`.
fn seed(target: &str, name: &str, data: &[u8]) {
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("make the corpus folder");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("write a seed");
}

/// A run of parts, as the targets cut their input.
fn parts(parts: &[&[u8]]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|part| {
            let length = u16::try_from(part.len()).expect("a part under 64 KB");
            [&length.to_be_bytes()[..], part].concat()
        })
        .collect()
}

/// Two things, as [`unlock_fuzz_targets::split`] cuts them.
fn two(first: &[u8], second: &[u8]) -> Vec<u8> {
    let length = u16::try_from(first.len()).expect("a part under 64 KB");
    [&length.to_be_bytes()[..], first, second].concat()
}

fn frame(text: &str) -> Vec<u8> {
    let length = u32::try_from(text.len()).expect("a short request");
    [&length.to_ne_bytes()[..], text.as_bytes()].concat()
}

#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    bridge();
    newtypes();
    unlock_cr();
    let ca = TestCa::new("Fuzz PIV CA").expect("a test CA");
    std::fs::write(
        root().join("fuzz-targets/fixtures/piv-ca.pem"),
        ca.cert_pem(),
    )
    .expect("write the trust anchor");
    piv_card_and_objects(&ca);
    certificates(&ca);
    signatures();
}

fn bridge() {
    let nonce = "5a".repeat(32);
    let requests = [
        ("hello", r#"{"id":1,"origin":"https://unlock.example.org","type":"hello","protocol_major":1,"protocol_minor":0}"#.to_owned()),
        ("readers", r#"{"id":2,"origin":"https://unlock.example.org","type":"readers"}"#.to_owned()),
        ("watch", r#"{"id":3,"origin":"https://unlock.example.org","type":"watch"}"#.to_owned()),
        ("read-card", r#"{"id":4,"origin":"https://unlock.example.org","type":"read_card","reader":"Virtual PCD 00 00"}"#.to_owned()),
        ("challenge-unlock-cr", r#"{"id":5,"origin":"https://unlock.example.org","type":"challenge","reader":"Virtual PCD 00 00","challenge":{"profile":"unlock-cr/1","serial":"2d6bddb8ad096c2d"}}"#.to_owned()),
        ("challenge-piv", format!(r#"{{"id":6,"origin":"https://unlock.example.org","type":"challenge","reader":"Virtual PCD 00 01","challenge":{{"profile":"piv/1","guid":"{PIV_GUID}","nonce":"{nonce}"}}}}"#)),
        ("unblock-unlock-cr", r#"{"id":7,"origin":"https://unlock.example.org","type":"unblock","reader":"Virtual PCD 00 00","release":{"profile":"unlock-cr/1","serial":"2d6bddb8ad096c2d","cryptogram":"d206290d1935d00cc7a1d6d9754a930f"},"new_passcode":"905173"}"#.to_owned()),
        ("unblock-piv", format!(r#"{{"id":8,"origin":"https://unlock.example.org","type":"unblock","reader":"Virtual PCD 00 01","release":{{"profile":"piv/1","guid":"{PIV_GUID}","puks":["40719263","11223344"],"next_puk":"88120457","receipt_nonce":"{nonce}"}},"new_passcode":"905173"}}"#)),
        ("raw-apdu", r#"{"id":9,"origin":"o","type":"raw_apdu","apdu":"00a40400"}"#.to_owned()),
        ("not-json", r#"{"id":10,"origin":"#.to_owned()),
    ];
    for (name, text) in &requests {
        seed("bridge_request", name, text.as_bytes());
        seed("bridge_frames", name, &frame(text));
    }
    let two = [frame(&requests[0].1), frame(&requests[4].1)].concat();
    seed("bridge_frames", "two-frames", &two);
    seed(
        "bridge_frames",
        "empty-then-hello",
        &[frame(""), frame(&requests[0].1)].concat(),
    );
    let oversize = (u32::try_from(MAX_REQUEST_BYTES).unwrap() + 1).to_ne_bytes();
    seed(
        "bridge_frames",
        "oversize-cut-short",
        &[&oversize[..], b"{}"].concat(),
    );
    seed("bridge_frames", "not-text", &frame_bytes(&[0xFF, 0xFE]));
}

fn frame_bytes(body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len()).expect("short");
    [&length.to_ne_bytes()[..], body].concat()
}

fn newtypes() {
    let staff_password = "rita.ra\ncorrect horse battery";
    let samples: [(&str, &str); 22] = [
        ("email", "  Jane.Doe@Example.NHS.uk \n"),
        ("email-plus", "j.o'neil+unlock@trust-42.nhs.uk"),
        ("holder-id", "1234 5678 9012"),
        ("code", "123-456"),
        ("passcode", "50918263"),
        ("passcode-sequence", "654321"),
        ("serial", "2D:6B:DD:B8 AD:09:6C:2D"),
        ("guid-urn", "urn:uuid:3F2A9C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B"),
        ("guid", PIV_GUID),
        ("username", " Rita.RA "),
        ("staff-password", staff_password),
        ("staff-password-plain", "correct horse battery"),
        ("puk", "40719263"),
        ("block", "d206290d1935d00cc7a1d6d9754a930f"),
        (
            "nonce",
            "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A",
        ),
        ("signature", "3045022100c0ffee"),
        ("card-status", "suspended"),
        ("delivery-state", "queued"),
        ("role", "ra-manager"),
        ("error-code", "code_expired"),
        ("ineligible", "puk_blocked"),
        ("unicode", "jane@exаmple.org"),
    ];
    for (name, text) in samples {
        seed("protocol_newtypes", name, text.as_bytes());
    }
}

/// `00 A4 04 00 08 <AID>`.
fn unlock_cr_select() -> Vec<u8> {
    [&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &card_profile::AID].concat()
}

fn unlock_cr() {
    let select = unlock_cr_select();
    let verify = |pin: &str| {
        [
            &[0x00, 0x20, 0x00, 0x80, 0x08][..],
            &pin_block(pin).unwrap(),
        ]
        .concat()
    };
    let (right, wrong) = (verify(UNLOCK_CR_PIN), verify("111222"));
    let serial = [0x00, 0xCA, 0x00, 0x5A, 0x00];
    let tries = [0x00, 0x20, 0x00, 0x80];
    let challenge = [0x00, 0x84, 0x00, 0x00, 0x10];
    let authenticate = [&[0x00, 0x82, 0x00, 0x01, 0x10][..], &[0xD2; 16]].concat();
    let unblock = [
        &[0x00, 0x2C, 0x02, 0x80, 0x08][..],
        &pin_block("905173").unwrap(),
    ]
    .concat();
    let runs: [(&str, Vec<&[u8]>); 6] = [
        ("select-serial", vec![&select, &serial]),
        ("tries-left", vec![&select, &tries]),
        ("verify", vec![&select, &right, &tries]),
        (
            "wrong-passcodes",
            vec![&select, &wrong, &wrong, &wrong, &tries],
        ),
        (
            "unlock",
            vec![&select, &serial, &challenge, &authenticate, &unblock],
        ),
        ("unblock-unauthenticated", vec![&select, &unblock]),
    ];
    for (name, run) in runs {
        seed("unlock_cr_card", name, &parts(&run));
    }
}

/// The GENERAL AUTHENTICATE template asking key `key` to sign `digest`.
fn sign_request(key: u8, digest: &[u8; 32]) -> Vec<u8> {
    let template = tlv::encode(
        &[tag::DYNAMIC_AUTHENTICATION],
        &[
            tlv::encode(&[tag::RESPONSE], &[]),
            tlv::encode(&[tag::CHALLENGE], digest),
        ]
        .concat(),
    );
    let length = u8::try_from(template.len()).unwrap();
    [
        &[
            0x00,
            piv::ins::GENERAL_AUTHENTICATE,
            piv::algorithm::ECC_P256,
            key,
            length,
        ][..],
        &template,
        &[0x00],
    ]
    .concat()
}

fn get_data(object: &[u8]) -> Vec<u8> {
    let list = tlv::encode(&[tag::TAG_LIST], object);
    let length = u8::try_from(list.len()).unwrap();
    [
        &[0x00, piv::ins::GET_DATA, 0x3F, 0xFF, length][..],
        &list,
        &[0x00],
    ]
    .concat()
}

/// The data of a whole answer, fetched with GET RESPONSE while the card has more.
fn fetch(card: &mut VirtualPivCard, apdu: &[u8]) -> Vec<u8> {
    let mut answer = card.process(apdu);
    let mut data = Vec::new();
    loop {
        let word = answer.split_off(answer.len() - 2);
        data.extend(answer);
        if word[0] != 0x61 {
            return data;
        }
        answer = card.process(&[0x00, piv::ins::GET_RESPONSE, 0x00, 0x00, word[1]]);
    }
}

fn piv_card_and_objects(ca: &TestCa) {
    let guid: [u8; 16] = hex::decode(PIV_GUID).unwrap().try_into().unwrap();
    let mut card = VirtualPivCard::new(&PivCardOptions::new(guid), ca).expect("a virtual PIV card");
    let select = [&[0x00, 0xA4, 0x04, 0x00, 0x09][..], &piv::AID, &[0x00]].concat();
    let chuid = get_data(&piv::object::CHUID);
    let card_cert = get_data(&piv::object::CARD_AUTHENTICATION_CERT);
    let discovery = get_data(&piv::object::DISCOVERY);
    let more = [0x00, piv::ins::GET_RESPONSE, 0x00, 0x00, 0x00];
    let pin_tries = [0x00, 0x20, 0x00, 0x80];
    let puk_tries = [0x00, 0x20, 0x00, 0x81];
    let verify = |pin: &str| {
        [
            &[0x00, 0x20, 0x00, 0x80, 0x08][..],
            &pin_block(pin).unwrap(),
        ]
        .concat()
    };
    let (new_pin, wrong) = (verify("905173"), verify("111222"));
    let possession = sign_request(piv::key::CARD_AUTHENTICATION, &[0x11; 32]);
    let receipt = sign_request(piv::key::PIV_AUTHENTICATION, &[0x22; 32]);
    let reset = [
        &[0x00, 0x2C, 0x00, 0x80, 0x10][..],
        b"40719263",
        &pin_block("905173").unwrap(),
    ]
    .concat();
    let rotate = [
        &[0x00, 0x24, 0x00, 0x81, 0x10][..],
        b"40719263",
        b"88120457",
    ]
    .concat();
    // The possession request in two chained pieces, and with extended lengths.
    let (head, tail) = possession[5..possession.len() - 1].split_at(10);
    let chained_head = [&[0x10, 0x87, 0x11, 0x9E, 10][..], head].concat();
    let chained_tail = [
        &[0x00, 0x87, 0x11, 0x9E, u8::try_from(tail.len()).unwrap()][..],
        tail,
        &[0x00],
    ]
    .concat();
    let template = &possession[5..possession.len() - 1];
    let extended = [
        &[
            0x00,
            0x87,
            0x11,
            0x9E,
            0x00,
            0x00,
            u8::try_from(template.len()).unwrap(),
        ][..],
        template,
        &[0x00, 0x00],
    ]
    .concat();
    let short_select = [&[0x00, 0xA4, 0x04, 0x0C, 0x05][..], &FULL_AID[..5]].concat();
    let runs: [(&str, Vec<&[u8]>); 8] = [
        (
            "read",
            vec![
                &select, &chuid, &card_cert, &more, &more, &pin_tries, &puk_tries,
            ],
        ),
        ("discovery", vec![&short_select, &discovery]),
        ("possession", vec![&select, &possession]),
        ("unlock", vec![&select, &reset, &rotate, &new_pin, &receipt]),
        (
            "wrong-pin",
            vec![&select, &wrong, &wrong, &wrong, &pin_tries],
        ),
        ("receipt-unverified", vec![&select, &receipt]),
        ("chained", vec![&select, &chained_head, &chained_tail]),
        ("extended", vec![&select, &extended]),
    ];
    for (name, run) in runs {
        seed("piv_card", name, &parts(&run));
    }

    // The card's real data objects and templates, for the TLV parser.
    let objects: [(&str, Vec<u8>); 6] = [
        ("application-property-template", fetch(&mut card, &select)),
        ("chuid", fetch(&mut card, &chuid)),
        ("discovery", fetch(&mut card, &discovery)),
        (
            "card-authentication-certificate",
            fetch(&mut card, &card_cert),
        ),
        ("sign-request", template.to_vec()),
        ("signature", fetch(&mut card, &possession)),
    ];
    for (name, object) in objects {
        assert!(!object.is_empty(), "{name}");
        seed("protocol_tlv", name, &object);
    }
    seed("protocol_tlv", "pin-block", &pin_block("905173").unwrap());
}

fn certificates(ca: &TestCa) {
    let card = TestPivCard::issue(ca, PIV_GUID, Period::Current);
    let (cak, pak) = (
        &card.card_authentication_cert,
        &card.piv_authentication_cert,
    );
    seed("piv_certificates", "trusted", &two(cak, pak));
    seed("piv_certificates", "swapped", &two(pak, cak));
    let expired = TestPivCard::issue(ca, PIV_GUID, Period::Expired);
    seed(
        "piv_certificates",
        "expired",
        &two(
            &expired.card_authentication_cert,
            &expired.piv_authentication_cert,
        ),
    );
    let other = TestPivCard::issue(ca, &new_guid(), Period::Current);
    seed(
        "piv_certificates",
        "other-card",
        &two(
            &other.card_authentication_cert,
            &other.piv_authentication_cert,
        ),
    );
    let rogue = TestPivCard::issue(&TestCa::new("Rogue CA").unwrap(), PIV_GUID, Period::Current);
    seed(
        "piv_certificates",
        "untrusted",
        &two(
            &rogue.card_authentication_cert,
            &rogue.piv_authentication_cert,
        ),
    );
}

fn signatures() {
    let message = piv::message(Purpose::Possession, &SIGNED_NONCE);
    let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let spki = key.verifying_key().to_public_key_der().unwrap().into_vec();
    let signature: p256::ecdsa::Signature = key.sign(&message);
    seed(
        "piv_signature",
        "p256",
        &two(&spki, signature.to_der().as_bytes()),
    );

    use rsa::signature::{SignatureEncoding, Signer as _};
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let spki = rsa::RsaPublicKey::from(&private)
        .to_public_key_der()
        .unwrap()
        .into_vec();
    let signature = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private).sign(&message);
    seed(
        "piv_signature",
        "rsa-2048",
        &two(&spki, &signature.to_vec()),
    );
}
