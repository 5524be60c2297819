//! The journal describes the whole durable state: an engine's changes, applied to a model
//! store and handed to a new engine, resume every persistent session as it was.

use std::collections::BTreeMap;

use super::*;
use crate::engine::durable::{Change, Snapshot, StoredQueue, StoredSession};
use crate::engine::message::Message;
use crate::engine::session::Delivery;

/// The store's semantics over plain maps, times kept as they are.
#[derive(Default)]
struct Model {
    sessions: BTreeMap<String, StoredSession>,
    queues: BTreeMap<String, BTreeMap<u64, Delivery>>,
    retained: BTreeMap<String, Message>,
}

fn copy(m: &Message) -> Message {
    Message {
        topic: m.topic.clone(),
        payload: m.payload.clone(),
        qos: m.qos,
        retain: m.retain,
        properties: m.properties.clone(),
        expires_at: m.expires_at,
        origin: None,
    }
}

impl Model {
    fn apply(&mut self, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::SessionSaved { client_id, record } => {
                    let s = self
                        .sessions
                        .entry(client_id.to_string())
                        .or_insert_with(|| StoredSession {
                            client_id: client_id.to_string(),
                            record: (*record).clone(),
                            subscriptions: Vec::new(),
                            queue: StoredQueue::default(),
                            inflight: Vec::new(),
                            incoming_qos2: Vec::new(),
                        });
                    s.record = *record;
                }
                Change::SessionDeleted { client_id } => {
                    self.sessions.remove(&*client_id);
                    self.queues.remove(&*client_id);
                }
                Change::Subscribed {
                    client_id,
                    filter,
                    sub,
                } => {
                    let s = self.session(&client_id);
                    s.subscriptions.retain(|(f, _)| *f != filter);
                    s.subscriptions.push((filter, sub));
                    s.subscriptions.sort_by(|a, b| a.0.cmp(&b.0));
                }
                Change::Unsubscribed { client_id, filter } => {
                    self.session(&client_id)
                        .subscriptions
                        .retain(|(f, _)| *f != filter);
                }
                Change::Queued {
                    client_id,
                    seq,
                    delivery,
                } => {
                    self.session(&client_id);
                    let q = self.queues.entry(client_id.to_string()).or_default();
                    q.insert(seq, delivery);
                }
                Change::Dequeued { client_id, seq } => {
                    let q = self.queues.entry(client_id.to_string()).or_default();
                    q.remove(&seq);
                }
                Change::InflightSaved {
                    client_id,
                    packet_id,
                    state,
                    delivery,
                } => {
                    let f = &mut self.session(&client_id).inflight;
                    f.retain(|(id, _, _)| *id != packet_id);
                    f.push((packet_id, state, delivery));
                    f.sort_by_key(|(id, _, _)| *id);
                }
                Change::InflightReleased {
                    client_id,
                    packet_id,
                } => {
                    self.session(&client_id)
                        .inflight
                        .retain(|(id, _, _)| *id != packet_id);
                }
                Change::IncomingQos2 {
                    client_id,
                    packet_id,
                    pending,
                } => {
                    let ids = &mut self.session(&client_id).incoming_qos2;
                    ids.retain(|id| *id != packet_id);
                    if pending {
                        ids.push(packet_id);
                        ids.sort_unstable();
                    }
                }
                Change::RetainSet { msg } => {
                    self.retained.insert(msg.topic.to_string(), copy(&msg));
                }
                Change::RetainCleared { topic } => {
                    self.retained.remove(&*topic);
                }
            }
        }
    }

    fn session(&mut self, id: &str) -> &mut StoredSession {
        self.sessions
            .get_mut(id)
            .unwrap_or_else(|| panic!("a change for {id} before its session was saved"))
    }

    fn queue_len(&self, id: &str) -> usize {
        self.queues.get(id).map_or(0, BTreeMap::len)
    }

    /// Counts each queue at `now`, as the store does at start-up.
    fn summary(&self, id: &str, now: Millis) -> StoredQueue {
        let mut q = StoredQueue::default();
        for (&seq, d) in self.queues.get(id).into_iter().flatten() {
            q.end_seq = seq + 1;
            if d.msg.is_expired(now) {
                q.expired.push(seq);
            } else {
                if q.len == 0 {
                    q.first_seq = seq;
                }
                q.len += 1;
                q.bytes += d.msg.size();
            }
        }
        q
    }

    fn snapshot(&self, now: Millis) -> Snapshot {
        Snapshot {
            sessions: self
                .sessions
                .values()
                .map(|s| StoredSession {
                    client_id: s.client_id.clone(),
                    record: s.record.clone(),
                    subscriptions: s.subscriptions.clone(),
                    queue: self.summary(&s.client_id, now),
                    inflight: s.inflight.clone(),
                    incoming_qos2: s.incoming_qos2.clone(),
                })
                .collect(),
            retained: self.retained.values().map(copy).collect(),
        }
    }
}

