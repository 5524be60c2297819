//! Bridges: `connection` blocks of the configuration (mosquitto.conf syntax) and the same
//! settings given over the API.
//!
//! Pure: the parsing of the block's options lives here ([`BridgeDraft`], used line by line by
//! the file parser, and [`bridge_from_options`] for the API); files named by the options are
//! read only by the transport when the bridge connects.

use core::net::SocketAddr;
use std::path::PathBuf;

use super::options::{self, Scope, Support};
use super::parse::{boolean, extra_value, number, range_error, single};
use super::DEFAULT_PORT;
use crate::codec::mqtt::topic::{valid_topic_filter, valid_topic_name};
use crate::codec::mqtt::QoS;
use sn::{group, hex};

mod sn;

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
    /// The topic pattern (a filter; may be empty when a prefix is given: the prefixes are then
    /// the whole topics).
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
    /// `bridge_insecure true`: with `cafile` or `capath`, the certificate is verified but not
    /// the remote broker's host name against it; without either, the certificate is not
    /// verified at all.
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
    /// `None`: TLS off (none of `bridge_cafile`, `bridge_capath`, `bridge_certfile` and
    /// `bridge_insecure true`).
    pub tls: Option<BridgeTls>,
    /// Client identifier on the remote broker (`remote_clientid`; mosquitto's default is
    /// `HOSTNAME.NAME`, culex's `culex.NAME`).
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
    /// What the remote end is: an MQTT broker, or a web service (`bridge_type http`).
    pub kind: BridgeKind,
}

/// What a bridge talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeKind {
    /// An MQTT broker (`bridge_type mqtt`, the default).
    Mqtt,
    /// A web service receiving events as HTTP POSTs (`bridge_type http`).
    Http(WebhookConfig),
    /// An MQTT-SN 1.2 gateway over UDP, culex being its client (`bridge_type mqttsn`).
    MqttSn(SnBridgeConfig),
}

/// The settings of a bridge to an MQTT-SN gateway. Its address is the bridge's only
/// `address`; without one the gateway is discovered on `multicast_group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnBridgeConfig {
    /// `bridge_multicast_group`: where SEARCHGW goes and GWINFO and ADVERTISE are heard.
    pub multicast_group: Option<SocketAddr>,
    /// `bridge_search_radius` (default 1): the radius of SEARCHGW.
    pub search_radius: u8,
    /// `bridge_gateway_id`: only the gateway of this id is used.
    pub gateway_id: Option<u8>,
    /// DTLS, for the reactor: `None` for plain UDP.
    pub dtls: Option<SnDtls>,
    /// `bridge_predefined_topic`: the topic ids agreed with the gateway (its predefined-topics
    /// file), sorted by id; each id and each topic once.
    pub predefined: Vec<(u16, String)>,
}

/// How a bridge to an MQTT-SN gateway secures its datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnDtls {
    /// Certificates (`bridge_cafile`, `bridge_insecure` and friends).
    Certificates(BridgeTls),
    /// A pre-shared key (`bridge_identity`, `bridge_psk`).
    Psk { identity: String, key: Vec<u8> },
}

/// The events a webhook posts (`bridge_events`, comma-separated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// `message`: a message published on a topic of the bridge's `topic` lines.
    Message,
    /// `connected`: a client connected.
    Connected,
    /// `disconnected`: a client's connection ended.
    Disconnected,
    /// `subscribed`: a client subscribed.
    Subscribed,
}

/// The settings of a webhook bridge (`bridge_type http`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `bridge_url http[s]://host[:port][/path]`: the address of the bridge is its host and
    /// port; TLS when https (with the `bridge_cafile` settings).
    pub path: String,
    /// The `Host` header.
    pub host: String,
    pub https: bool,
    /// Default `message`.
    pub events: Vec<WebhookEvent>,
    /// `bridge_hmac_secret`: each body is signed, `X-Culex-Signature: sha256=HEX`.
    pub hmac_secret: Option<String>,
    /// `bridge_batch N` (default 1): events per POST; above 1 the body is a JSON array.
    pub batch: usize,
    /// `bridge_timeout SECS` (default 10): a POST not answered in time is retried.
    pub timeout_secs: u32,
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
            kind: BridgeKind::Mqtt,
        }
    }
}

