//! Parsing of mosquitto.conf-style text into a [`Config`]. Pure: no files, sockets, clocks or
//! logging; `include_dir` directories are handed back to the caller to read.

use super::http::{self, HttpDraft};
use super::mqttsn::{self, ReadFile, SnDraft};
use super::options::{self, Scope, Support};
use super::persistence;
use super::tls::{self, TlsDraft};
use super::{Config, ConfigError, ListenerConfig, Persistence, SocketDomain, DEFAULT_PORT};
use crate::codec::mqtt::QoS;
use crate::engine::limits::{Limits, PACKET_SIZE_MAX};

/// An `include_dir` line: the directory to read and where it was named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    pub dir: String,
    pub file: String,
    pub line: usize,
}

/// A listener and the place that declared it.
#[derive(Clone, Debug)]
struct Declared {
    listener: ListenerConfig,
    file: String,
    line: usize,
    /// Its TLS options, checked together by [`Parser::finish`].
    tls: TlsDraft,
    /// Its MQTT-SN options, and where each of its options was set.
    sn: SnDraft,
    /// Its HTTP API options.
    http: HttpDraft,
}

/// Builds a [`Config`] from one or more files parsed in turn, each continuing where the
/// previous one stopped (an included file is read as if appended to the one naming it).
#[derive(Clone, Debug)]
pub struct Parser {
    limits: Limits,
    persistence: Persistence,
    warnings: Vec<String>,
    /// The listener of the global `port` and `bind_address` options, and of listener options
    /// that come before any `listener` line.
    default: Option<Declared>,
    listeners: Vec<Declared>,
    /// Whether a `listener` line has opened a block that listener options now apply to.
    in_listener: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses one configuration file's text. `include_dir` lines are not followed (this function
/// reads no files); each leaves a warning. Use [`super::load`] to read a file with includes.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let mut parser = Parser::new();
    for include in parser.parse_into(text, file)? {
        parser.warnings.push(format!(
            "{}:{}: include_dir {} is only read when the configuration is loaded from a file",
            include.file, include.line, include.dir
        ));
    }
    parser.finish()
}

impl Parser {
    /// A parser holding the defaults of a configuration file: every limit at its default but
    /// `allow_anonymous` false, and no listener.
    pub fn new() -> Self {
        Self {
            limits: Limits {
                allow_anonymous: false,
                ..Limits::default()
            },
            persistence: Persistence::default(),
            warnings: Vec::new(),
            default: None,
            listeners: Vec::new(),
            in_listener: false,
        }
    }

