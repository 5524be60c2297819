//! Bridges: `connection` blocks of the configuration (mosquitto.conf syntax) and the same
//! settings given over the API.
//!
//! Pure: the parsing of the block's options lives here, files named by the options are read
//! only by the transport when the bridge connects.

use std::path::PathBuf;

use crate::codec::mqtt::QoS;

/// Which way messages of a `topic` line flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Remote to local.
    In,
    /// Local to remote.
    Out,
    Both,
}

/// One `topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMapping {
    /// The topic pattern (a filter; may be empty when both prefixes are given).
    pub pattern: String,
    pub direction: Direction,
    /// The QoS of the subscriptions the bridge makes for this line.
    pub qos: QoS,
    /// Prefix of the topic on this broker.
    pub local_prefix: String,
    /// Prefix of the topic on the remote broker.
    pub remote_prefix: String,
}

/// The MQTT version a bridge speaks to its remote broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeProtocol {
    /// `mqttv311`.
    V311,
    /// `mqttv50`.
    V5,
}

/// What carries the bridge's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeTransport {
    /// MQTT over TCP (TLS when `tls` is set).
    Tcp,
    /// MQTT over WebSockets (secure WebSockets when `tls` is set), on this request path.
    WebSockets { path: String },
}

/// The TLS settings of a bridge (`bridge_cafile` and friends).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BridgeTls {
    /// CA certificates the remote broker's certificate is verified against.
    pub cafile: Option<PathBuf>,
    /// Directory of CA certificates, used like `cafile`.
    pub capath: Option<PathBuf>,
    /// Client certificate and key, for remote brokers that require one.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// Do not verify the remote broker's host name against its certificate.
    pub insecure: bool,
    /// ALPN protocol name offered (`bridge_alpn`).
    pub alpn: Option<String>,
}

/// One remote address, `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAddress {
    pub host: String,
    pub port: u16,
}

/// A bridge to another MQTT broker: a `connection` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The `connection` name; unique among bridges.
    pub name: String,
    /// Remote addresses, tried in turn (`address`/`addresses`).
    pub addresses: Vec<RemoteAddress>,
    /// With several addresses: go on to the next on each reconnect (true), or go back to
    /// the first one each time (false, mosquitto's default).
    pub round_robin: bool,
    pub topics: Vec<TopicMapping>,
    pub protocol: BridgeProtocol,
    pub transport: BridgeTransport,
    /// `None`: TLS off (no `bridge_cafile`/`bridge_capath`/`bridge_insecure`).
    pub tls: Option<BridgeTls>,
    /// Client identifier on the remote broker (`remote_clientid`, default `HOSTNAME.NAME`,
    /// culex uses `culex.NAME`).
    pub remote_clientid: String,
    /// Client identifier of the bridge's session on this broker (`local_clientid`, default
    /// `local.` + `remote_clientid`).
    pub local_clientid: String,
    pub remote_username: Option<String>,
    pub remote_password: Option<String>,
    /// Clean session / clean start on the remote broker (`cleansession`, default false).
    pub cleansession: bool,
    /// Keep alive on the remote connection (`keepalive_interval`, default 60).
    pub keepalive_secs: u16,
    /// The bridge bit of 3.1.1 (protocol level 0x84) and No Local on v5 subscriptions, so
    /// messages do not come back (`try_private`, default true).
    pub try_private: bool,
    /// Publish the connection state, retained, as "1"/"0" (`notifications`, default true).
    pub notifications: bool,
    /// Default `$SYS/broker/connection/REMOTE_CLIENTID/state`.
    pub notification_topic: String,
    /// Also publish the state on the remote broker (`notifications_local_only false`, the
    /// default).
    pub notifications_local_only: bool,
    /// Reconnect delay: `restart_timeout BASE [CAP]` in seconds; with a cap, the delay grows
    /// from BASE to CAP with jitter (mosquitto's backoff), else it stays at BASE.
    pub restart_timeout_base_secs: u32,
    pub restart_timeout_cap_secs: Option<u32>,
    /// Outgoing messages queued while the remote is unreachable, at most
    /// (`bridge_max_queued_messages`; 0: the broker's `max_queued_messages`).
    pub max_queued_messages: usize,
}

impl BridgeConfig {
    /// A bridge named `name` to `host:port` with every other setting at its default.
    pub fn new(name: &str, host: &str, port: u16) -> Self {
        let remote_clientid = format!("culex.{name}");
        Self {
            name: name.to_owned(),
            addresses: vec![RemoteAddress {
                host: host.to_owned(),
                port,
            }],
            round_robin: false,
            topics: Vec::new(),
            protocol: BridgeProtocol::V311,
            transport: BridgeTransport::Tcp,
            tls: None,
            local_clientid: format!("local.{remote_clientid}"),
            notification_topic: format!("$SYS/broker/connection/{remote_clientid}/state"),
            remote_clientid,
            remote_username: None,
            remote_password: None,
            cleansession: false,
            keepalive_secs: 60,
            try_private: true,
            notifications: true,
            notifications_local_only: false,
            restart_timeout_base_secs: 5,
            restart_timeout_cap_secs: Some(30),
            max_queued_messages: 0,
        }
    }
}
