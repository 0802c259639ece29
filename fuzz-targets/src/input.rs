//! How targets that take more than one thing cut their input: a big-endian `u16` length,
//! that many bytes, and what follows. Mutations that break a length still give parts, so no
//! input is wasted.

/// The first part of `data` and the rest; a length past the end takes all there is.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((length, rest)) = data.split_first_chunk::<2>() else {
        return (&[], &[]);
    };
    let length = usize::from(u16::from_be_bytes(*length)).min(rest.len());
    rest.split_at(length)
}

/// Every part of `data`, in order.
pub fn parts(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let (part, rest) = split(data);
        data = rest;
        Some(part)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed_and_the_last_takes_what_is_left() {
        let data = [0, 2, 0xA, 0xB, 0, 0, 0, 9, 0xC];
        assert_eq!(
            parts(&data).collect::<Vec<_>>(),
            [&[0xA, 0xB][..], &[], &[0xC]]
        );
        assert_eq!(split(&[7]), (&[][..], &[][..]));
    }
}
