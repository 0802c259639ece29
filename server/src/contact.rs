//! Where a holder's code goes: an email address or a mobile number on their profile.

use unlock_protocol::EmailAddress;

use crate::db::states::Channel;
use crate::mobile::MobileNumber;

/// An email address or a mobile number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email(EmailAddress),
    Mobile(MobileNumber),
}

impl Contact {
    /// Reads a stored contact back: numbers are stored in E.164 form (a leading `+`), which
    /// no email address has.
    pub fn from_stored(stored: &str) -> Option<Self> {
        if stored.starts_with('+') {
            MobileNumber::from_stored(stored).map(Self::Mobile)
        } else {
            EmailAddress::parse(stored).ok().map(Self::Email)
        }
    }

    /// How a message to it goes out.
    pub fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Mobile(_) => Channel::Sms,
        }
    }

    /// As stored: the normalised address, or the number in E.164 form.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(email) => email.as_str(),
            Self::Mobile(number) => number.as_str(),
        }
    }

    /// Partly hidden, for screens and staff views.
    pub fn masked(&self) -> String {
        match self {
            Self::Email(email) => email.masked(),
            Self::Mobile(number) => number.masked(),
        }
    }
}

/// The channel of a stored recipient (email unless it is a number in E.164 form).
pub fn channel_of(recipient: &str) -> Channel {
    if recipient.starts_with('+') {
        Channel::Sms
    } else {
        Channel::Email
    }
}
