//! Outbound: routing a message to matching sessions, the in-flight window, offline and
//! overflow queues, QoS 1/2 send side, topic aliases towards the client, and the client's
//! Maximum Packet Size.
//!
//! Fan-out shares one `Rc<Message>`: each delivery adds a reference, never a copy of the
//! topic or payload.

use std::rc::Rc;

use std::collections::VecDeque;

use super::durable::{Change, QueueLoad};
use super::event::ConnId;
use super::message::Message;
use super::session::{Delivery, Inflight, OutState};
use super::topic_tree::SessionKey;
use super::Engine;
use crate::clock::Millis;
use crate::codec::mqtt::{Ack, Packet, Props, Publish, QoS, ReasonCode};

/// Queued messages of a persistent session held in memory at most; the rest of its queue
/// is read from the store as the client takes them.
pub(super) const QUEUE_MEMORY_MAX: usize = 256;

/// Messages read from the store at a time.
pub(super) const QUEUE_LOAD_BATCH: usize = 256;

impl Engine {
    /// Delivers `msg` to every matching subscription. A session with several matching
    /// subscriptions receives one copy at the highest of their QoS, carrying every matching
    /// subscription identifier [MQTT-3.3.4-2], [MQTT-3.3.4-3]; each shared subscription that
    /// matches delivers one copy to one member of its group.
    pub(super) fn route(&mut self, msg: Rc<Message>) {
        let mut matches = std::mem::take(&mut self.match_buf);
        matches.clear();
        {
            let sessions = &self.sessions;
            let online = |k: SessionKey| sessions.get(k).is_some_and(|s| s.is_online());
            self.tree.matches(&msg.topic, &online, &mut matches);
        }
        // No Local [MQTT-3.8.3-3]: never back to the publishing session.
        if let Some(origin) = msg.origin {
            let sessions = &self.sessions;
            matches.retain(|m| {
                !(m.sub.options.no_local
                    && sessions.get(m.session).is_some_and(|s| s.uid == origin))
            });
        }
        matches.sort_by_key(|m| (m.shared, m.session));
        let mut i = 0;
        while i < matches.len() {
            let first = matches[i];
            let mut j = i + 1;
            let mut qos = first.sub.options.qos;
            let mut rap = first.sub.options.retain_as_published;
            let mut sub_ids = Vec::new();
            sub_ids.extend(first.sub.identifier);
            if !first.shared {
                while j < matches.len() && !matches[j].shared && matches[j].session == first.session
                {
                    let m = matches[j];
                    qos = qos.max(m.sub.options.qos);
                    rap |= m.sub.options.retain_as_published;
                    sub_ids.extend(m.sub.identifier);
                    j += 1;
                }
            }
            // [ACL] read access, per subscriber: a wildcard subscription never brings a
            // topic the client may not read.
            if !self.may_read(first.session, &msg.topic) {
                i = j;
                continue;
            }
            let d = Delivery {
                msg: msg.clone(),
                qos: qos.min(msg.qos),
                // [MQTT-3.3.1-12], [MQTT-3.3.1-13] retain as published, else cleared.
                retain: rap && msg.retain,
                sub_ids,
                seq: 0,
            };
            self.deliver(first.session, d);
            i = j;
        }
        self.match_buf = matches;
    }

    /// Sends a delivery now if the session is connected and its window allows, else queues
    /// it (QoS 1/2 only; QoS 0 to an offline session is dropped, as mosquitto does).
    pub(super) fn deliver(&mut self, key: SessionKey, d: Delivery) {
        let Some(s) = self.sessions.get(key) else {
            return;
        };
        let online = s.link.as_ref().map(|l| l.conn);
        if d.qos == QoS::AtMostOnce {
            if let Some(conn) = online {
                self.send_publish(key, conn, 0, &d, false);
            }
            return;
        }
        if let Some(conn) = online {
            if s.queue_len() == 0 && s.inflight_len() < self.window(key) {
                self.send_new(key, conn, d);
                return;
            }
        }
        self.enqueue(key, d);
    }

    fn enqueue(&mut self, key: SessionKey, mut d: Delivery) {
        let mut max_msgs = self.limits.max_queued_messages;
        if !self.queue_limits.is_empty() {
            if let Some(&n) = self.queue_limits.get(&*self.sessions[key].client_id) {
                max_msgs = n;
            }
        }
        let max_bytes = self.limits.max_queued_bytes;
        let s = &mut self.sessions[key];
        let size = d.msg.size();
        if (max_msgs > 0 && s.queue_len() >= max_msgs)
            || (max_bytes > 0 && s.queued_bytes() + size > max_bytes)
        {
            self.stats.publish_dropped += 1;
            log::debug!(
                "queue of {} full; message on {} dropped",
                s.client_id,
                d.msg.topic
            );
            return;
        }
        self.bounds.queued(size);
        if !s.durable {
            let f = s.flows_mut();
            f.queued_bytes += size;
            f.queue.push_back(d);
            return;
        }
        d.seq = s.next_seq;
        s.next_seq += 1;
        let online = s.is_online();
        let client_id = s.client_id.clone();
        let f = s.flows_mut();
        f.queued_bytes += size;
        // An offline session's queue, and whatever follows a full head in memory, stays in
        // the store only.
        let in_store_only = !online || f.stored_only > 0 || f.queue.len() >= QUEUE_MEMORY_MAX;
        if in_store_only {
            if f.stored_only == 0 {
                f.next_load_seq = d.seq;
            }
            f.stored_only += 1;
        }
        let seq = d.seq;
        if in_store_only {
            self.journal.record(|| Change::Queued {
                client_id,
                seq,
                delivery: d,
            });
        } else {
            let delivery = d.clone();
            f.queue.push_back(d);
            self.journal.record(|| Change::Queued {
                client_id,
                seq,
                delivery,
            });
        }
    }

