//! The page's side of the extension's message envelope (see
//! `native-bridge/extension/README.md`): requests go out with `window.postMessage`, replies
//! and pushed card events come back as "message" events from this very window.
//!
//! The page never sends an origin: the extension takes it from the browser.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{self, Either};
use gloo_timers::future::sleep;
use leptos::prelude::*;
use unlock_protocol::bridge::{
    BridgeError, CardState, ErrorCode, PROTOCOL_MAJOR, PROTOCOL_MINOR, ReaderInfo,
};
use unlock_protocol::{CardId, Passcode};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::wire::{self, Answer, Carried, Command, Json, Out, ReadCard};

mod envelope;
mod readers;

use envelope::{Inbound, Outcome, classify, envelope, ping};
use readers::apply_event;
pub use readers::{card_went_away, reader_with_card};

/// The content script answers a ping at once; silence for this long means no extension.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// The first `hello` may have to wait for the browser to start the helper program.
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests that do not touch a card.
const READER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a page waiting on a reader asks for the readers besides listening for events.
const READER_POLL: Duration = Duration::from_secs(3);
/// Requests that talk to the card, which can be slow in some readers.
const CARD_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection to the card reader, shared by every page through the context.
#[derive(Clone, Copy)]
pub struct Bridge {
    inner: StoredValue<Rc<Inner>, LocalStorage>,
    /// Readers and whether a card is in each, kept current by `watch` events.
    pub readers: RwSignal<Vec<ReaderInfo>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    next_id: Cell<u64>,
    waiting: RefCell<HashMap<u64, oneshot::Sender<Outcome<JsValue>>>>,
    watching: Cell<bool>,
    /// The versions that answered the last ping and hello.
    extension: Cell<Option<String>>,
    host: Cell<Option<String>>,
    /// Whether the last reader list failed because the smart card service was off.
    service_off: Cell<bool>,
}

/// The bridge shared through the context.
pub fn use_bridge() -> Bridge {
    expect_context()
}

