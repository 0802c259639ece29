//! Card and reader events for pages that `watch`: driven by `get_status_change`, with
//! PC/SC's plug-and-play notification for readers coming and going, or by polling the reader
//! list where the platform has no such notification.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::Duration;

use unlock_protocol::bridge::{BridgeError, EventKind};

use crate::errors::from_pcsc;
use crate::service::{Service, reader_names, reader_states_now};

/// How long one wait lasts with plug-and-play notification; events end it sooner.
const WAIT: Duration = Duration::from_secs(5);
/// How often the reader list is read again without plug-and-play notification.
const POLL: Duration = Duration::from_millis(500);
/// How long to wait before reaching for the service again after it stopped.
const RECONNECT: Duration = Duration::from_secs(1);

/// Whether there is a card in each reader, as last reported.
pub type Known = BTreeMap<CString, bool>;

/// The readers and cards there are now, taken before the page is told it is watching, so
/// that every change after it is reported, even one made before the watch's thread gets
/// going. With the service unreachable there are no readers: when it comes back, its readers
/// and cards are reported as arriving, as the page (whose own look failed) needs.
pub fn first_look(service: &Service) -> Known {
    let look = service.with(|context| {
        Ok(reader_states_now(context)?
            .iter()
            .map(|state| {
                let present = state.event_state().contains(pcsc::State::PRESENT);
                (state.name().to_owned(), present)
            })
            .collect())
    });
    look.unwrap_or_else(|error| {
        tracing::info!(code = ?error.code, "no first look at the readers");
        Known::new()
    })
}

/// Reports changes from `known` on through `emit` for as long as the process lives.
pub fn watch(mut known: Known, emit: impl Fn(EventKind)) {
    let service = Service::default();
    loop {
        let result = service
            .context()
            .and_then(|context| follow(&context, &mut known, &emit));
        if let Err(error) = result {
            tracing::info!(code = ?error.code, "card events paused; reaching for PC/SC again");
            service.forget();
            std::thread::sleep(RECONNECT);
        }
    }
}

/// Follows one context until it fails.
fn follow(
    context: &pcsc::Context,
    known: &mut Known,
    emit: &impl Fn(EventKind),
) -> Result<(), BridgeError> {
    tracing::debug!(?known, "following card events");
    let mut plug_and_play = true;
    let mut states = reader_states(context, known, plug_and_play, emit)?;
    loop {
        let timeout = if plug_and_play { WAIT } else { POLL };
        let readers_changed = match context.get_status_change(timeout, &mut states) {
            Ok(()) => {
                tracing::debug!(states = ?described(&states), "card status changed");
                let notification = &states[0];
                if plug_and_play && notification.event_state().contains(pcsc::State::UNKNOWN) {
                    tracing::info!("no plug-and-play notification here; polling for readers");
                    plug_and_play = false;
                }
                notification.event_state().contains(pcsc::State::CHANGED)
                    || states[1..]
                        .iter()
                        .any(|state| state.event_state().contains(pcsc::State::UNKNOWN))
            }
            Err(pcsc::Error::Timeout) => !plug_and_play,
            Err(error) => return Err(from_pcsc(error)),
        };
        for state in &mut states[1..] {
            let present = state.event_state().contains(pcsc::State::PRESENT);
            let reader = || state.name().to_string_lossy().into_owned();
            match known.insert(state.name().to_owned(), present) {
                Some(false) if present => emit(EventKind::CardInserted { reader: reader() }),
                Some(true) if !present => emit(EventKind::CardRemoved { reader: reader() }),
                _ => {}
            }
            state.sync_current_state();
        }
        states[0].sync_current_state();
        if readers_changed || !plug_and_play && states[0].current_state() != pcsc::State::IGNORE {
            let notification = states.swap_remove(0);
            let mut fresh = reader_states(context, known, plug_and_play, emit)?;
            if plug_and_play {
                // Its event count is what tells the next wait that nothing has changed yet.
                fresh[0] = notification;
            }
            states = fresh;
        }
    }
}

/// Each state's reader, what we last knew and what PC/SC says now: for the log.
fn described(states: &[pcsc::ReaderState]) -> Vec<(&std::ffi::CStr, pcsc::State, pcsc::State)> {
    states
        .iter()
        .map(|state| (state.name(), state.current_state(), state.event_state()))
        .collect()
}

/// The states to wait on: the plug-and-play pseudo-reader first (a placeholder that never
/// changes when polling), then each reader. Readers that appeared or went since the last
/// look are reported.
fn reader_states(
    context: &pcsc::Context,
    known: &mut Known,
    plug_and_play: bool,
    emit: &impl Fn(EventKind),
) -> Result<Vec<pcsc::ReaderState>, BridgeError> {
    let names = reader_names(context)?;
    known.retain(|name, _| {
        let kept = names.contains(name);
        if !kept {
            emit(EventKind::ReaderRemoved {
                reader: name.to_string_lossy().into_owned(),
            });
        }
        kept
    });
    for name in &names {
        if !known.contains_key(name) {
            emit(EventKind::ReaderAdded {
                reader: name.to_string_lossy().into_owned(),
            });
            known.insert(name.clone(), false);
        }
    }
    let first = if plug_and_play {
        pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE)
    } else {
        pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::IGNORE)
    };
    Ok(std::iter::once(first)
        .chain(names.into_iter().map(|name| {
            // What was last reported, so the first wait returns at once if that is stale.
            let state = if known.get(&name) == Some(&true) {
                pcsc::State::PRESENT
            } else {
                pcsc::State::EMPTY
            };
            pcsc::ReaderState::new(name, state)
        }))
        .collect())
}
