//! PC/SC failures as the bridge protocol's distinct error codes.

use unlock_protocol::bridge::{BridgeError, ErrorCode};

/// The protocol error for a PC/SC failure. Card states are values here, not mysteries: each
/// one the page can explain gets its own code.
pub fn from_pcsc(error: pcsc::Error) -> BridgeError {
    tracing::debug!(?error, "PC/SC said");
    let code = match error {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => ErrorCode::PcscUnavailable,
        pcsc::Error::NoReadersAvailable
        | pcsc::Error::UnknownReader
        | pcsc::Error::ReaderUnavailable
        | pcsc::Error::ReaderUnsupported => ErrorCode::NoReader,
        pcsc::Error::NoSmartcard => ErrorCode::NoCard,
        pcsc::Error::RemovedCard => ErrorCode::CardRemoved,
        pcsc::Error::ResetCard => ErrorCode::CardReset,
        pcsc::Error::SharingViolation => ErrorCode::CardInUse,
        pcsc::Error::Timeout => ErrorCode::Timeout,
        pcsc::Error::Cancelled | pcsc::Error::SystemCancelled => ErrorCode::Cancelled,
        pcsc::Error::UnsupportedCard
        | pcsc::Error::UnresponsiveCard
        | pcsc::Error::UnpoweredCard
        | pcsc::Error::CardUnsupported
        | pcsc::Error::ProtoMismatch => ErrorCode::UnsupportedCard,
        _ => ErrorCode::Internal,
    };
    BridgeError::new(code)
}

/// A protocol error with its default sentence.
pub fn fail(code: ErrorCode) -> BridgeError {
    BridgeError::new(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_card_state_gets_its_own_code() {
        let cases = [
            (pcsc::Error::NoService, ErrorCode::PcscUnavailable),
            (pcsc::Error::UnknownReader, ErrorCode::NoReader),
            (pcsc::Error::NoSmartcard, ErrorCode::NoCard),
            (pcsc::Error::RemovedCard, ErrorCode::CardRemoved),
            (pcsc::Error::ResetCard, ErrorCode::CardReset),
            (pcsc::Error::SharingViolation, ErrorCode::CardInUse),
            (pcsc::Error::Timeout, ErrorCode::Timeout),
            (pcsc::Error::Cancelled, ErrorCode::Cancelled),
            (pcsc::Error::UnresponsiveCard, ErrorCode::UnsupportedCard),
            (pcsc::Error::InternalError, ErrorCode::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(from_pcsc(error).code, code, "{error:?}");
        }
    }
}
