//! The host's side of native messaging: every request gets exactly one reply, requests run
//! side by side, and pages that asked to `watch` get card events pushed to them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use unlock_protocol::bridge::{
    Answer, BridgeError, Command, ErrorCode, Event, EventKind, Outcome, PROTOCOL_MAJOR,
    PROTOCOL_MINOR, Reply,
};
use unlock_protocol::card_steps::{self, CardChallenge, CardRelease};
use unlock_protocol::{CardId, Passcode};

use crate::card_access::{self, Held, answer_challenge, check_unblock, read_card};
use crate::config::Config;
use crate::errors::fail;
use crate::framing::{FrameError, read_frame, write_frame};
use crate::profile::{self, PROFILES};
use crate::request::{self, Unreadable};
use crate::service::{Service, readers};
use crate::watch::{first_look, watch};

/// How long a card stays held between its challenge and the unblock. Others cannot use the
/// card meanwhile, so a page that wanders off must not keep it.
pub const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// How long the host waits for requests still running once the browser has gone.
const DRAIN: Duration = Duration::from_secs(10);

/// The host, between the browser on one side and PC/SC on the other.
pub struct Host {
    /// The settings, or why they could not be read (then every request is refused).
    config: Result<Config, String>,
    /// Whether the browser started us for a known extension.
    caller_known: bool,
    service: Service,
    held: Mutex<HashMap<String, Holding>>,
    output: Frames,
    watching: Once,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("config", &self.config)
            .field("caller_known", &self.caller_known)
            .finish_non_exhaustive()
    }
}

/// A reader's card between challenge and unblock, for a profile that holds it.
enum Holding {
    Card {
        held: Held,
        card: CardId,
        since: Instant,
    },
    /// Let go after [`HOLD_LIMIT`]; the next unblock is told it took too long.
    Expired,
}

impl Host {
    /// A host for the browser that started us as `caller`, writing frames to `output`.
    pub fn new(
        config: Result<Config, String>,
        caller: &str,
        output: impl Write + Send + 'static,
    ) -> Arc<Self> {
        let caller_known = config
            .as_ref()
            .is_ok_and(|config| config.allows_extension(caller));
        if !caller_known {
            tracing::warn!(
                caller,
                "started by an unknown caller; refusing its requests"
            );
        }
        let host = Arc::new(Self {
            config,
            caller_known,
            service: Service::default(),
            held: Mutex::new(HashMap::new()),
            output: Frames(Arc::new(Mutex::new(Box::new(output)))),
            watching: Once::new(),
        });
        let weak = Arc::downgrade(&host);
        std::thread::spawn(move || {
            while let Some(host) = weak.upgrade() {
                host.let_go_of_stale_cards();
                drop(host);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        host
    }

    /// Answers requests from `input` until the browser closes it, then lets go of any card
    /// still held.
    pub fn serve(self: &Arc<Self>, mut input: impl Read) {
        let running = Arc::new(Running::default());
        loop {
            match read_frame(&mut input) {
                Ok(Some(text)) => {
                    let host = Arc::clone(self);
                    let running = Arc::clone(&running);
                    running.start();
                    std::thread::spawn(move || {
                        host.answer(&text);
                        running.finish();
                    });
                }
                Ok(None) => break,
                Err(FrameError::TooLarge(length)) => {
                    tracing::warn!(length, "refused an oversize request");
                    self.reply(0, Err(fail(ErrorCode::FrameTooLarge)));
                }
                Err(error @ (FrameError::Empty | FrameError::NotText)) => {
                    tracing::warn!(%error, "refused a request");
                    self.reply(0, Err(fail(ErrorCode::BadRequest)));
                }
                Err(error @ (FrameError::Truncated | FrameError::Io(_))) => {
                    tracing::warn!(%error, "stopped reading requests");
                    break;
                }
            }
        }
        running.wait(DRAIN);
        let held = std::mem::take(&mut *self.lock_held());
        drop(held);
        tracing::info!("the browser closed the connection");
    }

    /// Answers one request; a panic becomes an `internal` reply rather than no reply.
    fn answer(&self, text: &str) {
        let started = Instant::now();
        let request = match request::parse(text) {
            Ok(request) => request,
            Err(Unreadable::NotJson) => {
                tracing::warn!("refused a request that is not JSON");
                return self.reply(0, Err(fail(ErrorCode::BadRequest)));
            }
            Err(Unreadable::NotProtocol { id }) => {
                tracing::warn!(id, "refused a request that does not match the protocol");
                return self.reply(id, Err(fail(ErrorCode::BadRequest)));
            }
        };
        let id = request.id;
        let kind = command_name(&request.command);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.run(request.command, &request.origin)
        }))
        .unwrap_or_else(|_| Err(fail(ErrorCode::Internal)));
        let elapsed_ms = started.elapsed().as_millis();
        match &outcome {
            Ok(_) => tracing::info!(id, kind, origin = request.origin, elapsed_ms, "answered"),
            Err(error) => tracing::info!(
                id,
                kind,
                origin = request.origin,
                elapsed_ms,
                code = ?error.code,
                "refused"
            ),
        }
        self.reply(id, outcome);
    }

