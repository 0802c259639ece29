//! The security codes, read back from the `.eml` files the server's outbox wrote.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use mail_parser::MessageParser;

/// Waits until `dir` holds at least `expected` messages or `timeout` passes; returns the count.
pub fn wait_for(dir: &Path, expected: usize, timeout: Duration) -> anyhow::Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let count = eml_files(dir)?.len();
        if count >= expected || Instant::now() >= deadline {
            return Ok(count);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Holder address → the code emailed to it.
pub fn codes(dir: &Path) -> anyhow::Result<HashMap<String, String>> {
    let mut codes = HashMap::new();
    for path in eml_files(dir)? {
        let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        if let Some((to, code)) = code_message(&raw) {
            codes.insert(to, code);
        }
    }
    Ok(codes)
}

/// Recipient and code of each code message in `dir` not in `seen` yet, which it is added to.
pub fn new_codes(
    dir: &Path,
    seen: &mut std::collections::HashSet<std::path::PathBuf>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut codes = Vec::new();
    for path in eml_files(dir)? {
        if seen.contains(&path) {
            continue;
        }
        let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        // A file still being written is read again next time.
        if let Some(code) = code_message(&raw) {
            codes.push(code);
            seen.insert(path);
        }
    }
    Ok(codes)
}

fn eml_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?;
    Ok(entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect())
}

/// The recipient and the code of a security-code message; decoding (quoted-printable,
/// base64) is left to a real MIME parser.
fn code_message(raw: &[u8]) -> Option<(String, String)> {
    let message = MessageParser::default().parse(raw)?;
    let to = message.to()?.first()?.address()?.to_owned();
    let text = message.body_text(0)?;
    let code = code_in(&text)?;
    Some((to, code))
}

fn code_in(text: &str) -> Option<String> {
    let (_, after) = text.split_once("Your security code is ")?;
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    (code.len() == 6).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_from_a_quoted_printable_message() {
        let raw = b"To: h7@bench.example\r\nSubject: code\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            Your security code is 012345\r\n\r\nA long line that goes on and on and on and on and on and on=\r\n and on.\r\n";
        assert_eq!(
            code_message(raw),
            Some(("h7@bench.example".to_owned(), "012345".to_owned()))
        );
    }

    #[test]
    fn refuses_a_message_without_a_whole_code() {
        assert_eq!(code_in("Your security code is 1234"), None);
    }
}
