//! The message flows of a connected client: CONNECT and the will dialogue, REGISTER in both
//! directions, PUBLISH at QoS 0, 1 and 2 both ways, SUBSCRIBE by name, predefined id and
//! short name, UNSUBSCRIBE, PINGREQ and DISCONNECT.

use super::*;
use crate::harness::{self, parse_publish as parse_mqtt_publish, puback, pubrec, pubrel};
use crate::hex;

#[test]
fn connect_ping_and_disconnect() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::new(gw);
    // CONNECT: clean session, protocol id 1, keep alive 60 s, client id "sn1".
    c.send(&hex!("09 04 04 01 00 3c 73 6e 31"));
    c.expect(&hex!("03 05 00"));
    c.send(&hex!("02 16"));
    c.expect(&hex!("02 17"));
    c.send(&hex!("02 18"));
    c.expect(&hex!("02 18"));
    // The client is gone: the gateway only asks it to connect again.
    c.send(&hex!("02 16"));
    c.expect(&hex!("02 18"));
    // The broker still takes TCP clients.
    broker.connected_v311("after-sn").ping();
}

#[test]
fn connect_with_a_bad_protocol_id_or_client_id_is_refused() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::new(gw);
    // Protocol id 0x02 is not MQTT-SN 1.2.
    c.send(&hex!("09 04 04 02 00 3c 73 6e 31"));
    c.expect(&hex!("03 05 03"));
    broker.assert_log_contains(&format!("udp {}: MQTT-SN CONNECT refused", c.addr()));
    // An empty client id.
    c.send(&hex!("06 04 04 01 00 3c"));
    c.expect(&hex!("03 05 03"));
    // 24 bytes of client id: one more than the limit.
    c.send(&connect_msg(&"x".repeat(24), false, true, 60));
    c.expect(&hex!("03 05 03"));
    // None of these left a client behind.
    c.send(&hex!("02 16"));
    c.expect(&hex!("02 18"));
    SnClient::connected(gw, "fine", 60).ping();
}

#[test]
fn will_dialogue_then_updates_then_the_will_on_keep_alive_expiry() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut watcher = tcp_subscriber(&broker, "watcher", "will/#", 1);
    let c = SnClient::new(gw);
    // CONNECT with the will flag and a keep alive of 1 s.
    c.send(&hex!("0a 04 0c 01 00 01 77 69 6c 6c"));
    c.expect(&hex!("02 06"));
    // WILLTOPIC: QoS 0, topic "will/a".
    c.send(&hex!("09 07 00 77 69 6c 6c 2f 61"));
    c.expect(&hex!("02 08"));
    // WILLMSG "bye".
    c.send(&hex!("05 09 62 79 65"));
    c.expect(&hex!("03 05 00"));
    // WILLTOPICUPD: QoS 1, retained, topic "will/b".
    c.send(&hex!("09 1a 30 77 69 6c 6c 2f 62"));
    c.expect(&hex!("03 1b 00"));
    // WILLMSGUPD "gone".
    c.send(&hex!("06 1c 67 6f 6e 65"));
    c.expect(&hex!("03 1d 00"));
    // Silence: the keep alive (1 s, tolerated 1.5 times) runs out and the updated will is
    // published, at the updated QoS and retained.
    let p = watcher.recv_within(Duration::from_secs(4));
    let harness::Recv::Packet(p) = p else {
        panic!("no will within 4 s: {p:?}");
    };
    let got = parse_mqtt_publish(&p, false);
    assert_eq!(
        (got.topic.as_slice(), got.payload.as_slice(), got.qos),
        (&b"will/b"[..], &b"gone"[..], 1),
        "{}",
        to_hex(&p)
    );
    watcher.send(&puback(got.pid));
    watcher.expect_silence(QUIET);
    broker.assert_log_contains(&format!(
        "(udp {}): MQTT-SN client will gone: keep alive expired",
        c.addr()
    ));
    let mut late = tcp_subscriber(&broker, "late", "will/b", 0);
    late.expect(&hex!("31 0c 00 06 77 69 6c 6c 2f 62 67 6f 6e 65"));
    // The lost client is forgotten.
    c.send(&hex!("02 16"));
    c.expect(&hex!("02 18"));
}

