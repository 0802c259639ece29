//! `unlock-server staff ...`: accounts for support and Registration Authority staff.

use unlock_protocol::HolderId;
use unlock_protocol::staff::{Role, StaffUsername};

use super::StaffCommand;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::staff::accounts::{self, Enrolment, Passwords};

pub async fn run(
    db: &Db,
    clock: &Clock,
    config: &Config,
    command: StaffCommand,
) -> anyhow::Result<()> {
    match command {
        StaffCommand::Add {
            username,
            role,
            holder,
            json,
        } => {
            let username = StaffUsername::parse(&username)?;
            let role = Role::from_name(&role).ok_or_else(|| {
                anyhow::anyhow!("the role must be support, ra or ra-manager, not {role:?}")
            })?;
            let holder = holder.as_deref().map(HolderId::parse).transpose()?;
            let passwords = Passwords::new(&config.staff).await?;
            let enrolment = accounts::add(
                db,
                clock,
                config,
                &passwords,
                &username,
                role,
                holder.as_ref(),
            )
            .await?;
            print_enrolment(config, &enrolment, "created", json);
        }
        StaffCommand::Reset { username, json } => {
            let username = StaffUsername::parse(&username)?;
            let passwords = Passwords::new(&config.staff).await?;
            let enrolment = accounts::reset(db, clock, config, &passwords, &username).await?;
            print_enrolment(config, &enrolment, "reset (its sessions have ended)", json);
        }
        StaffCommand::Disable { username } => {
            let username = StaffUsername::parse(&username)?;
            accounts::disable(db, clock, &username).await?;
            println!("{username}: disabled (its sessions have ended)");
        }
        StaffCommand::List => {
            for account in accounts::list(db).await? {
                let state = if account.disabled_at.is_some() {
                    "disabled"
                } else if account.must_change_password {
                    "not signed in yet"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{state}",
                    account.username,
                    account.role,
                    account.holder_id.as_deref().unwrap_or("-"),
                );
            }
        }
    }
    Ok(())
}

/// What the operator passes on to the staff member, privately and once: for a person to
/// read (with the QR code), or as JSON for a script.
fn print_enrolment(config: &Config, enrolment: &Enrolment, what: &str, json: bool) {
    if json {
        let line = serde_json::json!({
            "username": enrolment.username,
            "role": enrolment.role,
            "one_time_password": enrolment.one_time_password,
            "otpauth_uri": enrolment.otpauth_uri,
            "key": enrolment.key,
        });
        println!("{line}");
        return;
    }
    println!(
        "Staff account {} ({}) {what}.\n\n\
         Give these to them privately. They are shown once and not stored in the clear.\n\n\
         One-time password (they choose their own when they first sign in):\n\n    {}\n\n\
         Authenticator app: scan this QR code, or type the key by hand.\n\n{}\n\
         Key: {}\n\
         Address: {}\n\n\
         They sign in at {}/status",
        enrolment.username,
        enrolment.role.label(),
        enrolment.one_time_password,
        enrolment.qr_code,
        enrolment.key,
        enrolment.otpauth_uri,
        config.public_url.trim_end_matches('/'),
    );
}