    /// Parses `text`, named `file` in errors and warnings, on top of what came before.
    /// Returns the `include_dir` lines met, for the caller to read and parse in order.
    pub fn parse_into(&mut self, text: &str, file: &str) -> Result<Vec<Include>, ConfigError> {
        let mut includes = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            match self.option(file, number, key, rest.trim()) {
                Ok(Some(dir)) => includes.push(Include {
                    dir,
                    file: file.to_owned(),
                    line: number,
                }),
                Ok(None) => {}
                Err(message) => return Err(ConfigError::new(file, number, message)),
            }
        }
        Ok(includes)
    }

    /// The configuration parsed so far. With no listener configured, the broker listens on
    /// 127.0.0.1:1883. Predefined-topics files are not read (each leaves a warning): use
    /// [`Self::finish_reading`] for that.
    pub fn finish(self) -> Result<Config, ConfigError> {
        self.finish_with(None)
    }

    /// Like [`Self::finish`], reading the predefined-topics files of MQTT-SN listeners with
    /// `read`; errors in such a file name it and its line.
    pub fn finish_reading(self, read: ReadFile<'_>) -> Result<Config, ConfigError> {
        self.finish_with(Some(read))
    }

    fn finish_with(mut self, mut read_file: Option<ReadFile<'_>>) -> Result<Config, ConfigError> {
        let mut declared: Vec<Declared> = self.default.into_iter().chain(self.listeners).collect();
        for d in &mut declared {
            let draft = std::mem::take(&mut d.tls);
            d.listener.tls = draft
                .finish(&d.file, d.line)
                .map_err(|(file, line, message)| ConfigError::new(&file, line, message))?;
            let sn = std::mem::take(&mut d.sn);
            // A fresh reborrow per listener: the trait object's own lifetime is shortened.
            let read: Option<ReadFile<'_>> = read_file.as_mut().map(|r| &mut **r as _);
            d.listener.mqttsn = sn.finish(&d.listener, read, &mut self.warnings)?;
            let is_http = d.listener.protocol == super::ListenerProtocol::Http;
            let read: Option<ReadFile<'_>> = read_file.as_mut().map(|r| &mut **r as _);
            let draft = std::mem::take(&mut d.http);
            d.listener.http = draft.finish(is_http, read, &mut self.warnings)?;
            if is_http {
                http::check_listener(&mut d.listener, &d.file, d.line)?;
            }
        }
        for (i, later) in declared.iter().enumerate() {
            let l = &later.listener;
            // A UDP and a TCP socket may share a port.
            let twin = declared[..i].iter().find(|earlier| {
                let e = &earlier.listener;
                l.port != 0
                    && e.port == l.port
                    && e.is_datagram() == l.is_datagram()
                    && e.bind_address == l.bind_address
                    && e.socket_domain == l.socket_domain
            });
            if let Some(earlier) = twin {
                let message = format!(
                    "listener on port {} is already defined at {}:{}",
                    l.port, earlier.file, earlier.line
                );
                return Err(ConfigError::new(&later.file, later.line, message));
            }
        }
        let implicit_listener = declared.is_empty();
        let listeners = if implicit_listener {
            vec![ListenerConfig::local(DEFAULT_PORT)]
        } else {
            declared.into_iter().map(|d| d.listener).collect()
        };
        Ok(Config {
            listeners,
            limits: self.limits,
            warnings: self.warnings,
            implicit_listener,
            persistence: self.persistence,
            bridges: Vec::new(),
        })
    }

    /// Applies one option line. `Ok(Some(dir))` for `include_dir`.
    fn option(
        &mut self,
        file: &str,
        line: usize,
        key: &str,
        rest: &str,
    ) -> Result<Option<String>, String> {
        let Some(spec) = options::lookup(key) else {
            if options::is_not_yet_prefix(key) {
                return Err(format!("{key} is not supported in this version"));
            }
            return Err(format!("unknown option \"{key}\""));
        };
        let values: Vec<&str> = rest.split_whitespace().collect();
        match spec.support {
            Support::NotYet => return Err(format!("{key} is not supported in this version")),
            Support::Ignored => {
                if values.is_empty() {
                    return Err(format!("{key}: missing value"));
                }
                self.warnings.push(format!(
                    "{file}:{line}: option {key} is accepted and ignored"
                ));
                return Ok(None);
            }
            Support::Supported => {}
        }
        match key {
            "listener" => self.listener(file, line, &values)?,
            "include_dir" => {
                if rest.is_empty() {
                    return Err(format!("{key}: missing value"));
                }
                return Ok(Some(rest.to_owned()));
            }
            _ if spec.scope == Scope::Listener => {
                let value = single(key, &values)?;
                let target = self.declared_target(file, line);
                target.sn.note(key, file, line);
                if tls::OPTIONS.contains(&key) {
                    target.tls.set(key, value, file, line)?;
                } else if mqttsn::OPTIONS.contains(&key) {
                    target.sn.set(key, value)?;
                } else if http::OPTIONS.contains(&key) {
                    target.http.set(key, value, file, line)?;
                } else if key == "protocol" || key == "mount_point" {
                    tls::transport_option(&mut target.listener, key, value)?;
                } else {
                    listener_option(&mut target.listener, key, value)?;
                }
            }
            "port" | "bind_address" => {
                let value = single(key, &values)?;
                let target = self.default_listener(file, line);
                if key == "port" {
                    target.port = port(key, value)?;
                } else {
                    target.bind_address = Some(value.to_owned());
                }
            }
            "persistence" | "persistence_location" | "persistence_file" | "persistence_sync" => {
                persistence::option(&mut self.persistence, key, &values)?;
            }
            _ => limit_option(&mut self.limits, key, single(key, &values)?)?,
        }
        Ok(None)
    }

    fn listener(&mut self, file: &str, line: usize, values: &[&str]) -> Result<(), String> {
        let (port_text, address) = match values {
            [] => return Err("listener: missing port".to_owned()),
            [port] => (*port, None),
            [port, address] => (*port, Some(*address)),
            [_, _, extra, ..] => return Err(extra_value("listener", extra)),
        };
        let port = port("listener", port_text)?;
        if address.is_some_and(|a| a.starts_with('/')) {
            return Err("listener: unix sockets are not supported in this version".to_owned());
        }
        let listener = ListenerConfig::new(port, address.map(str::to_owned));
        self.listeners.push(Declared {
            listener,
            file: file.to_owned(),
            line,
            tls: TlsDraft::default(),
            sn: SnDraft::default(),
            http: HttpDraft::default(),
        });
        self.in_listener = true;
        Ok(())
    }

    /// The listener a listener-scoped option on this line configures.
    fn declared_target(&mut self, file: &str, line: usize) -> &mut Declared {
        match self.listeners.len().checked_sub(1) {
            Some(last) if self.in_listener => &mut self.listeners[last],
            _ => self.default_declared(file, line),
        }
    }

    /// The default listener, created on port 1883 by the first option that configures it.
    fn default_declared(&mut self, file: &str, line: usize) -> &mut Declared {
        self.default.get_or_insert_with(|| Declared {
            listener: ListenerConfig::new(DEFAULT_PORT, None),
            file: file.to_owned(),
            line,
            tls: TlsDraft::default(),
            sn: SnDraft::default(),
            http: HttpDraft::default(),
        })
    }

    fn default_listener(&mut self, file: &str, line: usize) -> &mut ListenerConfig {
        &mut self.default_declared(file, line).listener
    }
}

