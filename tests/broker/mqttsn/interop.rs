//! MQTT-SN clients among MQTT clients: messages both ways with 3.1.1 and 5.0 clients,
//! retained messages, QoS -1 from sockets that never connected, clients behind a forwarder,
//! and a client that comes back from another address.

use super::*;
use crate::harness::{self, parse_publish as parse_mqtt_publish, puback};
use crate::hex;

#[test]
fn messages_both_ways_with_v311_and_v5_clients() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let c = SnClient::connected(gw, "both", 60);
    assert_eq!(c.subscribe(1, "to/sn", 1), 1);
    assert_eq!(c.register(2, "from/sn"), 2);

    let mut v3 = tcp_subscriber(&broker, "v3", "from/sn", 1);
    let (mut v5, _) = broker.connected_v5("v5");
    v5.send(&harness::subscribe(1, "from/sn", 1, true));
    v5.expect(&hex!("90 04 00 01 00 01"));

    // MQTT-SN to both: QoS 1, answered by PUBACK with the topic id.
    c.send(&hex!("0c 0c 20 00 02 00 09 68 65 6c 6c 6f"));
    c.expect(&hex!("07 0d 00 02 00 09 00"));
    for (sub, is_v5) in [(&mut v3, false), (&mut v5, true)] {
        let p = sub.recv_packet();
        let got = parse_mqtt_publish(&p, is_v5);
        assert_eq!(
            (got.topic.as_slice(), got.payload.as_slice(), got.qos),
            (&b"from/sn"[..], &b"hello"[..], 1),
            "{}",
            to_hex(&p)
        );
        // Nothing MQTT-SN cannot carry is made up on the way.
        assert!(got.properties.is_empty(), "{}", to_hex(&p));
        sub.send(&puback(got.pid));
    }

    // 3.1.1 to MQTT-SN.
    v3.send(&harness::publish("to/sn", b"from v3", 1, 3, false, None));
    v3.expect(&puback(3));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, 1, &b"from v3"[..])
    );
    c.send(&id_ack(0x0d, 1, p.msg_id, 0));

    // 5.0 to MQTT-SN: the properties stay behind (content type "text/plain").
    let mut props = vec![0x03];
    props.extend(harness::lp(b"text/plain"));
    v5.send(&harness::publish(
        "to/sn",
        b"from v5",
        1,
        4,
        false,
        Some(&props),
    ));
    v5.expect(&puback(4));
    let p = c.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, 1, &b"from v5"[..])
    );
    c.send(&id_ack(0x0d, 1, p.msg_id, 0));

    // 5.0 at QoS 0: the MQTT-SN PUBLISH has message id 0.
    v5.send(&harness::publish("to/sn", b"q0", 0, 0, false, Some(&[])));
    c.expect(&hex!("09 0c 00 00 01 00 00 71 30"));
    c.expect_silence(QUIET);
    v3.expect_silence(QUIET);
    v5.expect_silence(QUIET);
}

#[test]
fn retained_messages_both_ways() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    // From MQTT-SN: PUBLISH with the retain flag (0x10), QoS 0.
    let a = SnClient::connected(gw, "a", 60);
    assert_eq!(a.register(1, "rt/sn"), 1);
    a.send(&hex!("0b 0c 10 00 01 00 00 6b 65 70 74"));
    // From MQTT: a retained QoS 1 PUBLISH.
    let mut tcp = broker.connected_v311("tcp");
    tcp.send(&harness::publish("rt/tcp", b"held", 1, 1, true, None));
    tcp.expect(&puback(1));
    a.ping();

    // A new MQTT subscriber gets the MQTT-SN client's retained message, retain set.
    let mut late = broker.connected_v311("late");
    late.send(&harness::subscribe(1, "rt/sn", 0, false));
    late.expect(&hex!("90 03 00 01 00"));
    late.expect(&hex!("31 0b 00 05 72 74 2f 73 6e 6b 65 70 74"));

    // A new MQTT-SN subscriber gets the MQTT client's: SUBACK first, then the PUBLISH with
    // the retain flag, on the id the SUBACK gave.
    let b = SnClient::connected(gw, "b", 60);
    b.send(&subscribe_name(1, "rt/tcp", 1));
    b.expect(&suback(1, 1, 1, 0));
    let p = b.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x30, 1, &b"held"[..])
    );
    b.send(&id_ack(0x0d, 1, p.msg_id, 0));
    // A live message on the same topic is not marked retained.
    tcp.send(&harness::publish("rt/tcp", b"live", 0, 0, true, None));
    b.expect(&hex!("0b 0c 00 00 01 00 00 6c 69 76 65"));

    // An empty retained PUBLISH from MQTT-SN clears the topic's retained message.
    a.send(&hex!("07 0c 10 00 01 00 00"));
    a.ping();
    let mut later = broker.connected_v311("later");
    later.send(&harness::subscribe(1, "rt/sn", 0, false));
    later.expect(&hex!("90 03 00 01 00"));
    later.expect_silence(QUIET);
    b.expect_silence(QUIET);
}

