//! Store tests: records round trip and refuse every damaged form, commits read back after a
//! reopen, a session's deletion takes all its rows, and every bad file stops the open.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::record::{self, WallTime};
use super::*;
use crate::codec::mqtt::{Properties, QoS, SubOptions, Will};
use crate::engine::durable::{SessionRecord, StoredWill};
use crate::engine::message::Message;
use crate::engine::session::{Delivery, OutState};
use crate::engine::topic_tree::Subscription;

const WALL: WallTime = WallTime {
    start_ms: 1_700_000_000_000,
};

/// A fresh directory for one test's store.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "culex-store-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn message(topic: &str, payload: &[u8], expires_at: Option<Millis>) -> Message {
    Message {
        topic: topic.into(),
        payload: payload.into(),
        qos: QoS::ExactlyOnce,
        retain: true,
        properties: Properties {
            payload_format_indicator: Some(1),
            content_type: Some("text/plain".into()),
            response_topic: Some("answers/1".into()),
            correlation_data: Some(vec![0, 1, 2]),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            ..Properties::default()
        }
        .into(),
        expires_at,
        origin: None,
    }
}

fn delivery(topic: &str, seq: u64) -> Delivery {
    Delivery {
        msg: Rc::new(message(topic, b"payload", Some(Millis(90_000)))),
        qos: QoS::AtLeastOnce,
        retain: false,
        sub_ids: vec![7, 268_435_455],
        seq,
    }
}

fn same_message(a: &Message, b: &Message) {
    assert_eq!(
        (
            &a.topic,
            &a.payload,
            a.qos,
            a.retain,
            &a.properties,
            a.expires_at
        ),
        (
            &b.topic,
            &b.payload,
            b.qos,
            b.retain,
            &b.properties,
            b.expires_at
        )
    );
}

fn same_delivery(a: &Delivery, b: &Delivery) {
    same_message(&a.msg, &b.msg);
    assert_eq!(
        (a.qos, a.retain, &a.sub_ids, a.seq),
        (b.qos, b.retain, &b.sub_ids, b.seq)
    );
}

fn sub(qos: QoS, no_local: bool, rap: bool, rh: u8, id: Option<u32>) -> Subscription {
    Subscription {
        options: SubOptions {
            qos,
            no_local,
            retain_as_published: rap,
            retain_handling: rh,
        },
        identifier: id,
    }
}

fn session_with_will() -> SessionRecord {
    SessionRecord {
        expiry_secs: 300,
        expires_at: Some(Millis(300_000)),
        will: Some(StoredWill {
            will: Will {
                topic: "clients/c1/status".into(),
                payload: b"gone".to_vec(),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: Some(30),
                    content_type: Some("text/plain".into()),
                    ..Properties::default()
                }
                .into(),
            },
            delay_secs: 30,
            due: Some(Millis(30_000)),
        }),
    }
}

#[test]
fn records_round_trip() {
    let m = message("a/b", b"\x00\xffbytes", Some(Millis(5)));
    let mut buf = Vec::new();
    record::put_message(&mut buf, &m, WALL);
    same_message(&record::message(&buf, WALL).unwrap(), &m);

    let d = delivery("q/1", 9);
    buf.clear();
    record::put_delivery(&mut buf, &d, WALL);
    same_delivery(&record::delivery(&buf, WALL, 9).unwrap(), &d);

    for state in [
        OutState::AwaitPubAck,
        OutState::AwaitPubRec,
        OutState::AwaitPubComp,
    ] {
        buf.clear();
        record::put_inflight(&mut buf, state, &d, WALL);
        let (got, back) = record::inflight(&buf, WALL).unwrap();
        assert_eq!(got, state);
        same_delivery(
            &back,
            &Delivery {
                seq: 0,
                ..d.clone()
            },
        );
    }

    for s in [
        sub(QoS::AtMostOnce, false, false, 0, None),
        sub(QoS::ExactlyOnce, true, true, 2, Some(268_435_455)),
        sub(QoS::AtLeastOnce, false, true, 1, Some(1)),
    ] {
        buf.clear();
        record::put_subscription(&mut buf, &s);
        assert_eq!(record::subscription(&buf).unwrap(), s);
    }

    for s in [
        session_with_will(),
        SessionRecord {
            expiry_secs: u32::MAX,
            expires_at: None,
            will: None,
        },
    ] {
        buf.clear();
        record::put_session(&mut buf, &s, WALL);
        assert_eq!(record::session(&buf, WALL).unwrap(), s);
    }
}

