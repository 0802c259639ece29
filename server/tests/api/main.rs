//! Integration tests of the real server: real router on port 0, a fresh SQLite file per
//! test, a real SMTP server (aiosmtpd) and a real SMPP message centre (npm `smpp`) on
//! loopback, and the real binary where logs or the command line are under test.

mod app;
mod audit_archive;
mod backup;
mod bad_input;
mod binary;
mod card;
mod code_budget;
mod device_cookie;
mod faults;
mod fleet;
mod fleet_outbox;
mod floods;
mod helpers;
mod hsm;
mod journey;
mod mail_check;
mod metrics;
mod openapi;
mod operations_guide;
mod outbox;
mod overload;
mod piv;
mod piv_binary;
mod ra_unlock;
mod retention;
mod schema;
mod sms;
mod staff_actions;
mod staff_binary;
mod staff_helpers;
mod staff_roles;
mod staff_sign_in;
mod staff_status;
mod throttles;
