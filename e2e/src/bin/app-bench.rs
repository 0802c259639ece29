//! `app-bench`: how quickly the holder's app becomes usable on loopback, and how long the
//! whole automated happy path takes, through every real part (release builds). Each figure
//! comes with a baseline from the same run:
//!
//! - first interactive screen: from navigation until "Start now" can be pressed (the start
//!   page has asked the bridge and found the reader empty), cold (first visit) and warm;
//!   against a static page with the same stylesheet, heading and button and no WASM, served
//!   by the same server;
//! - the happy path, from opening the app to "Your card is unlocked", keyboard only, a new
//!   browser session each run; against the same browser opening the static page.
//!
//! Run by `cargo xtask bench-app`; the binaries it drives sit beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use fantoccini::{Client, Locator};
use unlock_e2e::journey::{Person, SERIAL, World, app_dir, happy_path};
use unlock_e2e::service::{Holder, Server};

#[derive(Debug, Parser)]
struct Args {
    /// Measurements per figure.
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?;
    let binaries = here.parent().expect("a folder");
    let mut world = World::start(binaries, SERIAL, &["--serial", SERIAL]);
    let baseline = static_site(binaries, &world)?;

    // Time to the first interactive screen, with the card out of the reader.
    assert_eq!(world.card.command("remove"), "ok");
    let client = world.browser(true).await;
    let app = format!("{}/", world.server.url);
    let static_page = format!("{}/", baseline.url);
    let first_app = until_start_now(&client, &app).await;
    let first_static = until_start_now(&client, &static_page).await;
    let mut warm_app = Vec::new();
    let mut warm_static = Vec::new();
    for _ in 0..args.runs {
        warm_app.push(until_start_now(&client, &app).await);
        warm_static.push(until_start_now(&client, &static_page).await);
    }
    client.close().await?;
    assert_eq!(world.card.command("insert"), "ok");

    // The whole happy path, and the same browser just opening the static page. One holder
    // may have 5 codes an hour, so at most 5 journeys.
    let mut journeys = Vec::new();
    let mut openings = Vec::new();
    for _ in 0..args.runs.min(5) {
        let started = Instant::now();
        let client = world.browser(true).await;
        let mut person = Person {
            client,
            shots: None,
            screens: 0,
        };
        happy_path(&mut world, &mut person).await;
        journeys.push(started.elapsed());
        person.client.close().await?;

        let started = Instant::now();
        let client = world.browser(true).await;
        until_start_now(&client, &static_page).await;
        openings.push(started.elapsed());
        client.close().await?;
    }

    println!(
        "app benchmark: {} runs per screen figure, {} happy paths, release builds, loopback",
        args.runs,
        journeys.len()
    );
    println!();
    println!("| figure | app median ms | baseline median ms | ratio | target |");
    println!("|---|---|---|---|---|");
    row(
        "first interactive screen, cold",
        &[first_app],
        &[first_static],
        "",
    );
    row(
        "first interactive screen, warm",
        &warm_app,
        &warm_static,
        "",
    );
    row(
        "automated happy path (wall)",
        &journeys,
        &openings,
        "≤ 10 s",
    );
    println!();
    println!(
        "baselines: a static page with the same stylesheet, heading and button (no WASM) from \
         the same server; for the happy path, a new browser session opening that page"
    );
    Ok(())
}

/// Navigates to `url` and returns the time from navigation until a "Start now" button is
/// there to press, by the page's own clock.
async fn until_start_now(client: &Client, url: &str) -> Duration {
    client.goto("about:blank").await.expect("blank page");
    client.goto(url).await.expect("open the page");
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(
            "//button[normalize-space()='Start now' and not(@disabled)]",
        ))
        .await
        .expect("Start now");
    let elapsed = client
        .execute("return performance.now();", vec![])
        .await
        .expect("the page's clock");
    Duration::from_secs_f64(elapsed.as_f64().unwrap_or_default() / 1000.0)
}

/// A second server whose app is a static page with the real stylesheet and no WASM.
fn static_site(binaries: &Path, world: &World) -> anyhow::Result<Server> {
    let dir = world.dir.path().join("static-site");
    std::fs::create_dir_all(&dir)?;
    let mut links = String::new();
    for entry in std::fs::read_dir(app_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "css") {
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            std::fs::copy(&path, dir.join(&name))?;
            links.push_str(&format!("<link rel=\"stylesheet\" href=\"/{name}\">"));
        }
    }
    std::fs::write(
        dir.join("index.html"),
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Unlock your smartcard</title>{links}</head><body>\
             <main class=\"nhsuk-width-container\"><h1>Unlock your smartcard</h1>\
             <button class=\"nhsuk-button\">Start now</button></main></body></html>"
        ),
    )?;
    Ok(Server::start(
        &binaries.join("unlock-server"),
        &world.dir.path().join("static-server"),
        &world.smtp.url(),
        unlock_e2e::journey::MASTER_KEY,
        &dir,
        "static.example",
        &[Holder {
            id: "9999 9999 9999",
            name: "Nobody",
            emails: &["nobody@static.example"],
            card_serial: "0000000000000001",
            ..Holder::default()
        }],
    ))
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn row(figure: &str, app: &[Duration], baseline: &[Duration], target: &str) {
    let (app, baseline) = (median(app), median(baseline));
    println!(
        "| {figure} | {:.0} | {:.0} | {:.1}× | {target} |",
        app.as_secs_f64() * 1000.0,
        baseline.as_secs_f64() * 1000.0,
        app.as_secs_f64() / baseline.as_secs_f64().max(0.001),
    );
}
