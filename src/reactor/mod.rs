//! The reactor: the one event loop. It owns the poller, the listeners, the connections and
//! their buffers, and is the only place that moves bytes between sockets and the engine.
//!
//! It must never decide anything about MQTT (the engine does), never block, never read the
//! clock more than once per turn, and never remove a connection except at the end of a turn.
//!
//! Each turn, in this order:
//!
//! 1. Poll, waiting until the engine's next deadline (at most [`MAX_WAIT_MS`], so signals and
//!    the shutdown grace are checked; not at all when work is already queued).
//! 2. Read the clock once: that `now` serves the whole turn.
//! 3. Service the ready tokens sorted by token, so a turn is deterministic: signals first,
//!    then listeners (accept until `WouldBlock` or the budget, refuse what `admission`
//!    bounds, hand each connection to the engine), then connections (read until
//!    `WouldBlock` or the budget, feed each whole packet). Input left unread by an earlier
//!    turn (budget used, backpressure released) joins the set.
//!    Every input to the engine is followed by applying all of its actions.
//! 4. If the engine's deadline has passed, feed `Tick`. Queue the packets a fault rule
//!    delayed whose time has come.
//! 5. Feed the byte counts as `Traffic` (bytes written in step 6 count in the next turn).
//! 6. Commit the turn's durable changes to the store in one transaction. Nothing has been
//!    written to any socket since the previous commit: every packet and datagram of the
//!    turn waits in a buffer until here. A connection whose output holds a packet that
//!    acknowledges durable state (see [`crate::engine::durable::needs_flush`]) stays held
//!    until the store has flushed to disk; the flush (one fsync for every message since the
//!    last) happens when the loop has nothing else to do or [`GROUP_COMMIT_MS`] after the
//!    first held packet, so other traffic goes on meanwhile. A failed commit stops the
//!    broker before anything it would acknowledge is sent.
//! 7. Flush every connection with pending output that is not held, then the queued
//!    datagrams; register WRITABLE only while output waits.
//! 8. Remove the connections that are closing and flushed (or broken), telling the engine
//!    `Closed` for each. Only here do slab keys become free, and the next poll cannot
//!    return events for a deregistered socket, so a reused key never sees a stale event.
//!    What the engine changes in answer is committed in the next turn, before its flush.
//!
//! After a stop signal, the loop runs until the engine is idle and all output is written,
//! or until [`SHUTDOWN_GRACE_MS`] have passed; the last changes are committed and flushed
//! to disk before it returns.

