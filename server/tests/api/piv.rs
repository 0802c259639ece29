//! The `piv/1` card steps through the real server: present (both certificates checked against
//! the trust anchors and the profile, a possession nonce handed out), release (the 9E
//! signature checked, the escrowed PUK and a pending next PUK released), receipt (the 9A
//! signature checked, the rotation made current), on the suite's engine.

use reqwest::StatusCode;
use serde_json::{Value, json};
use unlock_protocol::api::IneligibleReason;
use unlock_protocol::piv::{self, Puk, Purpose};
use unlock_protocol::{CardId, ErrorCode};
use unlock_server::piv::escrow;
use unlock_server::secrets::Keys;
use unlock_testkit::piv::{Period, PivKey, TestCa, TestPivCard, new_guid};

use crate::helpers::*;

/// The anchors file, in the test's data folder.
const ANCHORS: &str = "piv-anchors.pem";
/// The PUK the card management system set.
const FIRST_PUK: &str = "40719263";
const YEAR: i64 = 86_400_000 * 365;

/// A server trusting a fresh test CA, and that CA.
async fn spawn_piv_app() -> (TestApp, TestCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Test PIV CA").unwrap();
    std::fs::write(dir.path().join(ANCHORS), ca.cert_pem()).unwrap();
    let smtp = SmtpSink::start(dir.path());
    let mut app = spawn_app_on(dir, Some(smtp.url()), |c| {
        c.cards.piv_trust_anchors_file = Some(c.data_dir.join(ANCHORS));
    })
    .await;
    app.smtp = Some(smtp);
    (app, ca)
}

fn keys() -> Keys {
    Keys::from_secret(&hex::decode(SECRET_KEY).unwrap().try_into().unwrap())
}

/// Puts a PIV card with GUID `guid` and escrowed PUK `puk` on `holder`'s profile.
async fn add_piv_card(app: &TestApp, holder: &str, guid: &str, puk: &str) {
    let id = CardId::parse(guid).unwrap();
    let sealed = escrow::seal(&keys(), &id, &Puk::parse(puk).unwrap()).unwrap();
    sqlx::query(
        "INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, puk_sealed, updated_at)
         VALUES ($1, $2, 'active', $3, 'piv/1', $4, 0)",
    )
    .bind(guid)
    .bind(holder)
    .bind(START_OF_TEST + YEAR)
    .bind(sealed)
    .execute(app.db())
    .await
    .unwrap();
}

/// The card's escrow as `(current PUK, pending PUK, generation)`, opened.
async fn escrow_of(app: &TestApp, guid: &str) -> (String, Option<String>, i64) {
    let (current, pending, generation): (Vec<u8>, Option<Vec<u8>>, i64) = sqlx::query_as(
        "SELECT puk_sealed, puk_pending_sealed, puk_generation FROM cards WHERE serial = $1",
    )
    .bind(guid)
    .fetch_one(app.db())
    .await
    .unwrap();
    let id = CardId::parse(guid).unwrap();
    let open = |sealed: &[u8]| {
        escrow::open(&keys(), &id, sealed)
            .unwrap()
            .expose()
            .to_owned()
    };
    (open(&current), pending.as_deref().map(open), generation)
}

/// What the bridge reads from `card` (PUK tries as the card reports them).
fn identity(card: &TestPivCard, puk_tries_left: Option<u8>) -> Value {
    let mut body = json!({
        "profile": "piv/1",
        "guid": card.guid,
        "card_authentication": hex::encode(&card.card_authentication_cert),
        "piv_authentication": hex::encode(&card.piv_authentication_cert),
    });
    if let Some(tries) = puk_tries_left {
        body["puk_tries_left"] = json!(tries);
    }
    body
}

fn nonce_of(value: &Value) -> [u8; 32] {
    hex::decode(value.as_str().expect("a nonce"))
        .unwrap()
        .try_into()
        .unwrap()
}

/// The card's 9E signature over the possession nonce in the answer to present.
fn possession_proof(card: &TestPivCard, accepted: &Reply) -> Value {
    let nonce = nonce_of(&accepted.json()["challenge"]["nonce"]);
    let signature = card.sign(
        PivKey::CardAuthentication,
        &piv::message(Purpose::Possession, &nonce),
    );
    json!({"profile": "piv/1", "signature": hex::encode(signature)})
}

/// The card's 9A signature over the receipt nonce in a release.
fn receipt_for_release(card: &TestPivCard, released: &Reply) -> Value {
    let nonce = nonce_of(&released.json()["receipt_nonce"]);
    let signature = card.sign(
        PivKey::PivAuthentication,
        &piv::message(Purpose::Receipt, &nonce),
    );
    json!({"profile": "piv/1", "signature": hex::encode(signature)})
}

