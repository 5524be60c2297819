//! API connections: the reactor's side of the HTTP listener. Bytes are cut into requests by
//! the pure codec (`codec::http`), each request is answered by the sans-IO API (`api`) with
//! this reactor as its [`Host`], and the answers are queued like any output, in order
//! (pipelining). The engine never hears of these connections.
//!
//! Owns the request deadlines: a request must arrive in full within the listener's
//! `http_request_timeout` (else 408 and close, so a client sending one byte a second holds a
//! socket for that long at most), and a keep-alive connection with no request under way is
//! closed after [`IDLE_TIMEOUT_MS`]. Deadlines are checked by a sweep every
//! [`SWEEP_INTERVAL_MS`] while API connections exist, not by a timer per connection.

use super::conn::{CloseReason, ConnState, OUT_BUFFER_SOFT_MAX};
use super::listener::HttpSettings;
use super::Reactor;
use crate::api::{self, BridgeInfo, ClockInfo, Command, Host, HostError, ListenerInfo, Origin};
use crate::clock::Millis;
use crate::codec::http::{
    encode_response, http_date, parse_request, HttpError, ParseLimits, Parsed, Request, Response,
};
use crate::config::ListenerConfig;
use crate::engine::limits::Limits;
use crate::engine::Engine;
use crate::transport::{ReadOutcome, READ_CHUNK};

/// A keep-alive connection with no request under way is closed after this long.
pub(super) const IDLE_TIMEOUT_MS: u64 = 60_000;

/// How often request deadlines are checked.
pub(super) const SWEEP_INTERVAL_MS: u64 = 250;

/// Requests answered per connection per loop turn; the rest wait for the next turn.
const REQUESTS_PER_TURN: usize = 32;

/// Bytes read from one API connection per loop turn.
const READ_BUDGET_PER_TURN: usize = 16 * READ_CHUNK;

/// The `Server` header.
const SERVER: &str = concat!("culex/", env!("CARGO_PKG_VERSION"));

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The HTTP state of one API connection.
#[derive(Debug)]
pub(super) struct HttpConn {
    settings: HttpSettings,
    /// The listener's port, which a request on it may not close.
    port: u16,
    /// When the first byte of the request under way arrived (`None`: none under way).
    request_since: Option<Millis>,
    /// When the last request was answered or the connection opened.
    idle_since: Millis,
    /// `100 Continue` was sent for the request under way.
    continued: bool,
}

impl HttpConn {
    pub(super) fn new(settings: HttpSettings, port: u16, now: Millis) -> Self {
        Self {
            settings,
            port,
            request_since: None,
            idle_since: now,
            continued: false,
        }
    }
}

/// The largest buffer one request may need (see [`parse_request`]).
fn request_bytes_max() -> usize {
    let l = ParseLimits::default();
    3 * l.head_max + 2 * l.body_max + 128
}

/// What the deadline sweep decided for a connection.
enum Overdue {
    Request,
    Idle,
}