#[test]
fn an_empty_will_topic_update_deletes_the_will() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut watcher = tcp_subscriber(&broker, "watcher", "will/#", 0);
    let c = SnClient::new(gw);
    c.send(&connect_msg("nowill", true, true, 1));
    c.expect(&hex!("02 06"));
    c.send(&hex!("09 07 00 77 69 6c 6c 2f 61"));
    c.expect(&hex!("02 08"));
    c.send(&hex!("05 09 62 79 65"));
    c.expect(&hex!("03 05 00"));
    // WILLTOPICUPD without flags and topic: delete the will.
    c.send(&hex!("02 1a"));
    c.expect(&hex!("03 1b 00"));
    // There is no will left to give a message to.
    c.send(&hex!("05 1c 6e 65 77"));
    c.expect(&hex!("03 1d 03"));
    broker.wait_for_log("nowill gone: keep alive expired", Duration::from_secs(4));
    watcher.expect_silence(QUIET);
}

#[test]
fn an_empty_will_topic_connects_without_a_will() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut watcher = tcp_subscriber(&broker, "watcher", "#", 0);
    let c = SnClient::new(gw);
    c.send(&connect_msg("emptywill", true, true, 1));
    c.expect(&hex!("02 06"));
    // An empty WILLTOPIC: no will, and no WILLMSGREQ either.
    c.send(&hex!("02 07"));
    c.expect(&hex!("03 05 00"));
    broker.wait_for_log("emptywill gone: keep alive expired", Duration::from_secs(4));
    watcher.expect_silence(QUIET);
}

#[test]
fn register_then_publish_at_qos_0_1_and_2() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut sub = tcp_subscriber(&broker, "sub", "sn/#", 2);
    let c = SnClient::connected(gw, "pub", 60);
    // REGISTER "sn/a" (topic id 0, msg id 1): the first id the client gets is 1.
    c.send(&hex!("0a 0a 00 00 00 01 73 6e 2f 61"));
    c.expect(&hex!("07 0b 00 01 00 01 00"));
    // Registering the same name again gives the same id.
    c.send(&hex!("0a 0a 00 00 00 02 73 6e 2f 61"));
    c.expect(&hex!("07 0b 00 01 00 02 00"));

    // QoS 0: no answer.
    c.send(&hex!("09 0c 00 00 01 00 00 71 30"));
    c.expect_silence(QUIET);
    sub.expect(&hex!("30 08 00 04 73 6e 2f 61 71 30"));

    // QoS 1: PUBACK with the topic id and message id.
    c.send(&hex!("09 0c 20 00 01 00 05 71 31"));
    c.expect(&hex!("07 0d 00 01 00 05 00"));
    let p = sub.recv_packet();
    let got = parse_mqtt_publish(&p, false);
    assert_eq!((got.topic.as_slice(), got.qos), (&b"sn/a"[..], 1));
    assert_eq!(got.payload, b"q1");
    sub.send(&puback(got.pid));

    // QoS 2: PUBREC, then PUBREL answered by PUBCOMP.
    c.send(&hex!("09 0c 40 00 01 00 06 71 32"));
    c.expect(&hex!("04 0f 00 06"));
    c.send(&hex!("04 10 00 06"));
    c.expect(&hex!("04 0e 00 06"));
    let p = sub.recv_packet();
    let got = parse_mqtt_publish(&p, false);
    assert_eq!((got.topic.as_slice(), got.qos), (&b"sn/a"[..], 2));
    assert_eq!(got.payload, b"q2");
    sub.send(&pubrec(got.pid));
    sub.expect(&pubrel(got.pid));
    sub.send(&harness::pubcomp(got.pid));
    sub.expect_silence(QUIET);
    c.expect_silence(QUIET);
}

