//! One webhook: a bridge whose remote end is a web service, to which culex POSTs events as
//! JSON (`bridge_type http`). It owns the event queue, the batching, the JSON shapes, the
//! signature, the retries and the local session through which messages come from the
//! engine. Sans-IO like the MQTT bridge: the reactor owns the connection (TCP or TLS) and
//! feeds the engine; this file never touches a socket, a file or the clock.
//!
//! | connection | event                                   | next                          |
//! |------------|-----------------------------------------|-------------------------------|
//! | closed     | something to post, backoff over         | connecting (`Connect` out)    |
//! | connecting | transport up                            | open (a POST goes out)        |
//! | open       | 2xx answer                              | open, or closed by the server |
//! | any        | other answer, timeout, transport down   | closed, retry after backoff   |
//! | any        | stop                                    | stopped                       |
//!
//! Messages come from a persistent local session subscribed to the `topic` filters; QoS 1
//! and 2 messages are acknowledged towards the engine only once a 2xx answer has taken
//! their batch, so until then they stay in the engine's bounded, persistent queue (its
//! receive maximum for the session is `bridge_batch`). QoS 0 messages and client events
//! are held here only, at most [`Webhook::memory_max`]; beyond it the oldest are dropped
//! and counted. A batch that failed is sent again, byte for byte, after the backoff.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;

use super::{open_local_session, LocalSession};
use crate::clock::Millis;
use crate::codec::http::client::{encode_post, parse_response};
use crate::codec::mqtt::{Ack, Packet, Properties, Publish, QoS};
use crate::config::bridge::{BridgeConfig, BridgeKind, RemoteAddress, WebhookConfig, WebhookEvent};
use crate::engine::event::{ConnId, Input};
use crate::rng::Rng;

/// The header carrying the signature of the body, `sha256=HEX`.
pub const SIGNATURE_HEADER: &str = "X-Culex-Signature";

/// What the webhook asks of the reactor. Moved once from the webhook to the reactor and
/// never stored in bulk, like the engine's inputs it carries.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WebhookOutput {
    /// Open a connection to the bridge's address (TLS when https); answer with
    /// [`Webhook::transport_up`] or [`Webhook::transport_down`].
    Connect(RemoteAddress),
    /// Write these bytes (one whole request) to the connection.
    Send(Vec<u8>),
    /// Close the connection once written (no transport_down follows).
    Close,
    /// An input for the engine on behalf of the local session.
    Engine(Input),
}

/// Something that happened in the broker, for the `connected`, `disconnected` and
/// `subscribed` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerEvent {
    Connected {
        client_id: String,
        address: String,
        protocol: String,
        username: Option<String>,
    },
    Disconnected {
        client_id: String,
        reason: String,
    },
    Subscribed {
        client_id: String,
        filters: Vec<(String, u8)>,
    },
}

/// Counts and state for the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookCounters {
    /// Events the web service took (2xx).
    pub posted: u64,
    /// Requests that failed: refused connections, timeouts, answers other than 2xx.
    pub failed: u64,
    /// Events waiting, including those of the batch being posted.
    pub queued: usize,
    /// QoS 0 messages and client events dropped because the queue was full.
    pub dropped: u64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// `idle`, `connecting`, `connected`, `posting`, `waiting` (backoff) or `stopped`.
    pub state: &'static str,
}

/// The connection to the web service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Closed,
    Connecting { since: Millis },
    Open,
}

/// One event waiting: its JSON, and for a QoS 1 or 2 message what acknowledges it.
#[derive(Debug)]
struct Item {
    json: Vec<u8>,
    ack: Option<(QoS, u16)>,
}

/// The request being posted, kept until a 2xx answer so a retry sends the same bytes.
#[derive(Debug)]
struct Batch {
    request: Vec<u8>,
    acks: Vec<(QoS, u16)>,
    count: usize,
}

