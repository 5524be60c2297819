//! CONNECT: validation, client identifier assignment, takeover of an existing connection,
//! session creation or resumption, CONNACK, and retransmission of unacknowledged messages.

use std::rc::Rc;

use super::access::Principal;
use super::durable::Change;
use super::event::{Action, ConnId, ListenerId};
use super::session::{Link, OutState, PendingWill, Session, EXPIRY_NEVER};
use super::timers::{SessionSlot, TimerKey};
use super::{ConnState, Engine};
use crate::codec::mqtt::{
    ConnAck, Connect, Packet, Properties, Props, ProtocolVersion, QoS, ReasonCode,
};

/// Prefix of identifiers the broker assigns to clients that send an empty one.
const ASSIGNED_ID_PREFIX: &str = "culex-";

impl Engine {
    pub(super) fn on_connect(&mut self, conn: ConnId, c: Connect) {
        let version = c.protocol;
        let v5 = version.is_v5();
        if let Some(cs) = self.conns.get_mut(&conn) {
            cs.version = version;
            cs.bridge = c.bridge && !v5;
        }
        self.actions.push_back(Action::SetVersion { conn, version });
        let peer = self.peer(conn);

        if v5 && c.properties.authentication_method.is_some() {
            // No authentication method is offered (spec 4.12).
            return self.refuse(conn, ReasonCode::BadAuthenticationMethod, "auth method");
        }
        // The transport's identity (client certificate) replaces the CONNECT user name;
        // otherwise the user name and password are checked (see `access.rs`).
        let username = match self.authenticate(conn, &c) {
            Ok(username) => username,
            Err((reason, why)) => return self.refuse(conn, reason, why),
        };
        if let Some(w) = &c.will {
            if w.qos > self.limits.max_qos {
                return self.refuse(conn, ReasonCode::QosNotSupported, "will QoS");
            }
            if w.retain && !self.limits.retain_available {
                return self.refuse(conn, ReasonCode::RetainNotSupported, "will retain");
            }
        }

        let mut assigned = None;
        let client_id: Rc<str> = if c.client_id.is_empty() {
            if !v5 && !c.clean_start {
                // [MQTT-3.1.3-8] an empty identifier needs a clean session in 3.1.1.
                return self.refuse(conn, ReasonCode::ClientIdentifierNotValid, "empty id");
            }
            let id: Rc<str> = self.assign_client_id().into();
            assigned = Some(id.clone());
            id
        } else {
            c.client_id.as_str().into()
        };
        if !self.faults.is_empty() && self.fault_refuses_connect(conn, &client_id) {
            return self.close(conn, "CONNECT refused by a fault rule", None);
        }

        let principal = Principal {
            listener: self
                .conns
                .get(&conn)
                .map_or(ListenerId(0), |cs| cs.listener),
            username,
            mount: self.conns.get(&conn).and_then(|cs| cs.mount().cloned()),
            internal: self.conns.get(&conn).is_some_and(|cs| cs.internal),
        };
        let access = self.access_for(&principal, &client_id);
        if let Some(w) = &c.will {
            // The will is published as this client: it needs write access to its topic.
            let topic = match &principal.mount {
                Some(m) => format!("{m}{}", w.topic),
                None => w.topic.clone(),
            };
            if !access.can_write(&topic) {
                return self.refuse(conn, ReasonCode::NotAuthorized, "will topic not authorized");
            }
        }

        let mut keep_alive = c.keep_alive;
        let mut server_keep_alive = None;
        let max_ka = self.limits.max_keepalive;
        let gateway = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.gateway || c.internal);
        if v5 && !gateway && (keep_alive > max_ka || (keep_alive == 0 && max_ka < u16::MAX)) {
            keep_alive = max_ka;
            server_keep_alive = Some(max_ka);
        }

        let expiry = if v5 {
            c.properties.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            EXPIRY_NEVER
        };
        let expiry = self.cap_expiry(expiry);