#[test]
fn the_gateway_publishes_at_qos_0_1_and_2() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::connected(gw, "sub", 60);
    // SUBSCRIBE "sn/b" at QoS 2: SUBACK grants QoS 2 and carries the registered id 1.
    c.send(&hex!("09 12 40 00 01 73 6e 2f 62"));
    c.expect(&hex!("08 13 40 00 01 00 01 00"));
    let mut publisher = broker.connected_v311("publisher");

    publisher.send(&harness::publish("sn/b", b"m0", 0, 0, false, None));
    c.expect(&hex!("09 0c 00 00 01 00 00 6d 30"));

    publisher.send(&harness::publish("sn/b", b"m1", 1, 7, false, None));
    publisher.expect(&puback(7));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, 1, &b"m1"[..])
    );
    assert_ne!(p.msg_id, 0);
    c.send(&id_ack(0x0d, 1, p.msg_id, 0));

    publisher.send(&harness::publish("sn/b", b"m2", 2, 8, false, None));
    publisher.expect(&pubrec(8));
    publisher.send(&pubrel(8));
    publisher.expect(&harness::pubcomp(8));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x40, 1, &b"m2"[..])
    );
    assert_ne!(p.msg_id, 0);
    c.send(&msg_id_only(0x0f, p.msg_id));
    c.expect(&msg_id_only(0x10, p.msg_id));
    c.send(&msg_id_only(0x0e, p.msg_id));
    c.expect_silence(QUIET);

    // The exchange is over: the next message is sent at once.
    publisher.send(&harness::publish("sn/b", b"m3", 1, 9, false, None));
    publisher.expect(&puback(9));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, 1, &b"m3"[..])
    );
    c.send(&id_ack(0x0d, 1, p.msg_id, 0));
    c.expect_silence(QUIET);
}

#[test]
fn a_wildcard_subscription_makes_the_gateway_register_topics() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::connected(gw, "wild", 60);
    // SUBSCRIBE "wc/+" at QoS 1: a filter has no topic id, so SUBACK carries 0.
    c.send(&hex!("09 12 20 00 03 77 63 2f 2b"));
    c.expect(&hex!("08 13 20 00 00 00 03 00"));
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("wc/x", b"one", 0, 0, false, None));
    // REGISTER "wc/x" with topic id 1 and the gateway's first message id; the PUBLISH
    // waits for the REGACK.
    c.expect(&hex!("0a 0a 00 01 00 01 77 63 2f 78"));
    c.expect_silence(QUIET);
    c.send(&hex!("07 0b 00 01 00 01 00"));
    c.expect(&hex!("0a 0c 00 00 01 00 00 6f 6e 65"));
    // Known now: no second REGISTER.
    publisher.send(&harness::publish("wc/x", b"two", 0, 0, false, None));
    c.expect(&hex!("0a 0c 00 00 01 00 00 74 77 6f"));
    // Another topic gets the next id.
    publisher.send(&harness::publish("wc/y", b"3", 0, 0, false, None));
    let (topic_id, _) = c.accept_register("wc/y");
    assert_eq!(topic_id, 2);
    c.expect(&hex!("08 0c 00 00 02 00 00 33"));
    c.expect_silence(QUIET);
}

#[test]
fn subscribe_by_predefined_id_and_short_name() {
    let topics = TopicsFile::new(&[(7, "pre/temp"), (300, "pre/hum")]);
    let Some((broker, gw)) = start(&topics.option()) else {
        return;
    };
    let c = SnClient::connected(gw, "ids", 60);
    // Predefined id 7 at QoS 1 (flags 0x21): SUBACK echoes the id.
    c.send(&hex!("07 12 21 00 01 00 07"));
    c.expect(&hex!("08 13 20 00 07 00 01 00"));
    // Short name "ab" at QoS 0 (flags 0x02): SUBACK topic id 0.
    c.send(&hex!("07 12 02 00 02 61 62"));
    c.expect(&hex!("08 13 00 00 00 00 02 00"));
    // An unknown predefined id is refused: invalid topic id.
    c.send(&hex!("07 12 01 00 03 00 08"));
    c.expect(&hex!("08 13 00 00 00 00 03 02"));

    let mut publisher = broker.connected_v311("publisher");
    // No REGISTER for either: the predefined id and the short name are used as they are.
    publisher.send(&harness::publish("pre/temp", b"21", 0, 0, false, None));
    c.expect(&hex!("09 0c 01 00 07 00 00 32 31"));
    publisher.send(&harness::publish("ab", b"x", 0, 0, false, None));
    c.expect(&hex!("08 0c 02 61 62 00 00 78"));
    c.expect_silence(QUIET);

    // And the other way: PUBLISH with predefined id 300 and with short name "cd".
    let mut sub = tcp_subscriber(&broker, "sub", "#", 0);
    c.send(&hex!("09 0c 21 01 2c 00 09 34 30"));
    c.expect(&hex!("07 0d 01 2c 00 09 00"));
    sub.expect(&hex!("30 0b 00 07 70 72 65 2f 68 75 6d 34 30"));
    c.send(&hex!("08 0c 02 63 64 00 00 79"));
    sub.expect(&hex!("30 05 00 02 63 64 79"));
    c.expect_silence(QUIET);
}

