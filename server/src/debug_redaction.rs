//! Every struct that holds a token, a hash of one, a code's MAC, a password hash or a sealed
//! secret prints without it in `Debug`, so a stray `{:?}` in a log line gives nothing away.

use unlock_protocol::api::JourneyView;
use unlock_protocol::staff::{Role, SignInStep};

use crate::db::journeys::{LatestCode, NewJourney};
use crate::db::outbox::{Claimed, NewMessage};
use crate::db::staff_accounts::{Account, Credentials};
use crate::db::staff_sessions::NewSession;
use crate::db::states::{CodeState, OutboxKind};
use crate::journey::Started;
use crate::outbox::Outgoing;
use crate::staff::auth::Begun;

/// Distinctive secret material, as text and as bytes in every form `Debug` could print it.
const TOKEN: &str = "9f1c8d7e6b5a4c3d";
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
const BYTES: [u8; 6] = [0xde, 0xad, 0xbe, 0xef, 0x51, 0x7a];

fn assert_hidden(printed: &str) {
    for secret in [TOKEN, HASH, "222, 173, 190, 239", "[222, 173"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

#[test]
fn no_secret_is_in_debug() {
    let view = JourneyView::AwaitingCode {
        email_hint: "j***@trust.example".into(),
        expires_in_seconds: 900,
        tries_left: 3,
        resend_in_seconds: 30,
    };
    let printed = [
        format!(
            "{:?}",
            Started {
                token: TOKEN.into(),
                view
            }
        ),
        format!(
            "{:?}",
            Begun {
                token: TOKEN.into(),
                step: SignInStep::SecondFactor
            }
        ),
        format!(
            "{:?}",
            Account {
                username: "sam".into(),
                role: Role::Support,
                holder_id: None,
                password_hash: HASH.into(),
                must_change_password: false,
                totp_secret: BYTES.to_vec(),
                totp_last_step: 0,
                disabled_at: None,
            }
        ),
        format!(
            "{:?}",
            Credentials {
                password_hash: HASH,
                sealed_secret: &BYTES
            }
        ),
        format!(
            "{:?}",
            LatestCode {
                id: 1,
                code_mac: BYTES.to_vec(),
                issued_at: 0,
                wrong_tries: 0,
                state: CodeState::Live,
            }
        ),
        format!(
            "{:?}",
            NewJourney {
                token_hash: &BYTES,
                subject: "holder:123456789012",
                holder_id: None,
                email: "jane@trust.example",
                client_addr: "192.0.2.1",
                expires_at: 0,
            }
        ),
        format!(
            "{:?}",
            NewMessage {
                kind: OutboxKind::OneTimeCode,
                recipient: "jane@trust.example",
                journey_id: None,
                holder_id: None,
                sealed: &BYTES,
                expires_at: None,
            }
        ),
        format!(
            "{:?}",
            Claimed {
                id: 1,
                kind: OutboxKind::OneTimeCode,
                channel: crate::db::states::Channel::Email,
                recipient: "jane@trust.example".into(),
                sealed_message: Some(BYTES.to_vec()),
                attempts: 0,
                expires_at: None,
            }
        ),
        format!(
            "{:?}",
            Outgoing {
                kind: OutboxKind::OneTimeCode,
                recipient: "jane@trust.example",
                journey_id: None,
                holder_id: None,
                sealed: BYTES.to_vec(),
                expires_at: None,
            }
        ),
        format!(
            "{:?}",
            NewSession {
                token_hash: &BYTES,
                username: "sam",
                client_addr: "192.0.2.1",
                expires_at: 0,
            }
        ),
    ];
    for printed in printed {
        assert_hidden(&printed);
    }
}