#[test]
fn qos_minus_one_from_a_socket_that_never_connected() {
    let topics = TopicsFile::new(&[(5, "m1/pre")]);
    let Some((broker, gw)) = start(&topics.option()) else {
        return;
    };
    let mut sub = tcp_subscriber(&broker, "sub", "#", 0);
    let s = SnClient::new(gw);
    // QoS -1 (0x60) with predefined id 5, message id 0.
    s.send(&hex!("08 0c 61 00 05 00 00 70"));
    sub.expect(&hex!("30 09 00 06 6d 31 2f 70 72 65 70"));
    // QoS -1 with the short name "sh".
    s.send(&hex!("08 0c 62 73 68 00 00 71"));
    sub.expect(&hex!("30 05 00 02 73 68 71"));
    // Retained, from another socket.
    let t = SnClient::new(gw);
    t.send(&hex!("08 0c 72 72 72 00 00 72"));
    sub.expect(&hex!("30 05 00 02 72 72 72"));
    // A normal topic id means nothing without a connection, nor does an unknown
    // predefined id: nothing is published.
    s.send(&hex!("08 0c 60 00 01 00 00 73"));
    s.send(&hex!("08 0c 61 00 06 00 00 74"));
    broker.assert_log_contains(&format!(
        "udp {}: QoS -1 PUBLISH to unknown topic id 6",
        s.addr()
    ));
    sub.expect_silence(QUIET);
    // QoS -1 gets no answer at all.
    s.expect_silence(QUIET);
    t.expect_silence(0);
    // And the sockets did not become clients.
    s.send(&hex!("02 16"));
    s.expect(&hex!("02 18"));
    let mut late = broker.connected_v311("late");
    late.send(&harness::subscribe(1, "rr", 0, false));
    late.expect(&hex!("90 03 00 01 00"));
    late.expect(&hex!("31 05 00 02 72 72 72"));
}

/// An Encapsulated frame (spec 5.5): Length of the header, 0xFE, Ctrl, node id, message.
fn encapsulated(ctrl: u8, node: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut out = vec![3 + node.len() as u8, 0xfe, ctrl];
    out.extend_from_slice(node);
    out.extend_from_slice(inner);
    out
}