/// What [`BridgeDraft::option`] did with an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Checked and set.
    Set,
    /// Accepted and ignored (`start_type automatic`, `bridge_attempt_unsubscribe`); a file
    /// parser warns about it.
    Ignored,
}

/// A bridge whose options are being read, one `(option, value text)` at a time, exactly as
/// the lines of a `connection` block; [`Self::finish`] checks them together and applies the
/// defaults that depend on other options, so their order does not matter.
#[derive(Clone, Debug)]
pub struct BridgeDraft {
    config: BridgeConfig,
    tls: BridgeTls,
    /// `local_clientid` and `notification_topic` when set; else derived from
    /// `remote_clientid` by [`Self::finish`].
    local_clientid: Option<String>,
    notification_topic: Option<String>,
    /// `bridge_type http`, `bridge_type mqttsn`.
    http: bool,
    sn: bool,
    /// The MQTT-SN settings, used only by an mqttsn bridge, and its PSK.
    sn_draft: SnBridgeConfig,
    psk: (Option<String>, Option<Vec<u8>>),
    /// The first option given that an mqttsn bridge refuses.
    not_sn: Option<String>,
    /// The webhook settings (`bridge_url` and the other `bridge_type http` options), used
    /// only by an http bridge.
    webhook: WebhookDraft,
    /// The first option given that only an MQTT bridge takes: [`Self::finish`] refuses it
    /// for an http bridge. (An MQTT bridge leaves the http bridge options unused.)
    mqtt_only: Option<String>,
}

/// The options of a webhook bridge as read so far.
#[derive(Clone, Debug)]
struct WebhookDraft {
    /// `bridge_url`: the address, the `Host` header, the path and whether it is https.
    url: Option<(RemoteAddress, String, String, bool)>,
    events: Vec<WebhookEvent>,
    hmac_secret: Option<String>,
    batch: usize,
    timeout_secs: u32,
}

impl Default for WebhookDraft {
    fn default() -> Self {
        Self {
            url: None,
            events: vec![WebhookEvent::Message],
            hmac_secret: None,
            batch: 1,
            timeout_secs: 10,
        }
    }
}

/// Options only an MQTT bridge takes (`address`, `addresses`: an http bridge has
/// `bridge_url`).
#[rustfmt::skip]
const MQTT_ONLY: &[&str] = &[
    "address", "addresses", "round_robin", "bridge_protocol_version", "remote_clientid",
    "clientid", "remote_username", "username", "remote_password", "password", "cleansession",
    "keepalive_interval", "try_private", "notifications", "notification_topic",
    "notifications_local_only", "bridge_transport",
];

/// Options an MQTT bridge takes and an mqttsn bridge refuses.
#[rustfmt::skip]
const NOT_SN: &[&str] = &[
    "round_robin", "bridge_protocol_version", "remote_username", "username", "remote_password",
    "password", "try_private", "notifications_local_only", "bridge_transport",
];

impl BridgeDraft {
    /// A bridge named `name` (the value of `connection`): non-empty, without spaces, `/`,
    /// `+` or `#`.
    pub fn new(name: &str) -> Result<Self, String> {
        let name = single("connection", &name.split_whitespace().collect::<Vec<_>>())?;
        if name.contains(['/', '+', '#', '\0']) {
            return Err(format!(
                "connection: expected a name without /, + or #, got \"{name}\""
            ));
        }
        let mut config = BridgeConfig::new(name, "", DEFAULT_PORT);
        config.addresses.clear();
        Ok(Self {
            config,
            tls: BridgeTls::default(),
            local_clientid: None,
            notification_topic: None,
            http: false,
            sn: false,
            sn_draft: SnBridgeConfig {
                multicast_group: None,
                search_radius: 1,
                gateway_id: None,
                dtls: None,
                predefined: Vec::new(),
            },
            psk: (None, None),
            not_sn: None,
            webhook: WebhookDraft::default(),
            mqtt_only: None,
        })
    }

    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Applies one option of the block: `key` is its name, `text` the rest of its line.
    /// Options that are not bridge options are refused, as are the bridge options of
    /// mosquitto that culex does not implement.
    pub fn option(&mut self, key: &str, text: &str) -> Result<Applied, String> {
        let Some(spec) = options::lookup(key) else {
            return Err(format!("unknown option \"{key}\""));
        };
        if spec.scope != Scope::Bridge {
            return Err(format!("{key}: not a bridge option"));
        }
        let values: Vec<&str> = text.split_whitespace().collect();
        match spec.support {
            Support::NotYet => Err(format!("{key} is not supported in this version")),
            Support::Ignored => ignored(key, &values),
            Support::Supported => {
                if MQTT_ONLY.contains(&key) {
                    self.mqtt_only.get_or_insert_with(|| key.to_owned());
                }
                if NOT_SN.contains(&key) {
                    self.not_sn.get_or_insert_with(|| key.to_owned());
                }
                self.set(key, &values)?;
                Ok(Applied::Set)
            }
        }
    }

