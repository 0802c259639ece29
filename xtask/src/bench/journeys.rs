//! The loads of one bench run, whichever engine: the baselines, then the two endpoints in the
//! order a holder meets them: start-journey for each holder once, then verify-code with the
//! code the outbox emailed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hyper::header::HeaderValue;

use super::BenchArgs;
use super::load::{self, Job, Plan, Run};
use super::mail;
use super::report::Stats;
use super::target::holder_email;

/// A journey the server started: the holder's index and the `Cookie` that carries it.
pub type Started = Vec<(usize, HeaderValue)>;

/// Runs the loads of one bench run on its runtime, with its settings.
#[derive(Debug)]
pub struct Loader<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub bench: &'a BenchArgs,
}

impl Loader<'_> {
    /// Loads the start baseline at `addr`: one `{"email": …}` per holder, as start-journey
    /// gets; the holders whose journey it wrote.
    pub fn baseline_start(&self, addr: SocketAddr) -> anyhow::Result<(Stats, Vec<usize>)> {
        let run = self.load(
            vec![addr],
            "/baseline/start",
            r#""stage":"awaiting_code""#,
            self.email_jobs(),
        )?;
        let answered = run
            .outcomes
            .iter()
            .enumerate()
            .filter(|(_, outcome)| outcome.as_ref().is_some_and(|o| o.error.is_none()))
            .map(|(holder, _)| holder)
            .collect();
        Ok((Stats::new("start baseline", &run), answered))
    }

    /// Loads the verify baseline at `addr`: each journey [`Self::baseline_start`] wrote,
    /// once.
    pub fn baseline_verify(&self, addr: SocketAddr, holders: &[usize]) -> anyhow::Result<Stats> {
        let jobs = holders
            .iter()
            .map(|&holder| {
                self.job(
                    holder,
                    &serde_json::json!({ "email": holder_email(holder) }),
                    None,
                )
            })
            .collect();
        let run = self.load(
            vec![addr],
            "/baseline/verify",
            r#""stage":"verified""#,
            jobs,
        )?;
        Ok(Stats::new("verify baseline", &run))
    }

    /// Both baselines at `addr`, in the order a holder meets the endpoints.
    pub fn baselines(&self, addr: SocketAddr) -> anyhow::Result<[Stats; 2]> {
        let (start, started) = self.baseline_start(addr)?;
        let verify = self.baseline_verify(addr, &started)?;
        Ok([start, verify])
    }

    /// POST /api/journeys for each holder once, spread over `addrs`.
    pub fn start_journeys(&self, addrs: &[SocketAddr]) -> anyhow::Result<(Stats, Started)> {
        let run = self.load(
            addrs.to_vec(),
            "/api/journeys",
            r#""stage":"awaiting_code""#,
            self.email_jobs(),
        )?;
        Ok((Stats::new("start-journey", &run), journey_cookies(&run)))
    }

    /// Waits for the outbox to write one code email per started journey; holder address →
    /// the code emailed to it.
    pub fn wait_for_codes(
        &self,
        mail_dir: &Path,
        started: &Started,
    ) -> anyhow::Result<HashMap<String, String>> {
        println!(
            "==> waiting for the outbox to write {} code emails",
            started.len()
        );
        let waited = Instant::now();
        let arrived = mail::wait_for(
            mail_dir,
            started.len(),
            Duration::from_secs(self.bench.mail_wait_seconds),
        )?;
        let codes = mail::codes(mail_dir)?;
        println!(
            "    {arrived} emails after {:.1} s; {} codes read",
            waited.elapsed().as_secs_f64(),
            codes.len()
        );
        Ok(codes)
    }

    /// POST /api/journey/code with the right code, each journey once, spread over `addrs`
    /// (so on a fleet a journey is often verified by another instance than started it).
    pub fn verify_codes(
        &self,
        addrs: &[SocketAddr],
        started: &Started,
        codes: &HashMap<String, String>,
    ) -> anyhow::Result<Stats> {
        let jobs = started
            .iter()
            .filter_map(|(holder, cookie)| {
                let code = codes.get(&holder_email(*holder))?;
                Some(self.job(
                    *holder,
                    &serde_json::json!({ "code": code }),
                    Some(cookie.clone()),
                ))
            })
            .collect();
        let run = self.load(
            addrs.to_vec(),
            "/api/journey/code",
            r#""stage":"verified""#,
            jobs,
        )?;
        Ok(Stats::new("verify-code", &run))
    }

    fn email_jobs(&self) -> Vec<Job> {
        (0..self.bench.requests)
            .map(|holder| {
                self.job(
                    holder,
                    &serde_json::json!({ "email": holder_email(holder) }),
                    None,
                )
            })
            .collect()
    }

    /// Holder `holder`'s request, from its client address when there are several.
    fn job(&self, holder: usize, body: &serde_json::Value, cookie: Option<HeaderValue>) -> Job {
        let addresses = self.bench.client_addresses;
        Job {
            body: Bytes::from(body.to_string()),
            cookie,
            forwarded_for: (addresses > 1)
                .then(|| client_address(holder, addresses))
                .and_then(|addr| HeaderValue::from_str(&addr.to_string()).ok()),
        }
    }

    fn load(
        &self,
        addrs: Vec<SocketAddr>,
        path: &'static str,
        expect: &'static str,
        jobs: Vec<Job>,
    ) -> anyhow::Result<Run> {
        let plan = Plan {
            addrs,
            path,
            connections: self.bench.connections,
            time_cap: Duration::from_secs(self.bench.seconds),
            expect,
        };
        self.runtime
            .block_on(load::run(&plan, jobs))
            .with_context(|| format!("load {path}"))
    }
}

