//! Sleeping clients (spec 6.14) and retransmission (6.13): what is kept for a sleeper, how
//! it is handed over when the client wakes, and when the gateway gives a client up and
//! publishes its will.

use super::*;
use crate::harness::{self, parse_publish as parse_mqtt_publish, puback, Recv};
use crate::hex;

/// CONNECT with a will, through the whole dialogue; `will` is (topic, message), QoS 0.
fn connect_with_will(c: &SnClient, client_id: &str, duration: u16, will: (&str, &[u8])) {
    c.send(&connect_msg(client_id, true, true, duration));
    c.expect(&hex!("02 06"));
    c.send(&enc(&Message::WillTopic {
        flags: sn::Flags::default(),
        topic: will.0.as_bytes(),
    }));
    c.expect(&hex!("02 08"));
    c.send(&enc(&Message::WillMsg { msg: will.1 }));
    c.expect(&hex!("03 05 00"));
}

/// Waits up to `within` for a PUBLISH on the TCP client and checks its topic and payload.
fn expect_tcp_publish(c: &mut RawClient, within: Duration, topic: &str, payload: &[u8]) {
    let p = match c.recv_within(within) {
        Recv::Packet(p) => p,
        other => panic!("no PUBLISH on {topic} within {within:?}: {other:?}"),
    };
    let got = parse_mqtt_publish(&p, false);
    assert_eq!(
        (got.topic.as_slice(), got.payload.as_slice()),
        (topic.as_bytes(), payload),
        "{}",
        to_hex(&p)
    );
    if got.qos == 1 {
        c.send(&puback(got.pid));
    }
}

#[test]
fn a_sleeping_client_gets_its_messages_when_it_wakes_with_pingreq() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::connected(gw, "sleeper", 60);
    assert_eq!(c.subscribe(1, "sl/t", 1), 1);
    // DISCONNECT with a sleep duration of 3 s; the gateway answers DISCONNECT.
    c.send(&hex!("04 18 00 03"));
    c.expect(&hex!("02 18"));

    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("sl/t", b"a", 0, 0, false, None));
    publisher.send(&harness::publish("sl/t", b"b", 1, 1, false, None));
    publisher.expect(&puback(1));
    c.expect_silence(QUIET);

    // PINGREQ with the client id "sleeper": what was kept, then PINGRESP.
    c.send(&hex!("09 16 73 6c 65 65 70 65 72"));
    c.expect(&hex!("08 0c 00 00 01 00 00 61"));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, 1, &b"b"[..])
    );
    c.expect_silence(QUIET);
    c.send(&id_ack(0x0d, 1, p.msg_id, 0));
    c.expect(&hex!("02 17"));

    // Asleep again: a new message waits for the next wake-up.
    publisher.send(&harness::publish("sl/t", b"c", 0, 0, false, None));
    publisher.ping();
    c.expect_silence(QUIET);
    c.send(&hex!("09 16 73 6c 65 65 70 65 72"));
    c.expect(&hex!("08 0c 00 00 01 00 00 63"));
    c.expect(&hex!("02 17"));
    // Nothing kept: PINGRESP at once.
    c.send(&hex!("09 16 73 6c 65 65 70 65 72"));
    c.expect(&hex!("02 17"));

    // A CONNECT (same session, no will) makes it active again; it gets what was kept.
    publisher.send(&harness::publish("sl/t", b"d", 0, 0, false, None));
    publisher.ping();
    c.expect_silence(QUIET);
    c.send(&connect_msg("sleeper", false, false, 60));
    c.expect(&hex!("03 05 00"));
    c.expect(&hex!("08 0c 00 00 01 00 00 64"));
    // Active: messages go out as they come.
    publisher.send(&harness::publish("sl/t", b"e", 0, 0, false, None));
    c.expect(&hex!("08 0c 00 00 01 00 00 65"));
    c.ping();
}

#[test]
fn the_sleep_buffer_bounds_what_is_kept() {
    let Some((broker, gw)) = start("sleep_buffer 2") else {
        return;
    };
    let c = SnClient::connected(gw, "small", 60);
    assert_eq!(c.subscribe(1, "sb/t", 0), 1);
    c.send(&hex!("04 18 00 05"));
    c.expect(&hex!("02 18"));
    let mut publisher = broker.connected_v311("publisher");
    for payload in [b"1", b"2", b"3"] {
        publisher.send(&harness::publish("sb/t", payload, 0, 0, false, None));
    }
    publisher.ping();
    broker.assert_log_contains(&format!(
        "udp {}: MQTT-SN client small has 2 messages waiting: one dropped",
        c.addr()
    ));
    // PINGREQ with client id "small".
    c.send(&hex!("07 16 73 6d 61 6c 6c"));
    c.expect(&hex!("08 0c 00 00 01 00 00 31"));
    c.expect(&hex!("08 0c 00 00 01 00 00 32"));
    c.expect(&hex!("02 17"));
    c.expect_silence(QUIET);
}

