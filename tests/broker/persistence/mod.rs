//! Persistence in the redb store: persistent sessions (their subscriptions, queued and
//! in-flight messages, inbound QoS 2 packet identifiers), retained messages and delayed wills
//! survive a restart, including a `kill -9`, and `culex --dump-store` shows what is stored.
//!
//! The crash test is in `crash.rs`; start-up refusals of a bad store in `store_errors.rs`.
//! Every test here needs its own configuration, so all are skipped in validation mode.

mod crash;
mod store_errors;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::*;
use crate::hex;

/// How long culex may take to exit after a signal.
const EXIT_WITHIN: Duration = Duration::from_secs(10);
/// Session expiry interval property: the session never expires.
const EXPIRY_NEVER: [u8; 5] = [0x11, 0xff, 0xff, 0xff, 0xff];

/// The directory of one test's store; removed with everything in it when dropped.
struct StoreDir {
    path: PathBuf,
}

impl StoreDir {
    /// A fresh path under the temporary directory. The directory is not created:
    /// culex creates `persistence_location` when it is missing.
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("culex-store-{}", uniq(tag)));
        let _ = std::fs::remove_dir_all(&path);
        Self { path }
    }

    /// Configuration lines that put the store in this directory.
    fn config(&self) -> String {
        format!(
            "persistence true\npersistence_location {}\n",
            self.path.display()
        )
    }

    /// The store file under its default name.
    fn file(&self) -> PathBuf {
        self.path.join("culex.redb")
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Kills culex with SIGKILL (nothing is flushed or closed cleanly) and starts it again
/// with `extra_config`.
fn crash_and_restart(mut broker: Broker, extra_config: &str) -> Broker {
    broker.signal("KILL");
    broker
        .wait_exit(EXIT_WITHIN)
        .expect("culex dies on SIGKILL");
    drop(broker);
    Broker::start_configured(extra_config).expect("a spawned broker")
}

/// Stops culex with SIGTERM and checks that it exits 0.
fn stop(mut broker: Broker) {
    broker.signal("TERM");
    let status = broker
        .wait_exit(EXIT_WITHIN)
        .unwrap_or_else(|| panic!("culex still runs after SIGTERM; log:\n{}", broker.log()));
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM; log:\n{}",
        broker.log()
    );
}

/// Every packet the broker has processed so far is committed once a new connection
/// gets its PINGRESP: each loop turn commits before any of its packets leaves.
fn settle(broker: &Broker) {
    broker.connected_v311(&uniq("settle")).ping();
}

/// A 3.1.1 connection resuming (or creating) the persistent session `id`; checks the
/// CONNACK's session present flag.
fn resume_v311(broker: &Broker, id: &str, present: bool) -> RawClient {
    let mut c = broker.client();
    c.send(&connect_v311(id, false, 60));
    let ack = c.recv_packet();
    let connack = parse_connack(&ack, false);
    assert_eq!(
        (connack.session_present, connack.reason),
        (present, 0),
        "CONNACK of {id}: {}; log:\n{}",
        to_hex(&ack),
        broker.log()
    );
    c
}

/// A 5.0 connection with Clean Start 0 and a session that never expires.
fn resume_v5(broker: &Broker, id: &str, present: bool) -> RawClient {
    let mut c = broker.client();
    c.send(&connect_v5(id, false, 60, &EXPIRY_NEVER));
    let ack = c.recv_packet();
    let connack = parse_connack(&ack, true);
    assert_eq!(
        (connack.session_present, connack.reason),
        (present, 0),
        "CONNACK of {id}: {}; log:\n{}",
        to_hex(&ack),
        broker.log()
    );
    c
}

/// Receives one v5 PUBLISH, checks topic, payload and QoS; returns its bytes too.
fn recv_publish(c: &mut RawClient, topic: &str, payload: &[u8], qos: u8) -> (Vec<u8>, Publish) {
    let p = c.recv_packet();
    let got = parse_publish(&p, true);
    assert_eq!(
        (got.topic.as_slice(), got.payload.as_slice(), got.qos),
        (topic.as_bytes(), payload, qos),
        "unexpected PUBLISH {}",
        to_hex(&p)
    );
    (p, got)
}

fn run_culex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_culex"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run culex")
}

