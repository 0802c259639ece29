//! Every staff endpoint checks the role on the server: for each, the roles that may get
//! their answer, the others `403 forbidden` (audited), and nobody signed in `401`. Nobody
//! acts on their own profile.

use reqwest::StatusCode;
use serde_json::{Value, json};
use unlock_protocol::staff::Role;

use crate::helpers::*;
use crate::staff_helpers::*;

const RA_HOLDER: &str = "999988887777";
const MANAGER_HOLDER: &str = "999988886666";

/// One endpoint: how each role calls it, and which roles may.
struct Endpoint {
    method: &'static str,
    path: fn(Role) -> String,
    body: fn(Role) -> Option<Value>,
    allowed: &'static [Role],
}

const EVERYONE: &[Role] = &[Role::Support, Role::Ra, Role::RaManager];
const RA_STAFF: &[Role] = &[Role::Ra, Role::RaManager];
const MANAGERS: &[Role] = &[Role::RaManager];

fn no_body(_: Role) -> Option<Value> {
    None
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            method: "GET",
            path: |_| "/api/staff/me".into(),
            body: no_body,
            allowed: EVERYONE,
        },
        Endpoint {
            method: "GET",
            path: |_| "/api/staff/overview".into(),
            body: no_body,
            allowed: EVERYONE,
        },
        Endpoint {
            method: "GET",
            path: |_| format!("/api/staff/holders?q={HOLDER}"),
            body: no_body,
            allowed: EVERYONE,
        },
        Endpoint {
            method: "GET",
            path: |_| format!("/api/staff/holders/{HOLDER}"),
            body: no_body,
            allowed: EVERYONE,
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/api/staff/holders/{HOLDER}/emails"),
            body: |role| Some(json!({"email": format!("added.by.{role}@trust.example")})),
            allowed: RA_STAFF,
        },
        Endpoint {
            method: "DELETE",
            path: |role| {
                format!("/api/staff/holders/{HOLDER}/emails/added.by.{role}@trust.example")
            },
            body: no_body,
            allowed: RA_STAFF,
        },
        Endpoint {
            method: "POST",
            path: |_| format!("/api/staff/holders/{HOLDER}/unlock-code"),
            body: |_| Some(json!({"verified_how": "known_to_ra", "note": "Known to me."})),
            allowed: RA_STAFF,
        },
        Endpoint {
            method: "POST",
            path: |_| "/api/staff/throttles/release".into(),
            body: |_| Some(json!({"target": {"holder": HOLDER}})),
            allowed: RA_STAFF,
        },
        Endpoint {
            method: "GET",
            path: |_| "/api/staff/allowlist".into(),
            body: no_body,
            allowed: EVERYONE,
        },
        Endpoint {
            method: "POST",
            path: |_| "/api/staff/allowlist".into(),
            body: |role| Some(json!({"domain": format!("{role}.example")})),
            allowed: MANAGERS,
        },
        Endpoint {
            method: "DELETE",
            path: |role| format!("/api/staff/allowlist/{role}.example"),
            body: no_body,
            allowed: MANAGERS,
        },
        Endpoint {
            method: "GET",
            path: |_| "/api/staff/reports/organisations.csv?from=2026-11-01&to=2026-11-30".into(),
            body: no_body,
            allowed: MANAGERS,
        },
        Endpoint {
            method: "GET",
            path: |_| "/api/staff/audit".into(),
            body: no_body,
            allowed: EVERYONE,
        },
    ]
}

async fn call(member: &StaffMember, endpoint: &Endpoint, role: Role) -> Reply {
    let path = (endpoint.path)(role);
    match (endpoint.method, (endpoint.body)(role)) {
        ("GET", _) => member.get(&path).await,
        ("DELETE", _) => member.delete(&path).await,
        (_, body) => member.post(&path, body.unwrap_or_else(|| json!({}))).await,
    }
}

