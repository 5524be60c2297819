//! The MQTT-SN options of a listener (`protocol mqttsn`: a UDP gateway, MQTT-SN 1.2), and the
//! listener options that only make sense with, or never with, that protocol. They are
//! collected line by line and checked when the configuration is complete, because a
//! listener block's options come in any order (`protocol` may be last). Pure: the
//! predefined-topics file is read through a function the caller hands in.

use core::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::predefined::parse_topics;
use super::{ConfigError, ListenerConfig, ListenerProtocol, SocketDomain};

/// The options that configure the MQTT-SN gateway of a listener.
pub(super) const OPTIONS: &[&str] = &[
    "gateway_id",
    "advertise_interval",
    "multicast_group",
    "multicast_interface",
    "multicast_ttl",
    "predefined_topics",
    "max_clients",
    "retry_interval",
    "retry_count",
    "sleep_buffer",
    "psk_file",
    "psk_hint",
];

/// The TLS options with no DTLS counterpart: DTLS versions and suites are not TLS ones.
const TLS_ONLY: &[&str] = &["tls_version", "ciphers", "ciphers_tls1.3"];

/// MQTT-SN gateway settings of a `protocol mqttsn` listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttSnConfig {
    /// GwId sent in ADVERTISE and GWINFO.
    pub gateway_id: u8,
    /// Seconds between ADVERTISE messages; 0: none are sent.
    pub advertise_interval: u32,
    /// Where ADVERTISE and GWINFO go and SEARCHGW is heard, if anywhere.
    pub multicast_group: Option<SocketAddr>,
    /// The interface (address or name) the group is joined on; `None`: the system's choice.
    pub multicast_interface: Option<String>,
    /// Hop limit of the messages sent to the group.
    pub multicast_ttl: u32,
    /// Topic ids known in advance (id, topic name), sorted by id, each id and name once.
    pub predefined_topics: Vec<(u16, String)>,
    /// Clients the gateway serves at once; `None` is unlimited.
    pub max_clients: Option<u32>,
    /// Tretry: seconds before an unacknowledged message is sent again.
    pub retry_interval: u32,
    /// Nretry: how many times it is sent again before the client is considered lost.
    pub retry_count: u32,
    /// Messages kept for a sleeping client; older ones are dropped beyond it.
    pub sleep_buffer: u32,
    /// DTLS pre-shared keys, lines `identity:hexkey`; read by the transport, not here.
    pub psk_file: Option<PathBuf>,
    /// Identity hint sent to clients in a PSK handshake; set exactly when `psk_file` is.
    pub psk_hint: Option<String>,
}

impl Default for MqttSnConfig {
    /// The settings of a `protocol mqttsn` listener that sets no MQTT-SN option.
    fn default() -> Self {
        Self {
            gateway_id: 1,
            advertise_interval: 900,
            multicast_group: None,
            multicast_interface: None,
            multicast_ttl: 1,
            predefined_topics: Vec::new(),
            max_clients: None,
            retry_interval: 10,
            retry_count: 5,
            sleep_buffer: 100,
            psk_file: None,
            psk_hint: None,
        }
    }
}

/// Where an option was set, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    key: String,
    file: String,
    line: usize,
}

/// Reads a predefined-topics file by the name the configuration gives it (relative to the
/// current directory); `Err` holds the reason it cannot be read.
pub type ReadFile<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

/// A listener's MQTT-SN options as met so far, and where each listener option was set.
#[derive(Clone, Debug, Default)]
pub(super) struct SnDraft {
    config: Option<MqttSnConfig>,
    predefined_topics: Option<String>,
    /// Every listener option line of the block, the last one of each key, in that order.
    places: Vec<Place>,
}

impl SnDraft {
    /// Records that listener option `key` was set at `file:line`, so that options that do
    /// not suit the listener's final protocol can be refused at their line.
    pub(super) fn note(&mut self, key: &str, file: &str, line: usize) {
        self.places.retain(|p| p.key != key);
        self.places.push(Place {
            key: key.to_owned(),
            file: file.to_owned(),
            line,
        });
    }