        // Takeover [MQTT-3.1.4-3]: the existing connection is closed first, its will
        // handled as for any connection loss.
        if let Some(&key) = self.by_client_id.get(&client_id) {
            if let Some(old) = self.sessions[key].link.as_ref().map(|l| l.conn) {
                log::info!("{old}: session {client_id} taken over by {conn} ({peer})");
                self.close(
                    old,
                    "session taken over",
                    Some(ReasonCode::SessionTakenOver),
                );
            }
        }
        let existing = self.by_client_id.get(&client_id).copied();
        if let (Some(key), true) = (existing, c.clean_start) {
            // [MQTT-3.1.2-4] Clean Start discards the existing session.
            self.end_session(key);
        }
        let (key, session_present) = match self.by_client_id.get(&client_id).copied() {
            Some(key) => (key, true),
            None => (self.create_session(client_id.clone()), false),
        };

        let receive_max = c.properties.receive_maximum.unwrap_or(u16::MAX);
        let mut will = c.will;
        if let (Some(w), Some(m)) = (will.as_mut(), principal.mount.as_ref()) {
            w.topic = format!("{m}{}", w.topic);
        }
        let link = Link {
            conn,
            version,
            receive_max,
            max_packet: c.properties.maximum_packet_size.unwrap_or(u32::MAX),
            alias_max: if v5 {
                c.properties.topic_alias_maximum.unwrap_or(0)
            } else {
                0
            },
            alias_in_max: if v5 { self.limits.max_topic_alias } else { 0 },
            aliases: None,
        };
        {
            let s = &mut self.sessions[key];
            s.link = Some(link);
            s.expiry_secs = expiry;
            s.expires_at = None;
            s.access = access;
            s.principal = Some(principal);
            // [MQTT-3.1.3-9] a new connection before the will delay passes cancels the will.
            s.will = will.map(|w| {
                let delay_secs = w.properties.will_delay_interval.unwrap_or(0);
                Box::new(PendingWill {
                    will: w,
                    delay_secs,
                    due: None,
                })
            });
        }
        self.persist_session(key);

        if let Some(cs) = self.conns.get_mut(&conn) {
            let newly = !matches!(cs.state, ConnState::Active(_));
            cs.state = ConnState::Active(SessionSlot::new(key));
            cs.keep_alive_ms = u32::from(keep_alive) * 1000;
            if newly {
                self.active_conns += 1;
            }
        }
        if keep_alive > 0 {
            let due = self.now.saturating_add_ms(u64::from(keep_alive) * 1500);
            self.timers.arm(due, TimerKey::KeepAlive(conn));
        }
        self.actions.push_back(Action::SetMaxPacketSize {
            conn,
            bytes: self.limits.packet_size_max(),
        });