#[test]
fn unsubscribe_by_name_predefined_id_and_short_name() {
    let topics = TopicsFile::new(&[(7, "pre/temp")]);
    let Some((broker, gw)) = start(&topics.option()) else {
        return;
    };
    let c = SnClient::connected(gw, "unsub", 60);
    let named = c.subscribe(1, "u/a", 0);
    assert_eq!(named, 1);
    c.send(&hex!("07 12 01 00 02 00 07"));
    c.expect(&hex!("08 13 00 00 07 00 02 00"));
    c.send(&hex!("07 12 02 00 03 75 62"));
    c.expect(&hex!("08 13 00 00 00 00 03 00"));

    // UNSUBSCRIBE "u/a" by name, id 7 (predefined) and "ub" (short): UNSUBACK each.
    c.send(&hex!("08 14 00 00 04 75 2f 61"));
    c.expect(&hex!("04 15 00 04"));
    c.send(&hex!("07 14 01 00 05 00 07"));
    c.expect(&hex!("04 15 00 05"));
    c.send(&hex!("07 14 02 00 06 75 62"));
    c.expect(&hex!("04 15 00 06"));

    let mut publisher = broker.connected_v311("publisher");
    for topic in ["u/a", "pre/temp", "ub"] {
        publisher.send(&harness::publish(topic, b"x", 0, 0, false, None));
    }
    publisher.ping();
    c.expect_silence(QUIET);
    c.ping();
}

#[test]
fn a_repeated_qos_2_publish_is_delivered_once() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let mut sub = tcp_subscriber(&broker, "sub", "dq/t", 0);
    let c = SnClient::connected(gw, "twice", 60);
    assert_eq!(c.register(1, "dq/t"), 1);
    c.send(&hex!("0b 0c 40 00 01 00 06 6f 6e 63 65"));
    c.expect(&hex!("04 0f 00 06"));
    // The PUBREC was lost, say: the client sends the PUBLISH again with DUP (0x80) set.
    c.send(&hex!("0b 0c c0 00 01 00 06 6f 6e 63 65"));
    c.expect(&hex!("04 0f 00 06"));
    c.send(&hex!("04 10 00 06"));
    c.expect(&hex!("04 0e 00 06"));
    sub.expect(&hex!("30 0a 00 04 64 71 2f 74 6f 6e 63 65"));
    sub.expect_silence(QUIET);
}

#[test]
fn a_client_that_answers_invalid_topic_id_gets_the_topic_registered_again() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::connected(gw, "forgetful", 60);
    assert_eq!(c.subscribe(1, "ri/t", 1), 1);
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("ri/t", b"1", 1, 1, false, None));
    publisher.expect(&puback(1));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, 1, &b"1"[..])
    );
    // The client lost its topic table: PUBACK "rejected: invalid topic id".
    c.send(&id_ack(0x0d, 1, p.msg_id, 2));
    c.expect_silence(QUIET);
    // The gateway registers the topic again before the next PUBLISH on it.
    publisher.send(&harness::publish("ri/t", b"2", 1, 2, false, None));
    publisher.expect(&puback(2));
    let (topic_id, _) = c.accept_register("ri/t");
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, topic_id, &b"2"[..])
    );
    c.send(&id_ack(0x0d, topic_id, p.msg_id, 0));
    c.expect_silence(QUIET);
}

#[test]
fn a_registration_the_client_refuses_drops_the_message_waiting_for_it() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::connected(gw, "picky", 60);
    c.send(&hex!("09 12 20 00 01 72 66 2f 23"));
    c.expect(&hex!("08 13 20 00 00 00 01 00"));
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("rf/no", b"n", 1, 1, false, None));
    publisher.expect(&puback(1));
    // REGISTER "rf/no"; the client answers "rejected: not supported" (0x03).
    c.expect(&hex!("0b 0a 00 01 00 01 72 66 2f 6e 6f"));
    c.send(&hex!("07 0b 00 01 00 01 03"));
    c.expect_silence(QUIET);
    // What comes next on another topic is not held up.
    publisher.send(&harness::publish("rf/ok", b"y", 0, 0, false, None));
    let (topic_id, msg_id) = c.accept_register("rf/ok");
    assert_eq!(msg_id, 2);
    c.expect(&publish_msg(0, topic_id, 0, b"y"));
    c.expect_silence(QUIET);
}