    /// Whether listener option `key` was set in the block.
    pub(super) fn noted(&self, key: &str) -> bool {
        self.places.iter().any(|p| p.key == key)
    }

    /// Parses one of [`OPTIONS`]. Checks that need the whole block wait for [`Self::finish`].
    pub(super) fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let config = self.config.get_or_insert_with(MqttSnConfig::default);
        let u32_max = u64::from(u32::MAX);
        match key {
            "gateway_id" => config.gateway_id = ranged(key, value, 0, 255)?,
            // ADVERTISE carries the interval in two bytes (MQTT-SN 1.2, 5.4.1).
            "advertise_interval" => config.advertise_interval = ranged(key, value, 0, 65535)?,
            "multicast_group" => config.multicast_group = Some(group(value)?),
            "multicast_interface" => config.multicast_interface = Some(value.to_owned()),
            "multicast_ttl" => config.multicast_ttl = ranged(key, value, 1, 255)?,
            "predefined_topics" => self.predefined_topics = Some(value.to_owned()),
            "max_clients" => {
                config.max_clients = if value == "-1" {
                    None
                } else {
                    Some(ranged(key, value, 0, u32_max).map_err(|_| {
                        format!(
                            "max_clients: expected -1 or a number from 0 to {u32_max}, \
                             got \"{value}\""
                        )
                    })?)
                };
            }
            "retry_interval" => config.retry_interval = ranged(key, value, 1, u32_max)?,
            "retry_count" => config.retry_count = ranged(key, value, 0, u32_max)?,
            "sleep_buffer" => config.sleep_buffer = ranged(key, value, 1, u32_max)?,
            "psk_file" => config.psk_file = Some(PathBuf::from(value)),
            "psk_hint" => config.psk_hint = Some(value.to_owned()),
            _ => return Err(format!("unknown option \"{key}\"")),
        }
        Ok(())
    }

    /// Checks the block as a whole once the listener's protocol is known and reads its
    /// predefined topics with `read` (without one, the file is left unread with a warning).
    /// `Ok(None)` for a listener that is not MQTT-SN.
    pub(super) fn finish(
        self,
        listener: &ListenerConfig,
        read: Option<ReadFile<'_>>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<MqttSnConfig>, ConfigError> {
        let at = |p: &Place, message: String| ConfigError::new(&p.file, p.line, message);
        let place = |key: &str| self.places.iter().find(|p| p.key == key);
        if listener.protocol != ListenerProtocol::MqttSn {
            let Some(p) = self
                .places
                .iter()
                .find(|p| OPTIONS.contains(&p.key.as_str()))
            else {
                return Ok(None);
            };
            let message = if p.key.starts_with("psk_") {
                format!(
                    "{}: pre-shared keys are only available on protocol mqttsn listeners \
                     (DTLS); TLS listeners need certfile and keyfile",
                    p.key
                )
            } else {
                format!("{}: only for protocol mqttsn", p.key)
            };
            return Err(at(p, message));
        }
        if let Some(p) = place("max_connections") {
            let message = "max_connections: not for protocol mqttsn (use max_clients)";
            return Err(at(p, message.to_owned()));
        }
        if let Some(p) = self
            .places
            .iter()
            .find(|p| TLS_ONLY.contains(&p.key.as_str()))
        {
            let message = format!("{}: only for TLS listeners, not for protocol mqttsn", p.key);
            return Err(at(p, message));
        }
        let mut config = self.config.clone().unwrap_or_default();
        match (place("psk_file"), place("psk_hint")) {
            (Some(p), None) => return Err(at(p, "psk_file: requires psk_hint".to_owned())),
            (None, Some(p)) => return Err(at(p, "psk_hint: requires psk_file".to_owned())),
            _ => {}
        }
        if let Some(group) = config.multicast_group {
            self.check_family(group, listener)?;
        } else {
            for key in ["multicast_interface", "multicast_ttl"] {
                if let Some(p) = place(key) {
                    return Err(at(p, format!("{key}: requires multicast_group")));
                }
            }
        }
        if let (Some(path), Some(p)) = (&self.predefined_topics, place("predefined_topics")) {
            match read {
                Some(read) => {
                    let text = read(path).map_err(|e| {
                        at(p, format!("predefined_topics: cannot read {path}: {e}"))
                    })?;
                    config.predefined_topics = parse_topics(&text, path)?;
                }
                None => warnings.push(format!(
                    "{}:{}: predefined_topics {path} is only read when the configuration is \
                     loaded from a file",
                    p.file, p.line
                )),
            }
        }
        Ok(Some(config))
    }

    /// A group of the other IP version than the socket cannot be joined on it.
    fn check_family(
        &self,
        group: SocketAddr,
        listener: &ListenerConfig,
    ) -> Result<(), ConfigError> {
        let place = |key: &str| self.places.iter().find(|p| p.key == key);
        let version = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        let v6 = group.is_ipv6();
        let bound = listener.bind_address.as_deref();
        let conflict = match bound.and_then(|a| a.parse::<IpAddr>().ok()) {
            Some(address) if address.is_ipv6() != v6 => Some(format!(
                "an {} group on a listener bound to {address}",
                version(v6)
            )),
            _ => match listener.socket_domain {
                Some(SocketDomain::Ipv4) if v6 => {
                    Some("an IPv6 group on a listener with socket_domain ipv4".to_owned())
                }
                Some(SocketDomain::Ipv6) if !v6 => {
                    Some("an IPv4 group on a listener with socket_domain ipv6".to_owned())
                }
                _ => None,
            },
        };
        let interface = self
            .config
            .as_ref()
            .and_then(|c| c.multicast_interface.as_deref())
            .and_then(|i| i.parse::<IpAddr>().ok())
            .filter(|i| i.is_ipv6() != v6);
        if let (Some(message), Some(p)) = (conflict, place("multicast_group")) {
            let message = format!("multicast_group: {message}");
            return Err(ConfigError::new(&p.file, p.line, message));
        }
        if let (Some(interface), Some(p)) = (interface, place("multicast_interface")) {
            let message = format!(
                "multicast_interface: {interface} is not an {} address like the group",
                version(v6)
            );
            return Err(ConfigError::new(&p.file, p.line, message));
        }
        Ok(())
    }
}

