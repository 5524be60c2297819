//! Parsing of mosquitto.conf-style text into a [`Config`]. Pure: no files, sockets, clocks or
//! logging; `include_dir` directories are handed back to the caller to read.

use super::bridge::{Applied, BridgeConfig, BridgeDraft};
use super::http::{self, HttpDraft};
use super::mqttsn::{self, ReadFile, SnDraft};
use super::options::{self, Scope, Support};
use super::persistence;
use super::security::{self, Block, SecurityDraft};
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

/// A bridge and the place that declared it.
#[derive(Clone, Debug)]
struct Placed<T> {
    bridge: T,
    file: String,
    line: usize,
}

/// Builds a [`Config`] from one or more files parsed in turn, each continuing where the
/// previous one stopped (an included file is read as if appended to the one naming it).
#[derive(Clone, Debug)]
pub struct Parser {
    limits: Limits,
    persistence: Persistence,
    deterministic: Option<u64>,
    trace_file: Option<String>,
    warnings: Vec<String>,
    /// The listener of the global `port` and `bind_address` options, and of listener options
    /// that come before any `listener` line.
    default: Option<Declared>,
    listeners: Vec<Declared>,
    /// Whether a `listener` line has opened a block that listener options now apply to.
    in_listener: bool,
    /// The bridges of the `connection` blocks closed so far.
    bridges: Vec<Placed<BridgeConfig>>,
    /// The open `connection` block, until the next `connection` or `listener` line.
    bridge: Option<Placed<BridgeDraft>>,
    /// The authentication options, with where each stood.
    security: SecurityDraft,
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
            deterministic: None,
            trace_file: None,
            warnings: Vec::new(),
            default: None,
            listeners: Vec::new(),
            in_listener: false,
            bridges: Vec::new(),
            bridge: None,
            security: SecurityDraft::default(),
        }
    }

    /// Parses `text`, named `file` in errors and warnings, on top of what came before.
    /// Returns the `include_dir` lines met, for the caller to read and parse in order.
    pub fn parse_into(&mut self, text: &str, file: &str) -> Result<Vec<Include>, ConfigError> {
        let mut includes = Vec::new();
        for (number, line) in content_lines(text) {
            let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            if key == "listener" || key == "connection" {
                self.close_bridge()?;
            }
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
        self.close_bridge()?;
        let has_default = self.default.is_some();
        let mut declared: Vec<Declared> = self.default.into_iter().chain(self.listeners).collect();
        for d in &mut declared {
            let draft = std::mem::take(&mut d.tls);
            d.listener.tls = draft
                .finish(&d.file, d.line)
                .map_err(|(file, line, message)| ConfigError::new(&file, line, message))?;
            let bound_given = d.sn.noted("max_connections");
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
                if !bound_given {
                    d.listener.max_connections = Some(super::HTTP_MAX_CONNECTIONS);
                }
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
        let read: Option<ReadFile<'_>> = read_file.as_mut().map(|r| &mut **r as _);
        let security = self.security.finish(
            self.limits.allow_anonymous,
            has_default,
            listeners.len(),
            implicit_listener,
            read,
            &mut self.warnings,
        )?;
        Ok(Config {
            listeners,
            security,
            limits: self.limits,
            warnings: self.warnings,
            implicit_listener,
            persistence: self.persistence,
            deterministic: self.deterministic,
            trace_file: self.trace_file,
            bridges: self.bridges.into_iter().map(|b| b.bridge).collect(),
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
        if spec.scope == Scope::Bridge {
            return self.bridge_option(file, line, key, rest).map(|()| None);
        }
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
            "connection" => self.connection(file, line, rest)?,
            "include_dir" => {
                if rest.is_empty() {
                    return Err(format!("{key}: missing value"));
                }
                return Ok(Some(rest.to_owned()));
            }
            _ if spec.scope == Scope::Listener => {
                if self.bridge.is_some() {
                    return Err(format!("{key}: not a bridge option"));
                }
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
            "trace_file" => {
                let value = single(key, &values)?;
                self.trace_file = Some(value.to_owned());
            }
            "deterministic" => {
                let value = single(key, &values)?;
                let seed = value
                    .parse::<u64>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        format!(
                            "{key}: expected a number from 0 to {}, got \"{value}\"",
                            u64::MAX
                        )
                    })?;
                self.deterministic = Some(seed);
            }
            _ if security::OPTIONS.contains(&key) => {
                let value = single(key, &values)?;
                let block = match self.listeners.len().checked_sub(1) {
                    Some(last) if self.in_listener => Block::Listener(last),
                    _ => Block::Outside,
                };
                self.security.set(key, value, block, file, line)?;
                if key == "allow_anonymous" {
                    limit_option(&mut self.limits, key, value)?;
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

    /// A `connection` line: opens a bridge block (the previous one is already closed).
    fn connection(&mut self, file: &str, line: usize, name: &str) -> Result<(), String> {
        let draft = BridgeDraft::new(name)?;
        if let Some(earlier) = self.bridges.iter().find(|b| b.bridge.name == draft.name()) {
            return Err(format!(
                "connection: bridge \"{}\" is already defined at {}:{}",
                draft.name(),
                earlier.file,
                earlier.line
            ));
        }
        self.bridge = Some(Placed {
            bridge: draft,
            file: file.to_owned(),
            line,
        });
        self.in_listener = false;
        Ok(())
    }

    /// A bridge option: it belongs to the open `connection` block.
    fn bridge_option(
        &mut self,
        file: &str,
        line: usize,
        key: &str,
        rest: &str,
    ) -> Result<(), String> {
        let Some(open) = self.bridge.as_mut() else {
            return Err(format!("{key}: only allowed in a connection block"));
        };
        if open.bridge.option(key, rest)? == Applied::Ignored {
            self.warnings.push(format!(
                "{file}:{line}: option {key} is accepted and ignored"
            ));
        }
        Ok(())
    }

    /// Ends the open `connection` block, if any; its errors name its `connection` line.
    fn close_bridge(&mut self) -> Result<(), ConfigError> {
        let Some(open) = self.bridge.take() else {
            return Ok(());
        };
        let bridge = open
            .bridge
            .finish()
            .map_err(|message| ConfigError::new(&open.file, open.line, message))?;
        self.bridges.push(Placed {
            bridge,
            file: open.file,
            line: open.line,
        });
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
        "connection_messages" => limits.connection_messages = boolean(key, value)?,
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
        _ => return super::bounds::option(limits, key, value),
    }
    Ok(())
}

/// The only value of an option that takes one.
/// The lines of a file in the configuration's format that say something, each with its
/// number (from 1): trimmed, a leading byte order mark removed, blank lines and `#` comments
/// skipped.
pub fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let lines = text.lines().enumerate();
    lines
        .map(|(index, raw)| (index + 1, raw.trim_start_matches('\u{feff}').trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

pub(super) fn single<'a>(key: &str, values: &[&'a str]) -> Result<&'a str, String> {
    match values {
        [] => Err(format!("{key}: missing value")),
        [value] => Ok(value),
        [_, extra, ..] => Err(extra_value(key, extra)),
    }
}

pub(super) fn extra_value(key: &str, extra: &str) -> String {
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

pub(super) fn range_error(key: &str, value: &str, min: u64, max: u64) -> String {
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
mod tests;
