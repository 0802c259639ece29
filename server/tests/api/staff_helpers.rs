//! Staff members for the tests: accounts created as `unlock-server staff add` creates them,
//! signed in through the real endpoints with codes computed from their authenticator
//! enrolment (the otpauth address an authenticator app reads), each with a browser of their own.

use serde_json::{Value, json};
use unlock_protocol::staff::{Role, StaffUsername};
use unlock_server::staff::accounts;

use crate::helpers::*;

/// The password every test staff member chooses at first sign-in.
pub const STAFF_PASSWORD: &str = "a long staff passphrase";

/// A staff member and their browser.
pub struct StaffMember {
    pub username: String,
    pub one_time_password: String,
    pub totp: totp_rs::Totp,
    pub client: reqwest::Client,
    base: String,
}

impl StaffMember {
    pub async fn get(&self, path: &str) -> Reply {
        read(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// A request the page makes by itself (the overview's refresh).
    pub async fn get_in_background(&self, path: &str) -> Reply {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .header("x-unlock-background", "1");
        read(request.send().await.expect("send")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let request = self.client.post(format!("{}{path}", self.base)).json(&body);
        read(request.send().await.expect("send")).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        read(
            self.client
                .delete(format!("{}{path}", self.base))
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// The code the authenticator app shows at `at` (milliseconds).
    pub fn code_at(&self, at: i64) -> String {
        self.totp
            .generate(u64::try_from(at / 1000).unwrap())
            .to_string()
    }

    /// The first sign-in step.
    pub async fn sign_in_with(&self, password: &str) -> Reply {
        self.post(
            "/api/staff/sign-in",
            json!({"username": self.username, "password": password}),
        )
        .await
    }

    /// The second step, with the code shown at `at`.
    pub async fn code(&self, at: i64) -> Reply {
        self.post("/api/staff/sign-in/code", json!({"code": self.code_at(at)}))
            .await
    }

    /// The same staff member, in the same browser, talking to another instance.
    pub fn on(&self, server: &unlock_server::Server) -> StaffMember {
        StaffMember {
            username: self.username.clone(),
            one_time_password: self.one_time_password.clone(),
            totp: self.totp.clone(),
            client: self.client.clone(),
            base: format!("http://{}", server.addr),
        }
    }

    /// The same staff member in another browser (no session yet).
    pub fn in_new_browser(&self) -> StaffMember {
        StaffMember {
            username: self.username.clone(),
            one_time_password: self.one_time_password.clone(),
            totp: self.totp.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("HTTP client"),
            base: self.base.clone(),
        }
    }

    pub async fn new_password(&self, password: &str) -> Reply {
        self.post(
            "/api/staff/sign-in/new-password",
            json!({"password": password}),
        )
        .await
    }
}

impl TestApp {
    /// An account as `staff add` creates it, not signed in yet.
    pub async fn add_staff(&self, username: &str, role: Role, holder: Option<&str>) -> StaffMember {
        let state = &self.server().state;
        let holder = holder.map(|id| unlock_protocol::HolderId::parse(id).unwrap());
        // Their own profile, as `staff add --holder` needs it to exist.
        if let Some(id) = &holder {
            sqlx::query(
                "INSERT INTO holders (id, created_at) VALUES ($1, 0) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .execute(state.db.pool())
            .await
            .expect("add the staff member's own profile");
        }
        let enrolment = accounts::add(
            &state.db,
            &self.clock,
            &self.config,
            &state.passwords,
            &StaffUsername::parse(username).unwrap(),
            role,
            holder.as_ref(),
        )
        .await
        .expect("add the staff account");
        StaffMember {
            username: username.to_owned(),
            one_time_password: enrolment.one_time_password,
            totp: totp_rs::Totp::from_url(&enrolment.otpauth_uri).expect("an authenticator URI"),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("HTTP client"),
            base: self.url(""),
        }
    }

    /// A staff member through first sign-in (one-time password, code, new password).
    pub async fn signed_in_staff(
        &self,
        username: &str,
        role: Role,
        holder: Option<&str>,
    ) -> StaffMember {
        let member = self.add_staff(username, role, holder).await;
        let begun = member.sign_in_with(&member.one_time_password).await;
        assert_eq!(
            begun.json(),
            json!({"next": "second_factor"}),
            "{}",
            begun.json()
        );
        let coded = member.code(self.clock.now()).await;
        assert_eq!(
            coded.json(),
            json!({"next": "new_password"}),
            "{}",
            coded.json()
        );
        let done = member.new_password(STAFF_PASSWORD).await;
        assert_eq!(done.json()["next"], "signed_in", "{}", done.json());
        member
    }
}