impl Bridge {
    /// Starts listening for the extension's messages; call once, when the app starts.
    pub fn install() -> Self {
        let inner = Rc::new(Inner::default());
        let readers = RwSignal::new(Vec::new());
        let listener_inner = Rc::clone(&inner);
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| on_message(&listener_inner, readers, &event),
        );
        if let Some(window) = web_sys::window() {
            // Failing to listen shows up as a missing extension on the first ping.
            let _ = window
                .add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        }
        // The listener lives as long as the page.
        listener.forget();
        Self {
            inner: StoredValue::new_local(inner),
            readers,
        }
    }

    /// Checks the whole chain before a card step: the extension answers a ping, the helper
    /// program speaks this protocol version, a reader is connected, and events are coming.
    /// The error says which part is missing.
    pub async fn ensure_ready(self) -> Result<(), BridgeError> {
        let inner = self.inner.get_value();
        inner.extension.set(None);
        inner.host.set(None);
        inner.service_off.set(false);
        self.ping().await?;
        let hello = self
            .command(
                &Command::Hello {
                    protocol_major: PROTOCOL_MAJOR,
                    protocol_minor: PROTOCOL_MINOR,
                },
                HELLO_TIMEOUT,
            )
            .await?;
        if let Answer::Hello { host_version, .. } = &hello {
            inner.host.set(Some(host_version.clone()));
        }
        check_hello(&hello)?;
        let readers = self.refresh_readers().await.inspect_err(|error| {
            inner
                .service_off
                .set(error.code == ErrorCode::PcscUnavailable);
        })?;
        if readers.is_empty() {
            return Err(BridgeError::new(ErrorCode::NoReader));
        }
        if !inner.watching.get() {
            match self.command(&Command::Watch, READER_TIMEOUT).await? {
                Answer::Watching => inner.watching.set(true),
                _ => return Err(unexpected_answer()),
            }
            // A card may have moved between the list and the watch.
            self.refresh_readers().await?;
        }
        Ok(())
    }

    /// What the last readiness check saw, for the help pages: the extension's version and
    /// the helper program's, once each answered, and whether the smart card service was off.
    pub fn seen(self) -> (Option<String>, Option<String>, bool) {
        let inner = self.inner.get_value();
        let extension = inner.extension.take();
        let host = inner.host.take();
        inner.extension.set(extension.clone());
        inner.host.set(host.clone());
        (extension, host, inner.service_off.get())
    }

    /// While the calling page is shown and `waiting()` holds, asks for the readers every few
    /// seconds too, in case an event went missing (while the extension reconnects, say).
    pub fn poll_readers_while(self, waiting: impl Fn() -> bool + 'static) {
        let asking = Rc::new(Cell::new(false));
        let ask = move || {
            if asking.get() || !waiting() {
                return;
            }
            asking.set(true);
            let asking = Rc::clone(&asking);
            leptos::task::spawn_local(async move {
                // A failure shows up at the next step that needs the card.
                let _ = self.refresh_readers().await;
                asking.set(false);
            });
        };
        if let Ok(handle) = set_interval_with_handle(ask, READER_POLL) {
            on_cleanup(move || handle.clear());
        }
    }

    /// Asks for the readers again and updates [`Bridge::readers`].
    async fn refresh_readers(self) -> Result<Vec<ReaderInfo>, BridgeError> {
        match self.command(&Command::Readers, READER_TIMEOUT).await? {
            Answer::Readers { readers } => {
                self.readers.set(readers.clone());
                Ok(readers)
            }
            _ => Err(unexpected_answer()),
        }
    }

    /// The card in `reader`: its identity (for the server) and passcode tries.
    pub async fn read_card(self, reader: &str) -> Result<ReadCard, BridgeError> {
        match self
            .command(&Command::ReadCard { reader }, CARD_TIMEOUT)
            .await?
        {
            Answer::Card(card) => Ok(card),
            _ => Err(unexpected_answer()),
        }
    }

    /// The card's proof for the server's `challenge`.
    pub async fn challenge(
        self,
        reader: &str,
        challenge: &Carried,
    ) -> Result<Carried, BridgeError> {
        match self
            .command(&Command::Challenge { reader, challenge }, CARD_TIMEOUT)
            .await?
        {
            Answer::Proof(proof) => Ok(proof),
            _ => Err(unexpected_answer()),
        }
    }

    /// Unblocks the card with what the server released and sets the new passcode; returns
    /// the card's receipt for the server.
    pub async fn unblock(
        self,
        reader: &str,
        release: &Carried,
        new_passcode: &Passcode,
    ) -> Result<Carried, BridgeError> {
        let command = Command::Unblock {
            reader,
            release,
            new_passcode,
        };
        match self.command(&command, CARD_TIMEOUT).await? {
            Answer::Unblocked { receipt, .. } => Ok(receipt),
            _ => Err(unexpected_answer()),
        }
    }

    /// After an unblock cut short by the card leaving, with the card back: whether the
    /// unblock took, and the passcode tries now left.
    pub async fn check_unblock(
        self,
        reader: &str,
        card: &CardId,
        new_passcode: &Passcode,
    ) -> Result<(CardState, u8), BridgeError> {
        let command = Command::CheckUnblock {
            reader,
            card,
            new_passcode,
        };
        match self.command(&command, CARD_TIMEOUT).await? {
            Answer::UnblockChecked {
                card_state,
                tries_left,
            } => Ok((card_state, tries_left)),
            _ => Err(unexpected_answer()),
        }
    }

    async fn ping(self) -> Result<(), BridgeError> {
        let pong = self
            .call(ping(), PING_TIMEOUT, ErrorCode::ExtensionMissing)
            .await?;
        let version = pong.text("extension_version").unwrap_or_default();
        self.inner.get_value().extension.set(Some(version));
        Ok(())
    }

    async fn command(
        self,
        command: &Command<'_>,
        timeout: Duration,
    ) -> Result<Answer, BridgeError> {
        let answer = self
            .call(wire::command(command), timeout, ErrorCode::Timeout)
            .await?;
        wire::answer(&answer).ok_or_else(unexpected_answer)
    }

    /// Sends one request and waits for its reply, or fails with `on_timeout` after `timeout`.
    async fn call(self, body: Out, timeout: Duration, on_timeout: ErrorCode) -> Outcome<JsValue> {
        let inner = self.inner.get_value();
        let id = inner.next_id.get() + 1;
        inner.next_id.set(id);
        let (sender, reply) = oneshot::channel();
        inner.waiting.borrow_mut().insert(id, sender);
        // Forgets the request however this future ends, even when the page drops it.
        let _pending = Pending {
            inner: Rc::clone(&inner),
            id,
        };
        post(id, body)?;
        match future::select(reply, sleep(timeout)).await {
            Either::Left((Ok(outcome), _)) => outcome,
            Either::Left((Err(_), _)) => Err(BridgeError::new(ErrorCode::Cancelled)),
            Either::Right(_) => Err(BridgeError::new(on_timeout)),
        }
    }
}