#[test]
fn wall_time_keeps_deadlines_across_runs() {
    let first = WallTime {
        start_ms: 1_000_000,
    };
    let wall = first.to_wall(Some(Millis(5_000)));
    // A later run started 3 s after the first: the deadline is 2 s into it.
    let later = WallTime {
        start_ms: 1_003_000,
    };
    assert_eq!(later.to_millis(wall), Some(Millis(2_000)));
    // A deadline before the run's start is already past.
    let much_later = WallTime {
        start_ms: 9_000_000,
    };
    assert_eq!(much_later.to_millis(wall), Some(Millis(0)));
    assert_eq!(first.to_wall(None), 0);
    assert_eq!(first.to_millis(0), None);
}

#[test]
fn every_truncation_and_stray_byte_is_refused() {
    type Decodes = fn(&[u8]) -> bool;
    let mut records: Vec<(Vec<u8>, Decodes)> = Vec::new();
    let mut buf = Vec::new();
    record::put_message(&mut buf, &message("t", b"p", None), WALL);
    records.push((buf.clone(), |b| record::message(b, WALL).is_ok()));
    buf.clear();
    record::put_delivery(&mut buf, &delivery("t", 1), WALL);
    records.push((buf.clone(), |b| record::delivery(b, WALL, 1).is_ok()));
    buf.clear();
    record::put_inflight(&mut buf, OutState::AwaitPubRec, &delivery("t", 1), WALL);
    records.push((buf.clone(), |b| record::inflight(b, WALL).is_ok()));
    buf.clear();
    record::put_subscription(&mut buf, &sub(QoS::AtLeastOnce, true, false, 1, Some(3)));
    records.push((buf.clone(), |b| record::subscription(b).is_ok()));
    buf.clear();
    record::put_session(&mut buf, &session_with_will(), WALL);
    records.push((buf.clone(), |b| record::session(b, WALL).is_ok()));
    for (bytes, decodes) in records {
        assert!(decodes(&bytes));
        for n in 0..bytes.len() {
            assert!(!decodes(&bytes[..n]), "truncated to {n} of {}", bytes.len());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!decodes(&longer), "a stray byte after the record");
    }
}

#[test]
fn bad_values_are_refused() {
    let mut buf = Vec::new();
    record::put_subscription(&mut buf, &sub(QoS::AtLeastOnce, false, false, 0, None));
    for (i, bad) in [(0, 3), (1, 4), (2, 3), (3, 2)] {
        let mut b = buf.clone();
        b[i] = bad;
        assert!(record::subscription(&b).is_err(), "byte {i} = {bad}");
    }
    buf.clear();
    record::put_inflight(&mut buf, OutState::AwaitPubAck, &delivery("t", 1), WALL);
    for bad in [0, 4, 255] {
        let mut b = buf.clone();
        b[0] = bad;
        assert!(record::inflight(&b, WALL).is_err());
    }
    buf.clear();
    record::put_message(&mut buf, &message("t", b"p", None), WALL);
    let mut b = buf.clone();
    b[0] = 3; // QoS 3
    assert!(record::message(&b, WALL).is_err());
    let mut b = buf.clone();
    b[0] = 0x08; // an unknown flag
    assert!(record::message(&b, WALL).is_err());
    // A topic that is not UTF-8.
    let mut b = buf.clone();
    b[11] = 0xff;
    assert!(record::message(&b, WALL).is_err());
}

/// A turn made of given changes and queue reads; the entries read are kept.
struct Fixed {
    changes: Vec<Change>,
    loads: Vec<QueueLoad>,
    loaded: Vec<(String, Vec<(u64, Delivery)>)>,
}

impl Fixed {
    fn new(changes: Vec<Change>) -> Self {
        Self {
            changes,
            loads: Vec::new(),
            loaded: Vec::new(),
        }
    }
}

impl TurnSource for Fixed {
    fn changes(&mut self, out: &mut Vec<Change>) {
        *out = std::mem::take(&mut self.changes);
    }

    fn queue_loads(&mut self, out: &mut Vec<QueueLoad>) {
        *out = std::mem::take(&mut self.loads);
    }

