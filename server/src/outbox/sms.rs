//! Delivery of one text message: SMPP 3.4 to the operator's SMS gateway (`rusmppc`), over
//! one bound transceiver session per instance, opened when the first text is due and opened
//! again after the gateway drops it. Delivery receipts come back on the same session and are
//! recorded on the message they name, whichever instance sent it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rusmpp::pdus::{BindTransceiver, DeliverSm, DeliverSmResp, SubmitSm};
use rusmpp::tlvs::TlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, MessageState, MessageType, Npi, RegisteredDelivery,
    ServiceType, Ton,
};
use rusmpp::{CommandStatus, Pdu};
use rusmppc::{Client, ConnectionBuilder, Event};
use tokio::sync::Mutex;

use super::mailer::SendError;
use crate::clock::Clock;
use crate::config::SmsConfig;
use crate::db::states::ReceiptState;
use crate::db::{self, Db};

/// The SMS gateway of one server instance.
#[derive(Clone)]
pub struct SmsGateway {
    config: Arc<SmsConfig>,
    session: Arc<Mutex<Option<Client>>>,
    db: Db,
    clock: Clock,
}

impl std::fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsGateway")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .finish_non_exhaustive()
    }
}

impl SmsGateway {
    /// The gateway the configuration names, if it names one; nothing connects until a text
    /// is due.
    pub fn from_config(config: &SmsConfig, db: Db, clock: Clock) -> Option<Self> {
        config.host.is_some().then(|| Self {
            config: Arc::new(config.clone()),
            session: Arc::new(Mutex::new(None)),
            db,
            clock,
        })
    }

    /// Sends `text` to `number` (E.164), giving up after `timeout` whatever the gateway is
    /// doing; the gateway's id for the message.
    pub async fn send(&self, number: &str, text: &str) -> Result<String, SendError> {
        let timeout = Duration::from_secs(self.config.send_timeout_seconds);
        let sent = tokio::time::timeout(timeout, self.submit(number, text, timeout)).await;
        let sent = sent.unwrap_or_else(|_| {
            Err(SendError {
                permanent: false,
                detail: format!(
                    "no answer from the SMS gateway within {} s",
                    timeout.as_secs()
                ),
            })
        });
        if sent.as_ref().is_err_and(|error| !error.permanent) {
            // Whatever went wrong, the next attempt starts on a fresh session.
            if let Some(client) = self.session.lock().await.take() {
                let _ = client.close().await;
            }
        }
        sent
    }

    async fn submit(
        &self,
        number: &str,
        text: &str,
        timeout: Duration,
    ) -> Result<String, SendError> {
        let submit = submit_sm(&self.config, number, text)?;
        let client = self.client(timeout).await?;
        match client.submit_sm(submit).await {
            Ok(response) => Ok(response.message_id().as_str().to_owned()),
            Err(rusmppc::error::Error::UnexpectedResponse { response }) => {
                let status = response.status();
                Err(SendError {
                    permanent: !retryable(status),
                    detail: format!("the SMS gateway refused the message: {status:?}"),
                })
            }
            Err(error) => Err(transient(&error)),
        }
    }

    /// The bound session, opened (connect, bind as a transceiver) if there is none.
    async fn client(&self, timeout: Duration) -> Result<Client, SendError> {
        let mut session = self.session.lock().await;
        if let Some(client) = session.as_ref().filter(|client| client.is_active()) {
            return Ok(client.clone());
        }
        let host = self.config.host.as_deref().unwrap_or_default();
        let stream = tokio::net::TcpStream::connect((host, self.config.port))
            .await
            .map_err(|error| SendError {
                permanent: false,
                detail: format!(
                    "connect to the SMS gateway {host}:{}: {error}",
                    self.config.port
                ),
            })?;
        let _ = stream.set_nodelay(true);
        let (client, events) = ConnectionBuilder::new()
            .response_timeout(timeout)
            // SMPP 3.4 gateways: rusmppc speaks 5.0's superset and would refuse them.
            .disable_interface_version_check()
            .connected(stream);
        let bind = bind_transceiver(&self.config)?;
        if let Err(error) = client.bind_transceiver(bind).await {
            let _ = client.close().await;
            return Err(match error {
                rusmppc::error::Error::UnexpectedResponse { response } => SendError {
                    permanent: false,
                    detail: format!("the SMS gateway refused the bind: {:?}", response.status()),
                },
                error => transient(&error),
            });
        }
        tracing::info!(host, port = self.config.port, "sms: bound to the gateway");
        tokio::spawn(self.clone().take_receipts(client.clone(), events));
        *session = Some(client.clone());
        Ok(client)
    }

    /// Answers and records what the gateway sends on a session until it closes.
    async fn take_receipts(
        self,
        client: Client,
        mut events: impl futures_util::Stream<Item = Event> + Unpin,
    ) {
        while let Some(event) = events.next().await {
            let command = match event {
                Event::Incoming(command) => command,
                Event::Error(error) => {
                    tracing::warn!(error = %error, "sms: the gateway session failed");
                    continue;
                }
            };
            let sequence = command.sequence_number();
            let Some(Pdu::DeliverSm(deliver)) = command.pdu() else {
                continue;
            };
            let receipt = receipt_of(deliver);
            if let Some((gateway_id, state)) = &receipt {
                match self.record(gateway_id, *state).await {
                    Ok(true) => {
                        tracing::info!(gateway_id, state = state.as_str(), "sms: delivery receipt")
                    }
                    Ok(false) => tracing::warn!(gateway_id, "sms: receipt for a message not ours"),
                    Err(error) => {
                        // Not acknowledged: the gateway sends it again later.
                        tracing::error!(
                            error = format!("{error:#}"),
                            "sms: could not record a receipt"
                        );
                        continue;
                    }
                }
            }
            // Texts from phones (replies) and receipts alike are acknowledged, or the gateway
            // would keep resending them.
            let _ = client
                .deliver_sm_resp(sequence, DeliverSmResp::default())
                .await;
        }
        tracing::info!("sms: the gateway session closed");
    }