    fn set(&mut self, key: &str, values: &[&str]) -> Result<(), String> {
        let c = &mut self.config;
        match key {
            "address" | "addresses" => {
                if values.is_empty() {
                    return Err(format!("{key}: missing value"));
                }
                c.addresses = values
                    .iter()
                    .map(|v| remote_address(key, v, DEFAULT_PORT))
                    .collect::<Result<_, _>>()?;
            }
            "topic" => c.topics.push(topic(values)?),
            "bridge_predefined_topic" => self.predefined_topic(values)?,
            "bridge_events" => self.webhook.events = events(values)?,
            "bridge_transport" => c.transport = transport(values)?,
            "restart_timeout" => {
                (c.restart_timeout_base_secs, c.restart_timeout_cap_secs) = restart(values)?;
            }
            _ => self.set_single(key, single(key, values)?)?,
        }
        Ok(())
    }

    fn set_single(&mut self, key: &str, value: &str) -> Result<(), String> {
        let c = &mut self.config;
        let tls = &mut self.tls;
        match key {
            "round_robin" => c.round_robin = boolean(key, value)?,
            "bridge_protocol_version" => {
                c.protocol = match value {
                    "mqttv311" => BridgeProtocol::V311,
                    "mqttv50" => BridgeProtocol::V5,
                    "mqttv31" => return Err(format!("{key}: mqttv31 is not supported")),
                    _ => {
                        return Err(format!(
                            "{key}: expected mqttv311 or mqttv50, got \"{value}\""
                        ))
                    }
                };
            }
            "remote_clientid" | "clientid" => c.remote_clientid = text(key, value)?,
            "local_clientid" => self.local_clientid = Some(text(key, value)?),
            "remote_username" | "username" => c.remote_username = Some(text(key, value)?),
            "remote_password" | "password" => c.remote_password = Some(text(key, value)?),
            "cleansession" => c.cleansession = boolean(key, value)?,
            "keepalive_interval" => c.keepalive_secs = ranged(key, value, 5, u16::MAX.into())?,
            "try_private" => c.try_private = boolean(key, value)?,
            "notifications" => c.notifications = boolean(key, value)?,
            "notifications_local_only" => c.notifications_local_only = boolean(key, value)?,
            "notification_topic" => {
                if !valid_topic_name(value) {
                    return Err(format!(
                        "{key}: expected a topic name without + or #, got \"{value}\""
                    ));
                }
                self.notification_topic = Some(value.to_owned());
            }
            "bridge_max_queued_messages" => {
                c.max_queued_messages = ranged(key, value, 0, u32::MAX.into())?;
            }
            "bridge_type" => {
                (self.http, self.sn) = match value {
                    "mqtt" => (false, false),
                    "http" => (true, false),
                    "mqttsn" => (false, true),
                    _ => {
                        return Err(format!(
                            "{key}: expected mqtt, http or mqttsn, got \"{value}\""
                        ))
                    }
                };
            }
            "bridge_multicast_group" => self.sn_draft.multicast_group = Some(group(value)?),
            "bridge_search_radius" => self.sn_draft.search_radius = ranged(key, value, 0, 255)?,
            "bridge_gateway_id" => self.sn_draft.gateway_id = Some(ranged(key, value, 0, 255)?),
            "bridge_identity" => self.psk.0 = Some(text(key, value)?),
            "bridge_psk" => self.psk.1 = Some(hex(value)?),
            "bridge_url" => self.webhook.url = Some(url(value)?),
            "bridge_hmac_secret" => {
                if value.is_empty() {
                    return Err(format!("{key}: missing value"));
                }
                self.webhook.hmac_secret = Some(value.to_owned());
            }
            "bridge_batch" => self.webhook.batch = ranged(key, value, 1, 1000)?,
            "bridge_timeout" => self.webhook.timeout_secs = ranged(key, value, 1, 600)?,
            "bridge_cafile" => tls.cafile = Some(PathBuf::from(value)),
            "bridge_capath" => tls.capath = Some(PathBuf::from(value)),
            "bridge_certfile" => tls.certfile = Some(PathBuf::from(value)),
            "bridge_keyfile" => tls.keyfile = Some(PathBuf::from(value)),
            "bridge_insecure" => tls.insecure = boolean(key, value)?,
            "bridge_alpn" => {
                if value.len() > 255 {
                    return Err(format!(
                        "{key}: expected a protocol name of at most 255 bytes, got \"{value}\""
                    ));
                }
                tls.alpn = Some(value.to_owned());
            }
            _ => return Err(format!("unknown option \"{key}\"")),
        }
        Ok(())
    }

