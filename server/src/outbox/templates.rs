//! The words of the emails the service sends.

use unlock_protocol::CardId;

use super::Composed;
use crate::clock::Millis;
use crate::contact::Contact;
use crate::time_zone::ServiceZone;

/// "email address" or "mobile number".
fn what(contact: &Contact) -> &'static str {
    match contact {
        Contact::Email(_) => "email address",
        Contact::Mobile(_) => "mobile number",
    }
}

/// The text message form of a notice, for the mobile numbers on a profile: one SMS, saying
/// what happened (the email's subject) and what to do.
pub fn sms_notice(notice: &Composed) -> Composed {
    Composed {
        subject: notice.subject.clone(),
        text: format!(
            "Smartcard unlock: {}. If you did not ask for this, contact your Registration \
             Authority at once.",
            notice.subject
        ),
        html: String::new(),
    }
}

/// The email carrying a one-time security code.
pub fn one_time_code(
    code: &str,
    minutes_valid: u64,
    expires_at: Millis,
    zone: &ServiceZone,
) -> Composed {
    let until = zone.clock_time(expires_at);
    let subject = "Your smartcard unlock security code".to_owned();
    let text = format!(
        "Your security code is {code}\n\
         \n\
         Enter it on the smartcard unlock page to carry on.\n\
         \n\
         The code works for {minutes_valid} minutes from when you started, until {until}. \
         It can only be used once.\n\
         \n\
         Nobody will ever ask you for this code: not our staff, not your Registration Authority, \
         not IT support. Do not share it.\n\
         \n\
         If you did not ask to unlock your smartcard, you do not need to do anything. Without \
         this code nobody can use your card. If you keep getting these emails, tell your \
         Registration Authority.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>Your security code is</p>\
         <p style=\"font-size: 32px; font-weight: bold; letter-spacing: 4px\">{code}</p>\
         <p>Enter it on the smartcard unlock page to carry on.</p>\
         <p>The code works for {minutes_valid} minutes from when you started, until {until}. \
         It can only be used once.</p>\
         <p><strong>Nobody will ever ask you for this code</strong>: not our staff, not your \
         Registration Authority, not IT support. Do not share it.</p>\
         <p>If you did not ask to unlock your smartcard, you do not need to do anything. Without \
         this code nobody can use your card. If you keep getting these emails, tell your \
         Registration Authority.</p>\
"
        ),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// The text message carrying a one-time security code: short enough for one SMS (160 GSM
/// characters), the code first so phones can offer it.
pub fn one_time_code_sms(code: &str, minutes_valid: u64) -> Composed {
    Composed {
        subject: String::new(),
        text: format!(
            "{code} is your smartcard unlock security code. It works for {minutes_valid} minutes. \
             Nobody will ever ask you for it: do not share it."
        ),
        html: String::new(),
    }
}

/// The notice sent to every address on a profile once its card is unlocked. It names the
/// card by its last 4 characters only, and carries no code.
pub fn card_unlocked(serial: &CardId, at: Millis, zone: &ServiceZone) -> Composed {
    let when = zone.date_time(at);
    let tail = serial_tail(serial);
    let subject = "Your smartcard was unlocked".to_owned();
    let text = format!(
        "Your smartcard ending {tail} was unlocked on {when}, and a new passcode was set for it.\n\
         \n\
         If this was you, you do not need to do anything.\n\
         \n\
         If this was not you, contact your Registration Authority at once. Tell them when this \
         email arrived. They can stop the card being used.\n\
         \n\
         We sent this to every email address on your smartcard profile.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>Your smartcard ending <strong>{tail}</strong> was unlocked on {when}, and a new \
         passcode was set for it.</p>\
         <p>If this was you, you do not need to do anything.</p>\
         <p><strong>If this was not you, contact your Registration Authority at once.</strong> \
         Tell them when this email arrived. They can stop the card being used.</p>\
         <p>We sent this to every email address on your smartcard profile.</p>\
"
        ),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// The notice sent to every address on a profile when a secret that unblocks its card is
/// released (a cryptogram, or the PUK), before the card has done anything with it: whoever
/// holds the card can't make an unlock silent by never confirming it.
pub fn unlock_started(serial: &CardId, at: Millis, zone: &ServiceZone) -> Composed {
    let when = zone.date_time(at);
    let tail = serial_tail(serial);
    let subject = "An unlock of your smartcard was started".to_owned();
    let text = format!(
        "An unlock of your smartcard ending {tail} was started on {when}: the card was in a \
         reader and the one-time code sent to your email address was typed in.\n\
         \n\
         If this was you, you do not need to do anything. You will get another email once the \
         card is unlocked.\n\
         \n\
         If this was not you, contact your Registration Authority at once. Tell them when this \
         email arrived. They can stop the card being used.\n\
         \n\
         We sent this to every email address on your smartcard profile.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>An unlock of your smartcard ending <strong>{tail}</strong> was started on {when}: \
         the card was in a reader and the one-time code sent to your email address was typed \
         in.</p>\
         <p>If this was you, you do not need to do anything. You will get another email once \
         the card is unlocked.</p>\
         <p><strong>If this was not you, contact your Registration Authority at once.</strong> \
         Tell them when this email arrived. They can stop the card being used.</p>\
         <p>We sent this to every email address on your smartcard profile.</p>\
"
        ),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// An address was added to a holder's profile by their RA: sent to every address on it,
/// the new one included.
pub fn address_added(
    address: &Contact,
    public_url: &str,
    at: Millis,
    zone: &ServiceZone,
) -> Composed {
    let when = zone.date_time(at);
    let subject = match address {
        Contact::Email(_) => "An email address was added to your smartcard profile",
        Contact::Mobile(_) => "A mobile number was added to your smartcard profile",
    }
    .to_owned();
    let (what, address) = (what(address), address.as_str());
    let text = format!(
        "The {what} {address} was added to your smartcard profile on {when} by your \
         Registration Authority.\n\
         \n\
         You can now use it to unlock your smartcard yourself, or to choose a new passcode, at \
         {public_url}\n\
         \n\
         If you did not ask for this, contact your Registration Authority at once.\n\
         \n\
         We sent this to every email address on your smartcard profile.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>The {what} <strong>{address}</strong> was added to your smartcard profile \
             on {when} by your Registration Authority.</p>\
             <p>You can now use it to unlock your smartcard yourself, or to choose a new passcode, \
             at <a href=\"{public_url}\">{public_url}</a>.</p>\
             <p><strong>If you did not ask for this, contact your Registration Authority at \
             once.</strong></p>\
             <p>We sent this to every email address on your smartcard profile.</p>"
        ),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// An RA issued a one-time unlock code for a holder's profile (read out to the holder over
/// the phone): sent to every address on the profile, without the code. `ra` is the staff
/// username, which is letters, digits, `.`, `_` and `-` only.
pub fn unlock_code_issued(ra: &str, at: Millis, zone: &ServiceZone) -> Composed {
    let when = zone.date_time(at);
    let subject = "A Registration Authority gave out an unlock code for your smartcard".to_owned();
    let text = format!(
        "On {when} your Registration Authority ({ra}) issued a one-time code that lets your \
         smartcard be unlocked without an emailed security code. They read it out to someone \
         who phoned them as you. It works once, for 30 minutes.\n\
         \n\
         If this was not you, contact your Registration Authority at once.\n\
         \n\
         We sent this to every email address on your smartcard profile.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>On {when} your Registration Authority (<strong>{ra}</strong>) issued a one-time \
             code that lets your smartcard be unlocked without an emailed security code. They \
             read it out to someone who phoned them as you. It works once, for 30 minutes.</p>\
             <p><strong>If this was not you, contact your Registration Authority at \
             once.</strong></p>\
             <p>We sent this to every email address on your smartcard profile.</p>"
        ),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// An address was removed from a holder's profile: sent to it and to every address left.
pub fn address_removed(address: &Contact, at: Millis, zone: &ServiceZone) -> Composed {
    let when = zone.date_time(at);
    let subject = match address {
        Contact::Email(_) => "An email address was removed from your smartcard profile",
        Contact::Mobile(_) => "A mobile number was removed from your smartcard profile",
    }
    .to_owned();
    let (what, address) = (what(address), address.as_str());
    let text = format!(
        "The {what} {address} was removed from your smartcard profile on {when} by your \
         Registration Authority. It can no longer be used to unlock your smartcard.\n\
         \n\
         If you did not ask for this, contact your Registration Authority.\n\
         \n\
         We sent this to the removed address and to every address still on your profile.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>The {what} <strong>{address}</strong> was removed from your smartcard \
             profile on {when} by your Registration Authority. It can no longer be used to unlock \
             your smartcard.</p>\
             <p><strong>If you did not ask for this, contact your Registration Authority.</strong></p>\
             <p>We sent this to the removed address and to every address still on your profile.</p>"
        ),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// The HTML part of a message: `body` in a plain, readable page.
fn page(subject: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body style=\"font-family: Arial, sans-serif; font-size: 19px; line-height: 1.5; color: #212b32\">\
         {body}</body></html>\n"
    )
}

/// The last 4 characters of a serial, as printed on cards (upper case).
fn serial_tail(serial: &CardId) -> String {
    let digits = serial.as_str();
    digits[digits.len().saturating_sub(4)..].to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_email_says_what_the_holder_needs_to_know() {
        let london = ServiceZone::default();
        let email = one_time_code("042917", 15, 1_795_871_159_000, &london);
        for part in [&email.text, &email.html] {
            assert!(part.contains("042917"));
            assert!(part.contains("15 minutes"));
            assert!(part.contains("until 13:05 GMT."), "{part}");
            assert!(part.contains("Nobody will ever ask you for this code"));
            assert!(part.contains("If you did not ask to unlock your smartcard"));
        }
    }

    #[test]
    fn code_text_fits_one_sms() {
        let sms = one_time_code_sms("042917", 15);
        assert!(sms.text.starts_with("042917 "));
        assert!(sms.text.contains("15 minutes"));
        // One GSM 03.38 message: 160 characters, all in the basic set (ASCII letters,
        // digits and plain punctuation here).
        assert!(sms.text.len() <= 160, "{} characters", sms.text.len());
        assert!(
            sms.text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" .,:'".contains(&b))
        );
    }

    #[test]
    fn address_notices_name_the_address_and_what_to_do() {
        let address =
            Contact::Email(unlock_protocol::EmailAddress::parse("jane.doe@trust.example").unwrap());
        let london = ServiceZone::default();
        let added = address_added(
            &address,
            "https://unlock.example",
            1_795_871_159_000,
            &london,
        );
        for part in [&added.text, &added.html] {
            assert!(part.contains("jane.doe@trust.example"), "{part}");
            assert!(part.contains("https://unlock.example"), "{part}");
            assert!(part.contains("28 November 2026 at 13:05 GMT"), "{part}");
            assert!(
                part.contains("contact your Registration Authority at once"),
                "{part}"
            );
        }
        let removed = address_removed(&address, 1_795_871_159_000, &london);
        assert!(removed.subject.contains("removed"));
        for part in [&removed.text, &removed.html] {
            assert!(part.contains("jane.doe@trust.example"), "{part}");
            assert!(part.contains("can no longer be used"), "{part}");
        }
    }

    #[test]
    fn notices_by_text_fit_one_sms() {
        let number = Contact::from_stored("+447400123456").unwrap();
        let london = ServiceZone::default();
        let added = address_added(
            &number,
            "https://unlock.example",
            1_795_871_159_000,
            &london,
        );
        assert_eq!(
            added.subject,
            "A mobile number was added to your smartcard profile"
        );
        assert!(
            added
                .text
                .contains("The mobile number +447400123456 was added")
        );
        let serial = CardId::parse("2d6bddb8ad096c2d").unwrap();
        for notice in [
            added,
            address_removed(&number, 1_795_871_159_000, &london),
            card_unlocked(&serial, 1_795_871_159_000, &london),
            unlock_started(&serial, 1_795_871_159_000, &london),
        ] {
            let sms = sms_notice(&notice);
            assert!(sms.text.len() <= 160, "{}", sms.text);
            assert!(sms.text.contains(&notice.subject));
            assert!(sms.text.contains("contact your Registration Authority"));
        }
    }

    #[test]
    fn unlock_notice_says_when_and_what_to_do_and_hides_the_serial() {
        let serial = CardId::parse("2d6bddb8ad096c2d").unwrap();
        let email = card_unlocked(&serial, 1_795_871_159_000, &ServiceZone::default());
        assert_eq!(email.subject, "Your smartcard was unlocked");
        for part in [&email.text, &email.html] {
            assert!(part.contains("ending") && part.contains("6C2D"), "{part}");
            assert!(part.contains("28 November 2026 at 13:05 GMT"), "{part}");
            assert!(part.contains("contact your Registration Authority at once"));
            assert!(!part.to_ascii_lowercase().contains("2d6bddb8ad09"));
            assert!(!part.to_ascii_lowercase().contains("d096c2d"));
        }
    }

    #[test]
    fn times_follow_daylight_saving_and_name_the_zone() {
        // 2026-07-05T13:05:00Z and 2026-01-15T13:05:00Z.
        let (july, january) = (1_783_256_700_000, 1_768_482_300_000);
        let london = ServiceZone::default();
        let serial = CardId::parse("2d6bddb8ad096c2d").unwrap();
        let summer = unlock_started(&serial, july, &london);
        assert!(
            summer.text.contains("5 July 2026 at 14:05 BST"),
            "{}",
            summer.text
        );
        let winter = unlock_started(&serial, january, &london);
        assert!(
            winter.text.contains("15 January 2026 at 13:05 GMT"),
            "{}",
            winter.text
        );
        let code = one_time_code("042917", 15, july, &london);
        assert!(code.text.contains("until 14:05 BST."), "{}", code.text);
        let utc = ServiceZone::parse("UTC").unwrap();
        let code = one_time_code("042917", 15, july, &utc);
        assert!(code.text.contains("until 13:05 UTC."), "{}", code.text);
    }
}
