//! The JSON shapes of the API, as `src/api/openapi.json` describes them: what the engine's
//! views and the reactor's listener table become on the wire, and the request bodies.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::clock::Millis;
use crate::codec::mqtt::{Properties, ProtocolVersion};
use crate::engine::inspect::{ClientView, SessionView, SubscriptionView, WillView};
use crate::engine::message::Message;

/// `{"error": code, "detail": text}`.
#[derive(Serialize)]
pub(super) struct ErrorBody<'a> {
    pub(super) error: &'a str,
    pub(super) detail: &'a str,
}

/// One page of a list.
#[derive(Serialize)]
pub(super) struct Page<T> {
    pub(super) total: usize,
    pub(super) offset: usize,
    pub(super) limit: usize,
    pub(super) items: Vec<T>,
}

#[derive(Serialize)]
pub(super) struct Broker {
    pub(super) version: &'static str,
    pub(super) uptime_secs: u64,
    pub(super) listeners: Vec<Listener>,
    pub(super) counters: Counters,
}

#[derive(Serialize, Default)]
pub(super) struct Counters {
    pub(super) clients_connected: usize,
    pub(super) sessions: usize,
    pub(super) sessions_offline: usize,
    pub(super) subscriptions: usize,
    pub(super) retained_messages: usize,
    pub(super) messages_received: u64,
    pub(super) messages_sent: u64,
    pub(super) publish_received: u64,
    pub(super) publish_sent: u64,
    pub(super) publish_dropped: u64,
    pub(super) bytes_received: u64,
    pub(super) bytes_sent: u64,
}

#[derive(Serialize, Clone)]
pub(super) struct Listener {
    pub(super) port: u16,
    pub(super) address: String,
    pub(super) protocol: &'static str,
    pub(super) tls: bool,
    pub(super) connections: u64,
    pub(super) max_connections: Option<u32>,
    pub(super) mount_point: Option<String>,
}

#[derive(Serialize)]
pub(super) struct ClientSummary {
    pub(super) client_id: String,
    pub(super) connection: u64,
    pub(super) protocol: &'static str,
    pub(super) version: &'static str,
    pub(super) listener: u16,
    pub(super) address: String,
    pub(super) username: Option<String>,
    pub(super) keepalive: u64,
    pub(super) session_expiry_interval: u32,
    pub(super) inflight: usize,
    pub(super) queued: usize,
    pub(super) subscription_count: usize,
}

impl ClientSummary {
    pub(super) fn new(c: &ClientView, listener_port: u16) -> Self {
        let (protocol, version) = if c.gateway {
            ("mqtt-sn", "1.2")
        } else {
            let v = match c.version {
                ProtocolVersion::V5 => "5.0",
                ProtocolVersion::V311 => "3.1.1",
                ProtocolVersion::V31 => "3.1",
            };
            ("mqtt", v)
        };
        Self {
            client_id: c.client_id.to_string(),
            connection: c.conn.seq(),
            protocol,
            version,
            listener: listener_port,
            address: c.peer.to_string(),
            username: c.username.as_deref().map(str::to_owned),
            keepalive: c.keep_alive_secs,
            session_expiry_interval: c.session_expiry,
            inflight: c.inflight,
            queued: c.queued,
            subscription_count: c.subscriptions,
        }
    }
}

#[derive(Serialize)]
pub(super) struct ClientDetail {
    #[serde(flatten)]
    pub(super) summary: ClientSummary,
    pub(super) subscriptions: Vec<Subscription>,
    pub(super) will: Option<Will>,
}

#[derive(Serialize)]
pub(super) struct Will {
    pub(super) topic: String,
    pub(super) qos: u8,
    pub(super) retain: bool,
    pub(super) payload_size: usize,
    pub(super) delay_interval: u32,
}

impl From<WillView> for Will {
    fn from(w: WillView) -> Self {
        Self {
            topic: w.topic,
            qos: w.qos as u8,
            retain: w.retain,
            payload_size: w.payload_size,
            delay_interval: w.delay_secs,
        }
    }
}

#[derive(Serialize)]
pub(super) struct Session {
    pub(super) client_id: String,
    pub(super) connected: bool,
    pub(super) connection: Option<u64>,
    pub(super) expiry_interval: u32,
    pub(super) expires_in_secs: Option<u64>,
    pub(super) inflight: usize,
    pub(super) queued: usize,
    pub(super) queued_bytes: u64,
    pub(super) subscription_count: usize,
}

impl From<SessionView> for Session {
    fn from(s: SessionView) -> Self {
        Self {
            client_id: s.client_id.to_string(),
            connected: s.conn.is_some(),
            connection: s.conn.map(|c| c.seq()),
            expiry_interval: s.expiry,
            expires_in_secs: s.expires_in_secs,
            inflight: s.inflight,
            queued: s.queued,
            queued_bytes: s.queued_bytes,
            subscription_count: s.subscriptions,
        }
    }
}

#[derive(Serialize)]
pub(super) struct Subscription {
    pub(super) client_id: String,
    pub(super) filter: String,
    pub(super) qos: u8,
    pub(super) no_local: bool,
    pub(super) retain_as_published: bool,
    pub(super) retain_handling: u8,
    pub(super) identifier: Option<u32>,
}