#[tokio::test]
async fn every_staff_endpoint_checks_the_role_on_the_server() {
    let app = spawn_app().await;
    let staff = [
        (
            Role::Support,
            app.signed_in_staff("sam", Role::Support, None).await,
        ),
        (
            Role::Ra,
            app.signed_in_staff("rita", Role::Ra, Some(RA_HOLDER)).await,
        ),
        (
            Role::RaManager,
            app.signed_in_staff("max", Role::RaManager, Some(MANAGER_HOLDER))
                .await,
        ),
    ];
    let nobody = app.add_staff("nobody", Role::Support, None).await;
    let mut refused = 0;
    for endpoint in endpoints() {
        let what = format!("{} {}", endpoint.method, (endpoint.path)(Role::Support));
        let anonymous = call(&nobody, &endpoint, Role::Support).await;
        assert_eq!(
            (anonymous.status, anonymous.code()),
            (StatusCode::UNAUTHORIZED, "not_signed_in".into()),
            "{what} without signing in"
        );
        for (role, member) in &staff {
            let reply = call(member, &endpoint, *role).await;
            if endpoint.allowed.contains(role) {
                assert!(
                    reply.status.is_success(),
                    "{what} as {role}: {} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                );
            } else {
                assert_eq!(
                    (reply.status, reply.code()),
                    (StatusCode::FORBIDDEN, "forbidden".into()),
                    "{what} as {role}"
                );
                assert_eq!(reply.json()["message"], "Your role does not allow this.");
                refused += 1;
            }
        }
    }
    // Each refusal is on the record, with who tried.
    let forbidden: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM audit_events WHERE outcome = 'forbidden' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(forbidden.len(), refused);
    assert!(
        forbidden
            .iter()
            .all(|actor| actor == "staff:sam" || actor == "staff:rita")
    );
}

#[tokio::test]
async fn nobody_acts_on_their_own_profile() {
    let app = spawn_app().await;
    // Rita's own smartcard profile is the test holder's.
    let rita = app.signed_in_staff("rita", Role::Ra, Some(HOLDER)).await;
    let max = app
        .signed_in_staff("max", Role::RaManager, Some(HOLDER))
        .await;
    for member in [&rita, &max] {
        let own = member.get(&format!("/api/staff/holders/{HOLDER}")).await;
        assert_eq!(own.status, StatusCode::OK);
        assert_eq!(own.json()["own_profile"], true);
        let refusals = [
            member
                .post(
                    &format!("/api/staff/holders/{HOLDER}/emails"),
                    json!({"email": "second@trust.example"}),
                )
                .await,
            member
                .delete(&format!("/api/staff/holders/{HOLDER}/emails/{EMAIL}"))
                .await,
            member
                .post(
                    "/api/staff/throttles/release",
                    json!({"target": {"holder": HOLDER}}),
                )
                .await,
            member
                .post(
                    &format!("/api/staff/holders/{HOLDER}/unlock-code"),
                    json!({"verified_how": "known_to_ra", "note": "It is me."}),
                )
                .await,
        ];
        for refused in refusals {
            assert_eq!(
                (refused.status, refused.code()),
                (StatusCode::FORBIDDEN, "own_profile".into())
            );
            assert!(
                refused.json()["message"]
                    .as_str()
                    .unwrap()
                    .contains("Ask a colleague")
            );
        }
    }
    // The profile is unchanged, and each attempt is audited against it.
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email FROM holder_emails WHERE holder_id = $1")
            .bind(HOLDER)
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(emails, [EMAIL]);
    let audited: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, action, holder_id FROM audit_events WHERE outcome = 'own_profile' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(audited.len(), 8);
    assert!(audited.iter().all(|(_, _, holder)| holder == HOLDER));
    assert_eq!(audited[0].1, "staff.email_add");
    assert_eq!(audited[1].1, "staff.email_remove");
    assert_eq!(audited[2].1, "staff.throttle_release");
    assert_eq!(audited[3].1, "staff.unlock_code_issue");

    // Someone else's profile is fine.
    let other = "555566667777";
    add_holder(app.server(), other, "other@trust.example", None).await;
    let added = rita
        .post(
            &format!("/api/staff/holders/{other}/emails"),
            json!({"email": "other.two@trust.example"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.json());
}
