//! The broker configuration: what a mosquitto.conf-style file (or its absence) and the `-p`
//! command-line ports produce. Parsing is in `parse` (pure), file access in `load`, the
//! option table in `options`, and the MQTT-SN listener options in `mqttsn` and `predefined`.

mod bounds;
pub mod bridge;
mod http;
pub mod load;
mod mqttsn;
pub mod options;
pub mod parse;
mod persistence;
pub mod predefined;
mod security;
mod tls;

use std::fmt;
use std::path::PathBuf;

use crate::auth::SecurityConfig;
use crate::engine::limits::Limits;

pub use http::{
    token_of, HttpConfig, DEFAULT_REQUEST_TIMEOUT_SECS, HTTP_MAX_CONNECTIONS,
    REQUEST_TIMEOUT_MAX_SECS,
};
pub use load::load;
pub use mqttsn::{MqttSnConfig, ReadFile};
pub use parse::{parse, Include, Parser};
pub use persistence::{Persistence, SyncPolicy};

/// The port MQTT brokers listen on by default.
pub const DEFAULT_PORT: u16 = 1883;
/// The address of the listener used when nothing else is configured.
pub const LOCAL_ADDRESS: &str = "127.0.0.1";

/// Everything the broker needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The listeners to open, the default listener (from `port`, `bind_address`) first, then
    /// the `listener` blocks in file order.
    pub listeners: Vec<ListenerConfig>,
    /// `password_file`, `acl_file` and, with `per_listener_settings`, `allow_anonymous`:
    /// for the whole broker or per listener (by index in `listeners`).
    pub security: SecurityConfig,
    pub limits: Limits,
    /// Problems that do not stop start-up, each `file:line: text`; the caller logs them.
    pub warnings: Vec<String>,
    /// True when `listeners` holds only the 127.0.0.1:1883 listener that stands in for a
    /// configuration that defines none; `-p` ports then replace it (see [`apply_ports`]).
    pub implicit_listener: bool,
    pub persistence: Persistence,
    /// `deterministic SEED`: a virtual clock and every generated value from SEED.
    pub deterministic: Option<u64>,
    /// `trace_file PATH`: write a trace of the run there.
    pub trace_file: Option<String>,
    /// The bridges (`connection` blocks), in file order.
    pub bridges: Vec<bridge::BridgeConfig>,
}

/// Transport protocol spoken on a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// MQTT straight over TCP (or TLS when the listener has certificates).
    Mqtt,
    /// MQTT over WebSockets (secure WebSockets when the listener has certificates).
    WebSockets,
    /// An MQTT-SN 1.2 gateway on UDP (DTLS when the listener has certificates or a
    /// `psk_file`); its settings are in [`ListenerConfig::mqttsn`].
    MqttSn,
    /// The HTTP/1.1 API (HTTPS when the listener has certificates); its settings are in
    /// [`ListenerConfig::http`].
    Http,
}

impl ListenerProtocol {
    /// The name used in the configuration file and the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::WebSockets => "websockets",
            Self::MqttSn => "mqttsn",
            Self::Http => "http",
        }
    }
}

/// Lowest TLS version a listener accepts (`tls_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// TLS settings of a listener; present when `certfile` and `keyfile` are set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first.
    pub certfile: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub keyfile: PathBuf,
    /// PEM file of CA certificates that client certificates are verified against.
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates, used like `cafile`.
    pub capath: Option<PathBuf>,
    /// Clients must present a certificate signed by a CA of `cafile`/`capath`.
    pub require_certificate: bool,
    /// The client certificate's Common Name becomes the client's user name.
    pub use_identity_as_username: bool,
    /// The client certificate's whole subject (RFC 2253 form) becomes the user name.
    pub use_subject_as_username: bool,
    /// Lowest TLS version accepted; `None`: TLS 1.2 and 1.3.
    pub tls_version: Option<TlsVersion>,
    /// TLS 1.2 cipher suites (OpenSSL names, `:`-separated); `None`: the defaults.
    pub ciphers: Option<String>,
    /// TLS 1.3 cipher suites (IANA names, `:`-separated); `None`: the defaults.
    pub ciphers_tls13: Option<String>,
}