/// A harness whose engine records changes.
fn durable() -> Harness {
    let mut h = Harness::new();
    h.engine.enable_journal();
    h
}

fn changes(h: &mut Harness) -> Vec<Change> {
    let mut out = Vec::new();
    h.engine.take_changes(&mut out);
    out
}

/// A new engine at `now` resuming what `model` holds.
fn restart(model: &Model, now: u64) -> Harness {
    let mut h = durable();
    h.now = Millis(now);
    h.engine.restore(h.now, model.snapshot(h.now));
    h
}

/// Does what the reactor does at the end of a turn: the changes go to the model store and
/// the queue reads are answered from it, until none is left. Returns `actions` with the
/// actions the answers caused.
fn settle(h: &mut Harness, model: &mut Model, mut actions: Vec<Action>) -> Vec<Action> {
    loop {
        model.apply(changes(h));
        let mut loads = Vec::new();
        h.engine.take_queue_loads(&mut loads);
        if loads.is_empty() {
            return actions;
        }
        for load in loads {
            let entries: Vec<(u64, Delivery)> = model
                .queues
                .get(&*load.client_id)
                .into_iter()
                .flat_map(|q| q.range(load.from_seq..))
                .take(load.max)
                .map(|(seq, d)| (*seq, d.clone()))
                .collect();
            h.engine.queue_loaded(h.now, &load.client_id, entries);
            actions.extend(std::iter::from_fn(|| h.engine.poll_action()));
        }
    }
}

fn payloads(actions: &[Action], conn: u64) -> Vec<(Vec<u8>, bool, u16)> {
    publishes(actions, conn)
        .into_iter()
        .map(|p| (p.payload.to_vec(), p.dup, p.packet_id))
        .collect()
}

#[test]
fn sessions_queues_and_inflight_resume_after_a_restart() {
    let mut h = durable();
    let mut model = Model::default();
    h.connect(1, "sub", ProtocolVersion::V311, false);
    h.subscribe(1, "t/#", QoS::ExactlyOnce);
    h.connect(2, "pub", ProtocolVersion::V311, true);
    // In flight to the connected subscriber, then one PUBREC received.
    let a = h.publish(2, "t/1", b"one", QoS::AtLeastOnce, 1);
    assert_eq!(payloads(&a, 1), [(b"one".to_vec(), false, 1)]);
    let a = h.publish(2, "t/2", b"two", QoS::ExactlyOnce, 2);
    assert_eq!(payloads(&a, 1), [(b"two".to_vec(), false, 2)]);
    h.packet(1, Packet::PubRec(ack(2)));
    h.packet(2, Packet::PubRel(ack(2)));
    h.closed(1);
    // Queued while the subscriber is away, and a retained message.
    h.publish(2, "t/3", b"three", QoS::AtLeastOnce, 3);
    h.packet(
        2,
        Packet::Publish(publish("t/4", b"four", QoS::AtLeastOnce, 4, true)),
    );
    h.publish(2, "t/5", b"zero", QoS::AtMostOnce, 0);
    model.apply(changes(&mut h));
    assert!(
        !model.sessions.contains_key("pub"),
        "a clean session is not stored"
    );

    let mut h = restart(&model, 1_000);
    // The restored queue ("three", "four") counts in max_queued_memory.
    let entry = crate::engine::bounds::QUEUE_ENTRY_OVERHEAD;
    assert_eq!(h.engine.queued_memory(), 9 + 2 * entry);
    let a = h.connect(1, "sub", ProtocolVersion::V311, false);
    let a = settle(&mut h, &mut model, a);
    assert!(connack(&a, 1).0, "session present after the restart");
    assert_eq!(h.engine.queued_memory(), 0);
    // [MQTT-4.4.0-1] the PUBLISH again with DUP, the PUBREL again, then the queue in order;
    // the QoS 0 message to an offline session was never kept.
    assert_eq!(
        payloads(&a, 1),
        [
            (b"one".to_vec(), true, 1),
            (b"three".to_vec(), false, 3),
            (b"four".to_vec(), false, 4)
        ]
    );
    assert!(sent(&a, 1)
        .iter()
        .any(|p| matches!(p, Packet::PubRel(r) if r.packet_id == 2)));
    // Retained messages came back too.
    h.connect(3, "late", ProtocolVersion::V311, true);
    let a = h.subscribe(3, "t/4", QoS::AtMostOnce);
    assert_eq!(payloads(&a, 3), [(b"four".to_vec(), false, 0)]);
    // Completing the flows empties the stored session.
    h.packet(1, Packet::PubAck(ack(1)));
    h.packet(1, Packet::PubComp(ack(2)));
    h.packet(1, Packet::PubAck(ack(3)));
    h.packet(1, Packet::PubAck(ack(4)));
    model.apply(changes(&mut h));
    let s = &model.sessions["sub"];
    assert!(model.queue_len("sub") == 0 && s.inflight.is_empty());
    assert_eq!(s.subscriptions.len(), 1);
}

