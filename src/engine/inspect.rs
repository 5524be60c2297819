//! Read-only views of the engine's state for the HTTP API: connected clients, sessions,
//! subscriptions, retained messages and counters. Nothing here changes the engine, so a
//! request for state never alters what it observes; lists come in client-id order.

use std::rc::Rc;

use super::event::Peer;
use super::message::Message;
use super::session::{Session, EXPIRY_NEVER};
use super::topic_tree::Subscription;
use super::{ConnState, Engine};
use crate::clock::Millis;
use crate::codec::mqtt::{topic, ProtocolVersion, QoS};
use crate::engine::event::{ConnId, ListenerId};

/// A connected client.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub client_id: Rc<str>,
    pub conn: ConnId,
    pub listener: ListenerId,
    /// Connected through the MQTT-SN gateway.
    pub gateway: bool,
    pub version: ProtocolVersion,
    pub peer: Peer,
    pub username: Option<Rc<str>>,
    /// Keep alive in force, in seconds.
    pub keep_alive_secs: u64,
    pub session_expiry: u32,
    pub inflight: usize,
    pub queued: usize,
    pub subscriptions: usize,
}

/// A session, connected or not.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub client_id: Rc<str>,
    pub conn: Option<ConnId>,
    /// Session Expiry Interval in seconds ([`EXPIRY_NEVER`]: never).
    pub expiry: u32,
    /// Seconds left before a disconnected session ends, if it ends.
    pub expires_in_secs: Option<u64>,
    pub inflight: usize,
    pub queued: usize,
    pub queued_bytes: u64,
    pub subscriptions: usize,
}

/// One subscription of one session.
#[derive(Debug, Clone)]
pub struct SubscriptionView {
    pub client_id: Rc<str>,
    pub filter: String,
    pub sub: Subscription,
}

/// A will waiting for its connection to end.
#[derive(Debug, Clone)]
pub struct WillView {
    pub topic: String,
    pub qos: QoS,
    pub retain: bool,
    pub payload_size: usize,
    pub delay_secs: u32,
}

/// State counts for the broker summary and the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub clients_connected: usize,
    pub sessions: usize,
    pub sessions_offline: usize,
    pub subscriptions: usize,
    pub retained: usize,
}

impl Engine {
    /// Every connected client, in client-id order.
    pub fn clients(&self) -> impl Iterator<Item = ClientView> + '_ {
        self.by_client_id
            .values()
            .filter_map(move |&key| self.client_view(self.sessions.get(key)?))
    }

    /// The connected client with this identifier.
    pub fn client(&self, client_id: &str) -> Option<ClientView> {
        let key = *self.by_client_id.get(client_id)?;
        self.client_view(self.sessions.get(key)?)
    }

    /// The will of the session with this identifier, if it holds one.
    pub fn will_of(&self, client_id: &str) -> Option<WillView> {
        let key = *self.by_client_id.get(client_id)?;
        let w = self.sessions.get(key)?.will.as_ref()?;
        Some(WillView {
            topic: w.will.topic.clone(),
            qos: w.will.qos,
            retain: w.will.retain,
            payload_size: w.will.payload.len(),
            delay_secs: w.delay_secs,
        })
    }

    fn client_view(&self, s: &Session) -> Option<ClientView> {
        let link = s.link.as_ref()?;
        let c = self.conns.get(&link.conn)?;
        if !matches!(c.state, ConnState::Active(_)) {
            return None;
        }
        Some(ClientView {
            client_id: s.client_id.clone(),
            conn: link.conn,
            listener: c.listener,
            gateway: c.gateway,
            version: link.version,
            peer: c.peer.clone(),
            username: s.username().cloned(),
            keep_alive_secs: u64::from(c.keep_alive_ms / 1000),
            session_expiry: s.expiry_secs,
            inflight: s.inflight_len(),
            queued: s.queue_len(),
            subscriptions: s.subscriptions.len(),
        })
    }

    /// Every session, connected or not, in client-id order.
    pub fn sessions(&self) -> impl Iterator<Item = SessionView> + '_ {
        self.by_client_id
            .values()
            .filter_map(move |&key| self.sessions.get(key).map(|s| self.session_view(s)))
    }

    /// The session with this identifier.
    pub fn session(&self, client_id: &str) -> Option<SessionView> {
        let key = *self.by_client_id.get(client_id)?;
        self.sessions.get(key).map(|s| self.session_view(s))
    }

    fn session_view(&self, s: &Session) -> SessionView {
        let conn = s.link.as_ref().map(|l| l.conn);
        let expires_in_secs = match (conn, s.expires_at) {
            (None, Some(at)) if s.expiry_secs != EXPIRY_NEVER => {
                Some(at.since(self.now).div_ceil(1000))
            }
            _ => None,
        };
        SessionView {
            client_id: s.client_id.clone(),
            conn,
            expiry: s.expiry_secs,
            expires_in_secs,
            inflight: s.inflight_len(),
            queued: s.queue_len(),
            queued_bytes: s.queued_bytes(),
            subscriptions: s.subscriptions.len(),
        }
    }

    /// The subscriptions of one session (or of every session), in client-id then filter
    /// order.
    pub fn subscriptions<'a>(
        &'a self,
        client_id: Option<&'a str>,
    ) -> impl Iterator<Item = SubscriptionView> + 'a {
        self.by_client_id
            .iter()
            .filter(move |(id, _)| client_id.is_none_or(|wanted| &***id == wanted))
            .filter_map(move |(_, &key)| self.sessions.get(key))
            .flat_map(|s| {
                s.subscriptions
                    .iter()
                    .map(|(filter, sub)| SubscriptionView {
                        client_id: s.client_id.clone(),
                        filter: filter.clone(),
                        sub: *sub,
                    })
            })
    }

    /// The unexpired retained messages whose topic matches `filter`, in topic order. The
    /// filter must be valid ([`topic::valid_topic_filter`]).
    pub fn retained_matching<'a>(
        &'a self,
        filter: &'a str,
        now: Millis,
    ) -> impl Iterator<Item = &'a Rc<Message>> + 'a {
        self.retained
            .iter()
            .filter(move |m| !m.is_expired(now) && topic::matches(filter, &m.topic))
    }

    /// How many clients, sessions, subscriptions and retained messages there are.
    pub fn counts(&self) -> Counts {
        let clients_connected = self
            .conns
            .values()
            .filter(|c| matches!(c.state, ConnState::Active(_)))
            .count();
        let sessions = self.sessions.len();
        let offline = self
            .sessions
            .iter()
            .filter(|(_, s)| s.link.is_none())
            .count();
        let subscriptions = self
            .sessions
            .iter()
            .map(|(_, s)| s.subscriptions.len())
            .sum();
        Counts {
            clients_connected,
            sessions,
            sessions_offline: offline,
            subscriptions,
            retained: self.retained.len(),
        }
    }

    /// The time the engine last saw.
    pub fn now(&self) -> Millis {
        self.now
    }
}