pub struct Webhook {
    config: BridgeConfig,
    hook: WebhookConfig,
    rng: Rng,
    wall_ms_at_zero: u64,
    /// The last retry delay, for the backoff.
    delay_ms: u64,
    /// The local session's connection, while open.
    local: Option<ConnId>,
    conn: Conn,
    /// Whether the open connection has already carried an answered request: when it ends
    /// before answering the next one, the server closed it as idle, and the batch is sent
    /// again on a new connection at once.
    conn_reused: bool,
    queue: VecDeque<Item>,
    batch: Option<Batch>,
    /// When the batch's request went out (its answer is awaited), and whether the
    /// connection was reused for it.
    in_flight: Option<(Millis, bool)>,
    /// No attempt before this time (after a failure).
    retry_at: Option<Millis>,
    stopped: bool,
    out: VecDeque<WebhookOutput>,
    counters: WebhookCounters,
}

impl Webhook {
    /// A webhook starting at `now`. When it posts messages, its local session opens at
    /// once as `local`. `wall_ms_at_zero` is the Unix time in milliseconds of
    /// [`Millis::ZERO`], for the timestamps of events.
    pub fn new(
        config: BridgeConfig,
        seed: u64,
        now: Millis,
        local: ConnId,
        wall_ms_at_zero: u64,
    ) -> Self {
        let hook = match &config.kind {
            BridgeKind::Http(h) => h.clone(),
            BridgeKind::Mqtt | BridgeKind::MqttSn(_) => default_hook(&config),
        };
        let mut w = Self {
            config,
            hook,
            rng: Rng::new(seed),
            wall_ms_at_zero,
            delay_ms: 0,
            local: None,
            conn: Conn::Closed,
            conn_reused: false,
            queue: VecDeque::new(),
            batch: None,
            in_flight: None,
            retry_at: None,
            stopped: false,
            out: VecDeque::new(),
            counters: WebhookCounters::default(),
        };
        w.reopen_local(now, local);
        w
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The connection ids the bridge holds: its local session's.
    pub fn held_ids(&self) -> [Option<ConnId>; 2] {
        [self.local, None]
    }

    /// The local session's connection, while open.
    pub fn local_conn(&self) -> Option<ConnId> {
        self.local
    }

    /// How many QoS 0 messages and client events wait here at most: four batches, and at
    /// least 100.
    pub fn memory_max(&self) -> usize {
        self.hook.batch.saturating_mul(4).max(100)
    }

    pub fn counters(&self) -> WebhookCounters {
        let mut c = self.counters.clone();
        c.queued = self.queue.len() + self.batch.as_ref().map_or(0, |b| b.count);
        c.state = if self.stopped {
            "stopped"
        } else if self.retry_at.is_some() {
            "waiting"
        } else {
            match self.conn {
                Conn::Connecting { .. } => "connecting",
                Conn::Open if self.in_flight.is_some() => "posting",
                Conn::Open => "connected",
                Conn::Closed => "idle",
            }
        };
        c
    }

    /// The next output. Poll until `None`, feeding the engine as asked in between.
    pub fn poll(&mut self) -> Option<WebhookOutput> {
        self.out.pop_front()
    }

    /// When [`Self::tick`] has something to do: a timeout, or the end of the backoff.
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.stopped {
            return None;
        }
        let timeout = self.timeout_ms();
        let connecting = match self.conn {
            Conn::Connecting { since } => Some(since.saturating_add_ms(timeout)),
            _ => None,
        };
        let answer = self
            .in_flight
            .map(|(since, _)| since.saturating_add_ms(timeout));
        [connecting, answer, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires what is due at `now`: a timeout, a retry.
    pub fn tick(&mut self, now: Millis) {
        if self.stopped {
            return;
        }
        let timeout = self.timeout_ms();
        match self.conn {
            Conn::Connecting { since } if now.since(since) >= timeout => {
                self.fail(now, "no connection in time".to_owned(), true);
            }
            _ => {}
        }
        if let Some((since, _)) = self.in_flight {
            if now.since(since) >= timeout {
                self.fail(now, "no answer in time".to_owned(), true);
            }
        }
        self.pump(now);
    }

    /// The connection to the web service is up.
    pub fn transport_up(&mut self, now: Millis) {
        if matches!(self.conn, Conn::Connecting { .. }) && !self.stopped {
            self.conn = Conn::Open;
            self.conn_reused = false;
            self.pump(now);
        }
    }

    /// The connection failed or closed (not after an [`WebhookOutput::Close`] of the
    /// webhook's own).
    pub fn transport_down(&mut self, now: Millis, reason: &str) {
        self.lost(now, reason, false);
    }

    /// Bytes read from the connection; consumes whole responses from the front of `buf`.
    pub fn received(&mut self, now: Millis, buf: &mut Vec<u8>) {
        if self.conn != Conn::Open || self.stopped {
            buf.clear();
            return;
        }
        loop {
            let (response, used) = match parse_response(buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    buf.clear();
                    let why = format!("bad answer from the web service: {}", e.detail());
                    self.fail(now, why, true);
                    break;
                }
            };
            buf.drain(..used.min(buf.len()));
            if response.status < 200 {
                continue;
            }
            if self.in_flight.take().is_none() {
                buf.clear();
                self.fail(now, "an answer without a request".to_owned(), true);
                break;
            }
            self.counters.last_status = Some(response.status);
            if !(200..300).contains(&response.status) {
                buf.clear();
                let why = format!("the web service answered {}", response.status);
                self.fail(now, why, true);
                break;
            }
            self.delivered();
            if !response.keep_alive || response.until_close {
                // The connection ends with this answer; what follows is its body.
                buf.clear();
                self.out.push_back(WebhookOutput::Close);
                self.conn = Conn::Closed;
                break;
            }
            self.conn_reused = true;
        }
        self.pump(now);
    }

    /// The peer closed the connection (end of stream): a response framed by the close ends
    /// here. The webhook answers with [`WebhookOutput::Close`], so no `transport_down`
    /// follows for this connection.
    pub fn end_of_stream(&mut self, now: Millis) {
        self.lost(now, "closed by the web service", true);
    }

    /// A packet the engine sends to the local session (PUBLISH to post; PUBREL of a QoS 2
    /// message to complete with PUBCOMP; others ignored).
    pub fn from_engine(&mut self, now: Millis, packet: Packet) {
        if self.stopped {
            return;
        }
        match packet {
            Packet::Publish(p) => self.message(now, &p),
            Packet::PubRel(a) => self.engine_packet(Packet::PubComp(Ack::success(a.packet_id))),
            Packet::ConnAck(a) if a.reason.is_error() => {
                let why = format!("the local session was refused: {}", a.reason.text());
                log::warn!("webhook {}: {why}", self.config.name);
                self.counters.last_error = Some(why);
            }
            Packet::SubAck(a) if a.reasons.iter().any(|r| r.is_error()) => {
                log::warn!(
                    "webhook {}: a local subscription was refused",
                    self.config.name
                );
            }
            _ => {}
        }
    }

    /// The engine closed the local session's connection: it is forgotten here; the
    /// reactor opens it again with [`Self::reopen_local`].
    pub fn local_closed(&mut self, _now: Millis) {
        if let Some(conn) = self.local.take() {
            // The engine forgets the connection once told it is closed.
            self.out.push_back(WebhookOutput::Engine(Input::Closed {
                conn,
                reason: "closed by the broker",
            }));
        }
    }

    /// Opens the local session (again) as `local`, when the webhook posts messages. The
    /// engine then sends again the messages not acknowledged: those still queued here are
    /// dropped for them, those of the batch being posted are kept (the copies ignored).
    pub fn reopen_local(&mut self, _now: Millis, local: ConnId) {
        if self.stopped || !self.posts(WebhookEvent::Message) || self.local.is_some() {
            return;
        }
        self.queue.retain(|item| item.ack.is_none());
        self.local = Some(local);
        let spec = LocalSession {
            receive_max: u16::try_from(self.hook.batch.max(1)).unwrap_or(u16::MAX),
            max_packet: None,
            no_local: false,
            // Retained messages are not events: only what is published from now on.
            retain_handling: 2,
        };
        let peer = format!("webhook {}", self.config.name);
        for input in open_local_session(&self.config, local, &peer, spec) {
            self.out.push_back(WebhookOutput::Engine(input));
        }
    }

    /// A client event: queued if the webhook posts that kind, else ignored (as are the
    /// events of the webhook's own local session).
    pub fn event(&mut self, now: Millis, event: BrokerEvent) {
        let (kind, client_id) = match &event {
            BrokerEvent::Connected { client_id, .. } => (WebhookEvent::Connected, client_id),
            BrokerEvent::Disconnected { client_id, .. } => (WebhookEvent::Disconnected, client_id),
            BrokerEvent::Subscribed { client_id, .. } => (WebhookEvent::Subscribed, client_id),
        };
        if self.stopped || !self.posts(kind) || *client_id == self.config.local_clientid {
            return;
        }
        let timestamp = self.timestamp(now);
        let json = match &event {
            BrokerEvent::Connected {
                client_id,
                address,
                protocol,
                username,
            } => serde_json::to_vec(&ConnectedJson {
                event: "connected",
                client_id,
                address,
                protocol,
                username: username.as_deref(),
                timestamp,
            }),
            BrokerEvent::Disconnected { client_id, reason } => {
                serde_json::to_vec(&DisconnectedJson {
                    event: "disconnected",
                    client_id,
                    reason,
                    timestamp,
                })
            }
            BrokerEvent::Subscribed { client_id, filters } => serde_json::to_vec(&SubscribedJson {
                event: "subscribed",
                client_id,
                filters: filters
                    .iter()
                    .map(|(filter, qos)| FilterJson { filter, qos: *qos })
                    .collect(),
                timestamp,
            }),
        };
        self.enqueue(now, json, None);
    }

    /// Ends the webhook: the connection and the local session are closed (its persistent
    /// session stays unless the caller ends it), and what waits here is dropped.
    pub fn stop(&mut self, _now: Millis) {
        if self.conn != Conn::Closed {
            self.out.push_back(WebhookOutput::Close);
        }
        self.conn = Conn::Closed;
        if let Some(conn) = self.local.take() {
            self.out.push_back(WebhookOutput::Engine(Input::Closed {
                conn,
                reason: "webhook stopped",
            }));
        }
        self.stopped = true;
        self.queue.clear();
        self.batch = None;
        self.in_flight = None;
        self.retry_at = None;
    }

    fn posts(&self, kind: WebhookEvent) -> bool {
        self.hook.events.contains(&kind)
    }

    fn timeout_ms(&self) -> u64 {
        u64::from(self.hook.timeout_secs.max(1)) * 1000
    }

    fn timestamp(&self, now: Millis) -> u64 {
        self.wall_ms_at_zero.saturating_add(now.0)
    }

    /// A message of the local session's subscriptions.
    fn message(&mut self, now: Millis, p: &Publish) {
        let ack = (p.qos != QoS::AtMostOnce).then_some((p.qos, p.packet_id));
        if !self.posts(WebhookEvent::Message) {
            // Not subscribed for: never left unacknowledged.
            self.acknowledge(ack);
            return;
        }
        if let Some((_, id)) = ack {
            let known = |a: &Option<(QoS, u16)>| a.is_some_and(|(_, i)| i == id);
            let queued = self.queue.iter().any(|item| known(&item.ack));
            let posting = self
                .batch
                .as_ref()
                .is_some_and(|b| b.acks.iter().any(|(_, i)| *i == id));
            if queued || posting {
                // The engine's copy of a message already here, sent again on a reopen.
                return;
            }
        }
        let (payload, payload_encoding) = match std::str::from_utf8(&p.payload) {
            Ok(text) => (text.to_owned(), "text"),
            Err(_) => (BASE64.encode(&p.payload), "base64"),
        };
        let json = serde_json::to_vec(&MessageJson {
            event: "message",
            topic: &p.topic,
            qos: p.qos as u8,
            retain: p.retain,
            payload,
            payload_encoding,
            properties: PropertiesJson::new(&p.properties),
            timestamp: self.timestamp(now),
        });
        self.enqueue(now, json, ack);
    }

    /// Queues an event; QoS 0 messages and client events beyond [`Self::memory_max`] push
    /// out the oldest of their kind.
    fn enqueue(
        &mut self,
        now: Millis,
        json: Result<Vec<u8>, serde_json::Error>,
        ack: Option<(QoS, u16)>,
    ) {
        let json = match json {
            Ok(j) => j,
            Err(e) => {
                log::warn!("webhook {}: event not encoded: {e}", self.config.name);
                self.acknowledge(ack);
                return;
            }
        };
        if ack.is_none() {
            let held = self.queue.iter().filter(|i| i.ack.is_none()).count();
            if held >= self.memory_max() {
                if let Some(oldest) = self.queue.iter().position(|i| i.ack.is_none()) {
                    self.queue.remove(oldest);
                    self.counters.dropped += 1;
                }
            }
        }
        self.queue.push_back(Item { json, ack });
        self.pump(now);
    }

    /// Connects or posts the next batch, when there is one and nothing is in the way.
    fn pump(&mut self, now: Millis) {
        if self.stopped || self.in_flight.is_some() {
            return;
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        self.retry_at = None;
        if self.batch.is_none() && self.queue.is_empty() {
            return;
        }
        match self.conn {
            Conn::Closed => {
                let Some(addr) = self.config.addresses.first().cloned() else {
                    return;
                };
                log::debug!(
                    "webhook {}: connecting to {}:{}",
                    self.config.name,
                    addr.host,
                    addr.port
                );
                self.conn = Conn::Connecting { since: now };
                self.out.push_back(WebhookOutput::Connect(addr));
            }
            Conn::Connecting { .. } => {}
            Conn::Open => {
                if self.batch.is_none() {
                    self.batch = Some(self.next_batch());
                }
                if let Some(b) = &self.batch {
                    self.out.push_back(WebhookOutput::Send(b.request.clone()));
                    self.in_flight = Some((now, self.conn_reused));
                }
            }
        }
    }

    /// The request of up to `bridge_batch` events from the front of the queue: one JSON
    /// object when the batch is 1, else an array.
    fn next_batch(&mut self) -> Batch {
        let take = self.hook.batch.max(1).min(self.queue.len());
        let items: Vec<Item> = self.queue.drain(..take).collect();
        let mut body = Vec::new();
        if self.hook.batch > 1 {
            body.push(b'[');
        }
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&item.json);
        }
        if self.hook.batch > 1 {
            body.push(b']');
        }
        let mut headers = Vec::new();
        if let Some(secret) = &self.hook.hmac_secret {
            headers.push((SIGNATURE_HEADER, format!("sha256={}", sign(secret, &body))));
        }
        let mut request = Vec::with_capacity(body.len() + 256);
        encode_post(
            &self.hook.host,
            &self.hook.path,
            &body,
            &headers,
            &mut request,
        );
        Batch {
            request,
            acks: items.iter().filter_map(|i| i.ack).collect(),
            count: items.len(),
        }
    }