#[test]
fn sessions_and_retained_messages_survive_a_crash() {
    let dir = StoreDir::new("survive");
    let config = dir.config();
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    assert!(
        dir.path.is_dir(),
        "persistence_location {} was not created",
        dir.path.display()
    );
    let mut s = resume_v311(&broker, "surv-sub", false);
    s.send(&subscribe(1, "surv/q", 1, false));
    s.expect(&hex!("90 03 00 01 01"));
    s.send(&disconnect());
    s.expect_bare_close();
    // A clean session is not stored.
    let mut c = broker.connected_v311("surv-clean");
    c.send(&subscribe(1, "surv/q", 1, false));
    c.expect(&hex!("90 03 00 01 01"));

    let mut p = broker.connected_v311("surv-pub");
    p.send(&publish("surv/q", b"queued", 1, 1, false, None));
    p.expect(&puback(1));
    p.send(&publish("surv/r", b"kept", 1, 2, true, None));
    p.expect(&puback(2));
    p.send(&publish("surv/gone", b"x", 1, 3, true, None));
    p.expect(&puback(3));
    // An empty retained message deletes the retained message of its topic.
    p.send(&publish("surv/gone", b"", 1, 4, true, None));
    p.expect(&puback(4));
    let got = expect_publish(&mut c, "surv/q", b"queued", 1, false);
    c.send(&puback(got.pid));

    // Everything acknowledged above was committed before its acknowledgement left.
    let broker = crash_and_restart(broker, &config);
    let mut s = resume_v311(&broker, "surv-sub", true);
    let got = expect_publish(&mut s, "surv/q", b"queued", 1, false);
    s.send(&puback(got.pid));
    // The subscription came back with the session.
    let mut p = broker.connected_v311("surv-pub");
    p.send(&publish("surv/q", b"after", 1, 5, false, None));
    p.expect(&puback(5));
    let got = expect_publish(&mut s, "surv/q", b"after", 1, false);
    s.send(&puback(got.pid));
    s.expect_silence(SILENCE_MS);
    resume_v311(&broker, "surv-clean", false);

    let mut r = broker.connected_v311("surv-new");
    r.send(&subscribe(1, "surv/+", 1, false));
    r.expect(&hex!("90 03 00 01 01"));
    let got = parse_publish(&r.recv_packet(), false);
    assert_eq!(
        (got.topic.as_slice(), got.payload.as_slice(), got.retain),
        (&b"surv/r"[..], &b"kept"[..], true),
        "retained message after the restart: {got:?}"
    );
    r.send(&puback(got.pid));
    r.expect_silence(SILENCE_MS);
}

#[test]
fn unacknowledged_deliveries_are_resent_after_a_crash() {
    let dir = StoreDir::new("resend");
    let config = dir.config();
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let mut s = resume_v5(&broker, "resend-sub", false);
    s.send(&subscribe_many(1, &[("rs/1", 1), ("rs/2", 2)], true));
    assert_eq!(parse_suback(&s.recv_packet(), 0x90, true), (1, vec![1, 2]));

    let mut p = broker.connected_v311("resend-pub");
    p.send(&publish("rs/1", b"one", 1, 1, false, None));
    p.expect(&puback(1));
    let (one_raw, one) = recv_publish(&mut s, "rs/1", b"one", 1);
    // "two" goes as far as the broker's PUBREL; "three" gets no answer at all.
    p.send(&publish("rs/2", b"two", 2, 2, false, None));
    p.expect(&pubrec(2));
    p.send(&pubrel(2));
    p.expect(&pubcomp(2));
    let (_, two) = recv_publish(&mut s, "rs/2", b"two", 2);
    s.send(&pubrec(two.pid));
    s.expect(&pubrel(two.pid));
    p.send(&publish("rs/2", b"three", 2, 3, false, None));
    p.expect(&pubrec(3));
    p.send(&pubrel(3));
    p.expect(&pubcomp(3));
    let (three_raw, three) = recv_publish(&mut s, "rs/2", b"three", 2);
    assert!(
        !one.dup && !two.dup && !three.dup,
        "first deliveries have DUP 0"
    );

    let broker = crash_and_restart(broker, &config);
    // [MQTT-4.4.0-1] unacknowledged PUBLISH and PUBREL packets are resent with their
    // original packet identifiers; [MQTT-3.3.1-1] a resent PUBLISH has DUP 1.
    let mut s = resume_v5(&broker, "resend-sub", true);
    let mut got: Vec<String> = s
        .collect_until_silence(1000)
        .iter()
        .map(|p| to_hex(p))
        .collect();
    got.sort();
    let with_dup = |raw: &[u8]| {
        let mut p = raw.to_vec();
        p[0] |= 0x08;
        to_hex(&p)
    };
    let mut want = vec![
        with_dup(&one_raw),
        to_hex(&pubrel(two.pid)),
        with_dup(&three_raw),
    ];
    want.sort();
    assert_eq!(
        got,
        want,
        "packets resent after the restart; log:\n{}",
        broker.log()
    );
    s.send(&puback(one.pid));
    s.send(&pubcomp(two.pid));
    s.send(&pubrec(three.pid));
    s.expect(&pubrel(three.pid));
    s.send(&pubcomp(three.pid));
    s.ping();

    // The acknowledgements were stored too: nothing is resent after a clean restart.
    stop(broker);
    let broker = Broker::start_configured(&config).expect("a spawned broker");
    let mut s = resume_v5(&broker, "resend-sub", true);
    s.expect_silence(SILENCE_MS);
}