    /// Moves a persistent session's queue out of memory when its client goes away: every
    /// entry is in the store already.
    pub(super) fn page_out(&mut self, key: SessionKey) {
        let s = &mut self.sessions[key];
        if !s.durable {
            return;
        }
        let Some(f) = s.existing_flows_mut() else {
            return;
        };
        if let Some(front) = f.queue.front() {
            f.next_load_seq = front.seq;
            f.stored_only += f.queue.len();
            f.queue = VecDeque::new();
        }
    }

    /// Answers a [`QueueLoad`]: the stored entries join the queue's head in memory.
    pub fn queue_loaded(&mut self, now: Millis, client_id: &str, entries: Vec<(u64, Delivery)>) {
        self.now = self.now.max(now);
        let Some(&key) = self.by_client_id.get(client_id) else {
            return;
        };
        // A load is asked for only by a session with flows.
        let Some(f) = self.sessions[key].existing_flows_mut() else {
            return;
        };
        if !f.loading {
            return;
        }
        f.loading = false;
        let n = entries.len();
        for (seq, mut d) in entries {
            if seq < f.next_load_seq {
                continue;
            }
            d.seq = seq;
            f.next_load_seq = seq + 1;
            f.stored_only = f.stored_only.saturating_sub(1);
            f.queue.push_back(d);
        }
        if n < QUEUE_LOAD_BATCH && f.stored_only > 0 {
            log::warn!(
                "session {client_id}: {} queued messages missing from the store",
                f.stored_only
            );
            // Their bytes stay in `queued_bytes` (unknown) until the session ends.
            self.bounds.queue_changed(f.stored_only, 0, false);
            f.stored_only = 0;
        }
        self.pump(key);
    }

    /// The loads of stored queues asked for since the last call.
    pub fn take_queue_loads(&mut self, out: &mut Vec<QueueLoad>) {
        out.clear();
        std::mem::swap(&mut self.queue_loads, out);
    }

    /// The number of QoS 1/2 messages the session may have in flight.
    fn window(&self, key: SessionKey) -> usize {
        let client = self.sessions[key]
            .link
            .as_ref()
            .map_or(0, |l| l.receive_max);
        let broker = match self.limits.max_inflight_messages {
            0 => u16::MAX,
            n => n,
        };
        usize::from(client.min(broker))
    }

    /// Assigns a packet identifier and sends a QoS 1/2 delivery, entering it in flight.
    fn send_new(&mut self, key: SessionKey, conn: ConnId, d: Delivery) {
        if d.msg.is_expired(self.now) {
            return;
        }
        let Some(id) = self.sessions[key].alloc_packet_id() else {
            return self.enqueue(key, d);
        };
        if !self.send_publish(key, conn, id, &d, false) {
            return;
        }
        let state = if d.qos == QoS::AtLeastOnce {
            OutState::AwaitPubAck
        } else {
            OutState::AwaitPubRec
        };
        let s = &mut self.sessions[key];
        if s.durable {
            let client_id = s.client_id.clone();
            let delivery = d.clone();
            self.journal.record(|| Change::InflightSaved {
                client_id,
                packet_id: id,
                state,
                delivery,
            });
        }
        s.flows_mut()
            .inflight
            .insert(id, Inflight { delivery: d, state });
    }

