//! The states the schema's `CHECK` constraints allow, as enums: rule code matches on
//! variants, and a row only decodes if its state is one of them. (Card status and delivery
//! state cross the wire, so they live in the protocol crate.)

/// An enum whose variants are stored by name: `as_str` gives the stored name, `from_name`
/// and `TryFrom<String>` read one back, and it binds and decodes as that text column (a
/// name the enum lacks fails to decode).
macro_rules! stored_names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $stored:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $stored,)+
                }
            }

            /// The variant stored under this name, if there is one.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl TryFrom<String> for $name {
            type Error = unlock_protocol::UnknownState;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                Self::from_name(&name).ok_or(unlock_protocol::UnknownState(name))
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <str as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let name = <&str as sqlx::Decode<sqlx::Any>>::decode(value)?;
                Ok(Self::from_name(name).ok_or_else(|| unlock_protocol::UnknownState(name.to_owned()))?)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use stored_names;

stored_names! {
    /// Where a journey stands (`journeys.state`).
    pub enum JourneyState {
        /// A code was sent; the holder has not typed the right one yet.
        AwaitingCode => "awaiting_code",
        /// The right code was typed and one of the holder's cards can be unlocked here.
        Verified => "verified",
        /// The right code was typed, but none of the holder's cards can be unlocked here.
        Ineligible => "ineligible",
        Closed => "closed",
    }
}

stored_names! {
    /// Why a closed journey closed (`journeys.closed_reason`).
    pub enum ClosedReason {
        Unlocked => "unlocked",
        /// More cryptograms were asked for than a journey may have.
        TooManyAttempts => "too_many_attempts",
    }
}

stored_names! {
    /// Where a one-time code stands (`one_time_codes.state`).
    pub enum CodeState {
        /// Sent and still usable.
        Live => "live",
        /// Typed in right.
        Used => "used",
        /// Typed in wrong too often.
        Voided => "voided",
        /// A newer code was sent for the journey.
        Superseded => "superseded",
    }
}

stored_names! {
    /// How far a staff sign-in has got (`staff_sessions.stage`).
    pub enum SessionStage {
        /// The password was right; the authenticator code is next.
        SecondFactor => "second_factor",
        /// Both factors were right, and the password must be changed before anything else.
        NewPassword => "new_password",
        Active => "active",
    }
}

stored_names! {
    /// What an email in the outbox is (`outbox.kind`).
    pub enum OutboxKind {
        /// A holder's one-time code; withdrawn when a newer code is sent.
        OneTimeCode => "one_time_code",
        /// The notice to every address on a profile that its card was unlocked.
        CardUnlocked => "card_unlocked",
        /// The notice to every address on a profile that a secret unblocking its card was
        /// released (the unlock began).
        UnlockStarted => "unlock_started",
        /// The notice to every address on a profile that an address was added to it.
        EmailAdded => "email_added",
        /// The notice that an address was removed (sent to it too).
        EmailRemoved => "email_removed",
        /// The notice to every address on a profile that an RA issued a one-time unlock code
        /// for it (never the code).
        UnlockCodeIssued => "unlock_code_issued",
    }
}

stored_names! {
    /// How an outbox message goes out (`outbox.channel`).
    pub enum Channel {
        /// By email, over SMTP.
        Email => "email",
        /// By text message, over SMPP to the SMS gateway.
        Sms => "sms",
    }
}

stored_names! {
    /// What the SMS gateway's last delivery receipt said of a text (`outbox.delivery_state`):
    /// SMPP 3.4's final `message_state`s, and `accepted` for an intermediate receipt.
    pub enum ReceiptState {
        Delivered => "delivered",
        Expired => "expired",
        Deleted => "deleted",
        Undeliverable => "undeliverable",
        Accepted => "accepted",
        Unknown => "unknown",
        Rejected => "rejected",
    }
}

stored_names! {
    /// What a throttle counts (`throttles.scope`); how lock-outs grow is the throttle
    /// module's policy.
    pub enum Scope {
        /// Journeys started from one client address.
        ClientStart => "client_start",
        /// Wrong codes sent from one client address.
        ClientFailure => "client_failure",
        /// Codes voided by wrong tries, per holder (or per unknown address).
        SubjectVoided => "subject_voided",
        /// Wrong codes typed, per holder (or per unknown address), in a day.
        SubjectWrongCode => "subject_wrong_code",
        /// Wrong codes typed, per holder (or per unknown address), in all: its lock-out lasts
        /// until a Registration Authority releases the holder.
        SubjectWrongTotal => "subject_wrong_total",
        /// Wrong staff passwords or authenticator codes, per username (by its pseudonym).
        StaffAccount => "staff_account",
        /// Wrong staff passwords or authenticator codes, per client address.
        StaffClient => "staff_client",
    }
}