impl From<SubscriptionView> for Subscription {
    fn from(s: SubscriptionView) -> Self {
        Self {
            client_id: s.client_id.to_string(),
            filter: s.filter,
            qos: s.sub.options.qos as u8,
            no_local: s.sub.options.no_local,
            retain_as_published: s.sub.options.retain_as_published,
            retain_handling: s.sub.options.retain_handling,
            identifier: s.sub.identifier,
        }
    }
}

#[derive(Serialize)]
pub(super) struct Retained {
    pub(super) topic: String,
    pub(super) qos: u8,
    pub(super) payload: String,
    pub(super) payload_encoding: &'static str,
    pub(super) payload_size: usize,
    pub(super) expires_in_secs: Option<u32>,
    pub(super) properties: MessageProperties,
}

impl Retained {
    pub(super) fn new(m: &Message, now: Millis) -> Self {
        let (payload, payload_encoding) = match std::str::from_utf8(&m.payload) {
            Ok(text) => (text.to_owned(), "text"),
            Err(_) => (BASE64.encode(&m.payload), "base64"),
        };
        Self {
            topic: m.topic.to_string(),
            qos: m.qos as u8,
            payload,
            payload_encoding,
            payload_size: m.payload.len(),
            expires_in_secs: m.remaining_expiry_secs(now),
            properties: MessageProperties::from_properties(&m.properties),
        }
    }
}

/// The v5 properties an application message carries, in requests and answers. Absent
/// properties are left out of answers.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) payload_format_indicator: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) message_expiry_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) response_topic: Option<String>,
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) correlation_data: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) user_properties: Vec<UserProperty>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct UserProperty {
    pub(super) name: String,
    pub(super) value: String,
}

impl MessageProperties {
    fn from_properties(p: &Properties) -> Self {
        Self {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: None,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.as_ref().map(|d| BASE64.encode(d)),
            user_properties: p
                .user_properties
                .iter()
                .map(|(name, value)| UserProperty {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub(super) enum PayloadEncoding {
    #[default]
    Text,
    Base64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishRequest {
    pub(super) topic: String,
    #[serde(default)]
    pub(super) payload: String,
    #[serde(default)]
    pub(super) payload_encoding: PayloadEncoding,
    #[serde(default)]
    pub(super) qos: u8,
    #[serde(default)]
    pub(super) retain: bool,
    #[serde(default)]
    pub(super) properties: MessageProperties,
}

#[derive(Serialize)]
pub(super) struct PublishResult {
    pub(super) topic: String,
    pub(super) qos: u8,
    pub(super) retain: bool,
    pub(super) payload_size: usize,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub(super) enum ListenerKind {
    #[default]
    Mqtt,
    Websockets,
    Http,
    Mqttsn,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenerRequest {
    pub(super) port: u16,
    #[serde(default)]
    pub(super) address: Option<String>,
    #[serde(default)]
    pub(super) protocol: ListenerKind,
    #[serde(default)]
    pub(super) max_connections: Option<u32>,
    #[serde(default)]
    pub(super) mount_point: Option<String>,
    #[serde(default)]
    pub(super) certfile: Option<String>,
    #[serde(default)]
    pub(super) keyfile: Option<String>,
    #[serde(default)]
    pub(super) cafile: Option<String>,
    #[serde(default)]
    pub(super) require_certificate: bool,
    #[serde(default)]
    pub(super) http_token_file: Option<String>,
    #[serde(default)]
    pub(super) http_request_timeout: Option<u32>,
}

/// The run-time limits, as `GET /config` shows them.
#[derive(Serialize)]
pub(super) struct ConfigView {
    pub(super) allow_anonymous: bool,
    pub(super) max_inflight_messages: u16,
    pub(super) max_queued_messages: u64,
    pub(super) max_queued_bytes: u64,
    pub(super) message_size_limit: u32,
    pub(super) max_packet_size: u32,
    pub(super) max_keepalive: u16,
    pub(super) persistent_client_expiration: Option<u64>,
    pub(super) sys_interval: u32,
    pub(super) retain_available: bool,
    pub(super) max_topic_alias: u16,
    pub(super) max_qos: u8,
    pub(super) global_max_connections: Option<u32>,
    pub(super) connect_timeout: u32,
    pub(super) max_topic_levels: u32,
    pub(super) max_subscriptions: u32,
    pub(super) max_queued_memory: u64,
    pub(super) max_connection_rate: u32,
}

/// A change to the run-time limits: only the fields given change.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigPatch {
    pub(super) allow_anonymous: Option<bool>,
    pub(super) max_inflight_messages: Option<u16>,
    pub(super) max_queued_messages: Option<u32>,
    pub(super) max_queued_bytes: Option<u64>,
    pub(super) message_size_limit: Option<u32>,
    pub(super) max_packet_size: Option<u32>,
    pub(super) max_keepalive: Option<u16>,
    /// `null` sets "never"; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    pub(super) persistent_client_expiration: Option<Option<u64>>,
    pub(super) sys_interval: Option<u32>,
    pub(super) retain_available: Option<bool>,
    pub(super) max_topic_alias: Option<u16>,
    pub(super) max_qos: Option<u8>,
    /// `null` removes the bound; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    pub(super) global_max_connections: Option<Option<u32>>,
    pub(super) connect_timeout: Option<u32>,
    pub(super) max_topic_levels: Option<u32>,
    pub(super) max_subscriptions: Option<u32>,
    pub(super) max_queued_memory: Option<u64>,
    pub(super) max_connection_rate: Option<u32>,
}

/// A field that is present (possibly `null`) becomes `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
