//! `virtual-card`: an `unlock-cr/1` card for tests and demos, plugged into `pcscd` through
//! the `vpcd` driver. Commands on standard input, one per line, each answered on standard
//! output: `insert`, `remove`, `state`, `pin-is <digits>`, `pull-on <instruction hex>`
//! (leave the reader when the next command with that instruction arrives), `quit`.

use std::io::BufRead;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use unlock_e2e::card::VirtualCard;
use unlock_e2e::vpcd;

/// A virtual unlock-cr/1 smartcard for vpcd.
#[derive(Debug, Parser)]
struct Args {
    /// vpcd's address (it listens; the card connects).
    #[arg(long, default_value = "127.0.0.1:35963")]
    vpcd: String,
    /// The card serial: 16 hex digits.
    #[arg(long, default_value = "2d6bddb8ad096c2d")]
    serial: String,
    /// The card's passcode.
    #[arg(long, default_value = "284759")]
    passcode: String,
    /// Start with the passcode blocked (no tries left), as after three wrong passcodes.
    #[arg(long)]
    locked: bool,
    /// The master key the card's admin key is derived from: 32 hex digits.
    #[arg(long, env = "UNLOCK_TEST_MASTER_KEY")]
    master_key: String,
    /// Start outside the reader (send `insert` to put it in).
    #[arg(long)]
    removed: bool,
}

/// The card and its connection to the reader, if inserted.
struct Slot {
    card: Arc<Mutex<VirtualCard>>,
    pull_on: Arc<Mutex<Option<u8>>>,
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
        let pull_on = self.pull_on.clone();
        let thread = std::thread::spawn(move || {
            if let Err(error) = vpcd::serve(&mut serving, &card, &pull_on) {
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

    fn state(&self) -> anyhow::Result<String> {
        let card = self
            .card
            .lock()
            .map_err(|_| anyhow::anyhow!("the card's state is poisoned"))?;
        let counters = card.counters();
        Ok(serde_json::json!({
            "serial": hex::encode(card.serial()),
            "inserted": self.inserted.as_ref().is_some_and(|(_, thread)| !thread.is_finished()),
            "pin_tries": counters.pin_tries,
            "admin_tries": counters.admin_tries,
        })
        .to_string())
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let serial = hex_array::<8>("--serial", &args.serial)?;
    let master = hex_array::<16>("--master-key", &args.master_key)?;
    let mut card = VirtualCard::new(serial, &master, &args.passcode);
    if args.locked {
        card = card.with_pin_tries(0);
    }
    let mut slot = Slot {
        card: Arc::new(Mutex::new(card)),
        pull_on: Arc::new(Mutex::new(None)),
        vpcd: args.vpcd,
        inserted: None,
    };
    if !args.removed {
        slot.insert()?;
    }
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.context("read a command")?;
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (Some("insert"), None) => slot.insert().map(|()| "ok".to_owned()),
            (Some("remove"), None) => {
                slot.remove();
                Ok("ok".to_owned())
            }
            (Some("state"), None) => slot.state(),
            (Some("pin-is"), Some(pin)) => slot
                .card
                .lock()
                .map(|card| card.pin_is(pin).to_string())
                .map_err(|_| anyhow::anyhow!("the card's state is poisoned")),
            (Some("pull-on"), Some(instruction)) => u8::from_str_radix(instruction, 16)
                .map(|instruction| {
                    *slot.pull_on.lock().unwrap_or_else(|e| e.into_inner()) = Some(instruction);
                    "ok".to_owned()
                })
                .context("pull-on takes an instruction byte in hex, such as 2C"),
            (Some("quit"), None) => break,
            (None, _) => continue,
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