impl Reactor {
    /// Reads what an API connection has for us this turn and answers every whole request.
    pub(super) fn read_http(&mut self, key: usize) {
        let mut budget = READ_BUDGET_PER_TURN;
        let mut requests = REQUESTS_PER_TURN;
        loop {
            self.answer_requests(key, &mut requests);
            if !self.may_read(key, budget > 0 && requests > 0) {
                return;
            }
            let Some(conn) = self.conns.get(key) else {
                return;
            };
            // Pipelined requests beyond one request's bound wait until those before are
            // answered.
            let room = request_bytes_max()
                .saturating_sub(conn.inbound.len())
                .min(READ_CHUNK)
                .min(budget);
            if room == 0 {
                self.read_queue.push(key);
                return;
            }
            let Some((outcome, got)) = self.read_some(key, room) else {
                return;
            };
            budget = budget.saturating_sub(got);
            if got > 0 {
                let now = self.now;
                if let Some(h) = self.conns.get_mut(key).and_then(|c| c.http.as_mut()) {
                    h.request_since.get_or_insert(now);
                }
            }
            match outcome {
                Ok(ReadOutcome::Full) => {}
                Ok(ReadOutcome::WouldBlock) => {
                    self.answer_requests(key, &mut requests);
                    if requests == 0 {
                        self.read_queue.push(key);
                    }
                    self.release_idle_buffer(key);
                    return;
                }
                Ok(ReadOutcome::Eof) => {
                    // Requests complete before the peer's end are still answered.
                    let mut unlimited = usize::MAX;
                    self.answer_requests(key, &mut unlimited);
                    let now = self.now;
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.start_closing(now, CloseReason::PeerClosed);
                        conn.inbound = Vec::new();
                        self.close_queue.push(key);
                    }
                    return;
                }
                Err(e) => {
                    self.io_failed(key, "read", &e);
                    return;
                }
            }
        }
    }

    /// Answers the whole requests at the front of the connection's buffer, in order.
    fn answer_requests(&mut self, key: usize, requests: &mut usize) {
        while *requests > 0 {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if !conn.reading || conn.outbound.len() > OUT_BUFFER_SOFT_MAX {
                return;
            }
            match parse_request(&conn.inbound, ParseLimits::default()) {
                Ok(Parsed::Partial { expect_continue }) => {
                    if let Some(h) = conn.http.as_mut() {
                        if expect_continue && !h.continued {
                            h.continued = true;
                            self.queue_bytes(key, CONTINUE, false);
                        }
                    }
                    return;
                }
                Ok(Parsed::Complete { request, used }) => {
                    conn.inbound.drain(..used);
                    let rest = !conn.inbound.is_empty();
                    if let Some(h) = conn.http.as_mut() {
                        h.continued = false;
                        h.idle_since = self.now;
                        h.request_since = rest.then_some(self.now);
                    }
                    *requests -= 1;
                    self.answer(key, &request);
                }
                Err(e) => {
                    self.refuse_request(key, e);
                    return;
                }
            }
        }
    }

    /// Answers one request and queues the answer.
    fn answer(&mut self, key: usize, request: &Request) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let Some(h) = conn.http.as_ref() else {
            return;
        };
        let token = h.settings.token.clone();
        let port = h.port;
        let peer = conn.peer.clone();
        let id = conn.id;
        let origin = Origin {
            token: token.as_deref(),
            port,
        };
        // RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host field.
        let hosts = request.headers.iter().filter(|(n, _)| n == "host").count();
        let mut response = if hosts > 1 || (request.minor_version == 1 && hosts == 0) {
            api::error_response(
                400,
                "an HTTP/1.1 request needs exactly one Host header",
                None,
            )
        } else {
            api::handle(self, origin, request)
        };
        log::debug!(
            "{id} {peer}: {} {} -> {}",
            request.method,
            request.path,
            response.status
        );
        if !request.keep_alive() || self.shutdown_deadline.is_some() {
            response.close = true;
        }
        let head_only = request.method == "HEAD";
        self.send_response(key, response, head_only, request.minor_version == 0);
    }

    /// Answers a request that could not be parsed, and closes: the stream cannot be framed.
    fn refuse_request(&mut self, key: usize, e: HttpError) {
        if let Some(conn) = self.conns.get(key) {
            log::info!(
                "{} {}: bad HTTP request: {}",
                conn.id,
                conn.peer,
                e.detail()
            );
        }
        let mut response = api::error_response(e.status(), e.detail(), None);
        response.close = true;
        self.send_response(key, response, false, false);
    }

    fn send_response(&mut self, key: usize, mut response: Response, head_only: bool, http10: bool) {
        // Every answer describes the broker's state at one instant.
        response
            .headers
            .push(("Cache-Control", "no-store".to_owned()));
        let wall_secs = (self.clock.wall_start_ms() + self.now.0) / 1000;
        let mut bytes = Vec::with_capacity(256 + response.body.len());
        encode_response(
            &response,
            head_only,
            http10,
            &http_date(wall_secs),
            SERVER,
            &mut bytes,
        );
        self.queue_bytes(key, &bytes, false);
        if response.close {
            let now = self.now;
            if let Some(conn) = self.conns.get_mut(key) {
                conn.start_closing(now, CloseReason::HttpDone);
                conn.inbound = Vec::new();
                self.close_queue.push(key);
            }
        }
    }

    /// Closes API connections whose request is overdue (408) or that idled too long.
    pub(super) fn sweep_http(&mut self) {
        if self.http_keys.is_empty() || self.now < self.next_http_sweep {
            return;
        }
        self.next_http_sweep = self.now.saturating_add_ms(SWEEP_INTERVAL_MS);
        let now = self.now;
        let overdue: Vec<(usize, Overdue)> = self
            .http_keys
            .iter()
            .filter_map(|&key| Some((key, self.conns.get(key)?)))
            .filter(|(_, c)| c.state == ConnState::Open)
            .filter_map(|(key, c)| {
                let h = c.http.as_ref()?;
                match h.request_since {
                    Some(since) if now.since(since) >= h.settings.request_timeout_ms => {
                        Some((key, Overdue::Request))
                    }
                    None if now.since(h.idle_since) >= IDLE_TIMEOUT_MS => {
                        Some((key, Overdue::Idle))
                    }
                    _ => None,
                }
            })
            .collect();
        for (key, why) in overdue {
            match why {
                Overdue::Request => {
                    if let Some(conn) = self.conns.get(key) {
                        log::info!(
                            "{} {}: HTTP request not complete in time",
                            conn.id,
                            conn.peer
                        );
                    }
                    let detail = "the request did not arrive in time";
                    let mut response = api::error_response(408, detail, None);
                    response.close = true;
                    self.send_response(key, response, false, false);
                }
                Overdue::Idle => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.start_closing(now, CloseReason::HttpIdle);
                        conn.inbound = Vec::new();
                        self.close_queue.push(key);
                    }
                }
            }
        }
    }

    /// When the next deadline sweep is due, if API connections exist.
    pub(super) fn http_deadline(&self) -> Option<Millis> {
        (!self.http_keys.is_empty()).then_some(self.next_http_sweep)
    }

    /// Stops every API connection at shutdown: answers under way are flushed first.
    pub(super) fn close_http_conns(&mut self) {
        let now = self.now;
        let keys: Vec<usize> = self.http_keys.iter().copied().collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.start_closing(now, CloseReason::ShuttingDown);
                self.close_queue.push(key);
            }
        }
    }

    /// Applies the actions the engine asked for after a command.
    fn drain_engine(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            self.apply(action);
        }
        self.pump_gateways();
    }
}

