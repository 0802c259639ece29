//! Command APDUs as a PIV card takes them (ISO/IEC 7816-4 §5.1): short and extended lengths,
//! and the command-chaining bit of the class byte.

/// The class byte's command-chaining bit: more of this command follows.
pub const CHAINING: u8 = 0x10;

/// One command APDU, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// Bytes of response the reader will take (`00` short means 256, `0000` extended 65536).
    pub le: Option<usize>,
    /// Whether lengths came in the extended form.
    pub extended: bool,
}

impl<'a> Command<'a> {
    /// Cases 1–4 of ISO/IEC 7816-3, short or extended; `None` when the lengths don't add up.
    pub fn parse(apdu: &'a [u8]) -> Option<Self> {
        let (header, body) = apdu.split_at_checked(4)?;
        let (data, le, extended) = match body {
            [] => (&[][..], None, false),
            [le] => (&[][..], Some(short_le(*le)), false),
            // A zero first byte and more after it: extended lengths.
            [0, rest @ ..] if rest.len() >= 2 => {
                let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let rest = &rest[2..];
                match rest.len() {
                    0 => (&[][..], Some(extended_le(length)), true),
                    n if n == length && length > 0 => (rest, None, true),
                    n if n == length + 2 && length > 0 => {
                        let (data, le) = rest.split_at(length);
                        (
                            data,
                            Some(extended_le(usize::from(u16::from_be_bytes([le[0], le[1]])))),
                            true,
                        )
                    }
                    _ => return None,
                }
            }
            [lc, rest @ ..] if *lc != 0 && rest.len() == usize::from(*lc) => (rest, None, false),
            [lc, rest @ ..] if *lc != 0 && rest.len() == usize::from(*lc) + 1 => {
                let (data, le) = rest.split_at(usize::from(*lc));
                (data, Some(short_le(le[0])), false)
            }
            _ => return None,
        };
        Some(Self {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data,
            le,
            extended,
        })
    }

    /// Whether more of this command follows in the next APDU.
    pub fn chained(&self) -> bool {
        self.cla & CHAINING != 0
    }
}

fn short_le(le: u8) -> usize {
    if le == 0 { 256 } else { usize::from(le) }
}

fn extended_le(le: usize) -> usize {
    if le == 0 { 65536 } else { le }
}

/// A response with no data.
pub fn status(word: u16) -> Vec<u8> {
    word.to_be_bytes().to_vec()
}

/// A response: data, then the status word.
pub fn with_status(data: &[u8], word: u16) -> Vec<u8> {
    [data, &word.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cases_parse() {
        let case1 = Command::parse(&[0x00, 0x20, 0x00, 0x80]).unwrap();
        assert_eq!((case1.data, case1.le), (&[][..], None));
        let case2 = Command::parse(&[0x00, 0xC0, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(case2.le, Some(256));
        let case3 = Command::parse(&[0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32]).unwrap();
        assert_eq!((case3.data, case3.le), (&[0x31, 0x32][..], None));
        let case4 = Command::parse(&[0x10, 0xCB, 0x3F, 0xFF, 0x01, 0x7E, 0x08]).unwrap();
        assert_eq!((case4.data, case4.le), (&[0x7E][..], Some(8)));
        assert!(case4.chained() && !case4.extended);
    }

    #[test]
    fn extended_cases_parse() {
        let case2 = Command::parse(&[0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!((case2.le, case2.extended), (Some(65536), true));
        let data = vec![0xAB; 300];
        let case3 = [&[0x00, 0x87, 0x07, 0x9A, 0x00, 0x01, 0x2C][..], &data].concat();
        let case3 = Command::parse(&case3).unwrap();
        assert_eq!((case3.data.len(), case3.le), (300, None));
        let case4 = [
            &[0x00, 0x87, 0x07, 0x9A, 0x00, 0x01, 0x2C][..],
            &data,
            &[0x01, 0x00],
        ]
        .concat();
        let case4 = Command::parse(&case4).unwrap();
        assert_eq!((case4.data.len(), case4.le), (300, Some(256)));
    }

    #[test]
    fn lengths_that_do_not_add_up_are_refused() {
        for bad in [
            &[][..],
            &[0x00, 0xA4, 0x04],
            &[0x00, 0x20, 0x00, 0x80, 0x08, 0x31],
            &[0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x02, 0x31],
            &[0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00],
            &[0x00, 0x20, 0x00, 0x80, 0x00, 0x31],
        ] {
            assert_eq!(Command::parse(bad), None, "{bad:02x?}");
        }
    }
}