    /// The bridge, once its options are checked together: it needs an address, and the TLS
    /// options must fit. `local_clientid` and `notification_topic` not set are derived from
    /// `remote_clientid` here. The error concerns the block as a whole (a file parser
    /// reports it at the `connection` line).
    pub fn finish(self) -> Result<BridgeConfig, String> {
        if self.sn {
            return self.finish_sn();
        }
        if !self.sn_draft.predefined.is_empty() {
            return fail("bridge_predefined_topic: only for bridge_type mqttsn");
        }
        if self.psk.0.is_some() || self.psk.1.is_some() {
            return fail("bridge_identity, bridge_psk: only for bridge_type mqttsn");
        }
        if self.http {
            return self.finish_http();
        }
        let mut config = self.config;
        if config.addresses.is_empty() {
            return Err(format!(
                "connection: bridge \"{}\" has no address",
                config.name
            ));
        }
        if config.protocol == BridgeProtocol::V311
            && config.remote_password.is_some()
            && config.remote_username.is_none()
        {
            return fail("connection: remote_password requires remote_username with mqttv311");
        }
        let tls = self.tls;
        let on = tls_on(&tls)?;
        if !on && tls.alpn.is_some() {
            return fail(
                "connection: bridge_alpn requires TLS (bridge_cafile, bridge_capath \
                 or bridge_insecure true)",
            );
        }
        config.tls = on.then_some(tls);
        derive_ids(&mut config, self.local_clientid, self.notification_topic);
        Ok(config)
    }
}

impl BridgeDraft {
    /// [`Self::finish`] for `bridge_type http`: `bridge_url` is required, the MQTT-only
    /// options are refused, `topic` lines go out (their remote prefix is not used) and are
    /// required by the `message` event, and https needs a way to check the certificate.
    fn finish_http(self) -> Result<BridgeConfig, String> {
        if let Some(key) = &self.mqtt_only {
            return Err(match key.as_str() {
                "address" | "addresses" => {
                    format!("{key}: not for bridge_type http (use bridge_url)")
                }
                _ => format!("{key}: not for bridge_type http"),
            });
        }
        let mut config = self.config;
        let w = self.webhook;
        let Some((address, host, path, https)) = w.url else {
            return Err(format!(
                "connection: bridge \"{}\" of bridge_type http has no bridge_url",
                config.name
            ));
        };
        if let Some(t) = config.topics.iter().find(|t| t.direction == Direction::In) {
            return Err(format!(
                "topic: {}: direction in is not for bridge_type http (out or both)",
                t.pattern
            ));
        }
        if w.events.contains(&WebhookEvent::Message) && config.topics.is_empty() {
            return Err(format!(
                "connection: bridge \"{}\" posts messages (bridge_events message) but has \
                 no topic line",
                config.name
            ));
        }
        let tls = self.tls;
        if tls.certfile.is_some() != tls.keyfile.is_some() {
            return fail("connection: bridge_certfile and bridge_keyfile must be given together");
        }
        let has_ca = tls.cafile.is_some() || tls.capath.is_some();
        let any_tls = has_ca || tls.certfile.is_some() || tls.insecure || tls.alpn.is_some();
        if !https && any_tls {
            return fail(
                "connection: the TLS options (bridge_cafile and friends) need an https bridge_url",
            );
        }
        if https && !has_ca && !tls.insecure {
            return fail(
                "connection: an https bridge_url needs bridge_cafile or bridge_capath \
                 (or bridge_insecure true)",
            );
        }
        config.tls = https.then_some(tls);
        config.addresses = vec![address];
        // The remote side is not an MQTT broker: no notifications, no remote session.
        config.notifications = false;
        config.local_clientid = self
            .local_clientid
            .unwrap_or_else(|| format!("local.{}", config.remote_clientid));
        config.kind = BridgeKind::Http(WebhookConfig {
            path,
            host,
            https,
            events: w.events,
            hmac_secret: w.hmac_secret,
            batch: w.batch,
            timeout_secs: w.timeout_secs,
        });
        Ok(config)
    }
}