struct Pending {
    inner: Rc<Inner>,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.inner.waiting.borrow_mut().remove(&self.id);
    }
}

fn post(id: u64, body: Out) -> Result<(), BridgeError> {
    let envelope = envelope(id, body);
    let message = envelope.to_js();
    // The request may hold a new passcode.
    envelope.wipe();
    let window = web_sys::window().ok_or_else(|| internal("find the window"))?;
    let origin = window
        .location()
        .origin()
        .map_err(|_| internal("read the page's origin"))?;
    window
        .post_message(&message, &origin)
        .map_err(|_| internal("post the request"))
}

fn on_message(inner: &Inner, readers: RwSignal<Vec<ReaderInfo>>, event: &web_sys::MessageEvent) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let from_this_window = event
        .source()
        .is_some_and(|source| js_sys::Object::is(&source, &window));
    if !from_this_window || window.location().origin().ok() != Some(event.origin()) {
        return;
    }
    // `classify` looks no further into our own requests, which come back to this listener
    // too and may carry a new passcode.
    match classify(&event.data()) {
        Some(Inbound::Reply { id, outcome }) => {
            if let Some(sender) = inner.waiting.borrow_mut().remove(&id) {
                let _ = sender.send(outcome);
            }
        }
        Some(Inbound::Event(kind)) => readers.update(|list| apply_event(list, &kind)),
        None => {}
    }
}

fn check_hello(answer: &Answer) -> Result<(), BridgeError> {
    match answer {
        Answer::Hello { protocol_major, .. } if *protocol_major == PROTOCOL_MAJOR => Ok(()),
        Answer::Hello { .. } => Err(BridgeError::new(ErrorCode::HostOutdated)),
        _ => Err(unexpected_answer()),
    }
}

fn unexpected_answer() -> BridgeError {
    BridgeError::with_message(
        ErrorCode::Internal,
        "The helper program gave an answer this page did not expect. Reload the page and try again.",
    )
}

fn internal(what: &str) -> BridgeError {
    BridgeError::with_message(
        ErrorCode::Internal,
        format!("This page could not {what}. Reload the page and try again."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_major_version_is_an_outdated_host() {
        let hello = |major| Answer::Hello {
            protocol_major: major,
            protocol_minor: 0,
            host_version: "0.1.0".into(),
            profiles: vec!["unlock-cr/1".into()],
        };
        assert_eq!(check_hello(&hello(PROTOCOL_MAJOR)), Ok(()));
        assert_eq!(
            check_hello(&hello(PROTOCOL_MAJOR + 1)).unwrap_err().code,
            ErrorCode::HostOutdated
        );
        assert_eq!(
            check_hello(&Answer::Watching).unwrap_err().code,
            ErrorCode::Internal
        );
    }
}