/// IP version a listener is restricted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketDomain {
    Ipv4,
    Ipv6,
}

/// One socket to listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// TCP port (UDP for MQTT-SN); 0 asks the system for any free port.
    pub port: u16,
    /// Address or host name to bind; `None` binds all interfaces (of `socket_domain`).
    pub bind_address: Option<String>,
    pub protocol: ListenerProtocol,
    /// Connections the listener accepts at once; `None` is unlimited.
    pub max_connections: Option<u32>,
    /// `None`: both IPv4 and IPv6.
    pub socket_domain: Option<SocketDomain>,
    /// `Some` when the listener speaks TLS.
    pub tls: Option<TlsConfig>,
    /// Prefix added to every topic of the listener's clients (and removed on delivery).
    pub mount_point: Option<String>,
    /// The gateway settings; `Some` exactly when `protocol` is [`ListenerProtocol::MqttSn`].
    pub mqttsn: Option<MqttSnConfig>,
    /// The API settings; `Some` exactly when `protocol` is [`ListenerProtocol::Http`].
    pub http: Option<HttpConfig>,
}

impl ListenerConfig {
    /// An MQTT listener on `port` with every other setting at its default.
    pub fn new(port: u16, bind_address: Option<String>) -> Self {
        Self {
            port,
            bind_address,
            protocol: ListenerProtocol::Mqtt,
            max_connections: None,
            socket_domain: None,
            tls: None,
            mount_point: None,
            mqttsn: None,
            http: None,
        }
    }

    /// Whether the listener is a UDP socket rather than a TCP one.
    pub fn is_datagram(&self) -> bool {
        self.protocol == ListenerProtocol::MqttSn
    }

    /// Whether the listener speaks DTLS: an MQTT-SN listener with certificates or
    /// pre-shared keys.
    pub fn is_dtls(&self) -> bool {
        self.mqttsn
            .as_ref()
            .is_some_and(|sn| self.tls.is_some() || sn.psk_file.is_some())
    }

    /// An MQTT listener on 127.0.0.1:`port`.
    pub fn local(port: u16) -> Self {
        Self::new(port, Some(LOCAL_ADDRESS.to_owned()))
    }
}

impl Config {
    /// The configuration without a file: one listener on 127.0.0.1:1883 that accepts
    /// anonymous clients, every limit at its default.
    pub fn local_only() -> Self {
        Self {
            listeners: vec![ListenerConfig::local(DEFAULT_PORT)],
            security: SecurityConfig::default(),
            limits: Limits {
                allow_anonymous: true,
                ..Limits::default()
            },
            warnings: Vec::new(),
            implicit_listener: true,
            persistence: Persistence::default(),
            deterministic: None,
            trace_file: None,
            bridges: Vec::new(),
        }
    }
}

/// A configuration problem that stops start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem concerns the whole file (it cannot be read).
    pub line: usize,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Applies the `-p` ports: each adds a listener on 127.0.0.1:PORT. When the configuration
