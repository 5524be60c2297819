//! The engine's side of a client: packets the engine sends it, turned into MQTT-SN and
//! queued, registered, sent one acknowledged message at a time and sent again when
//! unacknowledged; and the client's liveness.
//!
//! Owns no state of its own (the client's is in the parent module). It must never send a
//! PUBLISH on a topic the client has no id for.

use super::*;

impl Gateway {
    /// A packet from the engine for the client at `peer`.
    pub(in crate::gateway) fn engine_packet(&mut self, now: Millis, peer: &Peer, packet: Packet) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        match packet {
            Packet::ConnAck(ack) => {
                let code = convert::return_code(ack.reason);
                if code == ReturnCode::Accepted && client.phase == Phase::Connecting {
                    client.phase = Phase::Active;
                    client.since = now;
                }
                self.send(peer, &Message::ConnAck { code });
                self.pump(now, peer);
            }
            Packet::Publish(p) => {
                if client.queue.len() >= self.config.sleep_buffer {
                    log::info!(
                        "{}: MQTT-SN client {} has {} messages waiting: one dropped",
                        peer.name(),
                        client.client_id,
                        client.queue.len()
                    );
                    self.ack_to_engine(peer, &p);
                    return;
                }
                client.queue.push_back(Out::Publish(Box::new(p)));
                self.pump(now, peer);
            }
            Packet::PubRel(ack) => {
                if client.refused_qos2.remove(&ack.packet_id) {
                    let conn = client.conn;
                    return self.engine_ack(conn, Packet::PubComp, ack.packet_id);
                }
                client.queue.push_back(Out::PubRel(ack.packet_id));
                self.pump(now, peer);
            }
            Packet::PubAck(ack) => {
                let topic_id = client.publish_topics.remove(&ack.packet_id).unwrap_or(0);
                let msg = Message::PubAck {
                    topic_id,
                    msg_id: ack.packet_id,
                    code: convert::return_code(ack.reason),
                };
                self.send(peer, &msg);
            }
            Packet::PubRec(ack) => self.send(
                peer,
                &Message::PubRec {
                    msg_id: ack.packet_id,
                },
            ),
            Packet::PubComp(ack) => self.send(
                peer,
                &Message::PubComp {
                    msg_id: ack.packet_id,
                },
            ),
            Packet::SubAck(ack) => {
                let topic_id = client.subscribe_topics.remove(&ack.packet_id).unwrap_or(0);
                let reason = ack
                    .reasons
                    .first()
                    .copied()
                    .unwrap_or(ReasonCode::UnspecifiedError);
                let granted = QoS::from_u8(reason as u8).unwrap_or(QoS::AtMostOnce);
                let msg = Message::SubAck {
                    flags: Flags {
                        qos: convert::sn_qos(granted),
                        ..Flags::default()
                    },
                    topic_id,
                    msg_id: ack.packet_id,
                    code: convert::return_code(reason),
                };
                self.send(peer, &msg);
            }
            Packet::UnsubAck(ack) => self.send(
                peer,
                &Message::UnsubAck {
                    msg_id: ack.packet_id,
                },
            ),
            Packet::Disconnect(_) => {
                client.phase = Phase::Disconnecting;
                self.send(peer, &Message::Disconnect { duration: None });
            }
            _ => {}
        }
    }

    /// Sends what waits for the client, one acknowledged message at a time, registering
    /// topics first where needed. An awake sleeper that has received everything gets its
    /// PINGRESP and sleeps again.
    pub(in crate::gateway) fn pump(&mut self, now: Millis, peer: &Peer) {
        let retry = self.config.retry_ms;
        loop {
            let Some(client) = self.clients.get_mut(peer) else {
                return;
            };
            let ready = matches!(client.phase, Phase::Active | Phase::Awake);
            if !ready || client.in_flight.is_some() {
                return;
            }
            let topic = match client.queue.front() {
                None => {
                    if client.phase == Phase::Awake {
                        client.phase = Phase::Asleep;
                        client.since = now;
                        self.send(peer, &Message::PingResp);
                    }
                    return;
                }
                Some(Out::PubRel(id)) => {
                    let kind = InFlightKind::PubRel { msg_id: *id };
                    client.queue.pop_front();
                    self.start_in_flight(now, peer, kind, retry);
                    continue;
                }
                Some(Out::Publish(p)) => p.topic.clone(),
            };
            let named = if let Some(id) = self.predefined_ids.get(&topic) {
                Some((TopicIdType::Predefined, *id))
            } else if let Some(id) = convert::short_id(&topic) {
                Some((TopicIdType::Short, id))
            } else {
                client
                    .topic_ids
                    .get(&topic)
                    .map(|id| (TopicIdType::Normal, *id))
            };
            let Some((id_type, topic_id)) = named else {
                match client.register(&topic) {
                    Some(topic_id) => {
                        let msg_id = client.next_msg_id();
                        let kind = InFlightKind::Register {
                            msg_id,
                            topic_id,
                            name: topic,
                        };
                        self.start_in_flight(now, peer, kind, retry);
                    }
                    None => {
                        // No room for another topic: the message cannot be named.
                        if let Some(Out::Publish(p)) = client.queue.pop_front() {
                            log::info!("{}: too many topics, {} dropped", peer.name(), p.topic);
                            self.ack_to_engine(peer, &p);
                        }
                    }
                }
                continue;
            };
            let Some(Out::Publish(p)) = client.queue.pop_front() else {
                continue;
            };
            let flags = publish_flags(&p, id_type);
            if p.qos == QoS::AtMostOnce {
                let msg = Message::Publish {
                    flags,
                    topic_id,
                    msg_id: 0,
                    data: &p.payload,
                };
                self.send(peer, &msg);
                continue;
            }
            let kind = InFlightKind::Publish {
                flags,
                topic_id,
                msg_id: p.packet_id,
                payload: p.payload.clone(),
            };
            self.start_in_flight(now, peer, kind, retry);
        }
    }

    fn start_in_flight(&mut self, now: Millis, peer: &Peer, kind: InFlightKind, retry: u64) {
        let bytes = encode_for(peer, &kind, false);
        if let Some(client) = self.clients.get_mut(peer) {
            client.in_flight = Some(InFlight {
                kind,
                tries: 0,
                due: now.saturating_add_ms(retry),
            });
            self.out.push_back(Output::Datagram {
                to: peer.addr,
                bytes,
            });
        }
    }

    /// A client's deadline passed: send again, or give the client up.
    pub(in crate::gateway) fn client_timers(&mut self, now: Millis, peer: &Peer) {
        let (retry_ms, retry_count) = (self.config.retry_ms, self.config.retry_count);
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        if client.liveness_deadline().is_some_and(|d| d <= now) {
            let reason = match client.phase {
                Phase::Asleep | Phase::Awake => "sleep duration expired",
                Phase::Active => "keep alive expired",
                _ => "did not finish connecting",
            };
            return self.drop_client(peer, reason, true);
        }
        let Some(flight) = client.in_flight.as_mut() else {
            return;
        };
        if flight.due > now {
            return;
        }
        if flight.tries >= retry_count {
            return self.drop_client(peer, "no acknowledgement after retries", true);
        }
        flight.tries += 1;
        flight.due = now.saturating_add_ms(retry_ms);
        let bytes = encode_for(peer, &flight.kind, true);
        self.out.push_back(Output::Datagram {
            to: peer.addr,
            bytes,
        });
    }
}

/// The datagram of an in-flight message (DUP set when sent again), through the forwarder
/// when the client has one.
fn encode_for(peer: &Peer, kind: &InFlightKind, again: bool) -> Vec<u8> {
    let msg = kind.message(again);
    let mut bytes = Vec::new();
    match &peer.node {
        None => sn::encode(&msg, &mut bytes),
        Some(node) => sn::encode_encapsulated(0, node, &msg, &mut bytes),
    }
    bytes
}