    fn queue_loaded(&mut self, client_id: &str, entries: Vec<(u64, Delivery)>) {
        self.loaded.push((client_id.to_owned(), entries));
    }
}

fn open(path: &Path) -> (Store, Snapshot) {
    Store::open(path, SyncPolicy::EveryTurn, WALL.start_ms, Millis(0)).expect("open")
}

#[test]
fn committed_changes_read_back_after_a_reopen() {
    let dir = temp_dir("reopen");
    let path = dir.join("nested").join("culex.redb");
    let (mut store, snapshot) = open(&path);
    assert!(snapshot.sessions.is_empty() && snapshot.retained.is_empty());
    let c1: Rc<str> = "c1".into();
    let c2: Rc<str> = "c2".into();
    let retained = Rc::new(message("r/1", b"kept", None));
    let changes = vec![
        Change::SessionSaved {
            client_id: c1.clone(),
            record: Box::new(session_with_will()),
        },
        Change::SessionSaved {
            client_id: c2.clone(),
            record: Box::new(SessionRecord {
                expiry_secs: 10,
                expires_at: None,
                will: None,
            }),
        },
        Change::Subscribed {
            client_id: c1.clone(),
            filter: "a/#".into(),
            sub: sub(QoS::ExactlyOnce, true, true, 2, Some(4)),
        },
        Change::Subscribed {
            client_id: c1.clone(),
            filter: "$share/g/b".into(),
            sub: sub(QoS::AtLeastOnce, false, false, 0, None),
        },
        Change::Subscribed {
            client_id: c2.clone(),
            filter: "x".into(),
            sub: sub(QoS::AtMostOnce, false, false, 0, None),
        },
        Change::Queued {
            client_id: c1.clone(),
            seq: 2,
            delivery: delivery("a/2", 2),
        },
        Change::Queued {
            client_id: c1.clone(),
            seq: 1,
            delivery: delivery("a/1", 1),
        },
        Change::Queued {
            client_id: c1.clone(),
            seq: 3,
            delivery: delivery("a/3", 3),
        },
        Change::Dequeued {
            client_id: c1.clone(),
            seq: 3,
        },
        Change::InflightSaved {
            client_id: c1.clone(),
            packet_id: 5,
            state: OutState::AwaitPubRec,
            delivery: delivery("a/0", 0),
        },
        Change::InflightSaved {
            client_id: c1.clone(),
            packet_id: 5,
            state: OutState::AwaitPubComp,
            delivery: delivery("a/0", 0),
        },
        Change::InflightSaved {
            client_id: c2.clone(),
            packet_id: 6,
            state: OutState::AwaitPubAck,
            delivery: delivery("x", 0),
        },
        Change::IncomingQos2 {
            client_id: c1.clone(),
            packet_id: 9,
            pending: true,
        },
        Change::IncomingQos2 {
            client_id: c1.clone(),
            packet_id: 10,
            pending: true,
        },
        Change::IncomingQos2 {
            client_id: c1.clone(),
            packet_id: 10,
            pending: false,
        },
        Change::RetainSet { msg: retained },
        Change::RetainSet {
            msg: Rc::new(message("r/2", b"gone", None)),
        },
        Change::RetainCleared {
            topic: "r/2".into(),
        },
    ];
    store
        .commit(Millis(1), &mut Fixed::new(changes), true)
        .unwrap();
    drop(store);

    let (mut store, snapshot) = open(&path);
    assert_eq!(snapshot.sessions.len(), 2);
    let s1 = &snapshot.sessions[0];
    assert_eq!(s1.client_id, "c1");
    assert_eq!(s1.record, session_with_will());
    let filters: Vec<&str> = s1.subscriptions.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(filters, ["$share/g/b", "a/#"]);
    assert_eq!(
        s1.subscriptions[1].1,
        sub(QoS::ExactlyOnce, true, true, 2, Some(4))
    );
    // Queues are counted at start-up and read when their client is back.
    assert_eq!(
        (
            s1.queue.len,
            s1.queue.bytes,
            s1.queue.first_seq,
            s1.queue.end_seq
        ),
        (2, 14, 1, 3),
        "without the dequeued one"
    );
    let load = QueueLoad {
        client_id: c1.clone(),
        from_seq: 2,
        max: 5,
    };
    let mut turn = Fixed::new(vec![]);
    turn.loads.push(load);
    store.commit(Millis(1), &mut turn, true).unwrap();
    let (id, entries) = &turn.loaded[0];
    assert_eq!(&**id, "c1");
    assert_eq!(entries.len(), 1);
    same_delivery(&entries[0].1, &delivery("a/2", 2));
    assert_eq!(s1.inflight.len(), 1);
    assert_eq!(
        (s1.inflight[0].0, s1.inflight[0].1),
        (5, OutState::AwaitPubComp)
    );
    assert_eq!(s1.incoming_qos2, [9]);
    let s2 = &snapshot.sessions[1];
    assert_eq!((s2.client_id.as_str(), s2.inflight.len()), ("c2", 1));
    assert_eq!(snapshot.retained.len(), 1);
    same_message(&snapshot.retained[0], &message("r/1", b"kept", None));

    // Deleting a session takes every row it owns and nothing of the others.
    let delete = vec![Change::SessionDeleted { client_id: c1 }];
    store
        .commit(Millis(2), &mut Fixed::new(delete), true)
        .unwrap();
    drop(store);
    let (_store, snapshot) = open(&path);
    assert_eq!(snapshot.sessions.len(), 1);
    assert_eq!(snapshot.sessions[0].client_id, "c2");
    assert_eq!(snapshot.sessions[0].subscriptions.len(), 1);
    assert_eq!(snapshot.sessions[0].inflight.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn interval_sync_asks_for_a_flush_when_due() {
    let dir = temp_dir("interval");
    let path = dir.join("culex.redb");
    let (mut store, _) = Store::open(&path, SyncPolicy::IntervalMs(100), 0, Millis(0)).unwrap();
    assert_eq!(store.next_deadline(), None);
    let retain = Change::RetainSet {
        msg: Rc::new(message("r", b"x", None)),
    };
    store
        .commit(Millis(10), &mut Fixed::new(vec![retain.clone()]), false)
        .unwrap();
    assert_eq!(store.next_deadline(), Some(Millis(110)));
    store
        .commit(Millis(50), &mut Fixed::new(vec![retain.clone()]), false)
        .unwrap();
    assert_eq!(
        store.next_deadline(),
        Some(Millis(110)),
        "the oldest change counts"
    );
    store
        .commit(Millis(110), &mut Fixed::new(vec![]), true)
        .unwrap();
    assert_eq!(store.next_deadline(), None);
    store
        .commit(Millis(120), &mut Fixed::new(vec![retain.clone()]), false)
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.next_deadline(), None);
    drop(store);
    let (_, snapshot) = Store::open(&path, SyncPolicy::EveryTurn, 0, Millis(0)).unwrap();
    assert_eq!(snapshot.retained.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_turn_commits_wait_for_a_flush_only_when_asked() {
    let dir = temp_dir("every-turn");
    let path = dir.join("culex.redb");
    let (mut store, _) = open(&path);
    assert!(store.is_flushed() && store.holds_acknowledgements());
    let retain = Change::RetainSet {
        msg: Rc::new(message("r", b"x", None)),
    };
    store
        .commit(Millis(1), &mut Fixed::new(vec![retain]), false)
        .unwrap();
    assert!(!store.is_flushed(), "written, not yet on disk");
    // Nothing new, but a flush is asked for: what was written reaches the disk.
    store
        .commit(Millis(2), &mut Fixed::new(vec![]), true)
        .unwrap();
    assert!(store.is_flushed());
    assert_eq!(store.next_deadline(), None);
    drop(store);
    assert_eq!(open(&path).1.retained.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// A turn whose answers to queue reads record a change, as the engine's do when it sends
/// what it read.
struct Reading {
    loads: Vec<QueueLoad>,
    recorded: Vec<Change>,
}

impl TurnSource for Reading {
    fn changes(&mut self, out: &mut Vec<Change>) {
        *out = std::mem::take(&mut self.recorded);
    }

    fn queue_loads(&mut self, out: &mut Vec<QueueLoad>) {
        *out = std::mem::take(&mut self.loads);
    }

    fn queue_loaded(&mut self, client_id: &str, _: Vec<(u64, Delivery)>) {
        self.recorded.push(Change::InflightSaved {
            client_id: client_id.into(),
            packet_id: 1,
            state: OutState::AwaitPubRec,
            delivery: delivery("q", 1),
        });
    }
}

#[test]
fn changes_made_while_reading_a_queue_count_as_not_flushed() {
    let dir = temp_dir("reading");
    let path = dir.join("culex.redb");
    let (mut store, _) = open(&path);
    let mut turn = Reading {
        loads: vec![QueueLoad {
            client_id: "c".into(),
            from_seq: 1,
            max: 10,
        }],
        recorded: Vec::new(),
    };
    store.commit(Millis(1), &mut turn, false).unwrap();
    assert!(
        !store.is_flushed(),
        "a QoS 2 PUBLISH sent from the read must still wait"
    );
    // Asked to flush while reading: all of it reaches the disk at once.
    turn.loads.push(QueueLoad {
        client_id: "c".into(),
        from_seq: 1,
        max: 10,
    });
    store
        .commit(Millis(2), &mut Fixed::new(vec![]), true)
        .unwrap();
    assert!(store.is_flushed());
    store.commit(Millis(3), &mut turn, true).unwrap();
    assert!(store.is_flushed());
    let _ = std::fs::remove_dir_all(dir);
}

fn open_error(path: &Path) -> String {
    match Store::open(path, SyncPolicy::EveryTurn, 0, Millis(0)) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            text
        }
    }
}

#[test]
fn bad_files_are_refused_not_reset() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();

    let empty = dir.join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    assert!(open_error(&empty).contains("empty file"));

    let garbage = dir.join("garbage.redb");
    let noise: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&garbage, &noise).unwrap();
    let e = open_error(&garbage);
    assert!(e.contains("damaged or not a culex store"), "{e}");

    // A real store cut short.
    let cut = dir.join("cut.redb");
    let (mut store, _) = open(&cut);
    let retain = Change::RetainSet {
        msg: Rc::new(message("r", &[b'x'; 10_000], None)),
    };
    store
        .commit(Millis(1), &mut Fixed::new(vec![retain]), true)
        .unwrap();
    drop(store);
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(open_error(&cut).contains("damaged"));
    std::fs::write(&cut, &bytes[..100]).unwrap();
    assert!(open_error(&cut).contains("damaged"));
    assert_eq!(std::fs::read(&cut).unwrap().len(), 100, "left alone");

    // Another format version.
    let other = dir.join("other.redb");
    drop(open(&other));
    {
        let db = Database::create(&other).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_KEY, 999)
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(open_error(&other).contains("format version 999"));

    // A redb file that culex did not write.
    let foreign = dir.join("foreign.redb");
    {
        let db = Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other");
        txn.open_table(def).unwrap().insert("x", 1).unwrap();
        txn.commit().unwrap();
    }
    assert!(open_error(&foreign).contains("not a culex store"));

    // In use: a second open while the first is held.
    let held = dir.join("held.redb");
    let first = open(&held);
    assert!(open_error(&held).contains("in use by another process"));
    drop(first);
    drop(open(&held));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dump_describes_sessions_and_retained_messages() {
    let dir = temp_dir("dump");
    let path = dir.join("culex.redb");
    let (mut store, _) = open(&path);
    let c: Rc<str> = "sensor-7".into();
    store
        .commit(
            Millis(0),
            &mut Fixed::new(vec![
                Change::SessionSaved {
                    client_id: c.clone(),
                    record: Box::new(session_with_will()),
                },
                Change::Subscribed {
                    client_id: c.clone(),
                    filter: "cmd/#".into(),
                    sub: sub(QoS::AtLeastOnce, true, false, 1, Some(3)),
                },
                Change::Queued {
                    client_id: c,
                    seq: 1,
                    delivery: delivery("cmd/reboot", 1),
                },
                Change::RetainSet {
                    msg: Rc::new(message("status/7", b"up", None)),
                },
            ]),
            true,
        )
        .unwrap();
    assert!(dump(&path).unwrap_err().to_string().contains("in use"));
    drop(store);
    let text = dump(&path).unwrap();
    for needle in [
        "1 sessions, 1 retained messages",
        "session \"sensor-7\": expiry 300 s",
        "will on \"clients/c1/status\"",
        "subscription \"cmd/#\": qos 1, no local, retain handling 1, identifier 3",
        "queued #1: \"cmd/reboot\" qos 1",
        "retained \"status/7\": qos 2, 2 bytes",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