/// Receives one QoS 2 PUBLISH and completes its flow as a subscriber does.
fn receive_qos2(s: &mut RawClient, topic: &str, payload: &[u8]) -> Publish {
    let got = expect_publish(s, topic, payload, 2, false);
    s.send(&pubrec(got.pid));
    s.expect(&pubrel(got.pid));
    s.send(&pubcomp(got.pid));
    got
}

#[test]
fn an_inbound_qos2_id_survives_a_crash_so_a_resend_is_not_delivered_twice() {
    let dir = StoreDir::new("inqos2");
    let config = dir.config();
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let mut s = resume_v311(&broker, "in2-sub", false);
    s.send(&subscribe(1, "in2/t", 2, false));
    s.expect(&hex!("90 03 00 01 02"));
    let mut p = resume_v311(&broker, "in2-pub", false);
    p.send(&publish("in2/t", b"once", 2, 9, false, None));
    p.expect(&pubrec(9));
    let got = receive_qos2(&mut s, "in2/t", b"once");
    s.ping();

    let broker = crash_and_restart(broker, &config);
    let mut s = resume_v311(&broker, "in2-sub", true);
    // The PUBCOMP acknowledged nothing, so the end of the flow may not have reached the
    // disk: a PUBREL sent again is answered as the specification says, and nothing else
    // may come.
    for packet in s.collect_until_silence(SILENCE_MS) {
        assert_eq!(packet, pubrel(got.pid), "only the PUBREL may come again");
        s.send(&pubcomp(got.pid));
    }
    // The publisher never saw the PUBREC, as far as the broker can tell: it resends.
    let mut p = resume_v311(&broker, "in2-pub", true);
    p.send(&publish_raw(b"in2/t", b"once", 2, 9, false, true, None));
    p.expect(&pubrec(9));
    p.send(&pubrel(9));
    p.expect(&pubcomp(9));
    // [MQTT-4.3.3-10] the stored packet identifier stops a second delivery.
    s.expect_silence(SILENCE_MS);
    // The identifier was released by the PUBREL: it names a new message now.
    p.send(&publish("in2/t", b"again", 2, 9, false, None));
    p.expect(&pubrec(9));
    p.send(&pubrel(9));
    p.expect(&pubcomp(9));
    receive_qos2(&mut s, "in2/t", b"again");
    s.expect_silence(SILENCE_MS);
}