/// A `multicast_group` value: a multicast address and a port other than 0.
fn group(value: &str) -> Result<SocketAddr, String> {
    let Ok(group) = value.parse::<SocketAddr>() else {
        return Err(format!(
            "multicast_group: expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), got \"{value}\""
        ));
    };
    if !group.ip().is_multicast() {
        return Err(format!(
            "multicast_group: {} is not a multicast address",
            group.ip()
        ));
    }
    if group.port() == 0 {
        return Err("multicast_group: the port must not be 0".to_owned());
    }
    Ok(group)
}

/// A decimal number within `min..=max`, converted to the field's type.
fn ranged<T: TryFrom<u64>>(key: &str, value: &str, min: u64, max: u64) -> Result<T, String> {
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| value.parse::<u64>().ok())
        .flatten()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{key}: expected a number from {min} to {max}, got \"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Parser, TlsConfig};

    /// Parses `text` as `t.conf`, with `files` standing in for the file system.
    fn parse_with(text: &str, files: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut parser = Parser::new();
        parser.parse_into(text, "t.conf")?;
        parser.finish_reading(&mut |name: &str| {
            files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| "No such file or directory (os error 2)".to_owned())
        })
    }

    fn ok(text: &str) -> Config {
        parse_with(text, &[]).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> String {
        err_with(text, &[])
    }

    fn err_with(text: &str, files: &[(&str, &str)]) -> String {
        match parse_with(text, files) {
            Ok(config) => panic!("{text:?} parsed: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn sn(config: &Config, index: usize) -> MqttSnConfig {
        config.listeners[index]
            .mqttsn
            .clone()
            .unwrap_or_else(|| panic!("listener {index} is not MQTT-SN"))
    }

    #[test]
    fn a_full_block_in_any_order_with_protocol_last() {
        let text = "listener 1884 192.168.1.10\n\
                    sleep_buffer 20\n\
                    psk_file /etc/culex/psk\n\
                    retry_count 0\n\
                    multicast_ttl 8\n\
                    certfile s.crt\n\
                    predefined_topics /etc/culex/topics\n\
                    gateway_id 255\n\
                    mount_point site1/\n\
                    max_clients 40\n\
                    advertise_interval 0\n\
                    keyfile s.key\n\
                    multicast_interface 192.168.1.10\n\
                    retry_interval 3\n\
                    psk_hint culex\n\
                    cafile ca.crt\n\
                    require_certificate true\n\
                    socket_domain ipv4\n\
                    multicast_group 225.1.1.1:1883\n\
                    protocol mqttsn\n";
        let topics = "# sensors\n2 sensors/b\n1 sensors/a\n";
        let config =
            parse_with(text, &[("/etc/culex/topics", topics)]).unwrap_or_else(|e| panic!("{e}"));
        let expected = MqttSnConfig {
            gateway_id: 255,
            advertise_interval: 0,
            multicast_group: "225.1.1.1:1883".parse().ok(),
            multicast_interface: Some("192.168.1.10".to_owned()),
            multicast_ttl: 8,
            predefined_topics: vec![(1, "sensors/a".to_owned()), (2, "sensors/b".to_owned())],
            max_clients: Some(40),
            retry_interval: 3,
            retry_count: 0,
            sleep_buffer: 20,
            psk_file: Some(PathBuf::from("/etc/culex/psk")),
            psk_hint: Some("culex".to_owned()),
        };
        let tls = TlsConfig {
            certfile: PathBuf::from("s.crt"),
            keyfile: PathBuf::from("s.key"),
            cafile: Some(PathBuf::from("ca.crt")),
            capath: None,
            require_certificate: true,
            use_identity_as_username: false,
            use_subject_as_username: false,
            tls_version: None,
            ciphers: None,
            ciphers_tls13: None,
        };
        let listener = ListenerConfig {
            protocol: ListenerProtocol::MqttSn,
            socket_domain: Some(SocketDomain::Ipv4),
            tls: Some(tls),
            mount_point: Some("site1/".to_owned()),
            mqttsn: Some(expected),
            ..ListenerConfig::new(1884, Some("192.168.1.10".to_owned()))
        };
        assert_eq!(config.listeners, vec![listener]);
        assert!(config.listeners[0].is_datagram() && config.listeners[0].is_dtls());
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn defaults() {
        let config = ok("listener 1883\nprotocol mqttsn\nlistener 1884\n");
        let defaults = MqttSnConfig {
            gateway_id: 1,
            advertise_interval: 900,
            multicast_group: None,
            multicast_interface: None,
            multicast_ttl: 1,
            predefined_topics: Vec::new(),
            max_clients: None,
            retry_interval: 10,
            retry_count: 5,
            sleep_buffer: 100,
            psk_file: None,
            psk_hint: None,
        };
        assert_eq!(MqttSnConfig::default(), defaults);
        assert_eq!(sn(&config, 0), defaults);
        let first = &config.listeners[0];
        assert!(first.is_datagram() && !first.is_dtls());
        assert_eq!(first.tls, None);
        // Any other listener has no gateway settings.
        assert_eq!(config.listeners[1], ListenerConfig::new(1884, None));
        assert!(!config.listeners[1].is_datagram());
        assert_eq!(ListenerConfig::new(1, None).mqttsn, None);
    }

    #[test]
    fn the_default_listener_can_be_a_gateway() {
        let config = ok("protocol mqttsn\nport 1885\ngateway_id 3\n");
        assert_eq!(config.listeners.len(), 1);
        assert_eq!(config.listeners[0].port, 1885);
        assert_eq!(sn(&config, 0).gateway_id, 3);
    }

    #[test]
    fn bounds() {
        let config = ok(
            "listener 1\nprotocol mqttsn\ngateway_id 0\nadvertise_interval 65535\n\
                         multicast_group [ff02::1]:65535\nmulticast_ttl 255\n\
                         max_clients 0\nretry_interval 4294967295\n\
                         retry_count 4294967295\nsleep_buffer 1\n\
                         listener 2\nprotocol mqttsn\nmax_clients 5\nmax_clients -1\n",
        );
        let s = sn(&config, 0);
        assert_eq!(
            (s.gateway_id, s.advertise_interval, s.multicast_ttl),
            (0, 65535, 255)
        );
        assert_eq!(s.multicast_group, "[ff02::1]:65535".parse().ok());
        assert_eq!(s.max_clients, Some(0));
        assert_eq!((s.retry_interval, s.retry_count), (u32::MAX, u32::MAX));
        assert_eq!(s.sleep_buffer, 1);
        assert_eq!(sn(&config, 1).max_clients, None);
    }

    #[test]
    fn bad_values_name_their_line() {
        let cases = [
            (
                "gateway_id 256",
                "gateway_id: expected a number from 0 to 255, got \"256\"",
            ),
            (
                "gateway_id -1",
                "gateway_id: expected a number from 0 to 255, got \"-1\"",
            ),
            (
                "advertise_interval 65536",
                "advertise_interval: expected a number from 0 to 65535, got \"65536\"",
            ),
            (
                "multicast_ttl 0",
                "multicast_ttl: expected a number from 1 to 255, got \"0\"",
            ),
            (
                "multicast_ttl 256",
                "multicast_ttl: expected a number from 1 to 255, got \"256\"",
            ),
            (
                "max_clients -2",
                "max_clients: expected -1 or a number from 0 to 4294967295, got \"-2\"",
            ),
            (
                "retry_interval 0",
                "retry_interval: expected a number from 1 to 4294967295, got \"0\"",
            ),
            (
                "retry_count x",
                "retry_count: expected a number from 0 to 4294967295, got \"x\"",
            ),
            (
                "sleep_buffer 0",
                "sleep_buffer: expected a number from 1 to 4294967295, got \"0\"",
            ),
            ("psk_hint a b", "psk_hint: unexpected extra value \"b\""),
            ("predefined_topics", "predefined_topics: missing value"),
            (
                "multicast_group 225.1.1.1",
                "multicast_group: expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), \
                 got \"225.1.1.1\"",
            ),
            (
                "multicast_group ff02::1:1883",
                "multicast_group: expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), \
                 got \"ff02::1:1883\"",
            ),
            (
                "multicast_group 192.168.1.255:1883",
                "multicast_group: 192.168.1.255 is not a multicast address",
            ),
            (
                "multicast_group [fe80::1]:1883",
                "multicast_group: fe80::1 is not a multicast address",
            ),
            (
                "multicast_group 225.1.1.1:0",
                "multicast_group: the port must not be 0",
            ),
        ];
        for (line, message) in cases {
            let text = format!("listener 1\nprotocol mqttsn\n{line}\n");
            assert_eq!(err(&text), format!("t.conf:3: {message}"), "{line}");
        }
    }

    #[test]
    fn gateway_options_elsewhere_name_file_and_line() {
        for key in OPTIONS.iter().filter(|k| !k.starts_with("psk_")) {
            let spec = crate::config::options::lookup(key)
                .unwrap_or_else(|| panic!("{key} not in the option table"));
            let line = format!("{key} {}", spec.example);
            for protocol in ["", "protocol mqtt\n", "protocol websockets\n"] {
                let text = format!("listener 1\n{protocol}multicast_group 225.1.1.1:1\n{line}\n");
                let at = 3 + usize::from(!protocol.is_empty());
                let first = if *key == "multicast_group" {
                    at
                } else {
                    at - 1
                };
                let expected = if *key == "multicast_group" {
                    key
                } else {
                    &"multicast_group"
                };
                assert_eq!(
                    err(&text),
                    format!("t.conf:{first}: {expected}: only for protocol mqttsn"),
                    "{text:?}"
                );
            }
            // Alone, on the default listener, in a block after a gateway.
            assert_eq!(
                err(&format!(
                    "listener 1\nprotocol mqttsn\nlistener 2\n\n{line}\n"
                )),
                format!("t.conf:5: {key}: only for protocol mqttsn")
            );
            assert_eq!(
                err(&format!("{line}\n")),
                format!("t.conf:1: {key}: only for protocol mqttsn")
            );
        }
        // The protocol that counts is the last one given.
        assert_eq!(
            err("listener 1\nprotocol mqttsn\ngateway_id 2\nprotocol mqtt\n"),
            "t.conf:3: gateway_id: only for protocol mqttsn"
        );
    }

    #[test]
    fn pre_shared_keys_only_on_gateways() {
        let message = "pre-shared keys are only available on protocol mqttsn listeners (DTLS); \
                       TLS listeners need certfile and keyfile";
        assert_eq!(
            err("listener 8883\ncertfile s\nkeyfile k\npsk_hint h\npsk_file f\n"),
            format!("t.conf:4: psk_hint: {message}")
        );
        assert_eq!(
            err("listener 1\nprotocol websockets\npsk_file f\n"),
            format!("t.conf:3: psk_file: {message}")
        );
    }

    #[test]
    fn psk_file_and_psk_hint_go_together() {
        assert_eq!(
            err("listener 1\npsk_file f\nprotocol mqttsn\n"),
            "t.conf:2: psk_file: requires psk_hint"
        );
        assert_eq!(
            err("listener 1\nprotocol mqttsn\n\npsk_hint h\n"),
            "t.conf:4: psk_hint: requires psk_file"
        );
        let config = ok("listener 1\npsk_hint h\npsk_file /etc/culex/psk\nprotocol mqttsn\n");
        let s = sn(&config, 0);
        assert_eq!(s.psk_file, Some(PathBuf::from("/etc/culex/psk")));
        assert_eq!(s.psk_hint.as_deref(), Some("h"));
        // Pre-shared keys alone make a DTLS listener without certificates.
        assert!(config.listeners[0].is_dtls());
        assert_eq!(config.listeners[0].tls, None);
    }

    #[test]
    fn listener_options_that_do_not_suit_a_gateway() {
        assert_eq!(
            err("listener 1\nmax_connections 10\nprotocol mqttsn\n"),
            "t.conf:2: max_connections: not for protocol mqttsn (use max_clients)"
        );
        for key in TLS_ONLY {
            let spec = crate::config::options::lookup(key)
                .unwrap_or_else(|| panic!("{key} not in the option table"));
            let text = format!(
                "listener 1\nprotocol mqttsn\ncertfile s\nkeyfile k\n{key} {}\n",
                spec.example
            );
            assert_eq!(
                err(&text),
                format!("t.conf:5: {key}: only for TLS listeners, not for protocol mqttsn")
            );
        }
        let config = ok("listener 1\nprotocol mqttsn\nmount_point a/\nsocket_domain ipv6\n");
        assert_eq!(config.listeners[0].mount_point.as_deref(), Some("a/"));
        assert_eq!(config.listeners[0].socket_domain, Some(SocketDomain::Ipv6));
    }

    #[test]
    fn multicast_group_and_the_listener_address() {
        let cases = [
            (
                "listener 1 ::1\nprotocol mqttsn\nmulticast_group 225.1.1.1:1883\n",
                "t.conf:3: multicast_group: an IPv4 group on a listener bound to ::1",
            ),
            (
                "listener 1 10.0.0.1\nprotocol mqttsn\nmulticast_group [ff02::1]:1883\n",
                "t.conf:3: multicast_group: an IPv6 group on a listener bound to 10.0.0.1",
            ),
            (
                "protocol mqttsn\nmulticast_group [ff02::1]:1883\nbind_address 10.0.0.1\n",
                "t.conf:2: multicast_group: an IPv6 group on a listener bound to 10.0.0.1",
            ),
            (
                "listener 1\nprotocol mqttsn\nmulticast_group [ff02::1]:1\nsocket_domain ipv4\n",
                "t.conf:3: multicast_group: an IPv6 group on a listener with socket_domain ipv4",
            ),
            (
                "listener 1\nprotocol mqttsn\nsocket_domain ipv6\nmulticast_group 225.1.1.1:1\n",
                "t.conf:4: multicast_group: an IPv4 group on a listener with socket_domain ipv6",
            ),
            (
                "listener 1\nprotocol mqttsn\nmulticast_interface ::1\n\
                 multicast_group 225.1.1.1:1\n",
                "t.conf:3: multicast_interface: ::1 is not an IPv4 address like the group",
            ),
            (
                "listener 1\nprotocol mqttsn\nmulticast_interface eth0\n",
                "t.conf:3: multicast_interface: requires multicast_group",
            ),
            (
                "listener 1\nprotocol mqttsn\nmulticast_ttl 2\n",
                "t.conf:3: multicast_ttl: requires multicast_group",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), message, "{text:?}");
        }
        // A host name is checked when it is resolved, not here; an interface name is kept.
        let config = ok("listener 1 gateway.local\nprotocol mqttsn\n\
                         multicast_group [ff02::1]:1883\nmulticast_interface eth0\n\
                         listener 2 ::\nprotocol mqttsn\nmulticast_group [ff15::9]:1\n\
                         listener 3\nprotocol mqttsn\nmulticast_group [ff02::1%2]:1883\n");
        assert_eq!(sn(&config, 0).multicast_interface.as_deref(), Some("eth0"));
        assert_eq!(sn(&config, 1).multicast_group, "[ff15::9]:1".parse().ok());
        let scoped = sn(&config, 2).multicast_group;
        assert_eq!(
            scoped.map(|g| g.to_string()).as_deref(),
            Some("[ff02::1%2]:1883")
        );
    }

    #[test]
    fn predefined_topics_are_read_when_loaded() {
        let text = "listener 1\nprotocol mqttsn\npredefined_topics topics.txt\n";
        let config =
            parse_with(text, &[("topics.txt", "7 a/b\n")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sn(&config, 0).predefined_topics,
            vec![(7, "a/b".to_owned())]
        );
        assert_eq!(
            err_with(text, &[("topics.txt", "7 a/b\n\n7 c\n")]),
            "topics.txt:3: topic id 7 is already defined at line 1"
        );
        assert_eq!(
            err(text),
            "t.conf:3: predefined_topics: cannot read topics.txt: \
             No such file or directory (os error 2)"
        );
        // On another listener the file is neither needed nor read.
        assert_eq!(
            err("listener 1\npredefined_topics topics.txt\n"),
            "t.conf:2: predefined_topics: only for protocol mqttsn"
        );
    }

    #[test]
    fn parse_alone_leaves_predefined_topics_unread() {
        let config = crate::config::parse(
            "listener 1\nprotocol mqttsn\npredefined_topics topics.txt\n",
            "t.conf",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(sn(&config, 0).predefined_topics.is_empty());
        assert_eq!(
            config.warnings,
            vec![
                "t.conf:3: predefined_topics topics.txt is only read when the configuration \
                 is loaded from a file"
            ]
        );
    }

    #[test]
    fn a_gateway_and_a_tcp_listener_may_share_a_port() {
        let config = ok("listener 1883\nlistener 1883\nprotocol mqttsn\n");
        assert_eq!(config.listeners.len(), 2);
        assert_eq!(
            err("listener 1883\nprotocol mqttsn\nlistener 1883\nprotocol mqttsn\n"),
            "t.conf:3: listener on port 1883 is already defined at t.conf:1"
        );
    }
}