impl TestApp {
    async fn present_piv(&self, card: &TestPivCard) -> Reply {
        self.post_json("/api/journey/card", identity(card, Some(3)))
            .await
    }

    /// Presents the card and proves possession: the release.
    async fn release_piv(&self, card: &TestPivCard) -> Reply {
        let accepted = self.present_piv(card).await;
        assert_eq!(accepted.stage(), "card_accepted", "{}", accepted.json());
        self.post_json(RELEASE, possession_proof(card, &accepted))
            .await
    }

    async fn piv_receipt(&self, body: Value) -> Reply {
        self.post_json("/api/journey/card/receipt", body).await
    }
}

fn puks(released: &Reply) -> Vec<String> {
    released.json()["puks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_piv_card_proves_possession_gets_its_puk_and_its_receipt_rotates_the_escrow() {
    let (app, ca) = spawn_piv_app().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_piv_card(&app, HOLDER, &card.guid, FIRST_PUK).await;
    app.verified_journey().await;

    let accepted = app.present_piv(&card).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.json());
    let view = accepted.json();
    assert_eq!(view["stage"], "card_accepted");
    assert_eq!(view["card"], card.guid);
    assert_eq!(view["challenge"]["profile"], "piv/1");
    assert_eq!(view["challenge"]["guid"], card.guid);

    let released = app
        .post_json(RELEASE, possession_proof(&card, &accepted))
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.json());
    assert_eq!(released.json()["profile"], "piv/1");
    assert_eq!(released.json()["guid"], card.guid);
    assert_eq!(puks(&released), [FIRST_PUK]);
    let next = released.json()["next_puk"].as_str().unwrap().to_owned();
    assert_ne!(next, FIRST_PUK);
    // The next PUK is pending, written with the release.
    assert_eq!(
        escrow_of(&app, &card.guid).await,
        (FIRST_PUK.to_owned(), Some(next.clone()), 0)
    );

    let unlocked = app.piv_receipt(receipt_for_release(&card, &released)).await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.json());
    assert_eq!(
        unlocked.json(),
        json!({"stage": "unlocked", "card": card.guid})
    );
    assert_eq!(escrow_of(&app, &card.guid).await, (next.clone(), None, 1));
    app.smtp()
        .wait_for_subject(EMAIL, "Your smartcard was unlocked")
        .await;
    assert_eq!(app.audit("journey.present_card").await, ["accepted"]);
    assert_eq!(app.audit("journey.cryptogram").await, ["released"]);
    assert_eq!(app.audit("journey.receipt").await, ["unlocked"]);

    // The next unlock starts from the rotated PUK, and rotates it again.
    app.verified_journey().await;
    let again = app.release_piv(&card).await;
    assert_eq!(puks(&again), [next.as_str()]);
    let after = again.json()["next_puk"].as_str().unwrap().to_owned();
    assert!(after != next && after != FIRST_PUK);

    // Nothing the database or the audit trail holds is a PUK.
    let details: Vec<Option<String>> = sqlx::query_scalar("SELECT detail FROM audit_events")
        .fetch_all(app.db())
        .await
        .unwrap();
    let details = format!("{details:?}");
    for puk in [FIRST_PUK, next.as_str(), after.as_str()] {
        assert!(!details.contains(puk), "{details}");
    }
}

