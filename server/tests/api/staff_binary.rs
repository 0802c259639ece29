//! The real binary's `staff` commands, and a staff sign-in against the real binary at debug
//! level: no password, authenticator secret, code or session token in its logs.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::binary::{cli, serve_with_debug_logs, stdout, wait_until_ready, without_timestamps};
use crate::helpers::*;

/// What `staff add --json` or `staff reset --json` handed over: the one-time password and
/// the otpauth address.
fn handed_over(printed: &str) -> (String, String) {
    let handed: serde_json::Value = serde_json::from_str(printed.trim()).expect("JSON");
    let field = |name: &str| handed[name].as_str().expect(name).to_owned();
    (field("one_time_password"), field("otpauth_uri"))
}

#[tokio::test]
async fn staff_commands_hand_over_credentials_and_the_logs_never_show_them() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path());
    let staff = |args: &[&str]| {
        let mut all = vec!["staff"];
        all.extend_from_slice(args);
        cli(dir.path(), &all)
    };

    // Rita's own profile: `--holder` must name one that exists.
    let refused = staff(&["add", "Rita", "--role", "ra", "--holder", "9999 8888 7777"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no holder with user id 999988887777"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let csv = dir.path().join("holders.csv");
    std::fs::write(
        &csv,
        "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model\n\
         999988887777,Rita Ra,Trust,,,,,\n",
    )
    .unwrap();
    stdout(&cli(dir.path(), &["import", csv.to_str().unwrap()]));

    // For a person: the password, the QR code drawn in the terminal, the address behind it.
    let added = stdout(&staff(&[
        "add",
        "Rita",
        "--role",
        "ra",
        "--holder",
        "9999 8888 7777",
    ]));
    for shown in [
        "Staff account rita (Registration Authority) created.",
        "One-time password",
        "Address: otpauth://totp/Smartcard%20unlock:rita?secret=",
        "They sign in at http://127.0.0.1:8080/status",
    ] {
        assert!(added.contains(shown), "{shown:?} in:\n{added}");
    }
    assert!(
        added.contains('█') || added.contains('▀'),
        "a QR code in the terminal:\n{added}"
    );
    // For a script: the same, as JSON.
    let (password, uri) = handed_over(&stdout(&staff(&[
        "add", "sam", "--role", "support", "--json",
    ])));
    assert_eq!(password.len(), 23, "{password}");
    assert!(
        uri.starts_with("otpauth://totp/Smartcard%20unlock:sam?secret="),
        "{uri}"
    );
    let totp = totp_rs::Totp::from_url(&uri).expect("an authenticator app reads it");
    assert_eq!((totp.digits(), totp.step()), (6, 30));

    for (args, complaint) in [
        (
            vec!["add", "rita", "--role", "support"],
            "already a staff account named rita",
        ),
        (vec!["add", "bob", "--role", "ra"], "--holder"),
        (
            vec!["add", "bob", "--role", "admin"],
            "support, ra or ra-manager",
        ),
        (vec!["add", "b", "--role", "support"], "2 to 64"),
        (vec!["reset", "nobody"], "no staff account named nobody"),
    ] {
        let refused = staff(&args);
        assert!(!refused.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(complaint), "{args:?}: {stderr}");
    }
    assert_eq!(
        stdout(&staff(&["list"])),
        "rita\tra\t999988887777\tnot signed in yet\nsam\tsupport\t-\tnot signed in yet\n"
    );

    // First sign-in through the real binary, with debug logs.
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let mut server = serve_with_debug_logs(dir.path(), port, &smtp.url(), &log_path);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert!(wait_until_ready(&client, &base).await);
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move { request.send().await.unwrap() }
    };
    let wrong = "not the password at all";
    let refused = post(
        "/api/staff/sign-in",
        json!({"username": "sam", "password": wrong}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let begun = post(
        "/api/staff/sign-in",
        json!({"username": "sam", "password": password}),
    )
    .await;
    let token = begun
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("unlock_staff=")
        .to_owned();
    let code = totp.generate_current().to_string();
    let coded: serde_json::Value = post("/api/staff/sign-in/code", json!({"code": code}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(coded["next"], "new_password");
    let chosen = "a long staff passphrase";
    let done: serde_json::Value = post(
        "/api/staff/sign-in/new-password",
        json!({"password": chosen}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(done["next"], "signed_in", "{done}");
    // An address in a request's path never reaches the request log: the route is logged.
    let removed = client
        .delete(format!(
            "{base}/api/staff/holders/999988887777/emails/someone.private%40trust.example"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::FORBIDDEN);
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    server.0.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("/api/staff/sign-in"),
        "expected request logs: {logs}"
    );
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let logged = without_timestamps(&logs);
    assert!(
        logged.contains("/api/staff/holders/{id}/emails/{email}"),
        "the route is logged: {logged}"
    );
    for value in [
        "someone.private",
        password.as_str(),
        wrong,
        chosen,
        code.as_str(),
        secret,
        token.as_str(),
    ] {
        assert!(!logged.contains(value), "{value} appeared in the logs");
    }

    // A lost phone: new credentials, and first sign-in again; then the account is disabled.
    let (new_password, new_uri) = handed_over(&stdout(&staff(&["reset", "sam", "--json"])));
    assert_ne!((new_password, new_uri), (password, uri));
    assert!(stdout(&staff(&["list"])).ends_with("sam\tsupport\t-\tnot signed in yet\n"));
    assert!(stdout(&staff(&["disable", "sam"])).contains("sam: disabled"));
    assert!(stdout(&staff(&["list"])).ends_with("sam\tsupport\t-\tdisabled\n"));
    let released = stdout(&cli(dir.path(), &["throttle", "release", "--staff", "sam"]));
    assert!(released.starts_with("released "), "{released}");
}
