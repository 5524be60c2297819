//! Run-time limits: from the configuration at start-up, replaced on SIGHUP and over the HTTP
//! API (`PUT /api/v1/config`). Field names are the mosquitto.conf option names. Plain values
//! only: this file must never count or enforce anything (the engine and the reactor do).

use crate::codec::mqtt::QoS;

/// The largest remaining length the MQTT fixed header can express.
pub const PACKET_SIZE_MAX: u32 = 268_435_455;

/// Seconds a new connection has to complete CONNECT, by default.
pub const CONNECT_TIMEOUT_SECS_DEFAULT: u32 = 10;

/// Longest `connect_timeout` accepted, in seconds.
pub const CONNECT_TIMEOUT_SECS_MAX: u32 = 3600;

/// Most levels a topic filter of 65,535 bytes can have (every byte a `/`): the largest
/// `max_topic_levels` accepted.
pub const TOPIC_LEVELS_MAX: u32 = 65_536;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whether clients without a user name may connect.
    pub allow_anonymous: bool,
    /// Outbound QoS 1/2 messages in flight per client (0: the client's receive maximum alone).
    pub max_inflight_messages: u16,
    /// Messages queued per client beyond the in-flight window (0: no bound but bytes).
    pub max_queued_messages: usize,
    /// Bytes of payload queued per client (0: no bound but the count).
    pub max_queued_bytes: u64,
    /// Largest PUBLISH payload accepted (0: no limit beyond the packet size).
    pub message_size_limit: u32,
    /// Largest packet accepted from a client (0: the protocol maximum).
    pub max_packet_size: u32,
    /// Largest keep alive granted; a v5 client asking for more is told the server keep alive.
    pub max_keepalive: u16,
    /// Expiry of persistent sessions of 3.1.1 clients and of v5 sessions with no own limit,
    /// in seconds (`None`: never).
    pub persistent_client_expiration: Option<u64>,
    /// Seconds between `$SYS` updates (0: off).
    pub sys_interval: u32,
    pub retain_available: bool,
    /// Topic aliases a v5 client may use towards the broker.
    pub max_topic_alias: u16,
    /// Highest QoS the broker supports.
    pub max_qos: QoS,
    /// Whether clients connecting and disconnecting are logged at info level (at debug
    /// level when false).
    pub connection_messages: bool,
    /// MQTT and WebSocket connections open at once over all listeners (`None`: no bound).
    pub global_max_connections: Option<u32>,
    /// Seconds a new connection has to complete CONNECT.
    pub connect_timeout: u32,
    /// Levels of a topic name or filter (0: no bound but the 65,535 bytes).
    pub max_topic_levels: u32,
    /// Subscriptions per client (0: no bound).
    pub max_subscriptions: u32,
    /// Bytes of all session queues together (0: no bound); see `engine::bounds`.
    pub max_queued_memory: u64,
    /// New connections per second from one address (0: no bound).
    pub max_connection_rate: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            message_size_limit: 0,
            max_packet_size: 0,
            max_keepalive: 65535,
            persistent_client_expiration: None,
            sys_interval: 10,
            retain_available: true,
            max_topic_alias: 10,
            max_qos: QoS::ExactlyOnce,
            connection_messages: true,
            global_max_connections: None,
            connect_timeout: CONNECT_TIMEOUT_SECS_DEFAULT,
            max_topic_levels: 128,
            max_subscriptions: 10_000,
            max_queued_memory: 256 * 1024 * 1024,
            max_connection_rate: 0,
        }
    }
}

impl Limits {
    /// The level of the lines that tell clients connecting and disconnecting.
    pub fn connection_log_level(&self) -> log::Level {
        if self.connection_messages {
            log::Level::Info
        } else {
            log::Level::Debug
        }
    }

    /// The inbound packet size bound in force.
    pub fn packet_size_max(&self) -> u32 {
        if self.max_packet_size == 0 {
            PACKET_SIZE_MAX
        } else {
            self.max_packet_size.min(PACKET_SIZE_MAX)
        }
    }
}