#[test]
fn clients_behind_a_forwarder_are_answered_encapsulated() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let fwd = SnClient::new(gw);
    // Node 0a0b connects: "05 fe 01 0a 0b" then CONNECT "nodeA"; the CONNACK comes back
    // wrapped for the same node.
    fwd.send(&hex!("05 fe 01 0a 0b 0b 04 04 01 00 3c 6e 6f 64 65 41"));
    fwd.expect(&hex!("05 fe 00 0a 0b 03 05 00"));
    // Node 0c, through the same forwarder, is another client.
    fwd.send(&encapsulated(
        1,
        &[0x0c],
        &connect_msg("nodeB", false, true, 60),
    ));
    fwd.expect(&hex!("04 fe 00 0c 03 05 00"));

    // Node 0a0b subscribes to "fw/t".
    fwd.send(&encapsulated(
        1,
        &[0x0a, 0x0b],
        &subscribe_name(1, "fw/t", 0),
    ));
    fwd.expect(&encapsulated(0, &[0x0a, 0x0b], &suback(0, 1, 1, 0)));
    // Node 0c registers and publishes to it at QoS 1.
    fwd.send(&encapsulated(1, &[0x0c], &register_msg(1, "fw/t")));
    fwd.expect(&encapsulated(0, &[0x0c], &id_ack(0x0b, 1, 1, 0)));
    let mut tcp = tcp_subscriber(&broker, "tcp", "fw/#", 0);
    fwd.send(&encapsulated(1, &[0x0c], &publish_msg(0x20, 1, 2, b"hi")));
    // Two answers, in either order: the PUBACK to node 0c, the PUBLISH to node 0a0b.
    let mut got = vec![to_hex(&fwd.recv()), to_hex(&fwd.recv())];
    got.sort();
    let mut want = vec![
        to_hex(&encapsulated(0, &[0x0c], &id_ack(0x0d, 1, 2, 0))),
        to_hex(&encapsulated(
            0,
            &[0x0a, 0x0b],
            &publish_msg(0, 1, 0, b"hi"),
        )),
    ];
    want.sort();
    assert_eq!(got, want);
    tcp.expect(&hex!("30 08 00 04 66 77 2f 74 68 69"));

    // PINGREQ from node 0c; a plain PINGREQ from the forwarder's own address is from no
    // client.
    fwd.send(&hex!("04 fe 01 0c 02 16"));
    fwd.expect(&hex!("04 fe 00 0c 02 17"));
    fwd.send(&hex!("02 16"));
    fwd.expect(&hex!("02 18"));
    // Node 0a0b disconnects; node 0c stays.
    fwd.send(&hex!("05 fe 01 0a 0b 02 18"));
    fwd.expect(&hex!("05 fe 00 0a 0b 02 18"));
    fwd.send(&hex!("04 fe 01 0c 02 16"));
    fwd.expect(&hex!("04 fe 00 0c 02 17"));
    fwd.expect_silence(QUIET);
}

#[test]
fn a_client_back_from_a_new_address_keeps_its_subscription() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let old = SnClient::new(gw);
    // CONNECT without clean session (flags 0x00), client id "mover".
    old.send(&hex!("0b 04 00 01 00 3c 6d 6f 76 65 72"));
    old.expect(&hex!("03 05 00"));
    assert_eq!(old.subscribe(1, "mv/t", 1), 1);

    let new = SnClient::new(gw);
    new.send(&hex!("0b 04 00 01 00 3c 6d 6f 76 65 72"));
    new.expect(&hex!("03 05 00"));
    // The session moved: the old address is told it is disconnected.
    old.expect(&hex!("02 18"));

    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("mv/t", b"here", 1, 1, false, None));
    publisher.expect(&puback(1));
    // The new address has no topic ids yet: REGISTER first, then the PUBLISH.
    let (topic_id, _) = new.accept_register("mv/t");
    let p = new.recv_publish();
    assert_eq!(
        (p.flags, p.topic_id, p.data.as_slice()),
        (0x20, topic_id, &b"here"[..])
    );
    new.send(&id_ack(0x0d, topic_id, p.msg_id, 0));
    new.expect_silence(QUIET);
    old.expect_silence(0);
    // The old address is no client any more.
    old.send(&hex!("02 16"));
    old.expect(&hex!("02 18"));
    new.ping();
}

#[test]
fn a_sleeping_client_may_wake_up_at_a_new_address() {
    let Some((broker, gw)) = start("") else {
        return;
    };
    let old = SnClient::connected(gw, "roamer", 60);
    assert_eq!(old.subscribe(1, "ro/t", 0), 1);
    old.send(&hex!("04 18 00 05"));
    old.expect(&hex!("02 18"));
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("ro/t", b"w", 0, 0, false, None));
    publisher.ping();
    // PINGREQ "roamer" from another socket: the kept message, then PINGRESP, there.
    let new = SnClient::new(gw);
    new.send(&hex!("08 16 72 6f 61 6d 65 72"));
    new.expect(&hex!("08 0c 00 00 01 00 00 77"));
    new.expect(&hex!("02 17"));
    old.expect_silence(QUIET);
}
