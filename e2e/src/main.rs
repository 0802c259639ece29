//! `virtual-card`: a smartcard for tests and demos, plugged into `pcscd` through the `vpcd`
//! driver: an `unlock-cr/1` card (the default) or, with `--profile piv`, a `piv/1` card whose
//! certificates the CA in `--ca-cert`/`--ca-key` issues. Commands on standard input, one per
//! line, each answered on standard output: `insert`, `remove`, `state`, `pin-is <digits>`,
//! `puk-is <digits>` (PIV), `pull-on <instruction hex>` (leave the reader when the next command
//! with that instruction arrives), `pull-on <instruction> after <instruction>` (… the next one
//! after a command with the second instruction), `pull-after-on <instruction hex>` (leave the
//! reader once the next command with that instruction is processed, its answer lost),
//! `pull-before <n>` (leave the reader as the
//! n-th command from now arrives, 1 being the next), `pull-after <n>` (… once it has processed
//! the n-th, its answer lost), `stall-before <n>` (hold the n-th unprocessed until `go`),
//! `log` (the instructions received since the last `log`, in hex), `quit`.

use std::io::BufRead;
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use unlock_e2e::card::VirtualCard;
use unlock_e2e::piv_ca::{CaFiles, TestCa, Validity};
use unlock_e2e::piv_card::{self, PivCardOptions, VirtualPivCard};
use unlock_e2e::vpcd::{self, Fault, Faults, PullTrap, SmartCard};

/// A virtual smartcard for vpcd. (No `Debug`: it holds the PIN and the PUK.)
#[derive(Parser)]
struct Args {
    /// vpcd's address (it listens; the card connects).
    #[arg(long, default_value = "127.0.0.1:35963")]
    vpcd: String,
    /// Which card: unlock-cr/1 or piv/1.
    #[arg(long, value_enum, default_value = "unlock-cr")]
    profile: Profile,
    /// The card's passcode (PIN).
    #[arg(long, default_value = "284759")]
    passcode: String,
    /// Start with the passcode blocked (no tries left), as after three wrong passcodes.
    #[arg(long)]
    locked: bool,
    /// Start outside the reader (send `insert` to put it in).
    #[arg(long)]
    removed: bool,
    /// unlock-cr/1: the card serial, 16 hex digits.
    #[arg(long, default_value = "2d6bddb8ad096c2d")]
    serial: String,
    /// unlock-cr/1: the master key the card's admin key is derived from, 32 hex digits.
    #[arg(long, env = "UNLOCK_TEST_MASTER_KEY")]
    master_key: Option<String>,
    /// piv/1: the card's GUID, 32 hex digits.
    #[arg(long, default_value = piv_card::DEFAULT_GUID)]
    guid: String,
    /// piv/1: the card's PUK.
    #[arg(long, default_value = piv_card::DEFAULT_PUK)]
    puk: String,
    /// piv/1: start with the PUK blocked.
    #[arg(long)]
    puk_blocked: bool,
    /// piv/1: PIN tries left at the start (`--locked` means 0).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    pin_tries: Option<u8>,
    /// piv/1: PUK tries left at the start (`--puk-blocked` means 0).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    puk_tries: Option<u8>,
    /// piv/1: the issuing CA's certificate, PEM (a new CA is made and saved if missing).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// piv/1: the issuing CA's private key, PEM.
    #[arg(long, value_name = "FILE")]
    ca_key: Option<PathBuf>,
    /// piv/1: the certificates expired yesterday.
    #[arg(long, conflicts_with = "cert_days")]
    cert_expired: bool,
    /// piv/1: the certificates are valid for this many days from now.
    #[arg(long, default_value_t = 365)]
    cert_days: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// unlock-cr/1
    UnlockCr,
    /// piv/1
    Piv,
}

/// Either card, behind the control commands.
enum AnyCard {
    UnlockCr(VirtualCard),
    Piv(Box<VirtualPivCard>),
}

