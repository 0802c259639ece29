//! The native-messaging host between the browser extension and the card reader.

pub mod framing;