#[cfg(test)]
mod tests {
    use unlock_protocol::UnknownState;

    use super::*;

    #[test]
    fn every_name_reads_back_as_its_variant() {
        for state in JourneyState::ALL {
            assert_eq!(JourneyState::from_name(state.as_str()), Some(*state));
        }
        for stage in SessionStage::ALL {
            assert_eq!(
                SessionStage::try_from(stage.as_str().to_owned()),
                Ok(*stage)
            );
        }
        assert_eq!(
            CodeState::try_from("spent".to_owned()),
            Err(UnknownState("spent".into()))
        );
    }

    /// The names a `CHECK (column IN (...))` allows, the `nth` such constraint on `column`
    /// in a migration.
    fn allowed(sql: &str, column: &str, nth: usize) -> Vec<String> {
        let marker = format!("CHECK ({column} IN (");
        let start = sql
            .match_indices(&marker)
            .nth(nth)
            .unwrap_or_else(|| panic!("no CHECK on {column}"))
            .0
            + marker.len();
        let list = &sql[start..start + sql[start..].find(')').unwrap()];
        list.split(',')
            .map(|name| name.trim().trim_matches('\'').to_owned())
            .collect()
    }

    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| name(*v).to_owned()).collect()
    }

    #[test]
    fn the_enums_mirror_both_engines_check_constraints() {
        for engine in ["sqlite", "postgres"] {
            let read = |file: &str| {
                let path = format!("{}/migrations/{engine}/{file}", env!("CARGO_MANIFEST_DIR"));
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
            };
            let (initial, cards, staff) = (
                read("0001_initial.sql"),
                read("0002_card_unlock.sql"),
                read("0003_staff.sql"),
            );
            // `state IN` appears on journeys, one_time_codes and outbox, in that order.
            let journeys = allowed(&initial, "state", 0);
            assert_eq!(
                journeys,
                names(JourneyState::ALL, JourneyState::as_str),
                "{engine}"
            );
            let codes = allowed(&initial, "state", 1);
            assert_eq!(codes, names(CodeState::ALL, CodeState::as_str), "{engine}");
            let outbox = allowed(&initial, "state", 2);
            let delivery = names(&unlock_protocol::DeliveryState::ALL, |s| s.as_str());
            assert_eq!(outbox, delivery, "{engine}");
            let status = allowed(&initial, "status", 0);
            let card = names(&unlock_protocol::CardStatus::ALL, |s| s.as_str());
            assert_eq!(status, card, "{engine}");
            let closed = allowed(&cards, "closed_reason", 0);
            assert_eq!(
                closed,
                names(ClosedReason::ALL, ClosedReason::as_str),
                "{engine}"
            );
            let stage = allowed(&staff, "stage", 0);
            assert_eq!(
                stage,
                names(SessionStage::ALL, SessionStage::as_str),
                "{engine}"
            );
            // An RA's unlock codes have the one-time codes' states.
            let ra_codes = allowed(&read("0009_ra_unlock_codes.sql"), "state", 0);
            assert_eq!(
                ra_codes,
                names(CodeState::ALL, CodeState::as_str),
                "{engine}"
            );
            let role = allowed(&staff, "role", 0);
            let roles = names(&unlock_protocol::staff::Role::ALL, |r| r.as_str());
            assert_eq!(role, roles, "{engine}");
        }
    }
}

stored_names! {
    /// What a key is for (`key_versions.purpose`).
    pub enum KeyPurpose {
        /// Every unlock-cr/1 card's admin key is derived from it.
        CardMaster => "card_master",
        /// It seals the escrowed PUKs of piv/1 cards.
        PukEscrow => "puk_escrow",
    }
}

stored_names! {
    /// Where a key version is kept (`key_versions.custody`).
    pub enum CustodyKind {
        /// A file of hex digits the server reads at start-up.
        File => "file",
        /// A non-extractable key on a PKCS#11 token (an HSM), which computes with it.
        Pkcs11 => "pkcs11",
    }
}

impl KeyPurpose {
    /// The key's name in a sentence.
    pub fn human(self) -> &'static str {
        match self {
            Self::CardMaster => "card master",
            Self::PukEscrow => "PUK escrow",
        }
    }
}