#[tokio::test]
async fn without_its_receipt_the_next_release_offers_both_puks_pending_first() {
    let (app, ca) = spawn_piv_app().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_piv_card(&app, HOLDER, &card.guid, FIRST_PUK).await;
    app.verified_journey().await;
    let first = app.release_piv(&card).await;
    let pending = first.json()["next_puk"].as_str().unwrap().to_owned();

    // The card was pulled before its receipt: a new journey, the same card.
    app.verified_journey().await;
    let second = app.release_piv(&card).await;
    assert_eq!(puks(&second), [pending.clone(), FIRST_PUK.to_owned()]);
    // The target stays the pending PUK: whichever the card holds, it ends on that one.
    assert_eq!(second.json()["next_puk"], pending);
    assert_eq!(
        escrow_of(&app, &card.guid).await,
        (FIRST_PUK.to_owned(), Some(pending.clone()), 0)
    );

    // A receipt signed with the wrong key is refused and commits nothing.
    let wrong = {
        let nonce = nonce_of(&second.json()["receipt_nonce"]);
        let signature = card.sign(
            PivKey::CardAuthentication,
            &piv::message(Purpose::Receipt, &nonce),
        );
        json!({"profile": "piv/1", "signature": hex::encode(signature)})
    };
    assert_refused(
        &app.piv_receipt(wrong).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "receipt_wrong",
    );
    assert_eq!(
        escrow_of(&app, &card.guid).await,
        (FIRST_PUK.to_owned(), Some(pending.clone()), 0)
    );
    // Its receipt nonce is spent: the right signature over it no longer counts either.
    assert_refused(
        &app.piv_receipt(receipt_for_release(&card, &second)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "receipt_wrong",
    );
    let third = app.release_piv(&card).await;
    assert_eq!(
        app.piv_receipt(receipt_for_release(&card, &third))
            .await
            .stage(),
        "unlocked"
    );
    assert_eq!(escrow_of(&app, &card.guid).await, (pending, None, 1));
}

#[tokio::test]
async fn certificates_from_another_ca_expired_or_naming_another_card_are_not_trusted() {
    let (app, ca) = spawn_piv_app().await;
    let guid = new_guid();
    add_piv_card(&app, HOLDER, &guid, FIRST_PUK).await;
    app.verified_journey().await;
    let rogue = TestPivCard::issue(&TestCa::new("Rogue CA").unwrap(), &guid, Period::Current);
    let expired = TestPivCard::issue(&ca, &guid, Period::Expired);
    // A trusted card's certificates, presented under the GUID of the holder's card.
    let other = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    let mut borrowed = identity(&other, Some(3));
    borrowed["guid"] = json!(guid);

    for body in [
        identity(&rogue, Some(3)),
        identity(&expired, None),
        borrowed,
    ] {
        let refused = app.post_json("/api/journey/card", body).await;
        assert_refused(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "certificate_not_trusted",
        );
        assert_eq!(
            refused.json()["message"],
            ErrorCode::CertificateNotTrusted.default_message()
        );
    }
    assert_eq!(
        app.audit("journey.present_card").await,
        ["certificate_not_trusted"; 3]
    );
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'journey.present_card' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert!(
        details[0].contains("does not chain to a trust anchor"),
        "{details:?}"
    );
    assert!(details[1].contains("expired"), "{details:?}");
    assert!(
        details[2].contains("does not name this card"),
        "{details:?}"
    );
    // Nothing was accepted, so nothing can be released.
    assert_eq!(app.journey().await.stage(), "verified");
}

#[tokio::test]
async fn a_trusted_card_that_is_not_on_the_profile_is_refused() {
    let (app, ca) = spawn_piv_app().await;
    let stranger = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_holder(app.server(), "555555555555", "other@trust.example", None).await;
    add_piv_card(&app, "555555555555", &stranger.guid, FIRST_PUK).await;
    app.verified_journey().await;
    assert_refused(
        &app.present_piv(&stranger).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_not_on_profile",
    );
    // A card recorded as another model is not unlocked as a PIV card.
    let mislabelled = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    app.add_card(
        HOLDER,
        &mislabelled.guid,
        "active",
        START_OF_TEST + YEAR,
        PROFILE,
    )
    .await;
    let refused = app.present_piv(&mislabelled).await;
    assert_refused(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_not_usable",
    );
    assert_eq!(
        refused.json()["message"],
        IneligibleReason::CardModelUnsupported.message()
    );
}

#[tokio::test]
async fn a_wrong_possession_proof_releases_nothing_and_spends_its_nonce() {
    let (app, ca) = spawn_piv_app().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_piv_card(&app, HOLDER, &card.guid, FIRST_PUK).await;
    app.verified_journey().await;
    let accepted = app.present_piv(&card).await;

    // Signed with the PIV Authentication key (a card that won't use 9E), or over another
    // nonce, or by another card: no PUK.
    let nonce = nonce_of(&accepted.json()["challenge"]["nonce"]);
    let wrong_key = card.sign(
        PivKey::PivAuthentication,
        &piv::message(Purpose::Possession, &nonce),
    );
    let refused = app
        .post_json(
            RELEASE,
            json!({"profile": "piv/1", "signature": hex::encode(wrong_key)}),
        )
        .await;
    assert_refused(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "possession_failed",
    );
    // The nonce is spent: even the right proof for it is refused now.
    assert_refused(
        &app.post_json(RELEASE, possession_proof(&card, &accepted))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "challenge_reused",
    );
    let other = TestPivCard::issue(&ca, &card.guid, Period::Current);
    let fresh = app.present_piv(&card).await;
    assert_refused(
        &app.post_json(RELEASE, possession_proof(&other, &fresh))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "possession_failed",
    );
    assert_eq!(
        app.audit("journey.cryptogram").await,
        ["possession_failed", "challenge_reused", "possession_failed"]
    );
    assert_eq!(
        escrow_of(&app, &card.guid).await,
        (FIRST_PUK.to_owned(), None, 0)
    );
    // Presenting the card again gives a new nonce, and the card's own proof works.
    assert_eq!(app.release_piv(&card).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_puk_blocked_card_is_sent_to_the_ra_and_releases_are_capped() {
    let (app, ca) = spawn_piv_app().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_piv_card(&app, HOLDER, &card.guid, FIRST_PUK).await;
    app.verified_journey().await;
    let blocked = app
        .post_json("/api/journey/card", identity(&card, Some(0)))
        .await;
    assert_refused(
        &blocked,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_not_usable",
    );
    assert_eq!(
        blocked.json()["message"],
        IneligibleReason::PukBlocked.message()
    );
    assert_eq!(app.audit("journey.present_card").await, ["puk_blocked"]);

    // Five releases (a pulled card each time), then the journey is closed.
    for _ in 0..5 {
        assert_eq!(app.release_piv(&card).await.status, StatusCode::OK);
    }
    let sixth = app.release_piv(&card).await;
    assert_refused(&sixth, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert_refused(
        &app.present_piv(&card).await,
        StatusCode::CONFLICT,
        "journey_closed",
    );
}

#[tokio::test]
async fn a_card_without_an_escrowed_puk_or_a_server_without_anchors_cannot_unlock_piv() {
    let (app, ca) = spawn_piv_app().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    app.add_card(HOLDER, &card.guid, "active", START_OF_TEST + YEAR, "piv/1")
        .await;
    app.verified_journey().await;
    let refused = app.present_piv(&card).await;
    assert_refused(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_not_usable",
    );

    let plain = spawn_app().await;
    plain.verified_journey().await;
    assert_refused(
        &plain.present_piv(&card).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

#[tokio::test]
async fn the_staff_profile_view_shows_piv_cards_and_never_a_puk() {
    let (app, ca) = spawn_piv_app().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_piv_card(&app, HOLDER, &card.guid, FIRST_PUK).await;
    app.verified_journey().await;
    let released = app.release_piv(&card).await;
    let next = released.json()["next_puk"].as_str().unwrap().to_owned();

    let rita = app
        .signed_in_staff(
            "rita",
            unlock_protocol::staff::Role::Ra,
            Some("999999999999"),
        )
        .await;
    let profile = rita.get(&format!("/api/staff/holders/{HOLDER}")).await;
    assert_eq!(profile.status, StatusCode::OK);
    let cards = profile.json()["cards"].clone();
    let piv_card = cards
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == card.guid.as_str())
        .expect("the PIV card on the profile");
    assert_eq!(piv_card["model"], "piv/1");
    assert_eq!(piv_card["unlockable"], true);
    let text = profile.json().to_string();
    assert!(!text.contains(FIRST_PUK) && !text.contains(&next), "{text}");
    assert!(!text.to_lowercase().contains("puk"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_possession_proof_sent_to_two_instances_at_once_releases_once() {
    let (app, ca) = spawn_piv_app().await;
    let second = app.second_instance().await;
    let card = TestPivCard::issue(&ca, &new_guid(), Period::Current);
    add_piv_card(&app, HOLDER, &card.guid, FIRST_PUK).await;
    app.verified_journey().await;
    let accepted = app.present_piv(&card).await;
    let proof = possession_proof(&card, &accepted);

    let asks = (0..8).map(|n| {
        let (app, second, proof) = (&app, &second, proof.clone());
        async move {
            if n % 2 == 0 {
                app.post_json(RELEASE, proof).await
            } else {
                app.post_json_to(second, RELEASE, proof).await
            }
        }
    });
    let replies = futures_util::future::join_all(asks).await;
    let codes: Vec<String> = replies
        .iter()
        .map(|r| {
            if r.status == StatusCode::OK {
                "released".to_owned()
            } else {
                r.code()
            }
        })
        .collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "released").count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| c == "released" || c == "challenge_reused"),
        "{codes:?}"
    );
    // One pending PUK, the one the release handed out.
    let released = replies.iter().find(|r| r.status == StatusCode::OK).unwrap();
    let (_, pending, _) = escrow_of(&app, &card.guid).await;
    assert_eq!(pending.as_deref(), released.json()["next_puk"].as_str());
    second.stop().await.unwrap();
}