fn listener_option(target: &mut ListenerConfig, key: &str, value: &str) -> Result<(), String> {
    match key {
        "max_connections" => {
            target.max_connections = if value == "-1" {
                None
            } else {
                let n = number(value, 0, u64::from(u32::MAX)).ok_or_else(|| {
                    format!(
                        "max_connections: expected -1 or a number from 0 to {}, got \"{value}\"",
                        u32::MAX
                    )
                })?;
                Some(narrow(n))
            };
        }
        "socket_domain" => {
            target.socket_domain = Some(match value {
                "ipv4" => SocketDomain::Ipv4,
                "ipv6" => SocketDomain::Ipv6,
                _ => {
                    return Err(format!(
                        "socket_domain: expected ipv4 or ipv6, got \"{value}\""
                    ))
                }
            });
        }
        _ => return Err(format!("unknown option \"{key}\"")),
    }
    Ok(())
}

fn limit_option(limits: &mut Limits, key: &str, value: &str) -> Result<(), String> {
    let u16_max = u64::from(u16::MAX);
    let u32_max = u64::from(u32::MAX);
    match key {
        "allow_anonymous" => limits.allow_anonymous = boolean(key, value)?,
        "retain_available" => limits.retain_available = boolean(key, value)?,
        "max_inflight_messages" => limits.max_inflight_messages = ranged(key, value, u16_max)?,
        "max_queued_messages" => {
            limits.max_queued_messages = usize::try_from(ranged::<u64>(key, value, u32_max)?)
                .map_err(|_| range_error(key, value, 0, u32_max))?;
        }
        "max_queued_bytes" => limits.max_queued_bytes = ranged(key, value, u64::MAX)?,
        "message_size_limit" => {
            limits.message_size_limit = ranged(key, value, u64::from(PACKET_SIZE_MAX))?;
        }
        "max_packet_size" => {
            let n = number(value, 0, u64::from(PACKET_SIZE_MAX)).filter(|&n| n == 0 || n >= 20);
            let Some(n) = n else {
                return Err(format!(
                    "{key}: expected 0 or a number from 20 to {PACKET_SIZE_MAX}, got \"{value}\""
                ));
            };
            limits.max_packet_size = narrow(n);
        }
        "max_keepalive" => limits.max_keepalive = ranged(key, value, u16_max)?,
        "persistent_client_expiration" => {
            limits.persistent_client_expiration = Some(duration(key, value)?);
        }
        "sys_interval" => limits.sys_interval = ranged(key, value, u32_max)?,
        "max_topic_alias" => limits.max_topic_alias = ranged(key, value, u16_max)?,
        "max_qos" => {
            let qos = number(value, 0, 2)
                .and_then(|n| u8::try_from(n).ok())
                .and_then(QoS::from_u8)
                .ok_or_else(|| range_error(key, value, 0, 2))?;
            limits.max_qos = qos;
        }
        _ => return Err(format!("unknown option \"{key}\"")),
    }
    Ok(())
}