/// One of `addresses` addresses from 198.18.0.0/15 (set aside for benchmarks, RFC 2544), the
/// same for a holder's every request.
fn client_address(holder: usize, addresses: u32) -> std::net::Ipv4Addr {
    let index = u32::try_from(holder).unwrap_or(u32::MAX) % addresses.min(1 << 17);
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + index)
}

/// Holder index → the `Cookie` value of its journey, for every start that was answered right.
fn journey_cookies(run: &Run) -> Started {
    run.outcomes
        .iter()
        .enumerate()
        .filter_map(|(holder, outcome)| {
            let outcome = outcome.as_ref().filter(|outcome| outcome.error.is_none())?;
            Some((holder, cookie_from(outcome.set_cookie.as_ref()?)?))
        })
        .collect()
}

/// `unlock_journey=<token>; Path=/api; …` → `unlock_journey=<token>`.
fn cookie_from(set_cookie: &HeaderValue) -> Option<HeaderValue> {
    let pair = set_cookie.to_str().ok()?.split(';').next()?.trim();
    let token = pair.strip_prefix("unlock_journey=")?;
    if token.is_empty() {
        return None;
    }
    HeaderValue::from_str(pair).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_each_holder_one_of_the_benchmark_addresses() {
        assert_eq!(client_address(0, 1000).to_string(), "198.18.0.0");
        assert_eq!(client_address(1001, 1000).to_string(), "198.18.0.1");
        assert_eq!(client_address(300, 1000).to_string(), "198.18.1.44");
        assert_eq!(
            client_address(usize::MAX, u32::MAX).to_string(),
            "198.19.255.255"
        );
    }

    #[test]
    fn keeps_only_the_journey_pair_of_a_set_cookie() {
        let header = HeaderValue::from_static(
            "unlock_journey=abc123; Path=/api; Max-Age=3600; HttpOnly; SameSite=Strict",
        );
        assert_eq!(
            cookie_from(&header),
            Some(HeaderValue::from_static("unlock_journey=abc123"))
        );
        assert_eq!(
            cookie_from(&HeaderValue::from_static("other=1; Path=/")),
            None
        );
        assert_eq!(
            cookie_from(&HeaderValue::from_static("unlock_journey=; Path=/api")),
            None
        );
    }
}