    fn run(&self, command: Command, origin: &str) -> Result<Answer, BridgeError> {
        let config = self.config.as_ref().map_err(|_| {
            BridgeError::with_message(
                ErrorCode::Internal,
                "The helper program's settings file could not be read. Ask your IT service desk.",
            )
        })?;
        if !self.caller_known || !config.allows_page(origin) {
            tracing::warn!(origin, caller_known = self.caller_known, "origin refused");
            return Err(fail(ErrorCode::OriginRefused));
        }
        match command {
            Command::Hello { protocol_major, .. } if protocol_major != PROTOCOL_MAJOR => {
                Err(BridgeError::with_message(
                    ErrorCode::HostOutdated,
                    format!(
                        "The helper program on this computer speaks version {PROTOCOL_MAJOR} \
                         of the protocol and this page needs version {protocol_major}. \
                         It needs updating."
                    ),
                ))
            }
            Command::Hello { .. } => Ok(Answer::Hello {
                protocol_major: PROTOCOL_MAJOR,
                protocol_minor: PROTOCOL_MINOR,
                host_version: env!("CARGO_PKG_VERSION").to_owned(),
                profiles: card_steps::PROFILES
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
            }),
            Command::Readers => self
                .service
                .with(readers)
                .map(|readers| Answer::Readers { readers }),
            Command::Watch => {
                self.start_watching();
                Ok(Answer::Watching)
            }
            Command::ReadCard { reader } => {
                self.let_go(&reader);
                self.service
                    .with(|context| read_card(context, &reader, PROFILES))
                    .map(Answer::Card)
            }
            Command::Challenge { reader, challenge } => self.challenge(reader, &challenge),
            Command::Unblock {
                reader,
                release,
                new_passcode,
            } => self.unblock(&reader, &release, &new_passcode),
            Command::CheckUnblock {
                reader,
                card,
                new_passcode,
            } => {
                self.let_go(&reader);
                // Never run twice: a VERIFY may have spent a try.
                self.service
                    .once(|context| check_unblock(context, &reader, PROFILES, &card, &new_passcode))
                    .map(|(card_state, tries_left)| Answer::UnblockChecked {
                        card_state,
                        tries_left,
                    })
            }
        }
    }

    /// The card's answer to the challenge; a card whose profile needs it is held until the
    /// unblock.
    fn challenge(&self, reader: String, challenge: &CardChallenge) -> Result<Answer, BridgeError> {
        self.let_go(&reader);
        let profile = profile::for_challenge(challenge);
        let (proof, held) = self
            .service
            .with(|context| answer_challenge(context, &reader, profile, challenge))?;
        if let Some(held) = held {
            self.lock_held().insert(
                reader,
                Holding::Card {
                    held,
                    card: profile::challenged_card(challenge),
                    since: Instant::now(),
                },
            );
        }
        Ok(Answer::Proof { proof })
    }