#[test]
fn a_client_that_sleeps_too_long_is_lost_and_its_will_published() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut watcher = tcp_subscriber(&broker, "watcher", "will/#", 0);
    let c = SnClient::new(gw);
    connect_with_will(&c, "dozer", 60, ("will/dozer", b"overslept"));
    // Sleep 1 s: after 1.5 s without a PINGREQ the client is lost.
    c.send(&hex!("04 18 00 01"));
    c.expect(&hex!("02 18"));
    expect_tcp_publish(
        &mut watcher,
        Duration::from_secs(4),
        "will/dozer",
        b"overslept",
    );
    broker.assert_log_contains(&format!(
        "(udp {}): MQTT-SN client dozer gone: sleep duration expired",
        c.addr()
    ));
    // A PINGREQ now finds no sleeper of that name.
    c.send(&hex!("07 16 64 6f 7a 65 72"));
    c.expect(&hex!("02 18"));
}

#[test]
fn an_unacknowledged_publish_is_sent_again_with_dup_then_the_client_is_lost() {
    let Some((broker, gw)) = start("retry_interval 1\nretry_count 2") else {
        return;
    };
    let mut watcher = tcp_subscriber(&broker, "watcher", "will/#", 0);
    let c = SnClient::new(gw);
    connect_with_will(&c, "deaf", 60, ("will/deaf", b"no acks"));
    assert_eq!(c.subscribe(1, "rt/t", 1), 1);
    let mut publisher = broker.connected_v311("publisher");
    // The first copy goes out once the PUBLISH is routed, so no copy can be due before
    // this instant plus its share of retry intervals; a slow test thread only delays.
    let sent = Instant::now();
    publisher.send(&harness::publish("rt/t", b"x", 1, 1, false, None));
    publisher.expect(&puback(1));

    let first = c.recv_publish();
    assert_eq!((first.flags, first.topic_id), (0x20, 1));
    // Sent again twice (retry_count 2), every retry_interval, with DUP (0x80) set.
    for n in 1..=2u32 {
        let again = c
            .recv_within(Duration::from_millis(2500))
            .expect("a retransmission within 2.5 s");
        let elapsed = sent.elapsed();
        let expected = publish_msg(0xa0, 1, first.msg_id, b"x");
        assert_eq!(to_hex(&again), to_hex(&expected));
        assert!(
            elapsed >= Duration::from_millis(900) * n,
            "copy {n} sent again after only {elapsed:?}"
        );
    }
    // Then the client is lost: no third copy, and its will is published.
    expect_tcp_publish(
        &mut watcher,
        Duration::from_secs(3),
        "will/deaf",
        b"no acks",
    );
    c.expect_silence(QUIET);
    broker.assert_log_contains(&format!(
        "(udp {}): MQTT-SN client deaf gone: no acknowledgement after retries",
        c.addr()
    ));
    c.send(&hex!("02 16"));
    c.expect(&hex!("02 18"));
}

#[test]
fn an_unacknowledged_register_is_sent_again_and_the_publish_follows_its_regack() {
    let Some((broker, gw)) = start("retry_interval 1\nretry_count 2") else {
        return;
    };
    let c = SnClient::connected(gw, "slow", 60);
    c.send(&hex!("08 12 00 00 01 72 2f 23"));
    c.expect(&hex!("08 13 00 00 00 00 01 00"));
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("r/a", b"v", 0, 0, false, None));
    // REGISTER "r/a" with topic id 1, msg id 1; the same bytes again a second later.
    let register = hex!("09 0a 00 01 00 01 72 2f 61");
    c.expect(&register);
    let again = c
        .recv_within(Duration::from_millis(2500))
        .expect("REGISTER sent again");
    assert_eq!(to_hex(&again), to_hex(&register));
    c.send(&hex!("07 0b 00 01 00 01 00"));
    c.expect(&hex!("08 0c 00 00 01 00 00 76"));
    c.expect_silence(QUIET);
    c.ping();
}

#[test]
fn an_unacknowledged_pubrel_is_sent_again() {
    let Some((broker, gw)) = start("retry_interval 1\nretry_count 2") else {
        return;
    };
    let c = SnClient::connected(gw, "q2", 60);
    assert_eq!(c.subscribe(1, "q2/t", 2), 1);
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("q2/t", b"z", 2, 1, false, None));
    publisher.expect(&harness::pubrec(1));
    publisher.send(&harness::pubrel(1));
    publisher.expect(&harness::pubcomp(1));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x40, 1, &b"z"[..])
    );
    c.send(&msg_id_only(0x0f, p.msg_id));
    let pubrel = msg_id_only(0x10, p.msg_id);
    c.expect(&pubrel);
    // No PUBCOMP: PUBREL again (it has no DUP flag, so the same bytes).
    let again = c
        .recv_within(Duration::from_millis(2500))
        .expect("PUBREL sent again");
    assert_eq!(to_hex(&again), to_hex(&pubrel));
    c.send(&msg_id_only(0x0e, p.msg_id));
    c.expect_silence(QUIET);
    c.ping();
}

#[test]
fn messages_within_the_keep_alive_keep_a_client() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut watcher = tcp_subscriber(&broker, "watcher", "will/#", 0);
    let c = SnClient::new(gw);
    // Keep alive 1 s: a PINGREQ every half second for 2.5 s keeps the client.
    connect_with_will(&c, "alive", 1, ("will/alive", b"dead"));
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(500));
        c.ping();
    }
    watcher.expect_silence(0);
    assert!(!broker.log().contains("alive gone"), "{}", broker.log());
    c.disconnect();
    // DISCONNECT is no loss: no will.
    watcher.expect_silence(QUIET);
}