/// defines no listener, the ports replace the implicit 127.0.0.1:1883 one. A port already
/// listened on at 127.0.0.1 in the same way is not added twice (0 always is).
pub fn apply_ports(config: &mut Config, ports: &[u16]) {
    if ports.is_empty() {
        return;
    }
    if config.implicit_listener {
        config.listeners.clear();
        config.implicit_listener = false;
    }
    for &port in ports {
        let listener = ListenerConfig::local(port);
        if port == 0 || !config.listeners.contains(&listener) {
            config.listeners.push(listener);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_only_listens_on_loopback_and_allows_anonymous() {
        let config = Config::local_only();
        assert_eq!(config.listeners, vec![ListenerConfig::local(1883)]);
        assert_eq!(
            config.listeners[0].bind_address.as_deref(),
            Some("127.0.0.1")
        );
        assert!(config.limits.allow_anonymous);
        assert!(config.implicit_listener);
        assert!(config.warnings.is_empty());
        let rest = Limits {
            allow_anonymous: true,
            ..Limits::default()
        };
        assert_eq!(config.limits, rest);
    }

    #[test]
    fn error_display() {
        let e = ConfigError::new("culex.conf", 12, "unknown option \"x\"");
        assert_eq!(e.to_string(), "culex.conf:12: unknown option \"x\"");
        let e = ConfigError::new("culex.conf", 0, "cannot read: gone");
        assert_eq!(e.to_string(), "culex.conf: cannot read: gone");
    }

    #[test]
    fn ports_replace_the_implicit_listener() {
        let mut config = Config::local_only();
        apply_ports(&mut config, &[1884, 1885, 1884]);
        assert_eq!(
            config.listeners,
            vec![ListenerConfig::local(1884), ListenerConfig::local(1885)]
        );
        assert!(!config.implicit_listener);
    }

    #[test]
    fn no_ports_keep_the_implicit_listener() {
        let mut config = Config::local_only();
        apply_ports(&mut config, &[]);
        assert_eq!(config, Config::local_only());
    }

    #[test]
    fn ports_add_to_configured_listeners() {
        let mut config = parse("listener 1883\n", "t.conf").unwrap_or_else(|e| panic!("{e}"));
        apply_ports(&mut config, &[1883, 0, 0]);
        assert_eq!(
            config.listeners,
            vec![
                ListenerConfig::new(1883, None),
                ListenerConfig::local(1883),
                ListenerConfig::local(0),
                ListenerConfig::local(0),
            ]
        );
    }

    fn parse_ok(text: &str) -> Config {
        parse(text, "culex.conf").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn example_configuration_parses() {
        let config = parse_ok(include_str!("../../conf/culex.conf"));
        let ws = ListenerConfig {
            protocol: ListenerProtocol::WebSockets,
            ..ListenerConfig::local(8083)
        };
        let sn = ListenerConfig {
            protocol: ListenerProtocol::MqttSn,
            mqttsn: Some(MqttSnConfig::default()),
            ..ListenerConfig::local(1884)
        };
        let http = ListenerConfig {
            protocol: ListenerProtocol::Http,
            http: Some(HttpConfig::default()),
            max_connections: Some(HTTP_MAX_CONNECTIONS),
            ..ListenerConfig::local(8080)
        };
        assert_eq!(
            config.listeners,
            vec![ListenerConfig::local(1883), ws, sn, http]
        );
        assert!(!config.implicit_listener);
        assert!(config.limits.allow_anonymous);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let defaults = Limits {
            allow_anonymous: true,
            ..Limits::default()
        };
        assert_eq!(config.limits, defaults);
    }

    #[test]
    fn tls_example_configuration_parses() {
        let config = parse_ok(include_str!("../../conf/culex-tls.conf"));
        let kinds: Vec<_> = config
            .listeners
            .iter()
            .map(|l| (l.port, l.protocol, l.tls.is_some()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1883, ListenerProtocol::Mqtt, false),
                (8883, ListenerProtocol::Mqtt, true),
                (8084, ListenerProtocol::WebSockets, true),
                (8885, ListenerProtocol::Mqtt, true),
            ]
        );
        let mutual = config.listeners[3].tls.as_ref().expect("tls");
        assert!(mutual.require_certificate && mutual.use_identity_as_username);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn gateway_example_configuration_parses() {
        let config = parse_ok(include_str!("../../conf/culex-gateway.conf"));
        let [central] = config.bridges.as_slice() else {
            panic!("one bridge: {:?}", config.bridges);
        };
        assert_eq!(central.name, "central");
        assert_eq!(central.addresses.len(), 2);
        assert_eq!(central.topics.len(), 2);
        assert_eq!(central.topics[0].remote_prefix, "plant/site-042/");
        assert_eq!(central.max_queued_messages, 100_000);
        assert!(central.tls.is_some() && !central.cleansession);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }
}