    async fn record(&self, gateway_id: &str, state: ReceiptState) -> anyhow::Result<bool> {
        let now = self.clock.now();
        let gateway_id = gateway_id.to_owned();
        self.db
            .write(move |conn| {
                let gateway_id = gateway_id.clone();
                Box::pin(
                    async move { db::outbox::record_receipt(conn, &gateway_id, state, now).await },
                )
            })
            .await
    }
}

fn bind_transceiver(config: &SmsConfig) -> Result<BindTransceiver, SendError> {
    let password = config.password.as_ref().map_or("", |p| p.expose());
    Ok(BindTransceiver::builder()
        .system_id(octets(&config.system_id, "sms.system_id")?)
        .password(octets(password, "sms.password")?)
        .system_type(octets(&config.system_type, "sms.system_type")?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .addr_ton(Ton::Unknown)
        .addr_npi(Npi::Unknown)
        .address_range(COctetString::empty())
        .build())
}

/// One text to one number, asking for a delivery receipt whatever the outcome.
fn submit_sm(config: &SmsConfig, number: &str, text: &str) -> Result<SubmitSm, SendError> {
    let source = &config.source_address;
    // A sender name is alphanumeric; a sender number is international.
    let (source_ton, source_npi) = if source.bytes().all(|b| b.is_ascii_digit() || b == b'+') {
        (Ton::International, Npi::Isdn)
    } else {
        (Ton::Alphanumeric, Npi::Unknown)
    };
    let destination = number.trim_start_matches('+');
    let short_message = OctetString::from_slice(text.as_bytes()).map_err(|_| SendError {
        permanent: true,
        detail: "the text is too long for one message".into(),
    })?;
    Ok(SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(octets(
            source.trim_start_matches('+'),
            "sms.source_address",
        )?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(octets(destination, "the number")?)
        .esm_class(EsmClass::default())
        // Final outcome, success or failure (SMPP 3.4 §5.2.17).
        .registered_delivery(RegisteredDelivery::from(0x01))
        // The gateway's default alphabet (GSM 03.38): the texts are plain ASCII.
        .data_coding(DataCoding::McSpecific)
        .short_message(short_message)
        .build())
}

fn octets<const MIN: usize, const MAX: usize>(
    value: &str,
    what: &str,
) -> Result<COctetString<MIN, MAX>, SendError> {
    COctetString::from_string(value.to_owned()).map_err(|_| SendError {
        permanent: true,
        detail: format!("{what} does not fit its SMPP field"),
    })
}

/// Statuses worth trying again later: the gateway is busy or had a passing fault.
fn retryable(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRthrottled
            | CommandStatus::EsmeRmsgqful
            | CommandStatus::EsmeRsyserr
            | CommandStatus::EsmeRinvbndsts
    )
}

fn transient(error: &rusmppc::error::Error) -> SendError {
    SendError {
        permanent: false,
        detail: format!("SMS gateway: {error}"),
    }
}

/// The message id and state a delivery receipt reports: from its TLVs
/// (`receipted_message_id`, `message_state`) where the gateway sends them, else from the
/// text SMPP 3.4's appendix B suggests (`id:… sub:… dlvrd:… … stat:DELIVRD err:…`).
pub fn receipt_of(deliver: &DeliverSm) -> Option<(String, ReceiptState)> {
    if deliver.esm_class.message_type != MessageType::ShortMessageContainsMCDeliveryReceipt {
        return None;
    }
    let mut id = None;
    let mut state = None;
    for tlv in deliver.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(value)) => id = Some(value.as_str().to_owned()),
            Some(TlvValue::MessageState(value)) => state = state_of(*value),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(deliver.short_message().as_ref()).into_owned();
    let field = |name: &str| {
        text.split_ascii_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .map(str::to_owned)
    };
    let id = id.or_else(|| field("id:"))?;
    let state = state.or_else(|| field("stat:").and_then(|stat| stat_of(&stat)))?;
    Some((id, state))
}

fn state_of(state: MessageState) -> Option<ReceiptState> {
    Some(match state {
        MessageState::Delivered => ReceiptState::Delivered,
        MessageState::Expired => ReceiptState::Expired,
        MessageState::Deleted => ReceiptState::Deleted,
        MessageState::Undeliverable => ReceiptState::Undeliverable,
        MessageState::Accepted => ReceiptState::Accepted,
        MessageState::Unknown => ReceiptState::Unknown,
        MessageState::Rejected => ReceiptState::Rejected,
        _ => return None,
    })
}

fn stat_of(stat: &str) -> Option<ReceiptState> {
    Some(match stat {
        "DELIVRD" => ReceiptState::Delivered,
        "EXPIRED" => ReceiptState::Expired,
        "DELETED" => ReceiptState::Deleted,
        "UNDELIV" => ReceiptState::Undeliverable,
        "ACCEPTD" => ReceiptState::Accepted,
        "UNKNOWN" => ReceiptState::Unknown,
        "REJECTD" => ReceiptState::Rejected,
        _ => return None,
    })
}
