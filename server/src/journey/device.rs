//! Device cookies (OWASP's pattern against lock-outs by strangers): a browser that finished a
//! journey for a holder gets a signed, HttpOnly cookie naming that holder, and the journeys it
//! starts for them count their codes and failures on limits of their own. Anyone who only
//! knows the holder's address starts journeys without it and spends the shared limits, so the
//! holder's own browser keeps working while a stranger's are locked out.
//!
//! The cookie is `v1.<device id>.<tag>.<tag>…`: a random 16-byte id and, for each of up to
//! [`MAX_HOLDERS`] holders (a shared workstation), a keyed hash of the id and the holder's id.
//! Nothing in it can be forged without the server's secret, and it names no holder in clear.

use crate::db::throttles::DEVICE_SEPARATOR;
use crate::secrets::Keys;

/// The cookie's name (with the `__Host-` prefix over https).
pub const DEVICE_COOKIE: &str = "unlock_device";

/// Holders one browser is trusted for; the least recent drops off.
pub const MAX_HOLDERS: usize = 8;

/// How long a browser keeps the cookie: 400 days, the most browsers allow.
pub const MAX_AGE_SECONDS: u64 = 400 * 24 * 3600;

/// The longest value [`DeviceCookie::parse`] reads.
pub const MAX_LEN: usize = 3 + 32 + MAX_HOLDERS * 25;

/// A device cookie's contents.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCookie {
    id: [u8; 16],
    tags: Vec<[u8; 12]>,
}

impl std::fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCookie")
            .field("holders", &self.tags.len())
            .finish_non_exhaustive()
    }
}

impl DeviceCookie {
    /// A cookie for a browser that has none yet.
    pub fn new() -> anyhow::Result<Self> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("draw a device id: {e}"))?;
        Ok(Self {
            id,
            tags: Vec::new(),
        })
    }

    /// Reads a cookie's value; `None` for anything not in the form this server writes.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() > MAX_LEN {
            return None;
        }
        let mut parts = value.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let id = hex::decode(parts.next()?).ok()?.try_into().ok()?;
        let tags = parts
            .map(|part| hex::decode(part).ok()?.try_into().ok())
            .collect::<Option<Vec<[u8; 12]>>>()?;
        (tags.len() <= MAX_HOLDERS).then_some(Self { id, tags })
    }

    /// The cookie's value.
    pub fn value(&self) -> String {
        let mut value = format!("v1.{}", hex::encode(self.id));
        for tag in &self.tags {
            value.push('.');
            value.push_str(&hex::encode(tag));
        }
        value
    }

    /// Whether this browser finished a journey for `holder_id`.
    pub fn trusted_for(&self, keys: &Keys, holder_id: &str) -> bool {
        let tag = keys.device_tag(&self.id, holder_id);
        // Tags are compared whole; which one matched tells an attacker nothing they can use.
        self.tags.iter().any(|known| known == &tag)
    }

    /// The subject a journey from this browser counts its limits on: the holder's own, set
    /// apart by this device.
    pub fn subject(&self, holder_subject: &str) -> String {
        format!("{holder_subject}{DEVICE_SEPARATOR}{}", hex::encode(self.id))
    }

    /// This cookie, now also trusted for `holder_id` (most recent first).
    pub fn trusting(mut self, keys: &Keys, holder_id: &str) -> Self {
        let tag = keys.device_tag(&self.id, holder_id);
        self.tags.retain(|known| known != &tag);
        self.tags.insert(0, tag);
        self.tags.truncate(MAX_HOLDERS);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_secret(&[7u8; crate::secrets::SECRET_BYTES])
    }

    #[test]
    fn a_cookie_reads_back_and_trusts_only_the_holders_it_was_given() {
        let keys = keys();
        let cookie = DeviceCookie::new()
            .unwrap()
            .trusting(&keys, "111122223333")
            .trusting(&keys, "444455556666");
        let read = DeviceCookie::parse(&cookie.value()).unwrap();
        assert_eq!(read, cookie);
        assert!(read.trusted_for(&keys, "111122223333"));
        assert!(read.trusted_for(&keys, "444455556666"));
        assert!(!read.trusted_for(&keys, "999988887777"));
        // Another server's secret signs nothing here.
        let other = Keys::from_secret(&[8u8; crate::secrets::SECRET_BYTES]);
        assert!(!read.trusted_for(&other, "111122223333"));
    }

    #[test]
    fn a_forged_or_moved_tag_is_not_trusted() {
        let keys = keys();
        let mine = DeviceCookie::new().unwrap().trusting(&keys, "111122223333");
        let theirs = DeviceCookie::new().unwrap();
        // The tag copied onto another device id names nobody there.
        let moved = format!(
            "v1.{}.{}",
            hex::encode(theirs.id),
            hex::encode(mine.tags[0])
        );
        let moved = DeviceCookie::parse(&moved).unwrap();
        assert!(!moved.trusted_for(&keys, "111122223333"));
    }

    #[test]
    fn at_most_eight_holders_most_recent_first() {
        let keys = keys();
        let mut cookie = DeviceCookie::new().unwrap();
        for n in 0..10 {
            cookie = cookie.trusting(&keys, &format!("10000000000{n}"));
        }
        cookie = cookie.trusting(&keys, "100000000009");
        assert_eq!(cookie.tags.len(), MAX_HOLDERS);
        assert!(cookie.value().len() <= MAX_LEN);
        assert!(!cookie.trusted_for(&keys, "100000000000"));
        assert!(cookie.trusted_for(&keys, "100000000002"));
        assert!(DeviceCookie::parse(&cookie.value()).is_some());
    }

    #[test]
    fn anything_else_is_no_cookie() {
        for bad in [
            "",
            "v2.00",
            "v1",
            "v1.zz",
            "v1.00112233445566778899aabbccddeeff.00",
            &"v1.00112233445566778899aabbccddeeff".repeat(20),
        ] {
            assert_eq!(DeviceCookie::parse(bad), None, "{bad}");
        }
        let ten_tags = format!(
            "v1.{}{}",
            "00".repeat(16),
            ".00112233445566778899aabb".repeat(9)
        );
        assert_eq!(DeviceCookie::parse(&ten_tags), None);
    }
}
