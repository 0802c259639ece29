//! Staff for the end-to-end tests: accounts made with the server's own `staff add`, their
//! first sign-in through the staff pages by keyboard, and the codes their authenticator app
//! would show (computed from the otpauth address the command printed, as the app reads it).

use crate::journey::Person;
use crate::service::Server;

/// The password each test staff member chooses at first sign-in.
pub const STAFF_PASSWORD: &str = "purple tractor river lamp";

/// What `staff add` handed over.
#[derive(Debug)]
pub struct StaffAccount {
    pub username: String,
    pub one_time_password: String,
    pub otpauth_uri: String,
}

impl StaffAccount {
    /// Runs `unlock-server staff add --json` and reads what it handed over.
    pub fn add(server: &Server, username: &str, role: &str, holder: &str) -> Self {
        let printed = server.cli(&[
            "staff", "add", username, "--role", role, "--holder", holder, "--json",
        ]);
        let handed: serde_json::Value =
            serde_json::from_str(printed.trim()).expect("staff add --json prints JSON");
        let field = |name: &str| {
            handed[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {handed}"))
                .to_owned()
        };
        Self {
            username: field("username"),
            one_time_password: field("one_time_password"),
            otpauth_uri: field("otpauth_uri"),
        }
    }

    /// The code the authenticator app shows now.
    pub fn code_now(&self) -> String {
        totp_rs::Totp::from_url(&self.otpauth_uri)
            .expect("the otpauth address parses as an authenticator app reads it")
            .generate_current()
            .to_string()
    }
}

/// From the staff sign-in page to the overview, the first time: the one-time password, the
/// authenticator's code, and a password of their own.
pub async fn first_sign_in(person: &mut Person, account: &StaffAccount) {
    person.sees_page("Sign in").await;
    person.types_into("Username", &account.username).await;
    person
        .types_into("Password", &account.one_time_password)
        .await;
    person.presses("Continue").await;
    person
        .sees_page("Enter the code from your authenticator app")
        .await;
    person.types_into("Code", &account.code_now()).await;
    person.presses("Continue").await;
    person.sees_page("Choose a new password").await;
    person.types_into("New password", STAFF_PASSWORD).await;
    person
        .types_into("Confirm new password", STAFF_PASSWORD)
        .await;
    person.presses("Save password").await;
    person.sees_page("Overview").await;
}