    /// Unblocks the card with what the server released: on the held card, or in a
    /// transaction of its own.
    fn unblock(
        &self,
        reader: &str,
        release: &CardRelease,
        passcode: &Passcode,
    ) -> Result<Answer, BridgeError> {
        let profile = profile::for_release(release);
        let holding = self.lock_held().remove(reader);
        let unblocked = match (profile.custody(), holding) {
            (profile::Custody::Released, holding) => {
                drop(holding);
                // Never run twice: a first run cut short may have used a PUK already.
                self.service.once(|context| {
                    card_access::unblock(context, reader, profile, release, passcode)
                })?
            }
            (profile::Custody::Held, Some(Holding::Card { held, card, .. }))
                if card == profile::released_card(release) =>
            {
                held.unblock(release, passcode)?
            }
            (profile::Custody::Held, Some(Holding::Card { .. })) => {
                return Err(fail(ErrorCode::SerialMismatch));
            }
            (profile::Custody::Held, Some(Holding::Expired)) => {
                return Err(BridgeError::with_message(
                    ErrorCode::Timeout,
                    "The card was held for too long. Start again.",
                ));
            }
            (profile::Custody::Held, None) => {
                return Err(BridgeError::with_message(
                    ErrorCode::BadRequest,
                    "Ask the card for a challenge first.",
                ));
            }
        };
        Ok(Answer::Unblocked {
            receipt: unblocked.receipt,
            tries_left: unblocked.tries_left,
        })
    }

    /// Starts pushing card events, once: the extension fans them out to the pages watching.
    fn start_watching(&self) {
        self.watching.call_once(|| {
            let output = self.output.clone();
            let known = first_look(&self.service);
            std::thread::spawn(move || {
                watch(known, |kind: EventKind| {
                    tracing::info!(?kind, "card event");
                    match serde_json::to_string(&Event { kind }) {
                        Ok(json) => output.send(&json),
                        Err(error) => tracing::error!(%error, "could not write an event"),
                    }
                });
            });
        });
    }

    /// Lets go of the card held for an unblock in `reader`, if any.
    fn let_go(&self, reader: &str) {
        let held = self.lock_held().remove(reader);
        drop(held);
    }

    fn let_go_of_stale_cards(&self) {
        let mut held = self.lock_held();
        for entry in held.values_mut() {
            if matches!(entry, Holding::Card { since, .. } if since.elapsed() >= HOLD_LIMIT) {
                tracing::info!("let go of a card held too long for an unblock");
                *entry = Holding::Expired;
            }
        }
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Holding>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reply(&self, id: u64, outcome: Result<Answer, BridgeError>) {
        let outcome = match outcome {
            Ok(answer) => Outcome::Ok(answer),
            Err(error) => Outcome::Err(error),
        };
        match serde_json::to_string(&Reply { id, outcome }) {
            Ok(json) => self.output.send(&json),
            Err(error) => tracing::error!(%error, "could not write a reply"),
        }
    }
}

/// Standard output, shared by the replies and the events; one frame at a time.
#[derive(Clone)]
struct Frames(Arc<Mutex<Box<dyn Write + Send>>>);

impl Frames {
    fn send(&self, json: &str) {
        let mut output = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = write_frame(&mut *output, json) {
            tracing::warn!(%error, "could not send to the browser");
        }
    }
}

/// The command's name for the log; its contents may be secret and are never logged.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Hello { .. } => "hello",
        Command::Readers => "readers",
        Command::Watch => "watch",
        Command::ReadCard { .. } => "read_card",
        Command::Challenge { .. } => "challenge",
        Command::Unblock { .. } => "unblock",
        Command::CheckUnblock { .. } => "check_unblock",
    }
}

/// Counts the requests still being answered.
#[derive(Debug, Default)]
struct Running {
    count: Mutex<usize>,
    done: Condvar,
}

impl Running {
    fn start(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn finish(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.done.notify_all();
    }

    fn wait(&self, limit: Duration) {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .done
            .wait_timeout_while(count, limit, |count| *count > 0);
    }
}