impl Host for Reactor {
    fn engine(&self) -> &Engine {
        &self.engine
    }

    fn now(&self) -> Millis {
        self.now
    }

    fn pending_traffic(&self) -> (u64, u64) {
        (self.traffic.bytes_received, self.traffic.bytes_sent)
    }

    fn listeners(&self) -> Vec<ListenerInfo> {
        let mut all: Vec<ListenerInfo> = self.listeners.iter().map(|(_, l)| l.info()).collect();
        all.extend(self.sn_listener_infos());
        all.sort_by_key(|l| l.id);
        all
    }

    fn open_listener(&mut self, config: ListenerConfig) -> Result<ListenerInfo, HostError> {
        Self::open_listener(self, &config)
    }

    fn close_listener(&mut self, port: u16) -> Result<(), HostError> {
        Self::close_listener(self, port)
    }

    fn set_limits(&mut self, limits: Limits) {
        log::info!("run-time limits changed over the API");
        self.limits = limits.clone();
        self.engine.set_limits(self.now, limits);
        self.drain_engine();
    }

    fn command(&mut self, command: Command) -> bool {
        let now = self.now;
        let done = match command {
            Command::Publish(msg) => {
                self.engine.admin_publish(now, *msg);
                true
            }
            Command::Disconnect { client_id, reason } => {
                self.engine.admin_disconnect(now, &client_id, reason)
            }
            Command::EndSession(client_id) => self.engine.admin_end_session(now, &client_id),
            Command::ClearRetained(topic) => self.engine.admin_clear_retained(now, &topic),
        };
        self.drain_engine();
        done
    }

    fn bridges(&self) -> Vec<BridgeInfo> {
        self.bridge_infos()
    }

    fn add_bridge(
        &mut self,
        config: crate::config::bridge::BridgeConfig,
    ) -> Result<BridgeInfo, HostError> {
        let name = config.name.clone();
        if self.shutdown_deadline.is_some() {
            return Err(HostError::Conflict(
                "the broker is shutting down".to_owned(),
            ));
        }
        if self.bridge_slot(&name).is_some() {
            return Err(HostError::Conflict(format!(
                "a bridge named {name:?} exists"
            )));
        }
        Self::add_bridge(self, config, false).map_err(HostError::Invalid)?;
        log::info!("bridge {name} added over the API");
        self.bridge_infos()
            .into_iter()
            .find(|b| b.config.name == name)
            .ok_or_else(|| HostError::NotFound(format!("bridge {name} stopped at once")))
    }

    fn remove_bridge(&mut self, name: &str, keep_queue: bool) -> Result<(), HostError> {
        let Some(key) = self.bridge_slot(name) else {
            return Err(HostError::NotFound(format!("no bridge {name:?}")));
        };
        Self::remove_bridge(self, key, keep_queue);
        Ok(())
    }

    fn clock(&self) -> ClockInfo {
        ClockInfo {
            deterministic: self.clock.is_virtual(),
            now_ms: self.now.0,
            wall_ms: self.clock.wall_start_ms().saturating_add(self.now.0),
        }
    }

    fn advance_clock(&mut self, ms: u64) -> Result<ClockInfo, HostError> {
        if !self.clock.is_virtual() {
            return Err(HostError::Conflict(
                "the clock is the system's: start culex with --deterministic SEED".to_owned(),
            ));
        }
        Self::advance_clock(self, ms);
        Ok(Host::clock(self))
    }

    fn add_fault(&mut self, spec: crate::fault::Spec) -> Result<crate::fault::Rule, HostError> {
        self.engine
            .add_fault(spec)
            .map_err(|full| HostError::Conflict(full.to_string()))
    }

    fn remove_fault(&mut self, id: crate::fault::FaultId) -> bool {
        self.engine.remove_fault(id).is_some()
    }
}