/// The defaults of `local_clientid` and `notification_topic`, from `remote_clientid`.
fn derive_ids(config: &mut BridgeConfig, local: Option<String>, topic: Option<String>) {
    let id = &config.remote_clientid;
    config.local_clientid = local.unwrap_or_else(|| format!("local.{id}"));
    config.notification_topic =
        topic.unwrap_or_else(|| format!("$SYS/broker/connection/{id}/state"));
}

/// Whether the certificate options turn TLS (or DTLS) on: the certificate and key go
/// together, and a certificate needs a way to check the remote one.
fn tls_on(tls: &BridgeTls) -> Result<bool, String> {
    if tls.certfile.is_some() != tls.keyfile.is_some() {
        return fail("connection: bridge_certfile and bridge_keyfile must be given together");
    }
    let has_ca = tls.cafile.is_some() || tls.capath.is_some();
    let on = has_ca || tls.certfile.is_some() || tls.insecure;
    if on && !has_ca && !tls.insecure {
        return fail(
            "connection: bridge_certfile: the remote broker's certificate needs \
             bridge_cafile or bridge_capath (or bridge_insecure true)",
        );
    }
    Ok(on)
}

/// An error of this text.
fn fail<T>(why: &str) -> Result<T, String> {
    Err(why.to_owned())
}

/// A decimal number within `min..=max`, in the field's type.
fn ranged<T: TryFrom<u64>>(key: &str, value: &str, min: u64, max: u64) -> Result<T, String> {
    number(value, min, max)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| range_error(key, value, min, max))
}

/// The bridge named `name` with `options`, each an option name and its value as it would
/// follow the name on a configuration line (a repeated option, such as `topic`, comes once
/// per value). Options accepted and ignored are dropped without a warning.
pub fn bridge_from_options(
    name: &str,
    options: &[(String, String)],
) -> Result<BridgeConfig, String> {
    let mut draft = BridgeDraft::new(name)?;
    for (key, value) in options {
        draft.option(key, value.trim())?;
    }
    draft.finish()
}

/// `start_type automatic` and `bridge_attempt_unsubscribe`: accepted, but they change
/// nothing in culex.
fn ignored(key: &str, values: &[&str]) -> Result<Applied, String> {
    let value = single(key, values)?;
    match key {
        "start_type" => match value {
            "automatic" => {}
            "lazy" | "once" | "manual" => {
                return Err(format!("{key} {value} is not supported in this version"))
            }
            _ => {
                return Err(format!(
                    "{key}: expected automatic, lazy, once or manual, got \"{value}\""
                ))
            }
        },
        "bridge_attempt_unsubscribe" => {
            boolean(key, value)?;
        }
        _ => {}
    }
    Ok(Applied::Ignored)
}