mod admission;
mod bridge;
mod bridge_udp;
mod conn;
mod fault;
mod flush;
mod http;
mod listener;
mod signal;
mod udp;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use mio::{Events, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::clock::{Clock, Millis};
use crate::codec::mqtt::Packet;
use crate::config::Config;
use crate::engine::conn_id::{ConnIds, ConnMap};
use crate::engine::durable::{needs_flush, Change, QueueLoad};
use crate::engine::event::{Action, ConnId, Input, Traffic};
use crate::engine::limits::Limits;
use crate::engine::session::Delivery;
use crate::engine::Engine;
use crate::store::{Store, TurnSource};
use crate::transport::dtls::DtlsConfig;
use bridge::BRIDGES_MAX;
use bridge_udp::TOKENS_PER_BRIDGE;
use conn::{CloseReason, Conn};
use listener::{Listener, TCP_LISTENERS_MAX};
use signal::AfterSignals;
use udp::{SnListener, TOKENS_PER_SN_LISTENER};

/// Longest wait in the poller, so signals and the shutdown grace are looked at regularly.
const MAX_WAIT_MS: u64 = 1_000;

/// Wait before retrying a listener whose accept failed (e.g. out of file descriptors).
const ACCEPT_RETRY_MS: u64 = 100;

/// Time given to a clean shutdown to say goodbye to every client.
const SHUTDOWN_GRACE_MS: u64 = 2_000;

/// Longest time an acknowledgement waits for the store's flush while the loop is busy.
const GROUP_COMMIT_MS: u64 = 4;

/// How long held output waits for more work when the loop is idle, when the previous flush
/// released at least [`GROUP_BUSY_CONNS`] connections (with fewer, waiting would only add
/// latency).
const GROUP_IDLE_MS: u64 = 2;
const GROUP_BUSY_CONNS: usize = 4;

/// Events taken from the poller per turn; more simply wait for the next turn.
const EVENT_CAPACITY: usize = 1024;

const SIGNAL_TOKEN: Token = Token(0);
const FIRST_LISTENER_TOKEN: usize = 1;

pub struct Reactor {
    poll: Poll,
    signals: Signals,
    /// TCP listeners (MQTT, WebSockets, HTTP); token `FIRST_LISTENER_TOKEN + key`.
    listeners: Slab<Listener>,
    /// The identity of the next listener opened at run time (the configured ones take
    /// their index in the configuration).
    next_listener_id: u32,
    /// MQTT-SN listeners; their tokens start at `sn_base`, two each.
    sn: Vec<SnListener>,
    sn_base: usize,
    /// MQTT-SN sockets with datagrams left unread by the previous turn.
    sn_read_queue: Vec<(usize, bool)>,
    /// The one receive buffer of every UDP socket.
    udp_buf: Vec<u8>,
    /// Connection tokens are `conn_base + slab key`, above every listener token.
    conn_base: usize,
    conns: Slab<Conn>,
    /// Each connection's key in `conns`.
    by_id: ConnMap<u32>,
    conn_ids: ConnIds,
    engine: Engine,
    clock: Clock,
    now: Millis,
    limits: Limits,
    config_path: Option<PathBuf>,
    /// Keys with output to write and no `WouldBlock` since it was queued.
    flush_queue: Vec<usize>,
    /// Output buffers between connections (see [`conn::BufferPool`]).
    out_pool: conn::BufferPool,
    /// Keys with input left unread: budget used up, or backpressure released.
    read_queue: Vec<usize>,
    /// Keys that are closing or broken, waiting for step 7.
    close_queue: Vec<usize>,
    /// Listener indexes whose accept failed and must be retried.
    accept_retry: Vec<usize>,
    /// Listener indexes that used their accept budget: accepted again next turn.
    accept_again: Vec<usize>,
    traffic: Traffic,
    shutdown_deadline: Option<Millis>,
    /// The store, when persistence is on.
    store: Option<Store>,
    /// Whether acknowledgements wait for the store's flush (persistence on, every turn).
    holds_acknowledgements: bool,
    /// Connections held until the store's next flush, and since when the first waits.
    held: Vec<usize>,
    held_since: Option<Millis>,
    /// A datagram of this turn acknowledges durable state: flush the store this turn.
    flush_now: bool,
    /// The poller returned no event this turn: the loop has nothing else to do.
    idle_turn: bool,
    /// Connections the previous flush released.
    last_released: usize,
    /// Datagrams to send after the turn's commit: (listener index, peer, bytes).
    datagrams: Vec<(usize, std::net::SocketAddr, Vec<u8>)>,
    /// Bridges; the local session connection of each (known to the engine only); the
    /// bridges with outputs to carry out; whether they are being carried out now.
    bridges: Slab<bridge::BridgeSlot>,
    bridge_locals: BTreeMap<ConnId, usize>,
    bridge_dirty: Vec<usize>,
    bridge_pumping: bool,
    bridge_seed: u64,
    /// Bridge UDP sockets take tokens from here, two per bridge slot.
    bridge_udp_base: usize,
    /// Bridge sockets with datagrams left unread by the previous turn.
    bridge_udp_again: Vec<(usize, bool)>,
    /// Bridge datagrams to send after the turn's commit: (slot, to, bytes).
    bridge_datagrams: Vec<(usize, std::net::SocketAddr, Vec<u8>)>,
    /// The trace file, when one is written.
    trace: Option<crate::trace::writer::TraceWriter>,
    /// MQTT-SN peers numbered for the trace in the order first heard from (at most
    /// [`udp::TRACE_PEERS_MAX`]; later ones are traced as peer 0).
    trace_peers: BTreeMap<std::net::SocketAddr, u64>,
    /// The slab keys of API connections, and when their deadlines are next checked.
    http_keys: BTreeSet<usize>,
    next_http_sweep: Millis,
    /// Delayed packets and cut connections of the fault rules.
    faults: fault::FaultState,
    /// The broker-wide connection bound and the per-address connection rate.
    admission: admission::Admission,
}

/// Readiness gathered for one token in a turn.
#[derive(Clone, Copy)]
struct Ready {
    token: Token,
    read: bool,
    write: bool,
}

impl Reactor {
    /// Binds every listener and installs the signal handlers. Fails with a message naming the
    /// address when a listener cannot be bound.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        engine: Engine,
        store: Option<Store>,
        clock: Clock,
        seed: u64,
        mut dtls: Vec<Option<DtlsConfig>>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let signals = signal::register(poll.registry(), SIGNAL_TOKEN)?;
        let listeners = listener::bind_all(&config.listeners, poll.registry(), |key| {
            Token(FIRST_LISTENER_TOKEN + key)
        })?;
        let now = clock.now();
        // Room for every TCP listener, those opened at run time included.
        let sn_base = FIRST_LISTENER_TOKEN + TCP_LISTENERS_MAX;
        let mut sn = Vec::new();
        for (index, l) in config.listeners.iter().enumerate() {
            if let Some(sn_config) = &l.mqttsn {
                let token = sn_base + sn.len() * TOKENS_PER_SN_LISTENER;
                let listener_seed = seed ^ (index as u64).rotate_left(32);
                let registry = poll.registry();
                let d = dtls.get_mut(index).and_then(Option::take);
                sn.push(udp::bind(
                    l,
                    sn_config,
                    index,
                    registry,
                    token,
                    now,
                    listener_seed,
                    d,
                )?);
            }
        }
        let bridges = config.bridges.clone();
        let sn_count = sn.len();
        let mut reactor = Self {
            // After the bridges' UDP sockets.
            conn_base: sn_base
                + sn_count * TOKENS_PER_SN_LISTENER
                + BRIDGES_MAX * TOKENS_PER_BRIDGE,
            sn_base,
            sn,
            sn_read_queue: Vec::new(),
            udp_buf: Vec::new(),
            poll,
            signals,
            listeners,
            next_listener_id: u32::try_from(config.listeners.len()).unwrap_or(u32::MAX),
            conns: Slab::new(),
            by_id: ConnMap::default(),
            conn_ids: ConnIds::default(),
            engine,
            clock,
            now,
            limits: config.limits,
            config_path,
            flush_queue: Vec::new(),
            out_pool: conn::BufferPool::default(),
            read_queue: Vec::new(),
            close_queue: Vec::new(),
            accept_retry: Vec::new(),
            accept_again: Vec::new(),
            traffic: Traffic::default(),
            shutdown_deadline: None,
            holds_acknowledgements: store.as_ref().is_some_and(Store::holds_acknowledgements),
            store,
            held: Vec::new(),
            held_since: None,
            flush_now: false,
            idle_turn: false,
            last_released: 0,
            datagrams: Vec::new(),
            http_keys: BTreeSet::new(),
            trace: None,
            trace_peers: BTreeMap::new(),
            bridges: Slab::new(),
            bridge_locals: BTreeMap::new(),
            bridge_dirty: Vec::new(),
            bridge_pumping: false,
            bridge_seed: seed.rotate_left(23),
            bridge_udp_base: sn_base + sn_count * TOKENS_PER_SN_LISTENER,
            bridge_udp_again: Vec::new(),
            bridge_datagrams: Vec::new(),
            next_http_sweep: now,
            faults: fault::FaultState::default(),
            admission: admission::Admission::default(),
        };
        reactor
            .engine
            .add_internal_listener(crate::bridge::mqtt::BRIDGE_LISTENER);
        for b in bridges {
            reactor.add_bridge(b, true).map_err(io::Error::other)?;
        }
        Ok(reactor)
    }

