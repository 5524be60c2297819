//! One bridge of either kind, MQTT or webhook, behind one face: what the reactor's bridge
//! table holds. The two differ in what they send (MQTT packets, HTTP requests as bytes) and
//! in how they read (MQTT frames, HTTP responses); everything else is shared.

use super::mqtt::{Bridge, Output, State};
use super::mqttsn::{SnBridge, SnOutput};
use super::webhook::{BrokerEvent, Webhook, WebhookOutput};
use crate::clock::Millis;
use crate::codec::mqtt::Packet;
use crate::codec::mqtt::ProtocolVersion;
use crate::config::bridge::{BridgeConfig, BridgeKind, RemoteAddress, WebhookEvent};
use crate::engine::event::{ConnId, Input, Notice};

/// What either kind of bridge asks of the reactor.
#[derive(Debug)]
pub enum Out {
    Connect(RemoteAddress),
    /// An MQTT packet for the remote broker.
    Packet(Packet),
    /// Bytes for the web service (one whole HTTP request).
    Bytes(Vec<u8>),
    Close,
    Engine(Input),
    /// The bridge's connection state, for this broker's `$SYS` tree.
    Notify {
        topic: String,
        up: bool,
    },
    /// A datagram for the MQTT-SN gateway in use.
    ToGateway(Vec<u8>),
    /// A datagram for the MQTT-SN discovery group.
    ToGroup(Vec<u8>),
    /// The source of the datagram just handed in is the MQTT-SN gateway from now on.
    UseSource,
}

/// Counts and state for the API, whatever the kind.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// `connected`, `connecting`, `waiting` or `stopped`.
    pub state: &'static str,
    pub connects: u64,
    pub messages_out: u64,
    pub messages_in: u64,
    pub failures: u64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

pub enum Link {
    Mqtt(Box<Bridge>),
    Http(Box<Webhook>),
    MqttSn(Box<SnBridge>),
}