#[test]
fn a_delayed_will_survives_a_crash() {
    let dir = StoreDir::new("will");
    let config = dir.config();
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let mut watch = resume_v311(&broker, "will-watch", false);
    watch.send(&subscribe(1, "will/w", 1, false));
    watch.expect(&hex!("90 03 00 01 01"));
    watch.send(&disconnect());
    watch.expect_bare_close();

    // Session expiry 300 s, will delay 3 s.
    let session = hex!("11 00 00 01 2c");
    let mut connect = Connect::v5("will-client");
    connect.props = &session;
    let will_props = hex!("18 00 00 00 03");
    connect.will = Some(Will {
        topic: "will/w",
        payload: b"late",
        qos: 1,
        retain: false,
        props: &will_props,
    });
    let mut w = broker.client();
    w.send(&connect.bytes());
    let ack = parse_connack(&w.recv_packet(), true);
    assert_eq!(ack.reason, 0);
    w.ping();
    let peer = w.local_addr();
    w.drop_connection();
    broker.wait_for_log(&format!("({peer}): connection lost"), EXIT_WITHIN);
    settle(&broker);

    // The will is due 3 s after the connection ended: the crash comes first.
    let broker = crash_and_restart(broker, &config);
    let mut watch = resume_v311(&broker, "will-watch", true);
    match watch.recv_within(Duration::from_secs(10)) {
        Recv::Packet(p) => {
            let got = parse_publish(&p, false);
            assert_eq!(
                (got.topic.as_slice(), got.payload.as_slice(), got.qos),
                (&b"will/w"[..], &b"late"[..], 1),
                "{}",
                to_hex(&p)
            );
            watch.send(&puback(got.pid));
        }
        other => panic!(
            "the delayed will was not published after the restart ({other:?}); log:\n{}",
            broker.log()
        ),
    }
    watch.expect_silence(SILENCE_MS);
}

#[test]
fn interval_sync_keeps_state_across_a_clean_shutdown() {
    let dir = StoreDir::new("interval");
    let config = format!("{}persistence_sync interval 200\n", dir.config());
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let mut s = resume_v311(&broker, "intv-sub", false);
    s.send(&subscribe(1, "intv/q", 1, false));
    s.expect(&hex!("90 03 00 01 01"));
    s.send(&disconnect());
    s.expect_bare_close();
    let mut p = broker.connected_v311("intv-pub");
    p.send(&publish("intv/q", b"queued", 1, 1, false, None));
    p.expect(&puback(1));
    p.send(&publish("intv/r", b"kept", 0, 0, true, None));
    p.ping();

    stop(broker);
    let broker = Broker::start_configured(&config).expect("a spawned broker");
    let mut s = resume_v311(&broker, "intv-sub", true);
    let got = expect_publish(&mut s, "intv/q", b"queued", 1, false);
    s.send(&puback(got.pid));
    let mut r = broker.connected_v311("intv-new");
    r.send(&subscribe(1, "intv/r", 0, false));
    r.expect(&hex!("90 03 00 01 00"));
    r.expect(&publish("intv/r", b"kept", 0, 0, true, None));
}

#[test]
fn dump_store_lists_sessions_subscriptions_and_retained_topics() {
    let dir = StoreDir::new("dump");
    let config = format!("{}persistence_file dump.redb\n", dir.config());
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let mut s = resume_v311(&broker, "dump-sess3", false);
    s.send(&subscribe(1, "dump/filter/+", 1, false));
    s.expect(&hex!("90 03 00 01 01"));
    s.send(&disconnect());
    s.expect_bare_close();
    let mut s = resume_v5(&broker, "dump-sess5", false);
    s.send(&subscribe(1, "dump/five/#", 2, true));
    assert_eq!(parse_suback(&s.recv_packet(), 0x90, true), (1, vec![2]));
    s.send(&disconnect());
    s.expect_closed();
    // A clean session is never stored; this one is still connected at shutdown.
    let mut clean = broker.connected_v311("dump-clean");
    clean.send(&subscribe(1, "dump/clean/t", 1, false));
    clean.expect(&hex!("90 03 00 01 01"));
    let mut p = broker.connected_v311("dump-pub");
    p.send(&publish("dump/retained/topic", b"r", 1, 1, true, None));
    p.expect(&puback(1));
    stop(broker);

    let file = dir.path.join("dump.redb");
    assert!(file.is_file(), "persistence_file: no {}", file.display());
    let out = run_culex(&["--dump-store", &file.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "culex --dump-store: stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "dump-sess3",
        "dump/filter/+",
        "dump-sess5",
        "dump/five/#",
        "dump/retained/topic",
    ] {
        assert!(
            stdout.contains(needle),
            "--dump-store does not show {needle:?}:\n{stdout}"
        );
    }
    for absent in ["dump-clean", "dump/clean/t", "dump-pub"] {
        assert!(
            !stdout.contains(absent),
            "--dump-store shows {absent:?}, which is not persistent:\n{stdout}"
        );
    }
}
