//! The PC/SC service, reached again after it stops: pcscd can be restarted (or, on Windows,
//! the Smart Card service stops when the last reader is unplugged) while the host runs.

use std::ffi::CString;
use std::sync::Mutex;

use unlock_protocol::bridge::{BridgeError, ErrorCode, ReaderInfo};

use crate::errors::from_pcsc;

/// A PC/SC context, established when first needed and again after the service went away.
#[derive(Default)]
pub struct Service {
    context: Mutex<Option<pcsc::Context>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Runs `operation` with a context; if the service had gone away meanwhile, runs it once
    /// more with a fresh context.
    pub fn with<T>(
        &self,
        operation: impl Fn(&pcsc::Context) -> Result<T, BridgeError>,
    ) -> Result<T, BridgeError> {
        match operation(&self.context()?) {
            Err(error) if error.code == ErrorCode::PcscUnavailable => {
                self.forget();
                operation(&self.context()?)
            }
            result => result,
        }
    }

    /// Runs `operation` with a context, once: for work that spends something on the card (a
    /// PUK try), which must not be repeated behind the page's back. If the service had gone
    /// away, the next call starts with a fresh context.
    pub fn once<T>(
        &self,
        operation: impl FnOnce(&pcsc::Context) -> Result<T, BridgeError>,
    ) -> Result<T, BridgeError> {
        let result = operation(&self.context()?);
        if matches!(&result, Err(error) if error.code == ErrorCode::PcscUnavailable) {
            self.forget();
        }
        result
    }

    /// The current context, establishing one if there is none.
    pub fn context(&self) -> Result<pcsc::Context, BridgeError> {
        let mut slot = self.context.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(context) = &*slot {
            return Ok(context.clone());
        }
        let context = pcsc::Context::establish(pcsc::Scope::User).map_err(from_pcsc)?;
        *slot = Some(context.clone());
        Ok(context)
    }

    /// Drops the context after the service stopped, so the next call establishes a new one.
    pub fn forget(&self) {
        self.context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// The readers' names; none (not an error) when no reader is plugged in.
pub fn reader_names(context: &pcsc::Context) -> Result<Vec<CString>, BridgeError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(error) => Err(from_pcsc(error)),
    }
}

/// Every reader's state now, without waiting.
pub fn reader_states_now(context: &pcsc::Context) -> Result<Vec<pcsc::ReaderState>, BridgeError> {
    let mut states: Vec<_> = reader_names(context)?
        .into_iter()
        .map(|name| pcsc::ReaderState::new(name, pcsc::State::UNAWARE))
        .collect();
    if !states.is_empty() {
        match context.get_status_change(std::time::Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(error) => return Err(from_pcsc(error)),
        }
    }
    Ok(states)
}

/// Every reader, whether a card is in it, and the card's answer to reset.
pub fn readers(context: &pcsc::Context) -> Result<Vec<ReaderInfo>, BridgeError> {
    Ok(reader_states_now(context)?
        .iter()
        .map(|state| {
            let card_present = state.event_state().contains(pcsc::State::PRESENT);
            ReaderInfo {
                name: state.name().to_string_lossy().into_owned(),
                card_present,
                atr: card_present.then(|| hex::encode_upper(state.atr())),
            }
        })
        .collect())
}