/// The only value of an option that takes one.
pub(super) fn single<'a>(key: &str, values: &[&'a str]) -> Result<&'a str, String> {
    match values {
        [] => Err(format!("{key}: missing value")),
        [value] => Ok(value),
        [_, extra, ..] => Err(extra_value(key, extra)),
    }
}

fn extra_value(key: &str, extra: &str) -> String {
    if extra.starts_with('#') {
        format!("{key}: unexpected extra value \"{extra}\" (a comment must start its own line)")
    } else {
        format!("{key}: unexpected extra value \"{extra}\"")
    }
}

pub(super) fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key}: expected true or false, got \"{value}\"")),
    }
}

fn port(key: &str, value: &str) -> Result<u16, String> {
    ranged(key, value, u64::from(u16::MAX))
}

/// A decimal number from 0 to `max`, converted to the field's type.
fn ranged<T: TryFrom<u64>>(key: &str, value: &str, max: u64) -> Result<T, String> {
    number(value, 0, max)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| range_error(key, value, 0, max))
}

fn range_error(key: &str, value: &str, min: u64, max: u64) -> String {
    format!("{key}: expected a number from {min} to {max}, got \"{value}\"")
}

/// `value` as a plain decimal number within `min..=max`.
pub(super) fn number(value: &str, min: u64, max: u64) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
}

/// Converts a number already checked against the target's range.
fn narrow<T: TryFrom<u64> + Default>(n: u64) -> T {
    T::try_from(n).unwrap_or_default()
}

