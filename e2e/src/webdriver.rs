//! Debian's ChromeDriver driving headless Chromium (with the unpacked extension) through
//! WebDriver, for tests that act as a person would: by visible labels and the keyboard.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::browser::CHROMIUM;

/// `chromedriver` on a free loopback port, in its own process group so that dropping it
/// stops it, every browser it started and every native host those started.
#[derive(Debug)]
pub struct ChromeDriver {
    pub url: String,
    process: Child,
}

impl ChromeDriver {
    /// Starts ChromeDriver; the browsers it starts, and their native hosts, reach pcscd
    /// through `pcsc_socket`, and the hosts find their per-user registration under `home`.
    pub fn start(pcsc_socket: &Path, home: &Path, log: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .env("PCSCLITE_CSOCK_NAME", pcsc_socket)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver (apt-get install chromium-driver)");
        crate::harness::wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Self {
            url: format!("http://127.0.0.1:{port}"),
            process,
        }
    }

    /// A new headless browser with a fresh profile in `user_data_dir`, with `extension`
    /// loaded if given.
    pub async fn browser(&self, user_data_dir: &Path, extension: Option<&Path>) -> Client {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1024,1200".to_owned(),
            format!("--user-data-dir={}", user_data_dir.display()),
        ];
        match extension {
            Some(extension) => {
                args.push(format!("--load-extension={}", extension.display()));
                args.push(format!(
                    "--disable-extensions-except={}",
                    extension.display()
                ));
            }
            None => args.push("--disable-extensions".to_owned()),
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        // Keep what the page logs (its console, CSP refusals, failed loads) for
        // `console_errors`.
        capabilities.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.process.wait();
    }
}

/// What the browser logged at level SEVERE (console errors, CSP refusals, failed loads)
/// since the last call, one line each: ChromeDriver hands each entry over once. One kind is
/// left out: the API's own refusals (a 4xx answer from `/api/…`, such as a wrong code's
/// 422), which Chromium logs as failed loads although the page expects them and shows
/// their plain sentence; a 5xx, or a 4xx for anything else (a missing asset), still counts.
pub async fn console_errors(client: &Client) -> Vec<String> {
    let entries = client
        .issue_cmd(BrowserLog)
        .await
        .expect("ChromeDriver's browser log (goog:loggingPrefs)");
    entries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| {
            (
                entry["source"].as_str().unwrap_or("?"),
                entry["message"].as_str().unwrap_or_default(),
            )
        })
        .filter(|(source, message)| !is_api_refusal(source, message))
        .map(|(source, message)| format!("{source}: {message}"))
        .collect()
}

/// Whether a log entry is Chromium's note of a 4xx answer from the API, as in
/// `http://127.0.0.1:1234/api/journey/code - Failed to load resource: the server responded
/// with a status of 422 (Unprocessable Entity)`.
fn is_api_refusal(source: &str, message: &str) -> bool {
    let Some((address, rest)) = message.split_once(" - ") else {
        return false;
    };
    let from_api = url::Url::parse(address).is_ok_and(|url| url.path().starts_with("/api/"));
    let status = rest
        .strip_prefix("Failed to load resource: the server responded with a status of ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|code| code.parse::<u16>().ok());
    source == "network" && from_api && status.is_some_and(|code| (400..500).contains(&code))
}

/// ChromeDriver's own command for the browser's log (not in the W3C protocol).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::is_api_refusal;

    #[test]
    fn only_the_apis_4xx_answers_are_expected_refusals() {
        let line = |path: &str, status: &str| {
            format!(
                "http://127.0.0.1:1234{path} - Failed to load resource: the server responded \
                 with a status of {status}"
            )
        };
        let refusal = line("/api/journey/code", "422 (Unprocessable Entity)");
        assert!(is_api_refusal("network", &refusal));
        assert!(!is_api_refusal("security", &refusal));
        assert!(!is_api_refusal(
            "network",
            &line("/api/journey/code", "500 (Internal Server Error)")
        ));
        assert!(!is_api_refusal(
            "network",
            &line("/app-1234.css", "404 (Not Found)")
        ));
        assert!(!is_api_refusal(
            "network",
            "http://127.0.0.1:1234/api/x - Failed to load resource: net::ERR_CONNECTION_REFUSED"
        ));
        assert!(!is_api_refusal(
            "security",
            "http://127.0.0.1:1234/ - Loading the font 'https://assets.nhs.uk/fonts/x.woff2' \
             violates the following Content Security Policy directive: \"font-src 'self'\"."
        ));
    }
}
