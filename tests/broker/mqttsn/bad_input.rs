//! Bad input: datagrams that are not MQTT-SN, messages a client may not send, and floods.
//! None may stop the gateway or disturb another client, which is checked each time with a
//! PINGREQ from a client that stayed connected throughout; where the gateway logs the bad
//! input, the log line names the peer.

use super::*;
use crate::harness;
use crate::hex;

/// A gateway with one connected client that must not notice anything.
fn with_bystander(options: &str) -> Option<(Broker, SocketAddr, SnClient)> {
    let (broker, gw) = start(options)?;
    let bystander = SnClient::connected(gw, "bystander", 60);
    Some((broker, gw, bystander))
}

/// Sends each datagram from a fresh socket, expects no answer, and checks the log line
/// `udp PEER: MQTT-SN datagram dropped: WHY` for each.
fn dropped_silently(broker: &Broker, gw: SocketAddr, cases: &[(&str, &[u8])]) {
    let mut senders = Vec::new();
    for (why, bytes) in cases {
        let s = SnClient::new(gw);
        s.send(bytes);
        senders.push((s, *why, to_hex(bytes)));
    }
    for (s, why, bytes) in &senders {
        broker.assert_log_contains(&format!(
            "udp {}: MQTT-SN datagram dropped: {why}",
            s.addr()
        ));
        if let Some(got) = s.recv_within(Duration::from_millis(50)) {
            panic!("answer {} to the bad datagram {bytes}", to_hex(&got));
        }
    }
}

#[test]
fn datagrams_shorter_or_longer_than_their_length_field() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    dropped_silently(
        &broker,
        gw,
        &[
            // PINGREQ claiming 5 bytes in 3; CONNECT claiming 12 in 9.
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("05 16 00")),
            (
                "LengthMismatch [MQTT-SN 5.2.1]",
                &hex!("0c 04 04 01 00 3c 73 6e 31"),
            ),
            // PINGRESP and CONNECT with bytes after the stated length.
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("02 16 00 00")),
            (
                "LengthMismatch [MQTT-SN 5.2.1]",
                &hex!("09 04 04 01 00 3c 73 6e 31 32"),
            ),
            // The 3-octet form, also wrong both ways.
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("01 00 09 16")),
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("01 00 04 16 00")),
        ],
    );
    // The same from the connected client itself changes nothing for it.
    bystander.send(&hex!("05 16 00"));
    bystander.send(&hex!("02 16 00 00"));
    bystander.expect_silence(QUIET);
    bystander.ping();
    // The 3-octet length form is valid for a short message too (spec 5.2.1).
    bystander.send(&hex!("01 00 04 16"));
    bystander.expect(&hex!("02 17"));
}

#[test]
fn empty_datagrams_and_length_bytes_0_and_1() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    dropped_silently(
        &broker,
        gw,
        &[
            ("Truncated [MQTT-SN 5.2.1]", &[]),
            // Length 0 cannot be: the field counts itself.
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("00")),
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("00 16")),
            // 0x01 announces the 3-octet form, which is missing or cut short here.
            ("Truncated [MQTT-SN 5.2.1]", &hex!("01")),
            ("Truncated [MQTT-SN 5.2.1]", &hex!("01 16")),
            // A length of 1 or 2 leaves no room for the message type.
            ("Truncated [MQTT-SN 5.2.2]", &hex!("01 00 03")),
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("01 00 01")),
        ],
    );
    bystander.ping();
}

#[test]
fn unknown_message_types_and_wrong_sizes() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    dropped_silently(
        &broker,
        gw,
        &[
            // Reserved message types (spec 5.2.2).
            ("UnknownType(3)", &hex!("02 03")),
            ("UnknownType(17)", &hex!("03 11 00")),
            ("UnknownType(25)", &hex!("02 19")),
            ("UnknownType(30)", &hex!("04 1e 00 00")),
            ("UnknownType(255)", &hex!("02 ff")),
            // PINGRESP with a body; REGACK two bytes short.
            ("WrongSize(23)", &hex!("03 17 00")),
            ("WrongSize(11)", &hex!("05 0b 00 01 00")),
            // PUBLISH with the reserved topic id type 0b11.
            (
                "ReservedTopicIdType [MQTT-SN 5.3.4]",
                &hex!("08 0c 03 00 01 00 00 41"),
            ),
        ],
    );
    bystander.send(&hex!("02 19"));
    bystander.expect_silence(QUIET);
    bystander.ping();
}

