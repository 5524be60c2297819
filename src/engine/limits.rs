//! Run-time limits: from the configuration at start-up, replaced on SIGHUP (and, later, over
//! the HTTP API). Field names are the mosquitto.conf option names.

use crate::codec::mqtt::QoS;

/// The largest remaining length the MQTT fixed header can express.
pub const PACKET_SIZE_MAX: u32 = 268_435_455;

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