        let mut props = Properties::default();
        if v5 {
            props.assigned_client_identifier = assigned.map(|a| a.to_string());
            props.server_keep_alive = server_keep_alive;
            let recv = self.server_receive_max();
            if recv < u16::MAX {
                props.receive_maximum = Some(recv);
            }
            if self.limits.max_qos < QoS::ExactlyOnce {
                props.maximum_qos = Some(self.limits.max_qos as u8);
            }
            if !self.limits.retain_available {
                props.retain_available = Some(0);
            }
            if self.limits.max_packet_size > 0 {
                props.maximum_packet_size = Some(self.limits.packet_size_max());
            }
            if self.limits.max_topic_alias > 0 {
                props.topic_alias_maximum = Some(self.limits.max_topic_alias);
            }
            if c.properties.request_response_information == Some(1) {
                props.response_information = Some(format!("response/{client_id}"));
            }
        }
        let present = session_present && !c.clean_start;
        let level = self.limits.connection_log_level();
        if log::log_enabled!(level) {
            let listener = match self.conns.get(&conn) {
                Some(c) if c.internal => "as a client of the broker itself".to_owned(),
                Some(c) => format!("on listener {}", c.listener.0),
                None => String::new(),
            };
            let user = self.sessions[key]
                .username()
                .map(|u| format!(", user {u:?}"))
                .unwrap_or_default();
            log::log!(
                level,
                "{conn} ({peer}): client {client_id} connected {listener} ({}, keep \
                 alive {keep_alive}, session {}{user})",
                version_name(version),
                if present { "resumed" } else { "new" }
            );
        }
        self.send(
            conn,
            Packet::ConnAck(ConnAck {
                session_present: present,
                reason: ReasonCode::Success,
                properties: props.into(),
            }),
        );
        let internal = self.conns.get(&conn).is_some_and(|c| c.internal);
        if let (Some(notices), false) = (self.notices.as_mut(), internal) {
            let username = self.sessions[key].username().cloned();
            notices.push(crate::engine::event::Notice::Connected {
                client_id: client_id.clone(),
                peer: peer.clone(),
                version,
                username,
            });
        }
        self.stats.connections_max = self.stats.connections_max.max(self.online_count());
        if present {
            self.resend_inflight(key);
        }
        self.pump(key);
    }

    /// CONNACK with a failure reason, then close [MQTT-3.2.2-6: session present 0].
    fn refuse(&mut self, conn: ConnId, reason: ReasonCode, why: &str) {
        log::info!(
            "{conn} ({}): connection refused: {} ({why})",
            self.peer(conn),
            reason.text()
        );
        let ack = ConnAck {
            session_present: false,
            reason,
            properties: Props::none(),
        };
        self.send(conn, Packet::ConnAck(ack));
        self.close(conn, "connection refused", None);
    }

    pub(super) fn create_session(&mut self, client_id: Rc<str>) -> usize {
        let uid = self.next_uid;
        self.next_uid += 1;
        let key = self.sessions.insert(Session::new(uid, client_id.clone()));
        self.by_client_id.insert(client_id, key);
        key
    }

    /// A fresh identifier from the seeded source, unused by any session.
    fn assign_client_id(&mut self) -> String {
        loop {
            let id = format!("{ASSIGNED_ID_PREFIX}{:016x}", self.rng.next_u64());
            if !self.by_client_id.contains_key(id.as_str()) {
                return id;
            }
        }
    }

    /// The Receive Maximum the broker announces: QoS 2 messages a client may have awaiting
    /// PUBREL.
    pub(super) fn server_receive_max(&self) -> u16 {
        match self.limits.max_inflight_messages {
            0 => u16::MAX,
            n => n,
        }
    }

    fn online_count(&self) -> usize {
        debug_assert_eq!(
            self.active_conns,
            self.conns
                .values()
                .filter(|c| matches!(c.state, ConnState::Active(_)))
                .count(),
            "the count of attached connections drifted"
        );
        self.active_conns
    }

    /// On resumption, every unacknowledged PUBLISH is sent again with DUP set and every
    /// PUBREL again, in their original order [MQTT-4.4.0-1].
    fn resend_inflight(&mut self, key: usize) {
        let Some(conn) = self.sessions[key].link.as_ref().map(|l| l.conn) else {
            return;
        };
        let Some(flows) = self.sessions[key].flows() else {
            return;
        };
        let ids: Vec<(u16, OutState)> = flows
            .inflight
            .iter()
            .map(|(id, f)| (*id, f.state))
            .collect();
        for (id, state) in ids {
            match state {
                OutState::AwaitPubComp => self.send(conn, Packet::PubRel(Self::ack(id))),
                OutState::AwaitPubAck | OutState::AwaitPubRec => {
                    let Some(d) = self.sessions[key]
                        .flows()
                        .and_then(|f| f.inflight.get(&id))
                        .map(|f| f.delivery.clone())
                    else {
                        continue;
                    };
                    if !self.send_publish(key, conn, id, &d, true) {
                        self.sessions[key].flows_mut().inflight.remove(&id);
                        self.record_for(key, |client_id| Change::InflightReleased {
                            client_id,
                            packet_id: id,
                        });
                    }
                }
            }
        }
    }

    /// A success acknowledgement for `packet_id`.
    pub(super) fn ack(packet_id: u16) -> crate::codec::mqtt::Ack {
        crate::codec::mqtt::Ack::success(packet_id)
    }
}

fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V31 => "MQTT 3.1",
        ProtocolVersion::V311 => "MQTT 3.1.1",
        ProtocolVersion::V5 => "MQTT 5.0",
    }
}