/// A mosquitto duration, in seconds: a positive number followed by `h`, `d`, `w`, `m` (30
/// days) or `y` (365 days).
fn duration(key: &str, value: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{key}: expected a positive number followed by h, d, w, m or y (as in 2d), \
             got \"{value}\""
        )
    };
    let Some(unit) = value.chars().last() else {
        return Err(bad());
    };
    let seconds: u64 = match unit {
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'm' => 30 * 86_400,
        'y' => 365 * 86_400,
        _ => return Err(bad()),
    };
    number(value.strip_suffix(unit).unwrap_or_default(), 1, u64::MAX)
        .and_then(|n| n.checked_mul(seconds))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenerProtocol;

    /// What an MQTT-SN option needs around it: the protocol, a multicast group (for the other
    /// multicast options) and both PSK options (each requires the other).
    const SN_CONTEXT: &str = "protocol mqttsn\nmulticast_group 225.1.1.1:1883\n\
                              psk_hint h\npsk_file f\n";

    fn ok(text: &str) -> Config {
        parse(text, "t.conf").unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> String {
        match parse(text, "t.conf") {
            Ok(config) => panic!("{text:?} parsed: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn limits(text: &str) -> Limits {
        ok(text).limits
    }

    fn file_defaults() -> Limits {
        Limits {
            allow_anonymous: false,
            ..Limits::default()
        }
    }

    #[test]
    fn empty_file_listens_locally_and_refuses_anonymous() {
        let config = ok("");
        assert_eq!(config.listeners, vec![ListenerConfig::local(1883)]);
        assert!(config.implicit_listener);
        assert_eq!(config.limits, file_defaults());
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let config = ok("# a comment\n\n   \t\n  # indented comment\n\t max_qos   1  \r\n");
        assert_eq!(config.limits.max_qos, QoS::AtLeastOnce);
    }

    #[test]
    fn every_option_of_the_table_parses() {
        for spec in options::OPTIONS
            .iter()
            .filter(|s| s.support != Support::NotYet)
        {
            let line = format!("{}{} {}\n", context(spec.name), spec.name, spec.example);
            let mut parser = Parser::new();
            let parsed = parser
                .parse_into(&line, "t.conf")
                .and_then(|_| parser.finish());
            assert!(parsed.is_ok(), "{line:?}: {parsed:?}");
        }
    }

    #[test]
    fn tls_and_websocket_listeners() {
        let config = ok("listener 8883 127.0.0.1\n\
                         certfile s.crt\n\
                         keyfile s.key\n\
                         cafile ca.crt\n\
                         require_certificate true\n\
                         use_identity_as_username true\n\
                         listener 8084\n\
                         protocol websockets\n\
                         mount_point site1/\n");
        let tls = config.listeners[0]
            .tls
            .as_ref()
            .expect("TLS on the first listener");
        assert!(tls.require_certificate && tls.use_identity_as_username);
        assert_eq!(config.listeners[1].protocol, ListenerProtocol::WebSockets);
        assert_eq!(config.listeners[1].tls, None);
        assert_eq!(config.listeners[1].mount_point.as_deref(), Some("site1/"));
    }

    #[test]
    fn tls_errors_name_file_and_line() {
        assert_eq!(
            err("listener 8883\ncafile ca.crt\n"),
            "t.conf:2: cafile: requires certfile and keyfile"
        );
        assert_eq!(
            err("listener 1\nlistener 8883\ncertfile s.crt\n"),
            "t.conf:2: listener: certfile and keyfile must be given together"
        );
        assert_eq!(
            err("listener 8883\ncertfile s\nkeyfile k\nrequire_certificate true\n"),
            "t.conf:4: require_certificate: requires cafile or capath"
        );
        assert_eq!(
            err("listener 8883\ntls_version tlsv1.1\n"),
            "t.conf:2: tls_version: tlsv1.1 is not supported: culex requires TLS 1.2 or later"
        );
    }

    #[test]
    fn every_limit_is_applied() {
        let text = "allow_anonymous true\n\
                    max_inflight_messages 5\n\
                    max_queued_messages 6\n\
                    max_queued_bytes 7000\n\
                    message_size_limit 8000\n\
                    max_packet_size 9000\n\
                    max_keepalive 60\n\
                    persistent_client_expiration 2d\n\
                    sys_interval 0\n\
                    retain_available false\n\
                    max_topic_alias 0\n\
                    max_qos 0\n";
        let expected = Limits {
            allow_anonymous: true,
            max_inflight_messages: 5,
            max_queued_messages: 6,
            max_queued_bytes: 7000,
            message_size_limit: 8000,
            max_packet_size: 9000,
            max_keepalive: 60,
            persistent_client_expiration: Some(2 * 86_400),
            sys_interval: 0,
            retain_available: false,
            max_topic_alias: 0,
            max_qos: QoS::AtMostOnce,
        };
        assert_eq!(limits(text), expected);
    }

    #[test]
    fn limits_at_their_bounds() {
        let l = limits(
            "max_inflight_messages 65535\nmax_keepalive 0\nmax_packet_size 20\n\
             message_size_limit 268435455\nmax_queued_bytes 18446744073709551615\n\
             max_queued_messages 4294967295\nmax_topic_alias 65535\nmax_qos 2\n",
        );
        assert_eq!(l.max_inflight_messages, 65535);
        assert_eq!(l.max_keepalive, 0);
        assert_eq!(l.max_packet_size, 20);
        assert_eq!(l.message_size_limit, PACKET_SIZE_MAX);
        assert_eq!(l.max_queued_bytes, u64::MAX);
        assert_eq!(l.max_queued_messages, 4_294_967_295);
        assert_eq!(l.max_topic_alias, 65535);
        assert_eq!(l.max_qos, QoS::ExactlyOnce);
        assert_eq!(limits("max_packet_size 0\n").max_packet_size, 0);
    }

    #[test]
    fn durations() {
        let expiry = |v: &str| limits(&format!("persistent_client_expiration {v}\n"));
        assert_eq!(expiry("1h").persistent_client_expiration, Some(3600));
        assert_eq!(expiry("3d").persistent_client_expiration, Some(3 * 86_400));
        assert_eq!(expiry("2w").persistent_client_expiration, Some(14 * 86_400));
        assert_eq!(expiry("1m").persistent_client_expiration, Some(30 * 86_400));
        assert_eq!(
            expiry("1y").persistent_client_expiration,
            Some(365 * 86_400)
        );
    }

    #[test]
    fn the_last_value_wins() {
        assert_eq!(limits("max_qos 0\nmax_qos 1\n").max_qos, QoS::AtLeastOnce);
    }

    #[test]
    fn bad_lines_name_file_line_and_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "max_keepalive abc",
                "max_keepalive: expected a number from 0 to 65535, got \"abc\"",
            ),
            (
                "max_keepalive 65536",
                "max_keepalive: expected a number from 0 to 65535, got \"65536\"",
            ),
            (
                "max_keepalive -1",
                "max_keepalive: expected a number from 0 to 65535, got \"-1\"",
            ),
            (
                "max_keepalive +1",
                "max_keepalive: expected a number from 0 to 65535, got \"+1\"",
            ),
            ("max_keepalive", "max_keepalive: missing value"),
            (
                "max_keepalive 1 2",
                "max_keepalive: unexpected extra value \"2\"",
            ),
            (
                "max_keepalive 60 # one minute",
                "max_keepalive: unexpected extra value \"#\" (a comment must start its own line)",
            ),
            (
                "allow_anonymous yes",
                "allow_anonymous: expected true or false, got \"yes\"",
            ),
            (
                "retain_available 1",
                "retain_available: expected true or false, got \"1\"",
            ),
            (
                "max_qos 3",
                "max_qos: expected a number from 0 to 2, got \"3\"",
            ),
            (
                "max_inflight_messages 70000",
                "max_inflight_messages: expected a number from 0 to 65535, got \"70000\"",
            ),
            (
                "max_queued_messages 99999999999",
                "max_queued_messages: expected a number from 0 to 4294967295, got \"99999999999\"",
            ),
            (
                "max_queued_bytes 18446744073709551616",
                "max_queued_bytes: expected a number from 0 to 18446744073709551615, \
                 got \"18446744073709551616\"",
            ),
            (
                "message_size_limit 268435456",
                "message_size_limit: expected a number from 0 to 268435455, got \"268435456\"",
            ),
            (
                "max_packet_size 19",
                "max_packet_size: expected 0 or a number from 20 to 268435455, got \"19\"",
            ),
            (
                "max_topic_alias 1.5",
                "max_topic_alias: expected a number from 0 to 65535, got \"1.5\"",
            ),
            (
                "sys_interval 10s",
                "sys_interval: expected a number from 0 to 4294967295, got \"10s\"",
            ),
            (
                "persistent_client_expiration 60",
                "persistent_client_expiration: expected a positive number followed by \
                 h, d, w, m or y (as in 2d), got \"60\"",
            ),
            (
                "persistent_client_expiration 0d",
                "persistent_client_expiration: expected a positive number followed by \
                 h, d, w, m or y (as in 2d), got \"0d\"",
            ),
            (
                "persistent_client_expiration 99999999999999999y",
                "persistent_client_expiration: expected a positive number followed by \
                 h, d, w, m or y (as in 2d), got \"99999999999999999y\"",
            ),
            (
                "persistent_client_expiration d",
                "persistent_client_expiration: expected a positive number followed by \
                 h, d, w, m or y (as in 2d), got \"d\"",
            ),
            (
                "port 65536",
                "port: expected a number from 0 to 65535, got \"65536\"",
            ),
            ("port", "port: missing value"),
            ("bind_address", "bind_address: missing value"),
            (
                "bind_address a b",
                "bind_address: unexpected extra value \"b\"",
            ),
            ("listener", "listener: missing port"),
            (
                "listener x",
                "listener: expected a number from 0 to 65535, got \"x\"",
            ),
            (
                "listener 1883 ::1 extra",
                "listener: unexpected extra value \"extra\"",
            ),
            (
                "listener 0 /run/culex.sock",
                "listener: unix sockets are not supported in this version",
            ),
            (
                "protocol https",
                "protocol: expected mqtt, websockets, mqttsn or http, got \"https\"",
            ),
            (
                "max_connections -2",
                "max_connections: expected -1 or a number from 0 to 4294967295, got \"-2\"",
            ),
            (
                "socket_domain ipv5",
                "socket_domain: expected ipv4 or ipv6, got \"ipv5\"",
            ),
            ("include_dir", "include_dir: missing value"),
            ("log_dest", "log_dest: missing value"),
            ("no_such_option 1", "unknown option \"no_such_option\""),
            ("Max_qos 1", "unknown option \"Max_qos\""),
            (
                "password_file /etc/culex/passwd",
                "password_file is not supported in this version",
            ),
            (
                "persistence yes",
                "persistence: expected true or false, got \"yes\"",
            ),
            (
                "persistence_file a/b.redb",
                "persistence_file: a file name without a directory (see persistence_location), \
                 got \"a/b.redb\"",
            ),
            (
                "persistence_sync always",
                "persistence_sync: expected every-turn or interval MS, got \"always\"",
            ),
            (
                "persistence_sync interval 0",
                "persistence_sync: interval: expected milliseconds from 1 to 3600000, got \"0\"",
            ),
            (
                "crlfile /etc/culex/crl.pem",
                "crlfile is not supported in this version",
            ),
            (
                "plugin_opt_db x",
                "plugin_opt_db is not supported in this version",
            ),
        ];
        for (line, message) in cases {
            let text = format!("# header\n\nmax_qos 1\n{line}\nmax_qos 2\n");
            assert_eq!(err(&text), format!("t.conf:4: {message}"), "{line}");
        }
    }

    #[test]
    fn ignored_options_warn() {
        let config = ok("log_dest file /var/log/culex.log\nuser culex\nlog_type all\n");
        assert_eq!(
            config.warnings,
            vec![
                "t.conf:1: option log_dest is accepted and ignored",
                "t.conf:2: option user is accepted and ignored",
                "t.conf:3: option log_type is accepted and ignored",
            ]
        );
    }

    #[test]
    fn listeners_in_file_order_with_their_options() {
        let config = ok("listener 1884 127.0.0.1\n\
             max_connections 10\n\
             socket_domain ipv4\n\
             protocol mqtt\n\
             allow_anonymous true\n\
             listener 8883\n\
             socket_domain ipv6\n\
             listener 0 ::1\n");
        let mut first = ListenerConfig::local(1884);
        first.max_connections = Some(10);
        first.socket_domain = Some(SocketDomain::Ipv4);
        let mut second = ListenerConfig::new(8883, None);
        second.socket_domain = Some(SocketDomain::Ipv6);
        let third = ListenerConfig::new(0, Some("::1".to_owned()));
        assert_eq!(config.listeners, vec![first, second, third]);
        assert!(!config.implicit_listener);
        // A global option inside a listener block is still global.
        assert!(config.limits.allow_anonymous);
    }

    #[test]
    fn default_listener_from_global_options() {
        let config = ok("port 1884\nbind_address 10.0.0.1\nmax_connections 5\n");
        let mut expected = ListenerConfig::new(1884, Some("10.0.0.1".to_owned()));
        expected.max_connections = Some(5);
        assert_eq!(config.listeners, vec![expected]);

        let config = ok("max_connections -1\n");
        assert_eq!(config.listeners, vec![ListenerConfig::new(1883, None)]);

        let config = ok("bind_address 10.0.0.1\n");
        assert_eq!(
            config.listeners,
            vec![ListenerConfig::new(1883, Some("10.0.0.1".into()))]
        );
    }

    #[test]
    fn default_listener_comes_first() {
        let config = ok("max_connections 3\nlistener 1884\nmax_connections 4\nport 1885\n");
        let mut default = ListenerConfig::new(1885, None);
        default.max_connections = Some(3);
        let mut block = ListenerConfig::new(1884, None);
        block.max_connections = Some(4);
        assert_eq!(config.listeners, vec![default, block]);
    }

    #[test]
    fn duplicate_listeners_are_refused() {
        assert_eq!(
            err("listener 1884\nlistener 1884\n"),
            "t.conf:2: listener on port 1884 is already defined at t.conf:1"
        );
        assert_eq!(
            err("\nport 1884\nlistener 1884\n"),
            "t.conf:3: listener on port 1884 is already defined at t.conf:2"
        );
        let config = ok("listener 1884 127.0.0.1\nlistener 1884 ::1\nlistener 0\nlistener 0\n");
        assert_eq!(config.listeners.len(), 4);
        let config = ok("listener 1884\nsocket_domain ipv4\nlistener 1884\nsocket_domain ipv6\n");
        assert_eq!(config.listeners.len(), 2);
    }

    #[test]
    fn include_dir_is_returned_and_included_text_continues_the_block() {
        let mut parser = Parser::new();
        let includes = parser
            .parse_into(
                "listener 1884\ninclude_dir /etc/culex/conf d\n",
                "main.conf",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            includes,
            vec![Include {
                dir: "/etc/culex/conf d".to_owned(),
                file: "main.conf".to_owned(),
                line: 2
            }]
        );
        let nested = parser
            .parse_into("max_connections 7\nmax_qos 1\n", "/etc/culex/conf d/a.conf")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(nested.is_empty());
        let e = parser.parse_into("\nmax_qos 9\n", "/etc/culex/conf d/b.conf");
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err(
                "/etc/culex/conf d/b.conf:2: max_qos: expected a number from 0 to 2, got \"9\""
                    .to_owned()
            )
        );
        let config = parser.finish().unwrap_or_else(|e| panic!("{e}"));
        let mut expected = ListenerConfig::new(1884, None);
        expected.max_connections = Some(7);
        assert_eq!(config.listeners, vec![expected]);
        assert_eq!(config.limits.max_qos, QoS::AtLeastOnce);
    }

    #[test]
    fn parse_warns_that_it_does_not_follow_include_dir() {
        let config = ok("include_dir conf.d\n");
        assert_eq!(
            config.warnings,
            vec![
                "t.conf:1: include_dir conf.d is only read when the configuration is loaded \
                  from a file"
            ]
        );
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            "\u{feff}max_qos 1",
            "\0",
            "max_qos \u{1F600}",
            "persistent_client_expiration é",
        ] {
            let _ = parse(text, "t.conf");
        }
        assert_eq!(limits("\u{feff}max_qos 1\n").max_qos, QoS::AtLeastOnce);
    }

    /// What an option needs around it: a TLS option a listener with certificates, an
    /// MQTT-SN or API option a listener of its kind.
    fn context(name: &str) -> String {
        if tls::OPTIONS.contains(&name) {
            "listener 1\ncertfile c\nkeyfile k\ncafile a\n".to_owned()
        } else if mqttsn::OPTIONS.contains(&name) {
            format!("listener 1\n{SN_CONTEXT}")
        } else if name.starts_with("http_") {
            "listener 1\nprotocol http\n".to_owned()
        } else {
            String::new()
        }
    }

    /// Every commented-out option line of the examples is valid when uncommented.
    #[test]
    fn example_configuration_options_are_valid_when_uncommented() {
        for text in [
            include_str!("../../conf/culex.conf"),
            include_str!("../../conf/culex-tls.conf"),
        ] {
            for line in text.lines().filter_map(|l| l.strip_prefix("#")) {
                let Some(first) = line.split_whitespace().next() else {
                    continue;
                };
                if options::lookup(first).is_none() || line.starts_with(' ') {
                    continue;
                }
                let text = format!("{}{line}\n", context(first));
                let parsed = parse(&text, "culex.conf");
                assert!(parsed.is_ok(), "{line:?}: {parsed:?}");
            }
        }
    }
}