    /// The batch was taken: its messages are acknowledged towards the engine.
    fn delivered(&mut self) {
        self.delay_ms = 0;
        let Some(batch) = self.batch.take() else {
            return;
        };
        self.counters.posted += batch.count as u64;
        for ack in batch.acks {
            self.acknowledge(Some(ack));
        }
    }

    /// PUBACK for QoS 1, PUBREC for QoS 2 (the engine's PUBREL is answered with PUBCOMP).
    fn acknowledge(&mut self, ack_of: Option<(QoS, u16)>) {
        match ack_of {
            Some((QoS::AtLeastOnce, id)) => self.engine_packet(Packet::PubAck(Ack::success(id))),
            Some((QoS::ExactlyOnce, id)) => self.engine_packet(Packet::PubRec(Ack::success(id))),
            _ => {}
        }
    }

    /// The connection ended without the webhook asking. An idle connection is simply
    /// gone; a reused one that ends before answering was closed by the server as idle, and
    /// the batch goes again at once; otherwise it is a failure. `close`: tell the reactor
    /// to close its side.
    fn lost(&mut self, now: Millis, why: &str, close: bool) {
        if self.conn == Conn::Closed || self.stopped {
            return;
        }
        let quiet = self.conn == Conn::Open && self.in_flight.is_none_or(|(_, reused)| reused);
        if !quiet {
            self.fail(now, why.to_owned(), close);
            return;
        }
        if close {
            self.out.push_back(WebhookOutput::Close);
        }
        self.conn = Conn::Closed;
        self.in_flight = None;
        self.conn_reused = false;
        self.pump(now);
    }

