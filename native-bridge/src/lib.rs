//! The native-messaging host between the browser extension and the card reader.

pub mod card_access;
pub mod config;
pub mod diagnose;
pub mod errors;
pub mod framing;
pub mod host;
pub mod install;
pub mod profile;
pub mod request;
pub mod service;
pub mod watch;
