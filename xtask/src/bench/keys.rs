//! `cargo xtask bench-keys`: what the card steps ask of the key custody, timed with file
//! custody and with a SoftHSM2 token side by side in one run — the unlock-cr/1 release and
//! receipt (the per-card key, then the cryptogram or receipt), the piv/1 release (seal the
//! next PUK, open the current one) — one at a time and from 16 tasks at once.
//!
//! SoftHSM2 finds its token store through `SOFTHSM2_CONF`, so the measuring half runs as a
//! child process (`xtask bench-keys-inner`) with it set to a private store.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use unlock_protocol::piv::Puk;
use unlock_protocol::{CardId, CardSerial};
use unlock_server::config::{Config, Custody as NewKeysIn, Secret};
use unlock_server::custody::{self, Custody, CustodyError, Pkcs11Settings, Token};
use unlock_server::db::states::{CustodyKind, KeyPurpose};
use unlock_server::db::{DatabaseUrl, Db};
use unlock_server::secrets::Keys;

use super::scratch::TempDir;
use crate::cmd;

/// The first vector of `shared/test-vectors/unlock-cr-1.json`.
const MASTER_KEY: &str = "35a47d45d75853e026695fffa198b79d";
const SERIAL: &str = "2d6bddb8ad096c2d";
const CHALLENGE: &str = "e2f9c4a79e98c221a0561065e0626dfa";
const CRYPTOGRAM: &str = "d206290d1935d00cc7a1d6d9754a930f";
const PIN: &str = "bench-pin";
const TOKEN: &str = "unlock-bench";
const PARALLEL: usize = 16;

#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    /// Operations timed per row.
    #[arg(long, default_value_t = 2000)]
    pub runs: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KeysInnerArgs {
    #[command(flatten)]
    pub keys: KeysArgs,
    /// The PKCS#11 module.
    #[arg(long)]
    pub module: PathBuf,
}

pub fn run(args: &KeysArgs) -> anyhow::Result<()> {
    crate::test::ensure_debian_packages(&["softhsm2"])?;
    let module = softhsm_module()?;
    println!("==> building the measuring half (release)");
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "xtask"]))?;
    let scratch = TempDir::new("unlock-bench-keys")?;
    let conf = private_token_store(scratch.path())?;
    println!(
        "==> measuring with SoftHSM2 ({}), a private token store",
        module.display()
    );
    let mut inner = Command::new(cmd::target_dir().join("release/xtask"));
    inner
        .arg("bench-keys-inner")
        .args(["--runs", &args.runs.to_string()])
        .arg("--module")
        .arg(&module)
        .env("SOFTHSM2_CONF", &conf);
    cmd::run(&mut inner)
}

fn softhsm_module() -> anyhow::Result<PathBuf> {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
    .context("SoftHSM2's module is not installed")
}

/// A token store of its own with one token, initialised with `softhsm2-util`.
fn private_token_store(dir: &Path) -> anyhow::Result<PathBuf> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).context("create the token store")?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .context("write the SoftHSM2 configuration")?;
    let made = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "bench-so",
        ])
        .args(["--pin", PIN])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .context("run softhsm2-util")?;
    if !made.status.success() {
        bail!("softhsm2-util: {}", String::from_utf8_lossy(&made.stderr));
    }
    Ok(conf)
}

/// `xtask bench-keys-inner`: both custodies, every operation, then the table.
pub fn inner(args: &KeysInnerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    runtime.block_on(measure(args))
}