    /// Encodes one PUBLISH for the session's client. Returns false when nothing was sent: the
    /// message expired, or it would exceed the client's Maximum Packet Size, in which case it
    /// is discarded as if delivered [MQTT-3.1.2-24].
    pub(super) fn send_publish(
        &mut self,
        key: SessionKey,
        conn: ConnId,
        packet_id: u16,
        d: &Delivery,
        dup: bool,
    ) -> bool {
        let now = self.now;
        if d.msg.is_expired(now) {
            return false;
        }
        let Some(s) = self.sessions.get(key) else {
            return false;
        };
        let Some(link) = s.link.as_ref() else {
            return false;
        };
        let v5 = link.version.is_v5();
        let mut properties = Props::none();
        let mut topic = match s.mount().map(|m| &**m) {
            // The client sees its topics without its listener's mount point.
            Some(m) => d
                .msg
                .topic
                .strip_prefix(m)
                .map_or_else(|| d.msg.topic.clone(), Rc::from),
            None => d.msg.topic.clone(),
        };
        let mut new_alias = None;
        if v5 {
            // A copy of the message's properties: no allocation when it has none. Each field
            // is written only when it changes, as a write allocates the properties' box.
            properties = d.msg.properties.clone();
            let expiry = d.msg.remaining_expiry_secs(now);
            if properties.message_expiry_interval != expiry {
                properties.message_expiry_interval = expiry;
            }
            if properties.subscription_identifiers != d.sub_ids {
                properties.subscription_identifiers.clone_from(&d.sub_ids);
            }
            if link.alias_max > 0 {
                if let Some(a) = link.alias_out(&d.msg.topic) {
                    properties.topic_alias = Some(a);
                    topic = self.empty_topic.clone();
                } else if link.aliases_out_len() < usize::from(link.alias_max) {
                    let a = link.aliases_out_len() as u16 + 1;
                    properties.topic_alias = Some(a);
                    new_alias = Some(a);
                }
            }
        }
        let packet = Packet::Publish(Publish {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id,
            properties,
            payload: d.msg.payload.clone(),
        });
        if !self.fits(key, &packet) {
            self.stats.publish_dropped += 1;
            log::debug!(
                "{conn}: PUBLISH on {} exceeds the client's maximum packet size",
                d.msg.topic
            );
            return false;
        }
        if let Some(a) = new_alias {
            if let Some(l) = self.sessions[key].link.as_mut() {
                l.aliases_mut().out.insert(d.msg.topic.clone(), a);
            }
        }
        self.send(conn, packet);
        true
    }

    /// Moves queued messages into the in-flight window while it has room.
    pub(super) fn pump(&mut self, key: SessionKey) {
        loop {
            let Some(s) = self.sessions.get(key) else {
                return;
            };
            let Some(conn) = s.link.as_ref().map(|l| l.conn) else {
                return;
            };
            if s.inflight_len() >= self.window(key) {
                return;
            }
            let s = &mut self.sessions[key];
            // Without flows nothing is queued.
            let Some(f) = s.existing_flows_mut() else {
                return;
            };
            if f.queue.is_empty() {
                if f.stored_only > 0 && !f.loading {
                    f.loading = true;
                    let from_seq = f.next_load_seq;
                    self.queue_loads.push(QueueLoad {
                        client_id: s.client_id.clone(),
                        from_seq,
                        max: QUEUE_LOAD_BATCH,
                    });
                }
                return;
            }
            let Some(d) = f.queue.pop_front() else {
                return;
            };
            f.queued_bytes = f.queued_bytes.saturating_sub(d.msg.size());
            self.bounds.dequeued(d.msg.size());
            if s.durable {
                let client_id = s.client_id.clone();
                let seq = d.seq;
                self.journal.record(|| Change::Dequeued { client_id, seq });
            }
            // Queued for a restored session before its client was known, or before a reload.
            if !self.may_read(key, &d.msg.topic) {
                self.stats.publish_dropped += 1;
                continue;
            }
            self.send_new(key, conn, d);
        }
    }

    pub(super) fn on_puback(&mut self, key: SessionKey, a: Ack) {
        self.complete(key, a.packet_id, OutState::AwaitPubAck);
    }

    pub(super) fn on_pubrec(&mut self, conn: ConnId, key: SessionKey, a: Ack) {
        let s = &mut self.sessions[key];
        let durable = s.durable;
        let flow = s
            .existing_flows_mut()
            .and_then(|flows| flows.inflight.get_mut(&a.packet_id));
        match flow {
            Some(f) if f.state == OutState::AwaitPubRec => {
                if a.reason.is_error() {
                    // [MQTT-4.3.3-?] a failed PUBREC ends the flow.
                    self.complete(key, a.packet_id, OutState::AwaitPubRec);
                    return;
                }
                f.state = OutState::AwaitPubComp;
                if durable {
                    let delivery = f.delivery.clone();
                    let client_id = self.sessions[key].client_id.clone();
                    self.journal.record(|| Change::InflightSaved {
                        client_id,
                        packet_id: a.packet_id,
                        state: OutState::AwaitPubComp,
                        delivery,
                    });
                }
                self.send(conn, Packet::PubRel(Self::ack(a.packet_id)));
            }
            Some(_) => self.send(conn, Packet::PubRel(Self::ack(a.packet_id))),
            None => {
                let mut rel = Self::ack(a.packet_id);
                if self.conn_version(conn).is_v5() {
                    rel.reason = ReasonCode::PacketIdentifierNotFound;
                }
                self.send(conn, Packet::PubRel(rel));
            }
        }
    }

    pub(super) fn on_pubcomp(&mut self, key: SessionKey, a: Ack) {
        self.complete(key, a.packet_id, OutState::AwaitPubComp);
    }

    /// Ends an outbound flow that is in `expected` state, then refills the window.
    fn complete(&mut self, key: SessionKey, packet_id: u16, expected: OutState) {
        let Some(flows) = self.sessions[key].existing_flows_mut() else {
            return;
        };
        if flows
            .inflight
            .get(&packet_id)
            .is_some_and(|f| f.state == expected)
        {
            flows.inflight.remove(&packet_id);
            self.record_for(key, |client_id| Change::InflightReleased {
                client_id,
                packet_id,
            });
            self.pump(key);
        }
    }
}