    /// The attempt failed: the connection is closed and the batch waits for the backoff.
    fn fail(&mut self, now: Millis, why: String, close: bool) {
        log::warn!("webhook {}: {why}", self.config.name);
        self.counters.last_error = Some(why);
        self.counters.failed += 1;
        if close && self.conn != Conn::Closed {
            self.out.push_back(WebhookOutput::Close);
        }
        self.conn = Conn::Closed;
        self.conn_reused = false;
        self.in_flight = None;
        let delay = self.backoff_ms();
        self.retry_at = Some(now.saturating_add_ms(delay));
    }

    /// The next retry delay: `restart_timeout` alone is constant; with a cap it grows with
    /// random jitter between the base and three times the last delay, up to the cap.
    fn backoff_ms(&mut self) -> u64 {
        self.delay_ms = super::backoff_ms(&self.config, self.delay_ms, &mut self.rng);
        self.delay_ms
    }

    fn engine_packet(&mut self, packet: Packet) {
        if let Some(conn) = self.local {
            self.out
                .push_back(WebhookOutput::Engine(Input::Packet { conn, packet }));
        }
    }
}

/// The settings of a bridge not configured as a webhook: everything at its default.
fn default_hook(config: &BridgeConfig) -> WebhookConfig {
    WebhookConfig {
        path: "/".to_owned(),
        host: config
            .addresses
            .first()
            .map_or_else(String::new, |a| format!("{}:{}", a.host, a.port)),
        https: config.tls.is_some(),
        events: vec![WebhookEvent::Message],
        hmac_secret: None,
        batch: 1,
        timeout_secs: 10,
    }
}

