use sha2::{Digest, Sha256};
use unlock_protocol::piv::{AID, pin_block};

use super::*;
use crate::piv_ca::verify_prehash;

const GUID: [u8; 16] = [
    0x3f, 0x2a, 0x9c, 0x1e, 0x5b, 0x7d, 0x4e, 0x8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x5a, 0x6b,
];

fn card_with(change: impl FnOnce(&mut PivCardOptions)) -> VirtualPivCard {
    let ca = TestCa::new("Test PIV CA").unwrap();
    let mut options = PivCardOptions::new(GUID);
    change(&mut options);
    VirtualPivCard::new(&options, &ca).unwrap()
}

fn card() -> VirtualPivCard {
    card_with(|_| {})
}

fn select() -> Vec<u8> {
    [&[0x00, 0xA4, 0x04, 0x00, 0x09][..], &AID, &[0x00]].concat()
}

fn get_data(object: &[u8]) -> Vec<u8> {
    let list = tlv::encode(&[0x5C], object);
    [
        &[0x00, 0xCB, 0x3F, 0xFF, list.len() as u8][..],
        &list,
        &[0x00],
    ]
    .concat()
}

fn verify(pin: &str) -> Vec<u8> {
    [
        &[0x00, 0x20, 0x00, 0x80, 0x08][..],
        &pin_block(pin).unwrap(),
    ]
    .concat()
}

fn reset_retry_counter(puk: &str, pin: &str) -> Vec<u8> {
    [
        &[0x00, 0x2C, 0x00, 0x80, 0x10][..],
        &pin_block(puk).unwrap(),
        &pin_block(pin).unwrap(),
    ]
    .concat()
}

fn change_puk(old: &str, new: &str) -> Vec<u8> {
    [
        &[0x00, 0x24, 0x00, 0x81, 0x10][..],
        &pin_block(old).unwrap(),
        &pin_block(new).unwrap(),
    ]
    .concat()
}

fn sign_template(digest: &[u8]) -> Vec<u8> {
    let inside = [tlv::encode(&[0x82], &[]), tlv::encode(&[0x81], digest)].concat();
    tlv::encode(&[0x7C], &inside)
}

fn sign(key: u8, digest: &[u8; 32]) -> Vec<u8> {
    let template = sign_template(digest);
    [
        &[0x00, 0x87, 0x11, key, template.len() as u8][..],
        &template,
        &[0x00],
    ]
    .concat()
}

/// Sends `apdu` and fetches the rest of a long answer with GET RESPONSE.
fn exchange(card: &mut VirtualPivCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut answer = card.process(apdu);
    let mut data = Vec::new();
    loop {
        let word = u16::from_be_bytes([answer[answer.len() - 2], answer[answer.len() - 1]]);
        data.extend_from_slice(&answer[..answer.len() - 2]);
        if word & 0xFF00 != 0x6100 {
            return (data, word);
        }
        answer = card.process(&[0x00, 0xC0, 0x00, 0x00, word as u8]);
    }
}

/// The signature in `7C { 82 <signature> }`.
fn signature(response: &[u8]) -> Vec<u8> {
    let inside = tlv::find(response, &[0x7C]).unwrap();
    tlv::find(inside, &[0x82]).unwrap().to_vec()
}

fn certificate_object(card: &mut VirtualPivCard, object: &[u8]) -> Vec<u8> {
    let (data, word) = exchange(card, &get_data(object));
    assert_eq!(word, 0x9000);
    let body = tlv::find(&data, &[0x53]).unwrap();
    tlv::find(body, &[0x70]).unwrap().to_vec()
}

#[test]
fn the_piv_application_is_selected_by_default_and_answers_select_with_its_template() {
    let mut card = card();
    let (chuid, word) = exchange(&mut card, &get_data(&object::CHUID));
    assert_eq!(
        word, 0x9000,
        "the default application answers before any SELECT"
    );
    assert_eq!(
        tlv::find(tlv::find(&chuid, &[0x53]).unwrap(), &[0x34]).unwrap(),
        GUID
    );

    let (apt, word) = exchange(&mut card, &select());
    assert_eq!(word, 0x9000);
    assert_eq!(apt, objects::application_property_template());
    let by_rid = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
    assert_eq!(exchange(&mut card, &by_rid).1, 0x9000);

    let other = [
        0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x55, 0x4E, 0x4C, 0x4F, 0x43, 0x4B, 0x01,
    ];
    assert_eq!(card.process(&other), [0x6A, 0x82]);
    assert_eq!(
        exchange(&mut card, &get_data(&object::DISCOVERY)).1,
        0x9000,
        "a failed SELECT leaves PIV selected"
    );
}