impl Link {
    pub fn config(&self) -> &BridgeConfig {
        match self {
            Self::Mqtt(b) => b.config(),
            Self::Http(w) => w.config(),
            Self::MqttSn(b) => b.config(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config().name
    }

    /// Whether the remote end speaks HTTP (its bytes are not MQTT frames).
    pub fn is_http(&self) -> bool {
        matches!(self, Self::Http(_))
    }

    pub fn poll(&mut self) -> Option<Out> {
        match self {
            Self::Mqtt(b) => b.poll().map(|o| match o {
                Output::Connect(a) => Out::Connect(a),
                Output::Send(p) => Out::Packet(p),
                Output::Close => Out::Close,
                Output::Engine(i) => Out::Engine(i),
                Output::Notify { topic, up } => Out::Notify { topic, up },
            }),
            Self::Http(w) => w.poll().map(|o| match o {
                WebhookOutput::Connect(a) => Out::Connect(a),
                WebhookOutput::Send(b) => Out::Bytes(b),
                WebhookOutput::Close => Out::Close,
                WebhookOutput::Engine(i) => Out::Engine(i),
            }),
            Self::MqttSn(b) => b.poll().map(|o| match o {
                SnOutput::ToGateway(d) => Out::ToGateway(d),
                SnOutput::ToGroup(d) => Out::ToGroup(d),
                SnOutput::UseSource => Out::UseSource,
                SnOutput::Engine(i) => Out::Engine(i),
                SnOutput::Notify { topic, up } => Out::Notify { topic, up },
            }),
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        match self {
            Self::Mqtt(b) => b.next_deadline(),
            Self::Http(w) => w.next_deadline(),
            Self::MqttSn(b) => b.next_deadline(),
        }
    }

    pub fn tick(&mut self, now: Millis) {
        match self {
            Self::Mqtt(b) => b.tick(now),
            Self::Http(w) => w.tick(now),
            Self::MqttSn(b) => b.tick(now),
        }
    }

    /// The transport is up; an MQTT bridge opens its local session as `local` after CONNACK.
    pub fn transport_up(&mut self, now: Millis, local: ConnId) {
        match self {
            Self::Mqtt(b) => b.transport_up(now, local),
            Self::Http(w) => w.transport_up(now),
            Self::MqttSn(_) => {}
        }
    }

    pub fn transport_down(&mut self, now: Millis, reason: &str) {
        match self {
            Self::Mqtt(b) => b.transport_down(now, reason),
            Self::Http(w) => w.transport_down(now, reason),
            Self::MqttSn(_) => {}
        }
    }

    pub fn from_engine(&mut self, now: Millis, packet: Packet) {
        match self {
            Self::Mqtt(b) => b.from_engine(now, packet),
            Self::Http(w) => w.from_engine(now, packet),
            Self::MqttSn(b) => b.from_engine(now, packet),
        }
    }

    /// The engine closed the local session's connection; a webhook reopens it as `reopen`.
    pub fn local_closed(&mut self, now: Millis, reopen: ConnId) {
        match self {
            Self::Mqtt(b) => b.local_closed(now),
            Self::Http(w) => {
                w.local_closed(now);
                w.reopen_local(now, reopen);
            }
            Self::MqttSn(b) => b.local_closed(now),
        }
    }

    pub fn stop(&mut self, now: Millis) {
        match self {
            Self::Mqtt(b) => b.stop(now),
            Self::Http(w) => w.stop(now),
            Self::MqttSn(b) => b.stop(now),
        }
    }

    /// A client event of the engine, for a webhook that posts such events.
    pub fn event(&mut self, now: Millis, notice: &Notice) {
        if let Self::Http(w) = self {
            w.event(now, broker_event(notice));
        }
    }

    /// Whether the bridge posts client events (a webhook with `connected`, `disconnected`
    /// or `subscribed` among its events).
    pub fn wants_events(&self) -> bool {
        match &self.config().kind {
            BridgeKind::Http(h) => h.events.iter().any(|e| *e != WebhookEvent::Message),
            BridgeKind::Mqtt | BridgeKind::MqttSn(_) => false,
        }
    }

    pub fn status(&self) -> Status {
        match self {
            Self::Mqtt(b) => {
                let c = b.counters();
                Status {
                    state: match b.state() {
                        State::Active => "connected",
                        State::Connecting { .. } | State::AwaitConnAck { .. } => "connecting",
                        State::Waiting { .. } => "waiting",
                        State::Stopped => "stopped",
                    },
                    connects: c.connects,
                    messages_out: c.messages_out,
                    messages_in: c.messages_in,
                    failures: c.failures,
                    last_status: None,
                    last_error: b.last_error().map(str::to_owned),
                }
            }
            Self::MqttSn(b) => {
                let (connects, messages_out, messages_in) = b.counters();
                Status {
                    state: match b.state_name() {
                        "searching" => "connecting",
                        other => other,
                    },
                    connects,
                    messages_out,
                    messages_in,
                    failures: 0,
                    last_status: None,
                    last_error: b.last_error().map(str::to_owned),
                }
            }
            Self::Http(w) => {
                let c = w.counters();
                Status {
                    state: match c.state {
                        "posting" => "connected",
                        other => other,
                    },
                    connects: 0,
                    messages_out: c.posted,
                    messages_in: 0,
                    failures: c.failed,
                    last_status: c.last_status,
                    last_error: c.last_error.clone(),
                }
            }
        }
    }

    /// The connection ids the bridge holds, to give back when it is removed.
    pub fn held_ids(&self) -> [Option<ConnId>; 2] {
        match self {
            Self::Mqtt(b) => b.held_ids(),
            Self::Http(b) => b.held_ids(),
            Self::MqttSn(b) => b.held_ids(),
        }
    }

    /// A datagram bridge waiting for the connection id of its next local session.
    pub fn wants_local_id(&self) -> bool {
        matches!(self, Self::MqttSn(b) if b.wants_local_id())
    }

    /// Gives a datagram bridge the connection id of its next local session.
    pub fn set_local_id(&mut self, local: ConnId) {
        if let Self::MqttSn(b) = self {
            b.set_local_id(local);
        }
    }

    /// An MQTT-SN datagram, from the gateway in use or from elsewhere (discovery).
    pub fn datagram(&mut self, now: Millis, from_gateway: bool, bytes: &[u8]) {
        if let Self::MqttSn(b) = self {
            b.datagram(now, from_gateway, bytes);
        }
    }

    /// The address in use or last tried.
    pub fn address(&self) -> Option<&RemoteAddress> {
        match self {
            Self::Mqtt(b) => b.address(),
            Self::Http(w) => w.config().addresses.first(),
            Self::MqttSn(b) => b.config().addresses.first(),
        }
    }
}

/// The webhook's form of an engine client event.
fn broker_event(notice: &Notice) -> BrokerEvent {
    match notice {
        Notice::Connected {
            client_id,
            peer,
            version,
            username,
        } => BrokerEvent::Connected {
            client_id: client_id.to_string(),
            address: peer.to_string(),
            protocol: match version {
                ProtocolVersion::V5 => "mqtt 5.0",
                ProtocolVersion::V311 => "mqtt 3.1.1",
                ProtocolVersion::V31 => "mqtt 3.1",
            }
            .to_owned(),
            username: username.as_deref().map(str::to_owned),
        },
        Notice::Disconnected { client_id, reason } => BrokerEvent::Disconnected {
            client_id: client_id.to_string(),
            reason: reason.clone(),
        },
        Notice::Subscribed { client_id, filters } => BrokerEvent::Subscribed {
            client_id: client_id.to_string(),
            filters: filters.clone(),
        },
    }
}
