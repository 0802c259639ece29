//! The load generator: a fixed list of prepared requests spread over N keep-alive
//! connections, each owned by one task, bounded both in count and in time. With several
//! addresses (instances sharing one database) the connections go round them in turn, and
//! every connection takes the next job whichever instance it talks to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, HeaderValue, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request, prepared before the clock starts so the measured loop only clones handles.
#[derive(Debug, Clone)]
pub struct Job {
    pub body: Bytes,
    pub cookie: Option<HeaderValue>,
    /// The client address, sent as `X-Forwarded-For`.
    pub forwarded_for: Option<HeaderValue>,
}

/// How to load one endpoint.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The instances to load; connection `i` goes to `addrs[i % addrs.len()]`.
    pub addrs: Vec<SocketAddr>,
    pub path: &'static str,
    pub connections: usize,
    /// No job starts after this long, even if some are left.
    pub time_cap: Duration,
    /// A right answer is a 200 whose body contains this.
    pub expect: &'static str,
}

/// What happened to one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub latency: Duration,
    /// `None` for a right answer, else a short reason such as `status 429`.
    pub error: Option<String>,
    pub set_cookie: Option<HeaderValue>,
}

/// What one load run measured.
#[derive(Debug)]
pub struct Run {
    /// Indexed like the jobs; `None` for a job the time cap left unsent.
    pub outcomes: Vec<Option<Outcome>>,
    pub elapsed: Duration,
}

struct Shared {
    plan: Plan,
    jobs: Vec<Job>,
    next: AtomicUsize,
    deadline: Instant,
}

/// Sends the jobs and waits for every answer.
pub async fn run(plan: &Plan, jobs: Vec<Job>) -> anyhow::Result<Run> {
    anyhow::ensure!(!plan.addrs.is_empty(), "no address to load");
    // Connect first, so TCP set-up is not part of the measured time.
    let mut senders = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        let addr = plan.addrs[i % plan.addrs.len()];
        senders.push(Connection::open(addr).await?);
    }
    let started = Instant::now();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        jobs,
        next: AtomicUsize::new(0),
        deadline: started + plan.time_cap,
    });
    let workers: Vec<_> = senders
        .into_iter()
        .map(|sender| tokio::spawn(worker(sender, shared.clone())))
        .collect();
    let mut outcomes = vec![None; shared.jobs.len()];
    for handle in workers {
        for (index, outcome) in handle.await.context("join a load worker")? {
            outcomes[index] = Some(outcome);
        }
    }
    Ok(Run {
        outcomes,
        elapsed: started.elapsed(),
    })
}

/// One keep-alive connection to one instance.
struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("start HTTP/1.1")?;
        // This future moves the bytes; it ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string()).context("make the Host header")?,
            sender,
        })
    }
}

/// Takes the next job until none are left or time is up; one request in flight at a time.
async fn worker(mut connection: Connection, shared: Arc<Shared>) -> Vec<(usize, Outcome)> {
    let mut done = Vec::new();
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.jobs.len() || Instant::now() >= shared.deadline {
            break;
        }
        let began = Instant::now();
        let answer = send(&mut connection, &shared, &shared.jobs[index]).await;
        let latency = began.elapsed();
        let outcome = match answer {
            Ok((error, set_cookie)) => Outcome {
                latency,
                error,
                set_cookie,
            },
            Err(error) => {
                // Count it, and go on with a fresh connection if one can be had.
                if let Ok(fresh) = Connection::open(connection.addr).await {
                    connection = fresh;
                }
                Outcome {
                    latency,
                    error: Some(format!("transport: {error:#}")),
                    set_cookie: None,
                }
            }
        };
        done.push((index, outcome));
    }
    done
}

async fn send(
    connection: &mut Connection,
    shared: &Shared,
    job: &Job,
) -> anyhow::Result<(Option<String>, Option<HeaderValue>)> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(shared.plan.path)
        .header(HOST, connection.host.clone())
        .header(CONTENT_TYPE, "application/json");
    if let Some(cookie) = &job.cookie {
        request = request.header(COOKIE, cookie.clone());
    }
    if let Some(client) = &job.forwarded_for {
        request = request.header("x-forwarded-for", client.clone());
    }
    let request = request
        .body(Full::new(job.body.clone()))
        .context("build the request")?;
    let sender = &mut connection.sender;
    sender.ready().await.context("wait for the connection")?;
    let response = sender
        .send_request(request)
        .await
        .context("send the request")?;
    let status = response.status();
    let set_cookie = response.headers().get(SET_COOKIE).cloned();
    // Reading the whole body is also what lets the connection carry the next request.
    let body = response
        .into_body()
        .collect()
        .await
        .context("read the answer")?
        .to_bytes();
    let error = if status != StatusCode::OK {
        Some(format!("status {}", status.as_u16()))
    } else if !contains(&body, shared.plan.expect.as_bytes()) {
        Some("unexpected body".to_owned())
    } else {
        None
    };
    Ok((error, set_cookie))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