#[test]
fn certificates_come_in_pieces_through_get_response_and_unknown_objects_are_not_found() {
    let mut card = card();
    let first = card.process(&get_data(&object::PIV_AUTHENTICATION_CERT));
    assert_eq!(first.len(), 258, "256 bytes at a time, whatever the Le");
    assert_eq!(first[256], 0x61);
    let certificate = certificate_object(&mut card, &object::PIV_AUTHENTICATION_CERT);
    assert_eq!(certificate, card.certificate(PivKey::PivAuthentication));
    assert_ne!(
        certificate,
        certificate_object(&mut card, &object::CARD_AUTHENTICATION_CERT)
    );

    // Asking for 8 bytes (as OpenSC does to learn the length) still gives the first piece.
    let mut probe = get_data(&object::CHUID);
    *probe.last_mut().unwrap() = 0x08;
    let answer = card.process(&probe);
    assert_eq!(answer[0], 0x53);
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);

    for absent in [
        &object::KEY_MANAGEMENT_CERT[..],
        &object::CAPABILITY_CONTAINER,
        &[0x5F, 0xC1, 0x09],
    ] {
        assert_eq!(
            card.process(&get_data(absent)),
            [0x6A, 0x82],
            "{absent:02x?}"
        );
    }
    // A GET RESPONSE with nothing waiting, and one after another command, are refused.
    assert_eq!(card.process(&[0x00, 0xC0, 0x00, 0x00, 0x00]), [0x69, 0x85]);
    card.process(&get_data(&object::PIV_AUTHENTICATION_CERT));
    card.process(&[0x00, 0x20, 0x00, 0x80]);
    assert_eq!(card.process(&[0x00, 0xC0, 0x00, 0x00, 0x00]), [0x69, 0x85]);
}

#[test]
fn an_extended_le_takes_a_certificate_in_one_answer() {
    let mut card = card();
    let list = tlv::encode(&[0x5C], &object::CARD_AUTHENTICATION_CERT);
    let apdu = [
        &[0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, list.len() as u8][..],
        &list,
        &[0x00, 0x00],
    ]
    .concat();
    let answer = card.process(&apdu);
    assert!(answer.len() > 258);
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
}

#[test]
fn three_wrong_pins_block_it_and_verify_without_data_tells_the_state() {
    let mut card = card();
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC3]);
    assert_eq!(card.process(&verify(DEFAULT_PIN)), [0x90, 0x00]);
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x80]), [0x90, 0x00]);
    assert_eq!(card.process(&[0x00, 0x20, 0xFF, 0x80]), [0x90, 0x00]);
    assert_eq!(
        card.process(&[0x00, 0x20, 0x00, 0x80]),
        [0x63, 0xC3],
        "P1 FF forgot the verified PIN"
    );
    assert_eq!(card.process(&verify("111222")), [0x63, 0xC2]);
    assert_eq!(card.process(&verify("111222")), [0x63, 0xC1]);
    assert_eq!(card.process(&verify("111222")), [0x63, 0xC0]);
    assert_eq!(card.process(&verify(DEFAULT_PIN)), [0x69, 0x83]);
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x80]), [0x69, 0x83]);
    assert_eq!(card.counters().pin_tries, 0);
    assert_eq!(
        card.process(&[0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32]),
        [0x6A, 0x80]
    );
}

#[test]
fn verify_for_the_puk_tells_its_tries_but_checks_nothing() {
    let mut card = card_with(|options| options.puk_tries = 2);
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x81]), [0x63, 0xC2]);
    let with_data = [
        &[0x00, 0x20, 0x00, 0x81, 0x08][..],
        &pin_block(DEFAULT_PUK).unwrap(),
    ]
    .concat();
    assert_eq!(card.process(&with_data), [0x6A, 0x88]);
    assert_eq!(card.counters().puk_tries, 2);
    let blocked = &mut card_with(|options| options.puk_tries = 0);
    assert_eq!(blocked.process(&[0x00, 0x20, 0x00, 0x81]), [0x69, 0x83]);
}

