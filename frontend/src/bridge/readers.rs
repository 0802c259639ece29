//! What the page knows of the readers: kept in step with pushed events, and the look-ups
//! the card pages need.

use unlock_protocol::bridge::{ErrorCode, EventKind, ReaderInfo};

/// Keeps the reader list in step with a pushed event.
pub fn apply_event(readers: &mut Vec<ReaderInfo>, event: &EventKind) {
    let (name, present) = match event {
        EventKind::ReaderRemoved { reader } => {
            readers.retain(|r| &r.name != reader);
            return;
        }
        EventKind::ReaderAdded { reader } => (reader, None),
        EventKind::CardInserted { reader } => (reader, Some(true)),
        EventKind::CardRemoved { reader } => (reader, Some(false)),
    };
    let index = match readers.iter().position(|r| &r.name == name) {
        Some(index) => index,
        None => {
            readers.push(ReaderInfo {
                name: name.clone(),
                card_present: false,
                atr: None,
            });
            readers.len() - 1
        }
    };
    if let Some(present) = present {
        let reader = &mut readers[index];
        reader.card_present = present;
        if !present {
            reader.atr = None;
        }
    }
}

/// A reader holding a card: `preferred` if it has one, else the first that does.
pub fn reader_with_card(readers: &[ReaderInfo], preferred: Option<&str>) -> Option<String> {
    let with_card = || readers.iter().filter(|r| r.card_present);
    with_card()
        .find(|r| Some(r.name.as_str()) == preferred)
        .or_else(|| with_card().next())
        .map(|r| r.name.clone())
}

/// The card left the reader (or was reset) before a step finished.
pub fn card_went_away(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::CardRemoved | ErrorCode::CardReset | ErrorCode::NoCard
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(name: &str, card_present: bool) -> ReaderInfo {
        ReaderInfo {
            name: name.into(),
            card_present,
            atr: None,
        }
    }

    #[test]
    fn events_keep_the_reader_list_current() {
        let mut readers = vec![reader("A", true)];
        apply_event(&mut readers, &EventKind::CardRemoved { reader: "A".into() });
        assert_eq!(readers, vec![reader("A", false)]);
        apply_event(&mut readers, &EventKind::ReaderAdded { reader: "B".into() });
        apply_event(&mut readers, &EventKind::ReaderAdded { reader: "B".into() });
        assert_eq!(readers, vec![reader("A", false), reader("B", false)]);
        apply_event(
            &mut readers,
            &EventKind::CardInserted { reader: "B".into() },
        );
        assert_eq!(reader_with_card(&readers, None), Some("B".into()));
        apply_event(
            &mut readers,
            &EventKind::ReaderRemoved { reader: "B".into() },
        );
        assert_eq!(readers, vec![reader("A", false)]);
        // An event about a reader we have not heard of yet adds it.
        apply_event(
            &mut readers,
            &EventKind::CardInserted { reader: "C".into() },
        );
        assert_eq!(readers, vec![reader("A", false), reader("C", true)]);
    }

    #[test]
    fn the_preferred_reader_wins_when_it_holds_a_card() {
        let readers = [reader("A", true), reader("B", true), reader("C", false)];
        assert_eq!(reader_with_card(&readers, Some("B")), Some("B".into()));
        assert_eq!(reader_with_card(&readers, Some("C")), Some("A".into()));
        assert_eq!(reader_with_card(&[reader("C", false)], None), None);
    }

    #[test]
    fn a_pulled_or_reset_card_is_told_apart_from_other_failures() {
        assert!(card_went_away(ErrorCode::CardRemoved));
        assert!(card_went_away(ErrorCode::CardReset));
        assert!(card_went_away(ErrorCode::NoCard));
        assert!(!card_went_away(ErrorCode::CardInUse));
        assert!(!card_went_away(ErrorCode::WrongCryptogram));
    }
}