    /// Runs until a clean shutdown completes. Only a failure of the poller is an error.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        loop {
            // 1. Poll.
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
                Err(e) => return Err(e),
            }
            // 2. One clock reading for the turn.
            self.now = self.clock.now();
            self.idle_turn = events.is_empty();
            // 3. Ready tokens in token order.
            for ready in self.collect_ready(&events) {
                if self.service(ready) == AfterSignals::ExitNow {
                    return Ok(());
                }
            }
            // 4. Timers.
            if self.engine.next_deadline().is_some_and(|d| d <= self.now) {
                if self.trace.is_some() {
                    self.trace_due_timers();
                }
                self.feed(Input::Tick);
            }
            self.gateway_timers();
            self.bridge_timers();
            self.sweep_http();
            self.release_delayed();
            // 5. Traffic.
            let traffic = std::mem::take(&mut self.traffic);
            if traffic != Traffic::default() {
                self.feed(Input::Traffic(traffic));
            }
            // 6. Commit.
            self.commit()?;
            // 7. Flush.
            self.flush_all();
            self.send_datagrams();
            self.send_bridge_datagrams();
            // 8. Deferred closes.
            self.close_finished();
            if let Some(t) = self.trace.as_mut() {
                t.flush();
            }
            if self.shutdown_complete() {
                self.commit()?;
                if let Some(store) = self.store.as_mut() {
                    store.flush().map_err(io::Error::other)?;
                }
                if let Some((changes, synced)) = self.store.as_mut().and_then(Store::take_written) {
                    self.trace(&crate::trace::Event::Commit { changes, synced });
                }
                if let Some(t) = self.trace.as_mut() {
                    t.flush();
                }
                log::info!("shutdown complete");
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Duration {
        let work_queued = !self.flush_queue.is_empty()
            || !self.read_queue.is_empty()
            || !self.sn_read_queue.is_empty()
            || !self.bridge_udp_again.is_empty()
            || !self.accept_again.is_empty();
        // Held output waits for a flush that comes as soon as nothing else is ready.
        let mut ms = if work_queued { 0 } else { MAX_WAIT_MS };
        // Held output: wait a little for more work to share the flush with.
        if let Some(since) = self.held_since {
            ms = ms.min(
                since
                    .saturating_add_ms(self.group_idle_ms())
                    .since(self.now),
            );
        }
        let deadlines = [
            self.engine.next_deadline(),
            self.gateway_deadline(),
            self.store.as_ref().and_then(Store::next_deadline),
            self.http_deadline(),
            self.bridge_deadline(),
            self.fault_deadline(),
        ];
        for deadline in deadlines.into_iter().flatten() {
            ms = ms.min(deadline.since(self.now));
        }
        if let Some(deadline) = self.shutdown_deadline {
            ms = ms.min(deadline.since(self.now));
        }
        if !self.accept_retry.is_empty() {
            ms = ms.min(ACCEPT_RETRY_MS);
        }
        Duration::from_millis(ms)
    }

    /// Merges the poller's events with the work queued by the previous turn, one entry per
    /// token, sorted by token.
    fn collect_ready(&mut self, events: &Events) -> Vec<Ready> {
        let mut ready: Vec<Ready> = events
            .iter()
            .map(|e| Ready {
                token: e.token(),
                read: e.is_readable() || e.is_read_closed() || e.is_error(),
                write: e.is_writable() || e.is_write_closed() || e.is_error(),
            })
            .collect();
        let queued_reads = std::mem::take(&mut self.read_queue);
        ready.extend(queued_reads.into_iter().map(|key| Ready {
            token: Token(self.conn_base + key),
            read: true,
            write: false,
        }));
        let sn_base = self.sn_base;
        let queued_datagrams = std::mem::take(&mut self.sn_read_queue);
        ready.extend(queued_datagrams.into_iter().map(|(index, group)| Ready {
            token: Token(sn_base + index * TOKENS_PER_SN_LISTENER + usize::from(group)),
            read: true,
            write: false,
        }));
        let base = self.bridge_udp_base;
        let again = std::mem::take(&mut self.bridge_udp_again);
        ready.extend(again.into_iter().map(|(slot, group)| Ready {
            token: Token(base + slot * TOKENS_PER_BRIDGE + usize::from(group)),
            read: true,
            write: false,
        }));
        let mut retries = std::mem::take(&mut self.accept_retry);
        retries.append(&mut self.accept_again);
        ready.extend(retries.into_iter().map(|index| Ready {
            token: Token(FIRST_LISTENER_TOKEN + index),
            read: true,
            write: false,
        }));
        ready.sort_by_key(|r| r.token);
        ready.dedup_by(|later, kept| {
            let same = later.token == kept.token;
            if same {
                kept.read |= later.read;
                kept.write |= later.write;
            }
            same
        });
        ready
    }

    fn service(&mut self, ready: Ready) -> AfterSignals {
        let Token(t) = ready.token;
        if ready.token == SIGNAL_TOKEN {
            return self.handle_signals();
        }
        if let Some((index, group)) = self.sn_token(ready.token) {
            if ready.read {
                self.read_datagrams(index, group);
            }
            return AfterSignals::Continue;
        }
        if let Some((slot, group)) = self.bridge_udp_token(ready.token) {
            if ready.read {
                self.read_bridge_datagrams(slot, group);
            }
            return AfterSignals::Continue;
        }
        if t < self.sn_base {
            let index = t - FIRST_LISTENER_TOKEN;
            if self.shutdown_deadline.is_none() && !self.accept_all(index) {
                self.accept_retry.push(index);
            }
            return AfterSignals::Continue;
        }
        // Unknown tokens (a connection already gone) are spurious and ignored.
        if let Some(key) = self.conn_key(ready.token) {
            if ready.write {
                self.writable(key);
            }
            if ready.read {
                self.read_conn(key);
            }
        }
        AfterSignals::Continue
    }

    /// Step 6: the turn's durable changes in one transaction. A failure ends the loop, so
    /// that nothing it would have acknowledged is sent.
    fn commit(&mut self) -> io::Result<()> {
        let Some(mut store) = self.store.take() else {
            return Ok(());
        };
        let waited = self.held_since.map_or(0, |since| self.now.since(since));
        // A virtual clock does not move while held output waits: flush at once.
        let flush = self.flush_now
            || self.shutdown_deadline.is_some()
            || (self.clock.is_virtual() && !self.held.is_empty())
            || (!self.held.is_empty()
                && (waited >= GROUP_COMMIT_MS
                    || (self.idle_turn && waited >= self.group_idle_ms())));
        let result = store.commit(self.now, self, flush);
        let flushed = store.is_flushed();
        if let Some((changes, synced)) = store.take_written() {
            self.trace(&crate::trace::Event::Commit { changes, synced });
        }
        self.store = Some(store);
        self.flush_now = false;
        result.map_err(|e| {
            io::Error::other(format!(
                "{e}; stopping without sending this turn's acknowledgements"
            ))
        })?;
        if flushed {
            // What the held packets acknowledge is on disk: they may go.
            self.held_since = None;
            self.last_released = self.held.len();
            for key in std::mem::take(&mut self.held) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.held = false;
                    self.flush_queue.push(key);
                }
            }
        }
        Ok(())
    }

    /// Writes a trace of the run to `writer` from now on; `seed` is deterministic mode's.
    pub fn set_trace(&mut self, mut writer: crate::trace::writer::TraceWriter, seed: Option<u64>) {
        writer.record(self.now, &crate::trace::Event::Start { seed });
        self.trace = Some(writer);
    }

    /// Adds an event to the trace, if one is written.
    fn trace(&mut self, event: &crate::trace::Event<'_>) {
        if let Some(t) = self.trace.as_mut() {
            t.record(self.now, event);
        }
    }

    /// Traces the engine timers that are about to fire.
    fn trace_due_timers(&mut self) {
        let mut due = Vec::new();
        self.engine.due_timers(self.now, &mut due);
        for key in due {
            self.trace(&crate::trace::Event::Timer {
                timer: key.name(),
                conn: key.conn(),
                listener: None,
                bridge: None,
            });
        }
    }

    /// Moves the virtual clock forward (deterministic mode); what falls due fires in step 4
    /// of this turn, before anything is written.
    pub(super) fn advance_clock(&mut self, ms: u64) {
        self.clock.advance(ms);
        self.now = self.clock.now();
        self.trace(&crate::trace::Event::ClockAdvanced { by_ms: ms });
        log::debug!("virtual clock advanced by {ms} ms to {} ms", self.now.0);
    }

    /// How long held output waits in an idle loop before the flush.
    fn group_idle_ms(&self) -> u64 {
        if self.last_released >= GROUP_BUSY_CONNS {
            GROUP_IDLE_MS
        } else {
            0
        }
    }

    /// Whether `packet` must wait for the store's flush before it leaves.
    fn must_wait(&self, packet: &Packet) -> bool {
        // Not read from the store itself: during the commit the store is out of `self`, and
        // the packets a queue read sends then must wait for the flush like any other.
        self.holds_acknowledgements && needs_flush(packet)
    }

    /// Hands one input to the engine and applies everything it asks for in return.
    fn feed(&mut self, input: Input) {
        let closed = match input {
            Input::Closed { conn, .. } => Some(conn),
            _ => None,
        };
        self.engine.handle(self.now, input);
        if let Some(conn) = closed {
            // The engine has let go of it; the reactor's own table lets go in `remove_conn`.
            if !self.by_id.contains_key(&conn) {
                self.conn_ids.release(conn);
            }
        }
        while let Some(action) = self.engine.poll_action() {
            self.apply(action);
        }
        if self.engine.has_notices() {
            self.bridge_events();
        }
        if self.engine.has_controls() {
            for control in self.engine.take_controls() {
                match control {
                    crate::engine::event::Control::AdvanceClock(ms) => self.advance_clock(ms),
                }
            }
        }
        if !self.bridge_dirty.is_empty() {
            self.pump_bridges();
        }
    }

    fn apply(&mut self, action: Action) {
        let action = if self.bridge_locals.is_empty() {
            action
        } else {
            match self.bridge_action(action) {
                Some(action) => action,
                None => return,
            }
        };
        let conn = match &action {
            Action::Send { conn, .. }
            | Action::Close { conn }
            | Action::SetVersion { conn, .. }
            | Action::SetMaxPacketSize { conn, .. } => *conn,
        };
        let action = if self.by_id.contains_key(&conn) || self.sn.is_empty() {
            action
        } else {
            // Datagrams go after every commit: one that acknowledges durable state asks
            // for this turn's commit to be flushed.
            if let Action::Send { packet, .. } = &action {
                self.flush_now |= self.must_wait(packet);
            }
            match self.gateway_action(action) {
                None => return,
                Some(action) => action,
            }
        };
        match action {
            Action::Send { conn, packet } => self.queue_packet(conn, &packet),
            Action::SetVersion { conn, version } => {
                if let Some(c) = self.conn_by_id(conn) {
                    c.version = Some(version);
                }
            }
            Action::SetMaxPacketSize { conn, bytes } => {
                if let Some(c) = self.conn_by_id(conn) {
                    c.max_packet = NonZeroU32::new(bytes);
                }
            }
            Action::Close { conn } => {
                let now = self.now;
                if let Some(key) = self.conn_key_of(conn) {
                    if let Some(c) = self.conns.get_mut(key) {
                        c.start_closing(now, CloseReason::ClosedByBroker);
                        c.inbound = Vec::new();
                        self.close_queue.push(key);
                    }
                }
            }
        }
    }

    /// The key in `conns` of a connection the reactor holds.
    fn conn_key_of(&self, id: ConnId) -> Option<usize> {
        self.by_id.get(&id).map(|&key| key as usize)
    }

    fn conn_by_id(&mut self, id: ConnId) -> Option<&mut Conn> {
        let key = self.conn_key_of(id)?;
        self.conns.get_mut(key)
    }

    /// Stops accepting, tells the engine, and starts the grace period.
    fn begin_shutdown(&mut self) {
        for mut listener in self.listeners.drain() {
            if let Err(e) = self.poll.registry().deregister(&mut listener.socket) {
                log::debug!("deregistering listener {} failed: {e}", listener.id.0);
            }
        }
        self.accept_retry.clear();
        self.accept_again.clear();
        self.close_http_conns();
        self.stop_bridges();
        self.shutdown_deadline = Some(self.now.saturating_add_ms(SHUTDOWN_GRACE_MS));
        self.feed(Input::Shutdown);
    }

    fn grace_over(&self) -> bool {
        self.shutdown_deadline.is_some_and(|d| self.now >= d)
    }

    fn shutdown_complete(&self) -> bool {
        if self.shutdown_deadline.is_none() {
            return false;
        }
        if self.grace_over() {
            if !self.conns.is_empty() {
                log::warn!(
                    "shutdown grace period over: dropping {} connections",
                    self.conns.len()
                );
            }
            return true;
        }
        self.engine.is_idle() && self.conns.iter().all(|(_, c)| c.outbound.is_empty())
    }
}

/// The store's view of a turn: the engine's changes and queue reads, and the answers fed
/// back with their actions applied (packets wait in the buffers until the flush).
impl TurnSource for Reactor {
    fn changes(&mut self, out: &mut Vec<Change>) {
        self.engine.take_changes(out);
    }

    fn queue_loads(&mut self, out: &mut Vec<QueueLoad>) {
        self.engine.take_queue_loads(out);
    }

    fn queue_loaded(&mut self, client_id: &str, entries: Vec<(u64, Delivery)>) {
        self.engine.queue_loaded(self.now, client_id, entries);
        while let Some(action) = self.engine.poll_action() {
            self.apply(action);
        }
        self.pump_gateways();
    }
}