#[test]
fn bad_encapsulations() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    dropped_silently(
        &broker,
        gw,
        &[
            // A forwarder header with no message after it.
            ("Truncated [MQTT-SN 5.5]", &hex!("04 fe 01 0c")),
            // An Encapsulated message inside another.
            (
                "NestedEncapsulation [MQTT-SN 5.5]",
                &hex!("04 fe 01 0c 04 fe 01 0d 02 16"),
            ),
            // The header's length runs past the datagram.
            ("LengthMismatch [MQTT-SN 5.5]", &hex!("09 fe 01 0c 02 16")),
            // A bad message inside a good header.
            ("LengthMismatch [MQTT-SN 5.2.1]", &hex!("04 fe 01 0c 05 16")),
        ],
    );
    bystander.ping();
}

#[test]
fn publish_to_an_unregistered_topic_id_is_refused_with_invalid_topic_id() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    let mut sub = tcp_subscriber(&broker, "sub", "#", 0);
    let c = SnClient::connected(gw, "careless", 60);
    // QoS 1 on topic id 0x0099, never registered: PUBACK with return code 0x02.
    c.send(&hex!("08 0c 20 00 99 00 01 78"));
    c.expect(&hex!("07 0d 00 99 00 01 02"));
    broker.assert_log_contains(&format!(
        "udp {}: PUBLISH to unknown topic id 153",
        c.addr()
    ));
    // QoS 0 and QoS 2 likewise.
    c.send(&hex!("08 0c 00 00 98 00 00 78"));
    c.expect(&hex!("07 0d 00 98 00 00 02"));
    c.send(&hex!("08 0c 40 00 97 00 02 78"));
    c.expect(&hex!("07 0d 00 97 00 02 02"));
    // A predefined id that is not defined.
    c.send(&hex!("08 0c 21 00 05 00 03 78"));
    c.expect(&hex!("07 0d 00 05 00 03 02"));
    // Another client's topic id means nothing for this one.
    let id = bystander.register(1, "mine");
    c.send(&publish_msg(0x20, id, 4, b"x"));
    c.expect(&id_ack(0x0d, id, 4, 2));
    // From an address with no client at all.
    let stranger = SnClient::new(gw);
    stranger.send(&publish_msg(0x20, id, 5, b"x"));
    stranger.expect(&id_ack(0x0d, id, 5, 2));
    sub.expect_silence(QUIET);
    // The client is still connected, and so is the bystander.
    c.ping();
    bystander.ping();
}

#[test]
fn register_flood_ends_in_congestion() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    let c = SnClient::connected(gw, "hoarder", 60);
    for n in 1..=1024u16 {
        c.send(&register_msg(n, &format!("flood/{n}")));
        c.expect(&id_ack(0x0b, n, n, 0));
    }
    // One more name: REGACK with topic id 0 and return code 0x01 (congestion).
    c.send(&hex!("0d 0a 00 00 04 01 66 6c 6f 6f 64 2f 78"));
    c.expect(&hex!("07 0b 00 00 04 01 01"));
    // A name already registered still has its id.
    c.send(&register_msg(1026, "flood/7"));
    c.expect(&id_ack(0x0b, 7, 1026, 0));
    // SUBSCRIBE by a new name needs an id too: congestion.
    c.send(&subscribe_name(1027, "flood/y", 0));
    c.expect(&suback(0, 0, 1027, 1));
    // A wildcard needs none, but what it brings on a new topic cannot be named: it is
    // dropped, and logged.
    c.send(&subscribe_name(1028, "more/+", 0));
    c.expect(&suback(0, 0, 1028, 0));
    let mut publisher = broker.connected_v311("publisher");
    publisher.send(&harness::publish("more/z", b"z", 0, 0, false, None));
    broker.assert_log_contains(&format!(
        "udp {}: too many topics, more/z dropped",
        c.addr()
    ));
    c.expect_silence(QUIET);
    // The flood cost the bystander nothing: it still registers and pings.
    assert_eq!(bystander.register(1, "flood/1"), 1);
    bystander.ping();
    c.ping();
}