/// An IPv6 address in text form: eight groups of 1 to 4 hex digits separated by `:`, one
/// run of groups shortened to `::`, the last two groups possibly in dotted IPv4 form.
fn is_ipv6(text: &str) -> bool {
    let group = |g: &str| (1..=4).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_hexdigit());
    let ipv4 = |g: &str| {
        let parts: Vec<&str> = g.split('.').collect();
        parts.len() == 4
            && parts
                .iter()
                .all(|p| number(p, 0, 255).is_some() && p.len() <= 3)
    };
    // The groups of one side of `::`, counted, IPv4 tail as two; `None` when invalid.
    let count = |side: &str, last: bool| -> Option<usize> {
        if side.is_empty() {
            return Some(0);
        }
        let groups: Vec<&str> = side.split(':').collect();
        let mut n = 0;
        for (i, g) in groups.iter().enumerate() {
            if last && i + 1 == groups.len() && ipv4(g) {
                n += 2;
            } else if group(g) {
                n += 1;
            } else {
                return None;
            }
        }
        Some(n)
    };
    match text.split_once("::") {
        Some((head, tail)) => matches!(
            (count(head, false), count(tail, true)),
            (Some(h), Some(t)) if h + t <= 7
        ),
        None => count(text, true) == Some(8),
    }
}

/// A client identifier, user name or password: an MQTT string.
fn text(key: &str, value: &str) -> Result<String, String> {
    if value.len() > usize::from(u16::MAX) {
        return Err(format!("{key}: longer than 65535 bytes"));
    }
    Ok(value.to_owned())
}