impl SmartCard for AnyCard {
    fn atr(&self) -> Vec<u8> {
        match self {
            Self::UnlockCr(card) => card.atr(),
            Self::Piv(card) => card.atr(),
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        match self {
            Self::UnlockCr(card) => card.process(apdu),
            Self::Piv(card) => card.process(apdu),
        }
    }

    fn reset(&mut self) {
        match self {
            Self::UnlockCr(card) => card.reset(),
            Self::Piv(card) => card.reset(),
        }
    }
}

impl AnyCard {
    /// The `state` answer's fields, without whether the card is in the reader.
    fn state(&self) -> serde_json::Map<String, serde_json::Value> {
        let value = match self {
            Self::UnlockCr(card) => {
                let counters = card.counters();
                serde_json::json!({
                    "serial": hex::encode(card.serial()),
                    "pin_tries": counters.pin_tries,
                    "admin_tries": counters.admin_tries,
                })
            }
            Self::Piv(card) => {
                let counters = card.counters();
                serde_json::json!({
                    "profile": unlock_protocol::piv::PROFILE,
                    "guid": hex::encode(card.guid()),
                    "pin_tries": counters.pin_tries,
                    "puk_tries": counters.puk_tries,
                    "wrong_puks": card.wrong_puks(),
                })
            }
        };
        match value {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    fn pin_is(&self, pin: &str) -> bool {
        match self {
            Self::UnlockCr(card) => card.pin_is(pin),
            Self::Piv(card) => card.pin_is(pin),
        }
    }

    fn puk_is(&self, puk: &str) -> anyhow::Result<bool> {
        match self {
            Self::UnlockCr(_) => bail!("an unlock-cr/1 card has no PUK"),
            Self::Piv(card) => Ok(card.puk_is(puk)),
        }
    }
}

/// The card and its connection to the reader, if inserted.
struct Slot {
    card: Arc<Mutex<AnyCard>>,
    faults: Arc<Mutex<Faults>>,
    vpcd: String,
    inserted: Option<(TcpStream, JoinHandle<()>)>,
}

impl Slot {
    fn insert(&mut self) -> anyhow::Result<()> {
        // A card that left the reader by itself (pull-on) can go back in.
        if self
            .inserted
            .as_ref()
            .is_some_and(|(_, thread)| thread.is_finished())
        {
            self.remove();
        }
        if self.inserted.is_some() {
            return Ok(());
        }
        let stream = connect(&self.vpcd)?;
        let mut serving = stream.try_clone().context("share the reader connection")?;
        let card = self.card.clone();
        let faults = self.faults.clone();
        let thread = std::thread::spawn(move || {
            if let Err(error) = vpcd::serve(&mut serving, &card, &faults) {
                eprintln!("virtual-card: connection ended: {error}");
            }
            if let Ok(mut card) = card.lock() {
                card.reset();
            }
        });
        self.inserted = Some((stream, thread));
        Ok(())
    }

    fn remove(&mut self) {
        if let Some((stream, thread)) = self.inserted.take() {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }

    fn card(&self) -> anyhow::Result<std::sync::MutexGuard<'_, AnyCard>> {
        self.card
            .lock()
            .map_err(|_| anyhow::anyhow!("the card's state is poisoned"))
    }

    fn state(&self) -> anyhow::Result<String> {
        let mut state = self.card()?.state();
        let inserted = self
            .inserted
            .as_ref()
            .is_some_and(|(_, thread)| !thread.is_finished());
        state.insert("inserted".into(), inserted.into());
        state.insert("stalled".into(), self.faults().stalled().into());
        Ok(serde_json::Value::Object(state).to_string())
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_trap(&self, trap: PullTrap) {
        self.faults().trap = trap;
    }

    fn arm(&self, nth: &str, fault: Fault) -> anyhow::Result<String> {
        let nth = nth.parse().context("a command's place counts from 1")?;
        self.faults().arm(nth, fault);
        Ok("ok".to_owned())
    }
}

/// vpcd may still be starting: keep trying for a while.
fn connect(address: &str) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() >= deadline => {
                return Err(error).with_context(|| format!("connect to vpcd at {address}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn hex_array<const N: usize>(name: &str, text: &str) -> anyhow::Result<[u8; N]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| format!("{name} must be {} hex digits", N * 2))
}

fn instruction(text: &str) -> anyhow::Result<u8> {
    u8::from_str_radix(text, 16).context("pull-on takes instruction bytes in hex, such as 2C")
}

/// The card the arguments describe.
fn make_card(args: &Args) -> anyhow::Result<AnyCard> {
    match args.profile {
        Profile::UnlockCr => {
            let serial = hex_array::<8>("--serial", &args.serial)?;
            let master_key = args
                .master_key
                .as_deref()
                .context("an unlock-cr/1 card needs --master-key")?;
            let master = hex_array::<16>("--master-key", master_key)?;
            let mut card = VirtualCard::new(serial, &master, &args.passcode);
            if args.locked {
                card = card.with_pin_tries(0);
            }
            Ok(AnyCard::UnlockCr(card))
        }
        Profile::Piv => {
            let (Some(cert), Some(key)) = (&args.ca_cert, &args.ca_key) else {
                bail!("a PIV card needs --ca-cert and --ca-key (created if missing)");
            };
            let files = CaFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            let ca = TestCa::load_or_create(&files, "Virtual PIV test CA")?;
            let mut options = PivCardOptions::new(hex_array::<16>("--guid", &args.guid)?);
            options.pin = args.passcode.clone();
            options.puk = args.puk.clone();
            options.pin_tries = if args.locked {
                0
            } else {
                args.pin_tries.unwrap_or(3)
            };
            options.puk_tries = if args.puk_blocked {
                0
            } else {
                args.puk_tries.unwrap_or(3)
            };
            options.validity = if args.cert_expired {
                Validity::expired()
            } else {
                Validity::days_from_now(args.cert_days)
            };
            Ok(AnyCard::Piv(Box::new(VirtualPivCard::new(&options, &ca)?)))
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut slot = Slot {
        card: Arc::new(Mutex::new(make_card(&args)?)),
        faults: Arc::new(Mutex::new(Faults::default())),
        vpcd: args.vpcd,
        inserted: None,
    };
    if !args.removed {
        slot.insert()?;
    }
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.context("read a command")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["insert"] => slot.insert().map(|()| "ok".to_owned()),
            ["remove"] => {
                slot.remove();
                Ok("ok".to_owned())
            }
            ["state"] => slot.state(),
            ["pin-is", pin] => slot.card().map(|card| card.pin_is(pin).to_string()),
            ["puk-is", puk] => slot
                .card()
                .and_then(|card| card.puk_is(puk))
                .map(|is| is.to_string()),
            ["pull-on", on] => instruction(on).map(|on| {
                slot.set_trap(PullTrap::on(on));
                "ok".to_owned()
            }),
            ["pull-after-on", on] => instruction(on).map(|on| {
                slot.set_trap(PullTrap::once_processed(on));
                "ok".to_owned()
            }),
            ["pull-on", on, "after", after] => instruction(on)
                .and_then(|on| Ok((on, instruction(after)?)))
                .map(|(on, after)| {
                    slot.set_trap(PullTrap::on_after(on, after));
                    "ok".to_owned()
                }),
            ["pull-before", nth] => slot.arm(nth, Fault::PullBefore),
            ["pull-after", nth] => slot.arm(nth, Fault::PullAfter),
            ["stall-before", nth] => slot.arm(nth, Fault::Stall),
            ["go"] => {
                slot.faults().go();
                Ok("ok".to_owned())
            }
            ["log"] => Ok(slot
                .faults()
                .take_seen()
                .iter()
                .map(|instruction| format!("{instruction:02X}"))
                .collect::<Vec<_>>()
                .join(" ")),
            ["quit"] => break,
            [] => continue,
            _ => Ok(format!("error: unknown command {line:?}")),
        };
        match answer {
            Ok(answer) => println!("{answer}"),
            Err(error) => println!("error: {error:#}"),
        }
    }
    slot.remove();
    if slot.inserted.is_some() {
        bail!("the card could not be removed");
    }
    Ok(())
}
