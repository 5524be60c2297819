//! Inbound PUBLISH and PUBREL: topic alias resolution, the checks a publication must pass,
//! the QoS 1 and QoS 2 receive side (exactly once for QoS 2), retained messages, routing.

use std::rc::Rc;

use super::durable::Change;
use super::event::ConnId;
use super::event::Control;
use super::message::Message;
use super::topic_tree::SessionKey;
use super::Engine;
use super::CLOCK_ADVANCE_MAX_MS;
use crate::codec::mqtt::{topic, Ack, Packet, Props, Publish, QoS, ReasonCode};

impl Engine {
    pub(super) fn on_publish(&mut self, conn: ConnId, key: SessionKey, p: Publish) {
        self.stats.publish_received += 1;
        let v5 = self.conn_version(conn).is_v5();
        let topic = match self.resolve_alias(key, &p) {
            Ok(t) => t,
            Err((reason, clause)) => return self.violation(conn, reason, "PUBLISH", clause),
        };
        let s = &self.sessions[key];
        let topic = match s.mount() {
            Some(_) if s.link.is_some() => s.mounted(&topic),
            _ => topic,
        };
        if !self.topic_within_bounds(&topic) {
            // Refused like an invalid topic: `max_topic_levels` or, mount point included,
            // 65,535 bytes.
            let r = ReasonCode::TopicNameInvalid;
            return self.violation(conn, r, "PUBLISH", "max_topic_levels");
        }
        if !p.properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6] a client may not send a Subscription Identifier.
            return self.violation(conn, ReasonCode::ProtocolError, "PUBLISH", "MQTT-3.3.4-6");
        }
        if p.properties
            .response_topic
            .as_deref()
            .is_some_and(|t| !topic::valid_topic_name(t))
        {
            // [MQTT-3.3.2-14] the Response Topic is a topic name: no wildcards.
            return self.violation(conn, ReasonCode::ProtocolError, "PUBLISH", "MQTT-3.3.2-14");
        }
        if p.qos > self.limits.max_qos {
            // [MQTT-3.2.2-11] above the Maximum QoS the broker announced.
            return self.violation(
                conn,
                ReasonCode::QosNotSupported,
                "PUBLISH",
                "MQTT-3.2.2-11",
            );
        }
        if p.retain && !self.limits.retain_available {
            // [MQTT-3.2.2-14] retain was announced as not available.
            return self.violation(
                conn,
                ReasonCode::RetainNotSupported,
                "PUBLISH",
                "MQTT-3.2.2-14",
            );
        }
        let id = p.packet_id;
        if p.qos == QoS::ExactlyOnce && self.sessions[key].awaits_pubrel(id) {
            // A resend before PUBREL: acknowledge again, deliver nothing [MQTT-4.3.3-10].
            return self.send(conn, Packet::PubRec(Self::ack(id)));
        }
        if p.qos == QoS::ExactlyOnce
            && self.sessions[key].incoming_qos2_len() >= usize::from(self.server_receive_max())
        {
            // [MQTT-3.3.4-9] more unacknowledged QoS 2 than the Receive Maximum.
            let r = ReasonCode::ReceiveMaximumExceeded;
            return self.violation(conn, r, "PUBLISH", "MQTT-3.3.4-9");
        }
        // A fault rule may choose the answer (see `fault`); an error refuses the message.
        let forced = if self.faults.is_empty() || p.qos == QoS::AtMostOnce {
            None
        } else {
            self.fault_reason(conn, key)
        };
        if let Some(reason) = forced.filter(|r| r.is_error()) {
            self.stats.publish_dropped += 1;
            if v5 {
                return self.ack_publish(conn, key, p.qos, id, reason);
            }
            log::info!("{conn}: 3.1.1 has no reason codes: closing instead");
            return self.close(conn, "PUBLISH refused by a fault rule", None);
        }
        let mut refusal = None;
        if v5
            && p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&p.payload).is_err()
        {
            // [MQTT-3.3.2-4] the payload is declared UTF-8 and is not.
            refusal = Some(ReasonCode::PayloadFormatInvalid);
        } else if self.limits.message_size_limit > 0
            && p.payload.len() > self.limits.message_size_limit as usize
        {
            log::info!(
                "{conn} ({}): PUBLISH of {} bytes on {} over message_size_limit; dropped",
                self.peer(conn),
                p.payload.len(),
                topic
            );
            refusal = Some(ReasonCode::QuotaExceeded);
        } else if !self.sessions[key].access.can_write(&topic) {
            log::info!(
                "{conn} ({}): PUBLISH to {topic} not authorized",
                self.peer(conn)
            );
            refusal = Some(ReasonCode::NotAuthorized);
        }
        if let Some(reason) = refusal {
            self.stats.publish_dropped += 1;
            return match p.qos {
                QoS::AtMostOnce if reason == ReasonCode::PayloadFormatInvalid => {
                    self.violation(conn, reason, "PUBLISH", "MQTT-3.3.2-4")
                }
                QoS::AtMostOnce => {}
                qos => self.ack_publish(
                    conn,
                    key,
                    qos,
                    id,
                    if v5 { reason } else { ReasonCode::Success },
                ),
            };
        }
        let qos = p.qos;
        if topic.starts_with("$CONTROL/") {
            let reason = self.control(conn, &topic, &p.payload);
            let reason = if v5 { reason } else { ReasonCode::Success };
            return self.ack_publish(conn, key, qos, id, reason);
        }
        if self.queue_memory_full(conn) {
            if self.refuse_for_memory(conn, qos) {
                self.ack_publish(conn, key, qos, id, ReasonCode::QuotaExceeded);
            }
            return;
        }
        let origin = Some(self.sessions[key].uid);
        // Clients may not publish into the broker's own `$SYS` tree.
        if !topic.starts_with("$SYS") {
            let msg = Rc::new(Message::from_publish(p, topic, self.now, origin));
            self.accept_message(msg);
        }
        let reason = forced.filter(|_| v5).unwrap_or(ReasonCode::Success);
        self.ack_publish(conn, key, qos, id, reason);
    }

    /// A message to the broker's control topics (`$CONTROL/clock/advance` in deterministic
    /// mode): recorded for the reactor, never routed. The reason code answers it.
    fn control(&mut self, conn: ConnId, topic: &str, payload: &[u8]) -> ReasonCode {
        if !self.controls_enabled {
            log::info!("{conn}: {topic} refused: not in deterministic mode");
            return ReasonCode::NotAuthorized;
        }
        if topic != "$CONTROL/clock/advance" {
            return ReasonCode::TopicNameInvalid;
        }
        let ms = std::str::from_utf8(payload)
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&ms| ms <= CLOCK_ADVANCE_MAX_MS);
        match ms {
            Some(ms) => {
                self.controls.push(Control::AdvanceClock(ms));
                ReasonCode::Success
            }
            None => ReasonCode::PayloadFormatInvalid,
        }
    }

    fn ack_publish(&mut self, conn: ConnId, key: SessionKey, qos: QoS, id: u16, r: ReasonCode) {
        let ack = Ack {
            packet_id: id,
            reason: r,
            properties: Props::none(),
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(conn, Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                if !r.is_error() {
                    self.sessions[key].flows_mut().incoming_qos2.insert(id);
                    self.record_for(key, |client_id| Change::IncomingQos2 {
                        client_id,
                        packet_id: id,
                        pending: true,
                    });
                }
                self.send(conn, Packet::PubRec(ack));
            }
        }
    }

    /// Resolves the topic of an inbound PUBLISH through the client's topic aliases
    /// (spec 3.3.2.3.4), recording a new alias when the PUBLISH sets one.
    fn resolve_alias(
        &mut self,
        key: SessionKey,
        p: &Publish,
    ) -> Result<Rc<str>, (ReasonCode, &'static str)> {
        let Some(alias) = p.properties.topic_alias else {
            if p.topic.is_empty() {
                return Err((ReasonCode::ProtocolError, "MQTT-3.3.2-1"));
            }
            return Ok(p.topic.clone());
        };
        let Some(link) = self.sessions[key].link.as_mut() else {
            return Err((ReasonCode::ProtocolError, "no link"));
        };
        if alias == 0 || alias > link.alias_in_max {
            // [MQTT-3.3.2-9] 0 or above the Topic Alias Maximum.
            return Err((ReasonCode::TopicAliasInvalid, "MQTT-3.3.2-9"));
        }
        if p.topic.is_empty() {
            link.alias_in(alias)
                .ok_or((ReasonCode::ProtocolError, "MQTT-3.3.2-12"))
        } else {
            link.aliases_mut().set_in(alias, p.topic.clone());
            Ok(p.topic.clone())
        }
    }

    pub(super) fn on_pubrel(&mut self, conn: ConnId, key: SessionKey, a: Ack) {
        let found = self.sessions[key]
            .existing_flows_mut()
            .is_some_and(|f| f.incoming_qos2.remove(&a.packet_id));
        if found {
            self.record_for(key, |client_id| Change::IncomingQos2 {
                client_id,
                packet_id: a.packet_id,
                pending: false,
            });
        }
        let mut ack = Self::ack(a.packet_id);
        if !found && self.conn_version(conn).is_v5() {
            ack.reason = ReasonCode::PacketIdentifierNotFound;
        }
        self.send(conn, Packet::PubComp(ack));
    }

    /// A message accepted by the broker: stored if retained, then routed to subscribers.
    pub(super) fn accept_message(&mut self, msg: Rc<Message>) {
        // The broker's own `$SYS` messages describe this run only: never stored.
        let durable = !msg.topic.starts_with("$SYS");
        if msg.retain && self.retained.set(&msg) && durable {
            if msg.payload.is_empty() {
                let topic = msg.topic.clone();
                self.journal.record(|| Change::RetainCleared { topic });
            } else {
                let m = msg.clone();
                self.journal.record(|| Change::RetainSet { msg: m });
            }
        }
        self.route(msg);
    }
}