/// `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6 address; the port defaults
/// to `default_port`.
fn remote_address(key: &str, text: &str, default_port: u16) -> Result<RemoteAddress, String> {
    let bad = || {
        format!(
            "{key}: expected host[:port], [IPv6 address]:port or an IPv6 address, got \"{text}\""
        )
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        if !is_ipv6(host) {
            return Err(bad());
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if text.matches(':').count() > 1 {
        if !is_ipv6(text) {
            return Err(bad());
        }
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(['[', ']', '/', '\0']) {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(p) => number(p, 1, u64::from(u16::MAX))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("{key}: expected a port from 1 to 65535, got \"{p}\""))?,
    };
    Ok(RemoteAddress {
        host: host.to_owned(),
        port,
    })
}

/// `bridge_url http[s]://host[:port][/path]`: the address (port 80 or 443 by default),
/// the `Host` header (with the port when it is not the default), the path (default `/`)
/// and whether it is https.
fn url(value: &str) -> Result<(RemoteAddress, String, String, bool), String> {
    const KEY: &str = "bridge_url";
    let bad = |why: &str| format!("{KEY}: {why}, got \"{value}\"");
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| bad("expected http[s]://host[:port][/path]"))?;
    let (https, default_port) = if scheme.eq_ignore_ascii_case("http") {
        (false, 80)
    } else if scheme.eq_ignore_ascii_case("https") {
        (true, 443)
    } else {
        return Err(bad("expected an http or https URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(bad("user information is not supported in the URL"));
    }
    if authority.contains('?')
        || path.contains('#')
        || value.bytes().any(|b| b <= b' ' || b == 0x7F)
    {
        return Err(bad(
            "expected http[s]://host[:port][/path] without a fragment",
        ));
    }
    // A bare IPv6 address is ambiguous with a port: it must be in brackets.
    if authority.matches(':').count() > 1 && !authority.starts_with('[') {
        return Err(bad("an IPv6 address must be in brackets"));
    }
    let address = remote_address(KEY, authority, default_port)?;
    let host = if address.host.contains(':') {
        format!("[{}]", address.host)
    } else {
        address.host.clone()
    };
    let host = if address.port == default_port {
        host
    } else {
        format!("{host}:{}", address.port)
    };
    Ok((address, host, path.to_owned(), https))
}

/// `bridge_events KIND[,KIND...]`: the webhook's event kinds, sorted, without duplicates.
fn events(values: &[&str]) -> Result<Vec<WebhookEvent>, String> {
    const KEY: &str = "bridge_events";
    if values.is_empty() {
        return Err(format!("{KEY}: missing value"));
    }
    let joined = values.join(" ");
    let mut out = Vec::new();
    for kind in joined.split(',').map(str::trim) {
        out.push(match kind {
            "message" => WebhookEvent::Message,
            "connected" => WebhookEvent::Connected,
            "disconnected" => WebhookEvent::Disconnected,
            "subscribed" => WebhookEvent::Subscribed,
            _ => {
                return Err(format!(
                    "{KEY}: expected message, connected, disconnected or subscribed, \
                     got \"{kind}\""
                ))
            }
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `topic PATTERN [in|out|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]`; `""` is the empty
/// pattern or prefix.
fn topic(values: &[&str]) -> Result<TopicMapping, String> {
    let unquote = |v: &str| {
        if v == "\"\"" {
            String::new()
        } else {
            v.to_owned()
        }
    };
    let Some((pattern, rest)) = values.split_first() else {
        return fail("topic: missing value");
    };
    let direction = match rest.first().copied() {
        None | Some("out") => Direction::Out,
        Some("in") => Direction::In,
        Some("both") => Direction::Both,
        Some(v) => return Err(format!("topic: expected in, out or both, got \"{v}\"")),
    };
    let qos = match rest.get(1) {
        None => QoS::AtMostOnce,
        Some(v) => number(v, 0, 2)
            .and_then(|n| u8::try_from(n).ok())
            .and_then(QoS::from_u8)
            .ok_or_else(|| format!("topic: expected a QoS of 0, 1 or 2, got \"{v}\""))?,
    };
    let (local_prefix, remote_prefix) = match rest.get(2..).unwrap_or_default() {
        [] => (String::new(), String::new()),
        [local] => {
            return Err(format!(
                "topic: the local prefix \"{local}\" needs a remote prefix after it \
                 (\"\" for none)"
            ))
        }
        [local, remote] => (unquote(local), unquote(remote)),
        [_, _, extra, ..] => return Err(extra_value("topic", extra)),
    };
    let pattern = unquote(pattern);
    if let Some(p) = [&local_prefix, &remote_prefix]
        .into_iter()
        .find(|p| p.contains(['+', '#']))
    {
        return Err(format!(
            "topic: a prefix must not contain + or #, got \"{p}\""
        ));
    }
    if pattern.is_empty() && local_prefix.is_empty() && remote_prefix.is_empty() {
        return fail("topic: an empty pattern (\"\") needs a local or remote prefix");
    }
    for (side, prefix) in [("local", &local_prefix), ("remote", &remote_prefix)] {
        let filter = format!("{prefix}{pattern}");
        if !valid_topic_filter(&filter) {
            return Err(format!(
                "topic: the {side} topic filter \"{filter}\" (prefix and pattern) is not valid"
            ));
        }
    }
    Ok(TopicMapping {
        pattern,
        direction,
        qos,
        local_prefix,
        remote_prefix,
    })
}

/// `bridge_transport tcp` or `bridge_transport websockets [PATH]`.
fn transport(values: &[&str]) -> Result<BridgeTransport, String> {
    const KEY: &str = "bridge_transport";
    match values {
        [] => Err(format!("{KEY}: missing value")),
        ["tcp"] => Ok(BridgeTransport::Tcp),
        ["tcp", extra, ..] => Err(extra_value(KEY, extra)),
        ["websockets"] => Ok(BridgeTransport::WebSockets {
            path: "/mqtt".to_owned(),
        }),
        ["websockets", path] if path.starts_with('/') => Ok(BridgeTransport::WebSockets {
            path: (*path).to_owned(),
        }),
        ["websockets", path] => Err(format!("{KEY}: the path must start with /, got \"{path}\"")),
        ["websockets", _, extra, ..] => Err(extra_value(KEY, extra)),
        [other, ..] => Err(format!(
            "{KEY}: expected tcp or websockets, got \"{other}\""
        )),
    }
}

/// `restart_timeout BASE [CAP]`: the base delay and the cap of the backoff, in seconds.
fn restart(values: &[&str]) -> Result<(u32, Option<u32>), String> {
    const KEY: &str = "restart_timeout";
    let seconds = |v: &str| ranged::<u32>(KEY, v, 1, u32::MAX.into());
    match values {
        [] => Err(format!("{KEY}: missing value")),
        [base] => Ok((seconds(base)?, None)),
        [base, cap] => {
            let (base, cap) = (seconds(base)?, seconds(cap)?);
            if cap < base {
                return Err(format!(
                    "{KEY}: the cap ({cap}) must not be below the base ({base})"
                ));
            }
            Ok((base, Some(cap)))
        }
        [_, _, extra, ..] => Err(extra_value(KEY, extra)),
    }
}

#[cfg(test)]
mod tests;
