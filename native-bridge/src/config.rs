//! The host's settings: a TOML file beside the binary (and, on Windows, registry values an
//! administrator can set by policy).

/// The native-messaging host's name, as the extension's `connectNative` and the browsers'
/// manifest files spell it.
pub const HOST_NAME: &str = "uk.nhs.smartcard_unlock";

/// The id of the extension in `native-bridge/extension/`, fixed by the public key in its
/// `manifest.json`. A deploying organisation that signs its own build lists its id in the
/// config file instead.
pub const DEFAULT_EXTENSION_ID: &str = "ooiaefjbcbkkddillkmdbldfflinfgki";
