//! Staff sign-in: password, then the authenticator code (each time step once), a new
//! password at first sign-in; identical answers for unknown names; throttling per account
//! and per client address; sessions that end when idle, when old, and at sign-out.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use unlock_protocol::staff::Role;

use crate::helpers::*;
use crate::staff_helpers::*;

async fn audit_outcomes(app: &TestApp, action: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT actor, outcome FROM audit_events WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(app.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn first_sign_in_takes_the_one_time_password_a_code_and_a_new_password() {
    let app = spawn_app().await;
    let rita = app.add_staff("rita", Role::Ra, Some("999988887777")).await;

    let begun = rita.sign_in_with(&rita.one_time_password).await;
    assert_eq!(
        (begun.status, begun.json()),
        (StatusCode::OK, json!({"next": "second_factor"}))
    );
    let cookie = begun.header("set-cookie");
    for attribute in [
        "unlock_staff=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/staff",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    // Half signed in is not signed in.
    assert_eq!(rita.get("/api/staff/me").await.code(), "not_signed_in");
    assert_eq!(
        rita.get("/api/staff/overview").await.status,
        StatusCode::UNAUTHORIZED
    );

    let coded = rita.code(app.clock.now()).await;
    assert_eq!(coded.json(), json!({"next": "new_password"}));
    assert_eq!(rita.get("/api/staff/me").await.code(), "not_signed_in");

    let short = rita.new_password("too short").await;
    assert_eq!(
        (short.status, short.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "password_rejected".into())
    );
    assert_eq!(
        short.json()["message"],
        "Your password must be 12 characters or more."
    );
    let same = rita.new_password(&rita.one_time_password).await;
    assert_eq!(same.code(), "password_rejected");
    assert!(
        same.json()["message"]
            .as_str()
            .unwrap()
            .contains("one-time password")
    );

    let done = rita.new_password(STAFF_PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK);
    let mut answer = done.json();
    // The service's time zone, for the screens (its offsets are checked in mail_check).
    let zone = answer["me"].as_object_mut().unwrap().remove("time_zone");
    assert_eq!(zone.unwrap()["name"], "Europe/London");
    assert_eq!(
        answer,
        json!({"next": "signed_in", "me": {"username": "rita", "role": "ra",
               "holder_id": "999988887777", "idle_timeout_seconds": 900,
               "session_ends_in_seconds": 28800}})
    );
    assert_eq!(rita.get("/api/staff/me").await.json()["username"], "rita");

    // The one-time password no longer works; the new one does, with a later code.
    rita.post("/api/staff/sign-out", json!({})).await;
    assert_eq!(
        rita.sign_in_with(&rita.one_time_password).await.code(),
        "sign_in_failed"
    );
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(
        rita.sign_in_with(STAFF_PASSWORD).await.json(),
        json!({"next": "second_factor"})
    );
    assert_eq!(rita.code(app.clock.now()).await.json()["next"], "signed_in");

    let steps: Vec<String> = audit_outcomes(&app, "staff.sign_in")
        .await
        .into_iter()
        .chain(audit_outcomes(&app, "staff.sign_in_code").await)
        .chain(audit_outcomes(&app, "staff.password_change").await)
        .map(|(actor, outcome)| format!("{actor} {outcome}"))
        .collect();
    assert_eq!(
        steps,
        [
            "staff:rita password_ok",
            "staff:rita failed",
            "staff:rita password_ok",
            "staff:rita code_ok",
            "staff:rita code_ok",
            "staff:rita done",
        ]
    );
}

#[tokio::test]
async fn unknown_names_disabled_accounts_and_wrong_passwords_get_the_same_answer() {
    let app = spawn_app_with(|c| {
        // A real work factor, so a skipped hash would show in the timing.
        c.staff.argon2_memory_kib = 8 * 1024;
        c.staff.argon2_iterations = 2;
        c.throttle.staff_failures_per_account = 1000;
        c.throttle.staff_failures_per_client = 1000;
    })
    .await;
    let known = app.signed_in_staff("sam", Role::Support, None).await;
    app.signed_in_staff("gone", Role::Support, None).await;
    unlock_server::staff::accounts::disable(
        &app.server().state.db,
        &app.clock,
        &unlock_protocol::staff::StaffUsername::parse("gone").unwrap(),
    )
    .await
    .unwrap();
    let attempt = |username: &'static str, password: &'static str| {
        let client = known.client.clone();
        let url = app.url("/api/staff/sign-in");
        async move {
            let started = Instant::now();
            let reply = read(
                client
                    .post(url)
                    .json(&json!({"username": username, "password": password}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            (reply, started.elapsed())
        }
    };
    let (wrong, _) = attempt("sam", "not the password at all").await;
    let (unknown, _) = attempt("nobody", "not the password at all").await;
    let (disabled, _) = attempt("gone", STAFF_PASSWORD).await;
    let (malformed, _) = attempt("not a name!", "x").await;
    for reply in [&wrong, &unknown, &disabled, &malformed] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, wrong.body);
        assert!(reply.header("set-cookie").is_empty());
    }
    assert_eq!(
        wrong.json(),
        json!({"code": "sign_in_failed", "message": "Enter a correct username and password."})
    );

    // The same work either way: the median times are close.
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for _ in 0..11 {
        known_times.push(attempt("sam", "not the password at all").await.1);
        unknown_times.push(attempt("nobody", "not the password at all").await.1);
    }
    let (known_median, unknown_median) = (median(known_times), median(unknown_times));
    let ratio = unknown_median.as_secs_f64() / known_median.as_secs_f64();
    assert!(
        (0.6..1.6).contains(&ratio),
        "unknown {unknown_median:?} against known {known_median:?}"
    );
}

#[tokio::test]
async fn each_authenticator_code_is_taken_once_and_only_near_its_time() {
    let app = spawn_app().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    sam.post("/api/staff/sign-out", json!({})).await;

    // The code just used for first sign-in is spent.
    assert_eq!(
        sam.sign_in_with(STAFF_PASSWORD).await.json(),
        json!({"next": "second_factor"})
    );
    let reused = sam.code(app.clock.now()).await;
    assert_eq!(
        (reused.status, reused.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "authenticator_code_wrong".into()
        )
    );
    // Two steps away is too far either way; one step either side is allowed.
    let now = app.clock.now();
    assert_eq!(
        sam.code(now + 60_000).await.code(),
        "authenticator_code_wrong"
    );
    assert_eq!(
        sam.code(now - 60_000).await.code(),
        "authenticator_code_wrong"
    );
    assert_eq!(
        sam.post("/api/staff/sign-in/code", json!({"code": "12345"}))
            .await
            .code(),
        "code_invalid"
    );
    assert_eq!(sam.code(now + 30_000).await.json()["next"], "signed_in");

    // That code was the next step's: it can't be used again within its time either.
    sam.post("/api/staff/sign-out", json!({})).await;
    app.clock.advance(Duration::from_secs(30));
    sam.sign_in_with(STAFF_PASSWORD).await;
    assert_eq!(
        sam.code(app.clock.now()).await.code(),
        "authenticator_code_wrong"
    );
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(sam.code(app.clock.now()).await.json()["next"], "signed_in");

    let outcomes: Vec<String> = audit_outcomes(&app, "staff.sign_in_code")
        .await
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            "code_ok",
            "code_reused",
            "code_wrong",
            "code_wrong",
            "code_ok",
            "code_reused",
            "code_ok"
        ]
    );
    // A code step needs a password step first, and a fresh one.
    let stranger = app.add_staff("stranger", Role::Support, None).await;
    assert_eq!(
        stranger.code(app.clock.now()).await.code(),
        "sign_in_expired"
    );
    stranger.sign_in_with(&stranger.one_time_password).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(
        stranger.code(app.clock.now()).await.code(),
        "sign_in_expired"
    );
}

#[tokio::test]
async fn wrong_attempts_lock_out_the_username_and_the_client_address() {
    let app = spawn_app_with(|c| {
        c.throttle.staff_failures_per_account = 3;
        c.throttle.staff_failures_per_client = 8;
    })
    .await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    sam.post("/api/staff/sign-out", json!({})).await;
    // 3 wrong attempts are free; the 4th locks the username out.
    for _ in 0..4 {
        assert_eq!(
            sam.sign_in_with("a wrong password here").await.code(),
            "sign_in_failed"
        );
    }
    let locked = sam.sign_in_with(STAFF_PASSWORD).await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert_eq!(locked.header("retry-after"), "900");
    assert!(
        locked.json()["message"]
            .as_str()
            .unwrap()
            .contains("Wait 15 minutes"),
        "{}",
        locked.json()
    );

    // A name that is no account's is locked out the same way: lock-outs tell nothing either.
    let ghost = app.add_staff("ghost", Role::Support, None).await;
    sqlx::query("DELETE FROM staff_accounts WHERE username = 'ghost'")
        .execute(app.db())
        .await
        .unwrap();
    for _ in 0..4 {
        assert_eq!(
            ghost.sign_in_with("a wrong password here").await.code(),
            "sign_in_failed"
        );
    }
    let ghost_locked = ghost.sign_in_with("a wrong password here").await;
    assert_eq!(ghost_locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ghost_locked.body, locked.body);

    // Once the lock-out is over the right password works again.
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        sam.sign_in_with(STAFF_PASSWORD).await.json(),
        json!({"next": "second_factor"})
    );
    // The client address has sent 8 wrong attempts: one more locks it out for every name.
    assert_eq!(
        ghost.sign_in_with("a wrong password here").await.code(),
        "sign_in_failed"
    );
    assert_eq!(sam.sign_in_with(STAFF_PASSWORD).await.code(), "throttled");

    // The operator's release (as `throttle release --client`) lets them in again.
    let mut conn = app.db().acquire().await.unwrap();
    unlock_server::throttle::release(&mut conn, "127.0.0.1")
        .await
        .unwrap();
    drop(conn);
    assert_eq!(
        sam.sign_in_with(STAFF_PASSWORD).await.json(),
        json!({"next": "second_factor"})
    );
    let locked_out: Vec<String> = audit_outcomes(&app, "staff.sign_in")
        .await
        .into_iter()
        .filter(|(_, outcome)| outcome == "locked_out")
        .map(|(actor, _)| actor)
        .collect();
    assert_eq!(locked_out, ["staff:sam", "unknown", "staff:sam"]);
}

#[tokio::test]
async fn sessions_end_when_idle_when_old_and_at_sign_out() {
    let app = spawn_app().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;

    // Activity keeps the session; the page's own refreshes do not.
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(sam.get("/api/staff/me").await.status, StatusCode::OK);
    app.clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(
        sam.get_in_background("/api/staff/overview").await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_secs(6 * 60));
    let idle = sam.get_in_background("/api/staff/overview").await;
    assert_eq!(
        (idle.status, idle.code()),
        (StatusCode::UNAUTHORIZED, "session_expired".into())
    );
    assert_eq!(sam.get("/api/staff/me").await.code(), "session_expired");

    // However busy, a session ends 8 hours after signing in.
    app.clock.advance(Duration::from_secs(30));
    sam.sign_in_with(STAFF_PASSWORD).await;
    assert_eq!(sam.code(app.clock.now()).await.json()["next"], "signed_in");
    for _ in 0..(8 * 6 - 1) {
        app.clock.advance(Duration::from_secs(10 * 60));
        assert_eq!(sam.get("/api/staff/me").await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(sam.get("/api/staff/me").await.code(), "session_expired");

    // Signing out ends it at once, and the browser forgets the cookie.
    sam.sign_in_with(STAFF_PASSWORD).await;
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(sam.code(app.clock.now()).await.json()["next"], "signed_in");
    let out = sam.post("/api/staff/sign-out", json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(sam.get("/api/staff/me").await.code(), "not_signed_in");

    let ends: Vec<String> = audit_outcomes(&app, "staff.session_end")
        .await
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    assert_eq!(ends, ["idle", "expired"]);
    assert_eq!(audit_outcomes(&app, "staff.sign_out").await.len(), 1);
}

#[tokio::test]
async fn a_reset_or_disabled_account_is_signed_out_everywhere() {
    let app = spawn_app().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    let state = &app.server().state;
    let name = unlock_protocol::staff::StaffUsername::parse("sam").unwrap();
    let enrolment = unlock_server::staff::accounts::reset(
        &state.db,
        &app.clock,
        &app.config,
        &state.passwords,
        &name,
    )
    .await
    .unwrap();
    assert_eq!(sam.get("/api/staff/me").await.code(), "session_expired");
    // The old password and authenticator are gone; the new ones start first sign-in again.
    assert_eq!(
        sam.sign_in_with(STAFF_PASSWORD).await.code(),
        "sign_in_failed"
    );
    assert_eq!(
        sam.sign_in_with(&enrolment.one_time_password).await.json()["next"],
        "second_factor"
    );
    let totp = totp_rs::Totp::from_url(&enrolment.otpauth_uri).unwrap();
    let code = totp
        .generate(u64::try_from(app.clock.now() / 1000).unwrap())
        .to_string();
    let coded = sam
        .post("/api/staff/sign-in/code", json!({"code": code}))
        .await;
    assert_eq!(coded.json(), json!({"next": "new_password"}));
    assert_eq!(
        sam.new_password("another long passphrase").await.json()["next"],
        "signed_in"
    );

    unlock_server::staff::accounts::disable(&state.db, &app.clock, &name)
        .await
        .unwrap();
    assert_eq!(sam.get("/api/staff/me").await.code(), "session_expired");

    // A reset does not bring a disabled account back.
    let refused = unlock_server::staff::accounts::reset(
        &state.db,
        &app.clock,
        &app.config,
        &state.passwords,
        &name,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{refused:#}").contains("sam is disabled"),
        "{refused:#}"
    );
    assert_eq!(
        sam.sign_in_with("another long passphrase").await.code(),
        "sign_in_failed"
    );
}

#[tokio::test]
async fn sessions_nobody_can_use_any_more_are_forgotten() {
    let app = spawn_app().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    let abandoned = app.add_staff("abandoned", Role::Support, None).await;
    abandoned.sign_in_with(&abandoned.one_time_password).await;
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM staff_sessions")
            .fetch_one(app.db())
            .await
            .unwrap()
    };
    assert_eq!(sessions().await, 2);
    app.clock.advance(Duration::from_secs(16 * 60));
    sam.sign_in_with(STAFF_PASSWORD).await;
    // Sam's idle session and the abandoned half sign-in are gone; the new one is there.
    assert_eq!(sessions().await, 1);
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_is_counted_before_any_is_weighed() {
    let app = spawn_app_with(|c| {
        c.throttle.staff_failures_per_account = 3;
        c.throttle.staff_failures_per_client = 100;
        // Slow enough that the whole burst arrives before the first check ends.
        c.staff.argon2_memory_kib = 8 * 1024;
        c.staff.argon2_iterations = 2;
    })
    .await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    sam.post("/api/staff/sign-out", json!({})).await;
    let answers =
        futures_util::future::join_all((0..20).map(|_| sam.sign_in_with("a wrong password here")))
            .await;
    let mut codes: Vec<String> = answers.iter().map(Reply::code).collect();
    codes.sort();
    // The 3 free attempts and the one that runs over are weighed; the other 16 are refused
    // unweighed, whatever order they arrived in.
    let weighed = codes
        .iter()
        .filter(|code| *code == "sign_in_failed")
        .count();
    let refused = codes.iter().filter(|code| *code == "throttled").count();
    assert_eq!((weighed, refused), (4, 16), "{codes:?}");
    // The right password is refused too now, without being weighed.
    assert_eq!(sam.sign_in_with(STAFF_PASSWORD).await.code(), "throttled");
}

#[tokio::test]
async fn a_right_password_does_not_count_against_the_username() {
    let app = spawn_app_with(|c| c.throttle.staff_failures_per_account = 2).await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    sam.post("/api/staff/sign-out", json!({})).await;
    // Counted before each check, taken back when the password was right: right sign-ins
    // between the wrong ones never add up to a lock-out (two wrong ones are free).
    for _ in 0..2 {
        assert_eq!(
            sam.sign_in_with("a wrong password here").await.code(),
            "sign_in_failed"
        );
        let begun = sam.sign_in_with(STAFF_PASSWORD).await;
        assert_eq!(
            begun.json(),
            json!({"next": "second_factor"}),
            "{}",
            begun.json()
        );
    }
}

#[tokio::test]
async fn sign_ins_past_the_argon2_slots_are_told_to_wait_instead_of_queueing() {
    let app = spawn_app_with(|c| {
        c.staff.argon2_concurrency = Some(1);
        c.staff.argon2_wait_ms = 20;
        c.staff.argon2_memory_kib = 16 * 1024;
        c.staff.argon2_iterations = 8;
        c.throttle.staff_failures_per_account = 100;
        c.throttle.staff_failures_per_client = 100;
    })
    .await;
    let client = reqwest::Client::new();
    let sign_in = |n: usize| {
        let request = client
            .post(app.url("/api/staff/sign-in"))
            .json(&json!({"username": format!("nobody{n}"), "password": "a wrong password here"}));
        async move { read(request.send().await.unwrap()).await }
    };
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..12).map(sign_in)).await;
    let took = started.elapsed();
    let mut seen: Vec<(u16, String)> = answers
        .iter()
        .map(|a| (a.status.as_u16(), a.code()))
        .collect();
    seen.sort();
    assert!(
        seen.iter()
            .all(|seen| *seen == (401, "sign_in_failed".into())
                || *seen == (503, "unavailable".into())),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(status, _)| *status == 503),
        "nothing was turned away: {seen:?}"
    );
    assert!(seen.iter().any(|(status, _)| *status == 401), "{seen:?}");
    let busy = answers
        .iter()
        .find(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .unwrap();
    assert!(
        busy.json()["message"]
            .as_str()
            .unwrap()
            .contains("Wait a moment"),
        "{}",
        busy.json()
    );
    assert_documented(&app, "POST", "/api/staff/sign-in", busy).await;
    // Turned away after the slot wait, not after the whole queue.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test]
async fn the_session_gets_a_new_token_once_the_second_factor_is_done() {
    let app = spawn_app().await;
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    sam.post("/api/staff/sign-out", json!({})).await;
    let begun = sam.sign_in_with(STAFF_PASSWORD).await;
    let cookie = |reply: &Reply| {
        reply
            .header("set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let first = cookie(&begun);
    assert!(first.starts_with("unlock_staff="), "{first}");
    // The next time step: each step's code is taken once.
    app.clock.advance(Duration::from_secs(30));
    let coded = sam.code(app.clock.now()).await;
    assert_eq!(coded.json()["next"], "signed_in", "{}", coded.json());
    let second = cookie(&coded);
    assert!(second.starts_with("unlock_staff="), "{second}");
    assert_ne!(first, second);
    // The token from before the second factor is worth nothing now; the new one works.
    let me = |cookie: String| {
        let request = reqwest::Client::new()
            .get(app.url("/api/staff/me"))
            .header("cookie", cookie);
        async move { read(request.send().await.unwrap()).await }
    };
    assert_eq!(me(first).await.code(), "session_expired");
    assert_eq!(me(second).await.status, StatusCode::OK);
    assert_eq!(sam.get("/api/staff/me").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_signed_in_staff_member_changes_their_password_checked_for_strength() {
    let app = spawn_app().await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    // Rita is also signed in on another computer.
    app.clock.advance(Duration::from_secs(30));
    let elsewhere = rita.in_new_browser();
    assert_eq!(
        elsewhere.sign_in_with(STAFF_PASSWORD).await.json()["next"],
        "second_factor"
    );
    assert_eq!(
        elsewhere.code(app.clock.now()).await.json()["next"],
        "signed_in"
    );
    let change = |current: &str, new: &str| {
        rita.post(
            "/api/staff/password",
            json!({"current_password": current, "new_password": new}),
        )
    };

    let wrong = change("not my password at all", "heron marble violin kettle").await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "sign_in_failed".into())
    );
    // Refused by the estimator, though the policy lets it through.
    let guessable = change(STAFF_PASSWORD, "jennifer19841984").await;
    assert_eq!(
        guessable.code(),
        "password_rejected",
        "{}",
        guessable.json()
    );
    assert!(
        guessable.json()["message"]
            .as_str()
            .unwrap()
            .contains("too easy to guess"),
        "{}",
        guessable.json()
    );
    assert_eq!(
        change(STAFF_PASSWORD, STAFF_PASSWORD).await.code(),
        "password_rejected"
    );

    let changed = change(STAFF_PASSWORD, "heron marble violin kettle").await;
    assert_eq!(
        changed.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&changed.body)
    );
    // This session carries on; the other one has ended.
    assert_eq!(rita.get("/api/staff/me").await.status, StatusCode::OK);
    assert_eq!(
        elsewhere.get("/api/staff/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Only the new password signs in now.
    let fresh = rita.in_new_browser();
    assert_eq!(
        fresh.sign_in_with(STAFF_PASSWORD).await.code(),
        "sign_in_failed"
    );
    assert_eq!(
        fresh
            .sign_in_with("heron marble violin kettle")
            .await
            .json()["next"],
        "second_factor"
    );
    let outcomes = app.audit("staff.password_change").await;
    assert_eq!(
        outcomes,
        [
            "done",
            "failed",
            "password_rejected",
            "password_rejected",
            "done"
        ]
    );
}

#[tokio::test]
async fn after_the_work_factor_is_raised_an_old_hash_costs_what_an_unknown_name_costs() {
    let mut app = spawn_app_with(|c| {
        c.staff.argon2_memory_kib = 8 * 1024;
        c.staff.argon2_iterations = 1;
        c.throttle.staff_failures_per_account = 1000;
        c.throttle.staff_failures_per_client = 1000;
    })
    .await;
    // Sam's password is hashed at one pass; then the operator raises the factor to four.
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    app.config.staff.argon2_iterations = 4;
    let raised = app.second_instance().await;
    let url = format!("http://{}/api/staff/sign-in", raised.addr);
    let attempt = |username: &'static str| {
        let (client, url) = (sam.client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let reply = client
                .post(url)
                .json(&json!({"username": username, "password": "not the password at all"}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
            started.elapsed()
        }
    };
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for _ in 0..11 {
        known_times.push(attempt("sam").await);
        unknown_times.push(attempt("nobody").await);
    }
    let (known_median, unknown_median) = (median(known_times), median(unknown_times));
    let ratio = unknown_median.as_secs_f64() / known_median.as_secs_f64();
    // Unpadded, the old hash would take about a quarter of the time.
    assert!(
        (0.6..1.6).contains(&ratio),
        "unknown {unknown_median:?} against an old hash {known_median:?}"
    );
}
