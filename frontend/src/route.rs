//! Every page of the holder's journey and the path it lives at, so links and redirects are
//! built from one place and the server's journey view maps to a page in one function.

use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::bridge::ErrorCode as BridgeCode;

/// A page of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Start,
    Email,
    Code,
    Card,
    Passcode,
    Working,
    Done,
    Help { topic: HelpTopic, then: Resume },
    End(EndReason),
}

impl Page {
    /// The path to link or navigate to.
    pub fn path(self) -> String {
        match self {
            Self::Start => "/".into(),
            Self::Email => "/email".into(),
            Self::Code => "/code".into(),
            Self::Card => "/card".into(),
            Self::Passcode => "/passcode".into(),
            Self::Working => "/working".into(),
            Self::Done => "/done".into(),
            Self::Help { topic, then } => {
                let mut query = Vec::new();
                if topic == HelpTopic::HelperOutdated {
                    query.push("outdated=1");
                }
                if then == Resume::Card {
                    query.push("then=card");
                }
                let base = match topic {
                    HelpTopic::Extension => "/help/extension",
                    HelpTopic::Helper | HelpTopic::HelperOutdated => "/help/helper",
                    HelpTopic::Reader => "/help/reader",
                };
                if query.is_empty() {
                    base.into()
                } else {
                    format!("{base}?{}", query.join("&"))
                }
            }
            Self::End(reason) => format!("/end/{}", reason.name()),
        }
    }

    /// Where a holder belongs, given where the server says their journey stands.
    pub fn for_view(view: &JourneyView) -> Self {
        match view {
            JourneyView::AwaitingCode { .. } => Self::Code,
            JourneyView::Verified { .. } | JourneyView::CardAccepted { .. } => Self::Card,
            JourneyView::Unlocked { .. } => Self::Done,
            JourneyView::ContactRa { reason } => Self::End(EndReason::ContactRa(*reason)),
            JourneyView::Expired => Self::End(EndReason::Expired),
        }
    }
}

/// What a help page explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpTopic {
    Extension,
    Helper,
    HelperOutdated,
    Reader,
}

impl HelpTopic {
    /// The help page for a bridge failure the holder can fix on their own computer.
    pub fn for_bridge_error(code: BridgeCode) -> Option<Self> {
        match code {
            BridgeCode::ExtensionMissing => Some(Self::Extension),
            BridgeCode::HostMissing => Some(Self::Helper),
            BridgeCode::HostOutdated => Some(Self::HelperOutdated),
            BridgeCode::NoReader | BridgeCode::PcscUnavailable => Some(Self::Reader),
            _ => None,
        }
    }
}

/// Where "Check again" on a help page goes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The start page (before the journey).
    Start,
    /// The card step (mid-journey: the server's journey decides from there).
    Card,
}

impl Resume {
    /// From the `then` query value; anything unknown goes back to the start, so the query
    /// can never send the holder off the site.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("card") => Self::Card,
            _ => Self::Start,
        }
    }

    pub fn page(self) -> Page {
        match self {
            Self::Start => Page::Start,
            Self::Card => Page::Card,
        }
    }
}

/// Why the journey stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Too many starts or wrong codes: the server locked this holder or computer out.
    Throttled,
    /// Too many codes asked for within the hour.
    TooManyCodes,
    /// Time ran out, or the server no longer knows the journey.
    Expired,
    /// The server will not release another cryptogram for this journey.
    TooManyAttempts,
    /// The card refuses the unlock key for good.
    AdminKeyBlocked,
    /// The journey already finished.
    Closed,
    /// The code was right, but self-service can't help this holder.
    ContactRa(IneligibleReason),
}

impl EndReason {
    const FIXED: [Self; 6] = [
        Self::Throttled,
        Self::TooManyCodes,
        Self::Expired,
        Self::TooManyAttempts,
        Self::AdminKeyBlocked,
        Self::Closed,
    ];

    /// The name in the path, `/end/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::TooManyCodes => "too_many_codes",
            Self::Expired => "expired",
            Self::TooManyAttempts => "too_many_attempts",
            Self::AdminKeyBlocked => "admin_key_blocked",
            Self::Closed => "closed",
            Self::ContactRa(reason) => reason.as_str(),
        }
    }

    /// The reason with this name in the path.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::FIXED
            .into_iter()
            .find(|reason| reason.name() == name)
            .or_else(|| IneligibleReason::from_name(name).map(Self::ContactRa))
    }
}

#[cfg(test)]
mod tests {
    use unlock_protocol::CardId;

    use super::*;

    #[test]
    fn every_end_reason_survives_its_path() {
        let reasons = EndReason::FIXED
            .into_iter()
            .chain(IneligibleReason::ALL.map(EndReason::ContactRa));
        for reason in reasons {
            let path = Page::End(reason).path();
            let name = path.strip_prefix("/end/").unwrap();
            assert_eq!(EndReason::from_name(name), Some(reason), "{path}");
        }
        assert_eq!(EndReason::from_name("../../evil"), None);
    }

    #[test]
    fn journey_views_lead_to_their_page() {
        let card = CardId::parse("2d6bddb8ad096c2d").unwrap();
        let cases = [
            (
                JourneyView::AwaitingCode {
                    email_hint: "d****@demo.example".into(),
                    expires_in_seconds: 900,
                    tries_left: 3,
                    resend_in_seconds: 30,
                },
                "/code",
            ),
            (
                JourneyView::Verified {
                    expires_in_seconds: 900,
                },
                "/card",
            ),
            (
                JourneyView::CardAccepted {
                    card: card.clone(),
                    expires_in_seconds: 600,
                    challenge: None,
                },
                "/card",
            ),
            (JourneyView::Unlocked { card }, "/done"),
            (
                JourneyView::ContactRa {
                    reason: IneligibleReason::CertificatesExpired,
                },
                "/end/certificates_expired",
            ),
            (JourneyView::Expired, "/end/expired"),
        ];
        for (view, path) in cases {
            assert_eq!(Page::for_view(&view).path(), path, "{view:?}");
        }
    }

    #[test]
    fn help_pages_carry_the_way_back() {
        let help = |topic, then| Page::Help { topic, then }.path();
        assert_eq!(help(HelpTopic::Extension, Resume::Start), "/help/extension");
        assert_eq!(
            help(HelpTopic::HelperOutdated, Resume::Card),
            "/help/helper?outdated=1&then=card"
        );
        assert_eq!(
            help(HelpTopic::Reader, Resume::Card),
            "/help/reader?then=card"
        );
        assert_eq!(Resume::from_query(Some("card")), Resume::Card);
        assert_eq!(
            Resume::from_query(Some("https://evil.example")),
            Resume::Start
        );
    }

    #[test]
    fn bridge_failures_the_holder_can_fix_have_help() {
        assert_eq!(
            HelpTopic::for_bridge_error(BridgeCode::ExtensionMissing),
            Some(HelpTopic::Extension)
        );
        assert_eq!(
            HelpTopic::for_bridge_error(BridgeCode::HostMissing),
            Some(HelpTopic::Helper)
        );
        assert_eq!(
            HelpTopic::for_bridge_error(BridgeCode::HostOutdated),
            Some(HelpTopic::HelperOutdated)
        );
        assert_eq!(
            HelpTopic::for_bridge_error(BridgeCode::NoReader),
            Some(HelpTopic::Reader)
        );
        assert_eq!(HelpTopic::for_bridge_error(BridgeCode::CardInUse), None);
    }
}