#[test]
fn the_right_puk_sets_a_new_pin_and_fills_both_counters() {
    let mut card = card_with(|options| {
        options.pin_tries = 0;
        options.puk_tries = 2;
    });
    assert_eq!(
        card.process(&reset_retry_counter(DEFAULT_PUK, "905173")),
        [0x90, 0x00]
    );
    assert_eq!(
        card.counters(),
        Counters {
            pin_tries: 3,
            puk_tries: 3
        }
    );
    assert!(card.pin_is("905173"));
    assert_eq!(card.process(&verify("905173")), [0x90, 0x00]);
}

#[test]
fn a_wrong_puk_costs_a_try_and_three_block_it() {
    let mut card = card_with(|options| options.pin_tries = 0);
    assert_eq!(
        card.process(&reset_retry_counter("11223344", "905173")),
        [0x63, 0xC2]
    );
    assert_eq!(
        card.process(&reset_retry_counter("11223344", "905173")),
        [0x63, 0xC1]
    );
    assert_eq!(
        card.process(&reset_retry_counter("11223344", "905173")),
        [0x63, 0xC0]
    );
    assert_eq!(
        card.process(&reset_retry_counter(DEFAULT_PUK, "905173")),
        [0x69, 0x83]
    );
    assert_eq!(
        card.counters(),
        Counters {
            pin_tries: 0,
            puk_tries: 0
        }
    );
    assert_eq!(
        card.wrong_puks(),
        3,
        "the blocked card's refusal is not a try"
    );
    assert!(card.pin_is(DEFAULT_PIN));
}

#[test]
fn a_new_pin_must_be_six_to_eight_digits_and_costs_no_puk_try_when_it_is_not() {
    let mut card = card_with(|options| options.pin_tries = 0);
    assert_eq!(
        card.process(&reset_retry_counter(DEFAULT_PUK, "90517")),
        [0x6A, 0x80]
    );
    let mut letters = reset_retry_counter(DEFAULT_PUK, "905173");
    letters[13] = b'A';
    assert_eq!(card.process(&letters), [0x6A, 0x80]);
    let mut fifteen = reset_retry_counter(DEFAULT_PUK, "905173");
    fifteen.pop();
    fifteen[4] = 0x0F;
    assert_eq!(card.process(&fifteen), [0x6A, 0x80]);
    assert_eq!(card.counters().puk_tries, 3);
    assert_eq!(card.counters().pin_tries, 0);
}

#[test]
fn change_reference_data_rotates_the_puk_and_the_pin() {
    let mut card = card();
    assert_eq!(
        card.process(&change_puk("11223344", "88120457")),
        [0x63, 0xC2]
    );
    assert_eq!(
        card.process(&change_puk(DEFAULT_PUK, "88120457")),
        [0x90, 0x00]
    );
    assert!(card.puk_is("88120457") && !card.puk_is(DEFAULT_PUK));
    assert_eq!(
        card.counters().puk_tries,
        3,
        "the right PUK fills its counter"
    );
    assert_eq!(
        card.process(&reset_retry_counter(DEFAULT_PUK, "905173")),
        [0x63, 0xC2]
    );

    let change_pin = [
        &[0x00, 0x24, 0x00, 0x80, 0x10][..],
        &pin_block(DEFAULT_PIN).unwrap(),
        &pin_block("50918263").unwrap(),
    ]
    .concat();
    assert_eq!(card.process(&change_pin), [0x90, 0x00]);
    assert!(card.pin_is("50918263"));
    let mut bad_new = change_puk("88120457", "88120457");
    bad_new[13] = 0x00;
    assert_eq!(card.process(&bad_new), [0x6A, 0x80]);
}

#[test]
fn key_9e_signs_without_a_pin_and_9a_only_after_one() {
    let mut card = card();
    let digest: [u8; 32] = Sha256::digest(b"possession nonce").into();
    let (response, word) = exchange(&mut card, &sign(0x9E, &digest));
    assert_eq!(word, 0x9000);
    verify_prehash(
        card.certificate(PivKey::CardAuthentication),
        &digest,
        &signature(&response),
    )
    .unwrap();

    assert_eq!(card.process(&sign(0x9A, &digest)), [0x69, 0x82]);
    assert_eq!(card.process(&verify(DEFAULT_PIN)), [0x90, 0x00]);
    let (response, word) = exchange(&mut card, &sign(0x9A, &digest));
    assert_eq!(word, 0x9000);
    let signature = signature(&response);
    verify_prehash(
        card.certificate(PivKey::PivAuthentication),
        &digest,
        &signature,
    )
    .unwrap();
    assert!(
        verify_prehash(
            card.certificate(PivKey::CardAuthentication),
            &digest,
            &signature
        )
        .is_err(),
        "each key signs for itself"
    );

    card.reset();
    assert_eq!(
        card.process(&sign(0x9A, &digest)),
        [0x69, 0x82],
        "a reset forgets the PIN"
    );
}