async fn measure(args: &KeysInnerArgs) -> anyhow::Result<()> {
    let scratch = TempDir::new("unlock-bench-keys-db")?;
    let mut config = Config {
        data_dir: scratch.path().to_owned(),
        card_master_key: Some(Secret::new(MASTER_KEY)),
        ..Config::default()
    };
    let keys = Keys::from_secret(&[7; 32]);
    let file = custody_on(&config, &keys, scratch.path(), "file").await?;

    // The same master key on the token (imported, as `keys import` does), and an escrow key
    // made there.
    config.keys.custody = NewKeysIn::Pkcs11;
    config.keys.pkcs11_module = Some(args.module.clone());
    config.keys.pkcs11_token_label = TOKEN.into();
    config.keys.pkcs11_pin = Some(Secret::new(PIN));
    let settings = Pkcs11Settings::from_config(&config)?.context("the token's settings")?;
    let token = Token::new(settings);
    let master = custody::parse_hex_key(MASTER_KEY, custody::MASTER_KEY_BYTES)?;
    let master_label = custody::label(KeyPurpose::CardMaster, 1);
    let escrow_label = custody::label(KeyPurpose::PukEscrow, 1);
    token.import(
        &master_label,
        &master,
        &custody::token_uses(KeyPurpose::CardMaster),
    )?;
    token.generate(
        &escrow_label,
        custody::ESCROW_KEY_BYTES,
        &custody::token_uses(KeyPurpose::PukEscrow),
    )?;
    drop(token);
    let hsm = custody_on(&config, &keys, scratch.path(), "pkcs11").await?;
    {
        let mut conn = hsm.1.pool().acquire().await?;
        for purpose in [KeyPurpose::CardMaster, KeyPurpose::PukEscrow] {
            custody::record_version(&mut conn, purpose, 1, CustodyKind::Pkcs11, 0).await?;
        }
    }

    let serial = CardSerial::parse(SERIAL).map_err(|e| anyhow::anyhow!("{e}"))?;
    let challenge: [u8; 16] = hex::decode(CHALLENGE)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("challenge"))?;
    for (name, custody) in [("file", &file.0), ("SoftHSM2", &hsm.0)] {
        let key = custody.card_key(1, &serial).await.map_err(custody_error)?;
        if hex::encode(key.cryptogram(&serial, &challenge)) != CRYPTOGRAM {
            bail!("{name} custody does not reproduce the test vector's cryptogram");
        }
    }

    println!(
        "{:<46} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "operation (what a card step asks)",
        "file p50",
        "file p99",
        "HSM p50",
        "HSM p99",
        "HSM ops/s",
        "HSM/file"
    );
    for parallel in [1, PARALLEL] {
        for operation in Operation::ALL {
            let on_file = time(&file.0, operation, parallel, args.keys.runs).await?;
            let on_hsm = time(&hsm.0, operation, parallel, args.keys.runs).await?;
            println!(
                "{:<46} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>10.0} {:>7.0}×",
                format!("{} ({parallel} at once)", operation.name()),
                micros(on_file.p50),
                micros(on_file.p99),
                micros(on_hsm.p50),
                micros(on_hsm.p99),
                on_hsm.per_second,
                micros(on_hsm.p50) / micros(on_file.p50).max(0.001),
            );
        }
    }
    println!(
        "{} operations per row; latency is each operation's own time through the async \
         custody (tokio's blocking threads for the token), on this machine's {} CPUs",
        args.keys.runs,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    Ok(())
}

async fn custody_on(
    config: &Config,
    keys: &Keys,
    dir: &Path,
    name: &str,
) -> anyhow::Result<(Arc<Custody>, Db)> {
    let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    let db = Db::connect(&DatabaseUrl::parse(&url)?).await?;
    db.migrate().await?;
    let custody = Custody::load(config, keys, db.clone())?;
    Ok((Arc::new(custody), db))
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    /// The unlock-cr/1 release: the card's admin key, then the cryptogram.
    Cryptogram,
    /// The piv/1 release: a next PUK sealed.
    SealPuk,
    /// The piv/1 release: an escrowed PUK opened.
    OpenPuk,
}

impl Operation {
    const ALL: [Self; 3] = [Self::Cryptogram, Self::SealPuk, Self::OpenPuk];

    fn name(self) -> &'static str {
        match self {
            Self::Cryptogram => "unlock-cr/1 card key + cryptogram",
            Self::SealPuk => "piv/1 seal a PUK",
            Self::OpenPuk => "piv/1 open a PUK",
        }
    }
}

struct Timing {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn time(
    custody: &Arc<Custody>,
    operation: Operation,
    parallel: usize,
    runs: usize,
) -> anyhow::Result<Timing> {
    let card =
        CardId::parse("3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b").map_err(|e| anyhow::anyhow!("{e}"))?;
    let puk = Puk::parse("40719263").map_err(|_| anyhow::anyhow!("a PUK"))?;
    let sealed = custody
        .seal_puk(1, &card, &puk)
        .await
        .map_err(custody_error)?;
    let serial = CardSerial::parse(SERIAL).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..parallel {
        let (custody, card, puk, sealed, serial) = (
            custody.clone(),
            card.clone(),
            puk.clone(),
            sealed.clone(),
            serial.clone(),
        );
        let share = runs / parallel + usize::from(worker < runs % parallel);
        tasks.spawn(async move {
            let mut took = Vec::with_capacity(share);
            for _ in 0..share {
                let start = Instant::now();
                match operation {
                    Operation::Cryptogram => {
                        let key = custody.card_key(1, &serial).await?;
                        std::hint::black_box(key.cryptogram(&serial, &[0x42; 16]));
                    }
                    Operation::SealPuk => {
                        std::hint::black_box(custody.seal_puk(1, &card, &puk).await?);
                    }
                    Operation::OpenPuk => {
                        std::hint::black_box(custody.open_puk(1, &card, &sealed).await?);
                    }
                }
                took.push(start.elapsed());
            }
            Ok::<_, CustodyError>(took)
        });
    }
    let mut took = Vec::with_capacity(runs);
    while let Some(done) = tasks.join_next().await {
        took.extend(done.context("a timing task")?.map_err(custody_error)?);
    }
    let elapsed = started.elapsed();
    took.sort();
    let at = |percent: usize| {
        let index = took.len().saturating_sub(1) * percent / 100;
        took.get(index).copied().unwrap_or_default()
    };
    let count = u32::try_from(took.len()).unwrap_or(u32::MAX);
    Ok(Timing {
        p50: at(50),
        p99: at(99),
        per_second: f64::from(count) / elapsed.as_secs_f64().max(1e-9),
    })
}

fn custody_error(error: CustodyError) -> anyhow::Error {
    anyhow::anyhow!("{error:#}")
}