/// The HMAC-SHA256 of `body` with `secret`, in lower-case hex.
fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
struct MessageJson<'a> {
    event: &'static str,
    topic: &'a str,
    qos: u8,
    retain: bool,
    payload: String,
    payload_encoding: &'static str,
    properties: PropertiesJson,
    timestamp: u64,
}

/// The v5 properties of a message, as the API shows them: absent ones are left out.
#[derive(Serialize)]
struct PropertiesJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_format_indicator: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_expiry_interval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_topic: Option<String>,
    /// Base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_data: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user_properties: Vec<UserPropertyJson>,
}

impl PropertiesJson {
    fn new(p: &Properties) -> Self {
        Self {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.as_ref().map(|d| BASE64.encode(d)),
            user_properties: p
                .user_properties
                .iter()
                .map(|(name, value)| UserPropertyJson {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct UserPropertyJson {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct ConnectedJson<'a> {
    event: &'static str,
    client_id: &'a str,
    address: &'a str,
    protocol: &'a str,
    username: Option<&'a str>,
    timestamp: u64,
}

#[derive(Serialize)]
struct DisconnectedJson<'a> {
    event: &'static str,
    client_id: &'a str,
    reason: &'a str,
    timestamp: u64,
}

#[derive(Serialize)]
struct SubscribedJson<'a> {
    event: &'static str,
    client_id: &'a str,
    filters: Vec<FilterJson<'a>>,
    timestamp: u64,
}

#[derive(Serialize)]
struct FilterJson<'a> {
    filter: &'a str,
    qos: u8,
}

#[cfg(test)]
mod tests;