#[test]
fn inbound_qos2_is_not_delivered_twice_across_a_restart() {
    let mut h = durable();
    let mut model = Model::default();
    h.connect(1, "sub", ProtocolVersion::V311, false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", ProtocolVersion::V311, false);
    let a = h.publish(2, "t", b"once", QoS::ExactlyOnce, 7);
    assert!(matches!(sent(&a, 2)[0], Packet::PubRec(_)));
    model.apply(changes(&mut h));
    assert_eq!(model.sessions["pub"].incoming_qos2, [7]);

    let mut h = restart(&model, 10);
    let a = h.connect(1, "sub", ProtocolVersion::V311, false);
    let a = settle(&mut h, &mut model, a);
    assert_eq!(payloads(&a, 1), [(b"once".to_vec(), true, 1)]);
    h.connect(2, "pub", ProtocolVersion::V311, false);
    let mut again = publish("t", b"once", QoS::ExactlyOnce, 7, false);
    again.dup = true;
    let a = h.packet(2, Packet::Publish(again));
    assert!(
        publishes(&a, 1).is_empty(),
        "[MQTT-4.3.3-10] not delivered again"
    );
    let a = h.packet(2, Packet::PubRel(ack(7)));
    assert!(matches!(sent(&a, 2)[0], Packet::PubComp(c) if c.reason == ReasonCode::Success));
    model.apply(changes(&mut h));
    assert!(model.sessions["pub"].incoming_qos2.is_empty());
}

fn v5_connect(id: &str, expiry: u32, will_delay: Option<u32>) -> Connect {
    let mut c = connect(id, ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = Some(expiry);
    c.will = will_delay.map(|d| {
        let mut w = will("wills/x", Some(d));
        w.qos = QoS::AtLeastOnce;
        w
    });
    c
}

#[test]
fn a_will_delay_counts_on_after_a_restart() {
    let mut h = durable();
    let mut model = Model::default();
    h.connect_with(1, v5_connect("watcher", 600, None));
    h.subscribe(1, "wills/#", QoS::AtLeastOnce);
    h.closed(1);
    h.connect_with(2, v5_connect("dev", 600, Some(5)));
    model.apply(changes(&mut h));
    assert!(model.sessions["dev"].record.will.is_some());

    // The broker stopped with the device connected: after the restart its connection is
    // lost, so the will is due 5 s later and goes to the watcher's queue.
    let mut h = restart(&model, 2_000);
    assert!(h.advance_to(6_999).is_empty());
    let mut m = Model {
        sessions: model.sessions.clone(),
        queues: model.queues.clone(),
        ..Model::default()
    };
    let a = h.advance_to(7_000);
    settle(&mut h, &mut m, a);
    let a = h.connect_with(1, v5_connect("watcher", 600, None));
    let a = settle(&mut h, &mut m, a);
    assert_eq!(payloads(&a, 1), [(b"gone".to_vec(), false, 1)]);

    // A device that comes back before the delay passes cancels its will [MQTT-3.1.3-9].
    let mut h = restart(&model, 2_000);
    h.connect_with(2, v5_connect("dev", 600, Some(5)));
    h.advance_to(60_000);
    let a = h.connect_with(1, v5_connect("watcher", 600, None));
    assert!(payloads(&a, 1).is_empty());
}

#[test]
fn what_expired_while_down_is_dropped_at_start() {
    let mut h = durable();
    let mut model = Model::default();
    h.connect_with(1, v5_connect("short", 2, Some(1)));
    h.subscribe(1, "x", QoS::AtLeastOnce);
    h.connect_with(2, v5_connect("long", 600, None));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.closed(2);
    h.closed(1);
    h.connect(3, "pub", ProtocolVersion::V5, true);
    let mut p = publish("t", b"brief", QoS::AtLeastOnce, 1, true);
    p.properties.message_expiry_interval = Some(3);
    h.packet(3, Packet::Publish(p));
    h.publish(3, "t", b"lasting", QoS::AtLeastOnce, 2);
    model.apply(changes(&mut h));
    assert_eq!(model.queue_len("long"), 2);

    let mut h = restart(&model, 10_000);
    let gone: Vec<Change> = changes(&mut h);
    assert!(gone
        .iter()
        .any(|c| matches!(c, Change::SessionDeleted { client_id } if &**client_id == "short")));
    assert!(gone
        .iter()
        .any(|c| matches!(c, Change::RetainCleared { topic } if &**topic == "t")));
    model.apply(gone);
    assert!(!model.sessions.contains_key("short"));
    assert_eq!(model.queue_len("long"), 1, "the expired message left");
    let a = h.connect_with(1, v5_connect("short", 2, None));
    assert!(
        !connack(&a, 1).0,
        "the session expired while the broker was down"
    );
    let a = h.connect_with(2, v5_connect("long", 600, None));
    let a = settle(&mut h, &mut model, a);
    assert_eq!(payloads(&a, 2), [(b"lasting".to_vec(), false, 1)]);
}

#[test]
fn a_session_that_stops_being_persistent_leaves_the_store() {
    let mut h = durable();
    let mut model = Model::default();
    h.connect(1, "c", ProtocolVersion::V5, false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    model.apply(changes(&mut h));
    assert!(model.sessions.is_empty(), "expiry 0: nothing stored");
    h.closed(1);
    h.connect_with(2, v5_connect("c", 60, None));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.connect(3, "pub", ProtocolVersion::V5, true);
    h.publish(3, "t", b"m", QoS::AtLeastOnce, 1);
    model.apply(changes(&mut h));
    let s = &model.sessions["c"];
    assert_eq!(
        (
            s.subscriptions.len(),
            s.inflight.len(),
            s.record.expiry_secs
        ),
        (1, 1, 60)
    );
    // Taken over by a connection with expiry 0: the session goes on, but only in memory.
    let a = h.connect_with(4, v5_connect("c", 0, None));
    assert!(connack(&a, 4).0);
    model.apply(changes(&mut h));
    assert!(model.sessions.is_empty());
}

#[test]
fn large_queues_live_in_the_store_and_come_back_in_order() {
    let mut h = Harness::with(Limits {
        max_inflight_messages: 1,
        max_queued_messages: 0,
        ..Limits::default()
    });
    h.engine.enable_journal();
    let mut model = Model::default();
    h.connect(1, "sub", ProtocolVersion::V311, false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", ProtocolVersion::V311, true);
    let total = 700u16;
    for i in 1..=total {
        h.publish(2, "t", &i.to_be_bytes(), QoS::AtLeastOnce, i);
    }
    model.apply(changes(&mut h));
    let key = h.engine.by_client_id["sub"];
    let s = &h.engine.sessions[key];
    // One in flight, a bounded head in memory, the rest only in the store.
    let in_memory = |s: &crate::engine::session::Session| s.flows().map_or(0, |f| f.queue.len());
    assert_eq!(s.inflight_len(), 1);
    assert_eq!(in_memory(s), crate::engine::deliver::QUEUE_MEMORY_MAX);
    assert_eq!(s.queue_len(), usize::from(total) - 1);
    assert_eq!(model.queue_len("sub"), usize::from(total) - 1);
    // Offline, nothing of the queue stays in memory; it still counts in max_queued_memory.
    h.closed(1);
    let s = &h.engine.sessions[key];
    assert_eq!(in_memory(s), 0);
    assert_eq!(s.queue_len(), usize::from(total) - 1);
    let entry = 2 + crate::engine::bounds::QUEUE_ENTRY_OVERHEAD;
    assert_eq!(h.engine.queued_memory(), u64::from(total - 1) * entry);
    assert_eq!(h.engine.queued_memory(), h.engine.queued_memory_recount());
    // Back online: every message arrives once, in order, read from the store in batches.
    let a = h.connect(1, "sub", ProtocolVersion::V311, false);
    let mut a = settle(&mut h, &mut model, a);
    let mut got = Vec::new();
    while let Some(p) = publishes(&a, 1)
        .first()
        .map(|p| (p.packet_id, p.payload.to_vec()))
    {
        got.push(u16::from_be_bytes([p.1[0], p.1[1]]));
        let next = h.packet(1, Packet::PubAck(ack(p.0)));
        a = settle(&mut h, &mut model, next);
        assert!(in_memory(&h.engine.sessions[key]) <= crate::engine::deliver::QUEUE_MEMORY_MAX);
    }
    assert_eq!(got, (1..=total).collect::<Vec<u16>>());
    assert_eq!(model.queue_len("sub"), 0);
    assert_eq!(h.engine.queued_memory(), 0);
    assert!(model.sessions["sub"].inflight.is_empty());
}