#[test]
fn connect_flood_from_many_sockets_ends_in_congestion() {
    let Some((broker, gw, bystander)) = with_bystander("max_clients 20") else {
        return;
    };
    // 40 sockets send CONNECT at once; the bystander already holds one of the 20 places.
    let sockets: Vec<SnClient> = (0..40).map(|_| SnClient::new(gw)).collect();
    for (n, s) in sockets.iter().enumerate() {
        s.send(&connect_msg(&format!("flood{n}"), false, true, 60));
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for s in &sockets {
        let got = s.recv();
        match got.as_slice() {
            [0x03, 0x05, 0x00] => accepted.push(s),
            [0x03, 0x05, 0x01] => refused.push(s),
            _ => panic!("expected CONNACK, got {}", to_hex(&got)),
        }
    }
    assert_eq!((accepted.len(), refused.len()), (19, 21));
    for s in &refused {
        broker.assert_log_contains(&format!(
            "udp {}: MQTT-SN CONNECT refused: too many clients",
            s.addr()
        ));
        // A refused socket is no client.
        s.send(&hex!("02 16"));
        s.expect(&hex!("02 18"));
    }
    bystander.ping();
    for s in &accepted {
        s.ping();
    }
    // A place that frees up can be taken again.
    accepted[0].disconnect();
    let late = SnClient::new(gw);
    let mut tries = 0;
    loop {
        late.send(&connect_msg("late", false, true, 60));
        match late.recv().as_slice() {
            [0x03, 0x05, 0x00] => break,
            [0x03, 0x05, 0x01] if tries < 20 => {
                // The engine may still be closing the connection that left.
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("unexpected answer {}", to_hex(other)),
        }
    }
    late.ping();
    // And the broker still takes MQTT clients.
    broker.connected_v311("tcp").ping();
}

/// A small deterministic generator, so a failing case can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u8
    }
}

#[test]
fn garbage_bytes() {
    let Some((broker, gw, bystander)) = with_bystander("") else {
        return;
    };
    let mut rng = Lcg(0x5eed);
    let junk = SnClient::new(gw);
    let mut sizes = vec![1usize, 2, 3, 7, 64, 255, 256, 1500, 9000];
    sizes.extend((0..200).map(|_| usize::from(rng.next() % 40)));
    for size in sizes {
        let bytes: Vec<u8> = (0..size).map(|_| rng.next()).collect();
        junk.send(&bytes);
    }
    // Any answer (a DISCONNECT to a message from no client, say) must be valid MQTT-SN,
    // which receiving checks.
    while junk.recv_within(Duration::from_millis(QUIET)).is_some() {}
    broker.assert_log_contains(&format!("udp {}: MQTT-SN datagram dropped:", junk.addr()));
    // Garbage from the connected client's own address leaves it connected.
    for size in [1usize, 5, 17, 300] {
        let mut bytes: Vec<u8> = (0..size).map(|_| rng.next()).collect();
        // A first byte that cannot match the size: these are surely dropped.
        bytes[0] = 0;
        bystander.send(&bytes);
    }
    bystander.expect_silence(QUIET);
    bystander.ping();
    SnClient::connected(gw, "newcomer", 60).ping();
    broker.connected_v311("tcp").ping();
}

#[test]
fn publish_at_qos_1_or_2_without_a_message_id_is_refused() {
    let Some((broker, _, bystander)) = with_bystander("") else {
        return;
    };
    let mut sub = tcp_subscriber(&broker, "sub", "#", 0);
    let id = bystander.register(1, "nid");
    // Message id 0 is for QoS 0 and -1 only: "rejected: not supported" (0x03).
    bystander.send(&publish_msg(0x20, id, 0, b"x"));
    bystander.expect(&id_ack(0x0d, id, 0, 3));
    bystander.send(&publish_msg(0x40, id, 0, b"x"));
    bystander.expect(&id_ack(0x0d, id, 0, 3));
    sub.expect_silence(QUIET);
    bystander.ping();
}