#[test]
fn other_algorithms_keys_and_templates_are_refused() {
    let mut card = card();
    let digest = [7u8; 32];
    let mut rsa = sign(0x9E, &digest);
    rsa[2] = 0x07;
    assert_eq!(card.process(&rsa), [0x6A, 0x80]);
    let mut no_key = sign(0x9E, &digest);
    no_key[3] = 0x9C;
    assert_eq!(card.process(&no_key), [0x6A, 0x88]);
    let short = sign_template(&[7u8; 20]);
    let apdu = [&[0x00, 0x87, 0x11, 0x9E, short.len() as u8][..], &short].concat();
    assert_eq!(card.process(&apdu), [0x6A, 0x80]);
    let not_a_template = [0x00, 0x87, 0x11, 0x9E, 0x04, 0x30, 0x02, 0x82, 0x00];
    assert_eq!(card.process(&not_a_template), [0x6A, 0x80]);
}

#[test]
fn a_chained_command_is_answered_once_whole_and_a_broken_chain_is_refused() {
    let mut card = card();
    let digest: [u8; 32] = Sha256::digest(b"chained").into();
    let template = sign_template(&digest);
    let (first, second) = template.split_at(10);
    let head = [&[0x10, 0x87, 0x11, 0x9E, first.len() as u8][..], first].concat();
    assert_eq!(card.process(&head), [0x90, 0x00]);
    let tail = [
        &[0x00, 0x87, 0x11, 0x9E, second.len() as u8][..],
        second,
        &[0x00],
    ]
    .concat();
    let (response, word) = exchange(&mut card, &tail);
    assert_eq!(word, 0x9000);
    verify_prehash(
        card.certificate(PivKey::CardAuthentication),
        &digest,
        &signature(&response),
    )
    .unwrap();

    assert_eq!(card.process(&head), [0x90, 0x00]);
    assert_eq!(card.process(&verify(DEFAULT_PIN)), [0x68, 0x83]);
    assert_eq!(
        card.process(&verify(DEFAULT_PIN)),
        [0x90, 0x00],
        "the chain is gone"
    );
}

#[test]
fn secrets_stay_out_of_debug_and_malformed_commands_get_status_words() {
    let mut card = card_with(|options| {
        options.pin = "50918263".into();
        options.puk = "88120457".into();
    });
    let printed = format!("{card:?} {:?}", PivCardOptions::new(GUID));
    for secret in ["50918263", "88120457", DEFAULT_PIN, DEFAULT_PUK] {
        assert!(!printed.contains(secret), "{printed}");
    }
    for apdu in [
        &[][..],
        &[0x00],
        &[0x00, 0xA4, 0x04],
        &[0x80, 0xCB, 0x3F, 0xFF, 0x00],
        &[0x00, 0xCB, 0x3F, 0xFF, 0x02, 0x5C],
        &[0x00, 0xCB, 0x00, 0x00, 0x03, 0x5C, 0x01, 0x7E],
        &[0x00, 0x99, 0x00, 0x00],
        &[0x00, 0x2C, 0x00, 0x81, 0x00],
        &[0x00, 0x87, 0x11, 0x9E, 0x02, 0x7C, 0x05],
    ] {
        let answer = card.process(apdu);
        assert_eq!(answer.len(), 2, "{apdu:02x?}");
        assert_ne!(answer, [0x90, 0x00], "{apdu:02x?}");
    }
}

#[test]
fn the_atr_is_t1_with_a_valid_check_byte_and_no_yubikey_name() {
    let atr = atr();
    assert_eq!(atr[..4], [0x3B, 0x88, 0x80, 0x01]);
    assert_eq!(atr[1..].iter().fold(0, |acc, b| acc ^ b), 0);
    assert!(
        !String::from_utf8_lossy(&atr)
            .to_lowercase()
            .contains("yubi")
    );
}
