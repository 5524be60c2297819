//! PUBLISH flows at QoS 0, 1 and 2, delivery with QoS downgrade, exactly-once
//! delivery for QoS 2, and PINGREQ.

use crate::harness::*;
use crate::hex;

/// A connected 3.1.1 subscriber on `topic` at `qos` (SUBACK checked).
fn subscriber(broker: &Broker, topic: &str, qos: u8) -> RawClient {
    let mut s = broker.connected_v311(&uniq("sub"));
    s.send(&subscribe(1, topic, qos, false));
    s.expect(&[0x90, 0x03, 0x00, 0x01, qos]);
    s
}

#[test]
fn pingreq_gets_pingresp() {
    let broker = Broker::start("");
    let mut c = broker.connected_v311(&uniq("ping"));
    c.send(&hex!("c0 00"));
    c.expect(&hex!("d0 00"));
    c.send(&hex!("c0 00 c0 00"));
    c.expect(&hex!("d0 00"));
    c.expect(&hex!("d0 00"));
}

#[test]
fn qos0_publish_is_delivered_byte_exact() {
    let broker = Broker::start("");
    let topic = format!("q0/{}", uniq("t"));
    let mut s = subscriber(&broker, &topic, 0);
    let mut p = broker.connected_v311(&uniq("pub"));
    let msg = publish(&topic, b"hello", 0, 0, false, None);
    p.send(&msg);
    s.expect(&msg);
    p.expect_silence(SILENCE_MS);
}

#[test]
fn qos1_publish_gets_puback_and_is_delivered_at_qos1() {
    let broker = Broker::start("");
    let topic = format!("q1/{}", uniq("t"));
    let mut s = subscriber(&broker, &topic, 1);
    let mut p = broker.connected_v311(&uniq("pub"));
    p.send(&publish(&topic, b"one", 1, 7, false, None));
    p.expect(&hex!("40 02 00 07"));
    let got = s.recv_packet();
    let pid = parse_publish(&got, false).pid;
    assert_ne!(pid, 0, "QoS 1 delivery without packet id");
    assert_eq!(
        got,
        publish(&topic, b"one", 1, pid, false, None),
        "{}",
        to_hex(&got)
    );
    s.send(&puback(pid));
    s.expect_silence(SILENCE_MS);
}

#[test]
fn qos2_flow_is_byte_exact_on_both_sides() {
    let broker = Broker::start("");
    let topic = format!("q2/{}", uniq("t"));
    let mut s = subscriber(&broker, &topic, 2);
    let mut p = broker.connected_v311(&uniq("pub"));
    p.send(&publish(&topic, b"two", 2, 9, false, None));
    p.expect(&hex!("50 02 00 09"));
    p.send(&hex!("62 02 00 09"));
    p.expect(&hex!("70 02 00 09"));

    let got = s.recv_packet();
    let pid = parse_publish(&got, false).pid;
    assert_ne!(pid, 0);
    assert_eq!(
        got,
        publish(&topic, b"two", 2, pid, false, None),
        "{}",
        to_hex(&got)
    );
    s.send(&pubrec(pid));
    s.expect(&pubrel(pid));
    s.send(&pubcomp(pid));
    s.expect_silence(SILENCE_MS);
}

#[test]
fn delivery_qos_is_downgraded_to_subscription_qos() {
    let broker = Broker::start("");
    let topic = format!("dg/{}", uniq("t"));
    let mut s0 = subscriber(&broker, &topic, 0);
    let mut s1 = subscriber(&broker, &topic, 1);
    let mut p = broker.connected_v311(&uniq("pub"));
    p.send(&publish(&topic, b"x", 2, 3, false, None));
    p.expect(&hex!("50 02 00 03"));
    p.send(&pubrel(3));
    p.expect(&hex!("70 02 00 03"));

    s0.expect(&publish(&topic, b"x", 0, 0, false, None));
    let got = s1.recv_packet();
    let pid = parse_publish(&got, false).pid;
    assert_eq!(
        got,
        publish(&topic, b"x", 1, pid, false, None),
        "{}",
        to_hex(&got)
    );
    s1.send(&puback(pid));
}

#[test]
fn qos2_duplicate_before_pubrel_is_delivered_once() {
    // [MQTT-4.3.3]: a retransmitted PUBLISH (DUP set) with the same packet id
    // before PUBREL must not cause a second delivery.
    let broker = Broker::start("");
    let topic = format!("eo/{}", uniq("t"));
    let mut s = subscriber(&broker, &topic, 0);
    let mut p = broker.connected_v311(&uniq("pub"));
    p.send(&publish(&topic, b"once", 2, 5, false, None));
    p.expect(&hex!("50 02 00 05"));
    p.send(&publish_raw(
        topic.as_bytes(),
        b"once",
        2,
        5,
        false,
        true,
        None,
    ));
    p.expect(&hex!("50 02 00 05"));
    p.send(&pubrel(5));
    p.expect(&hex!("70 02 00 05"));
    s.expect(&publish(&topic, b"once", 0, 0, false, None));
    s.expect_silence(SILENCE_MS);
}

#[test]
fn v5_qos1_and_qos2_acks_carry_success() {
    let broker = Broker::start("");
    let topic = format!("v5/{}", uniq("t"));
    let (mut s, _) = broker.connected_v5(&uniq("sub5"));
    s.send(&subscribe(1, &topic, 2, true));
    let (pid, codes) = parse_suback(&s.recv_packet(), 0x90, true);
    assert_eq!((pid, codes), (1, vec![2]));

    let (mut p, _) = broker.connected_v5(&uniq("pub5"));
    p.send(&publish(&topic, b"a", 1, 11, false, Some(&[])));
    assert_eq!(parse_ack(&p.recv_packet(), 0x40), (11, 0));
    let got = expect_publish(&mut s, &topic, b"a", 1, true);
    s.send(&puback(got.pid));

    p.send(&publish(&topic, b"b", 2, 12, false, Some(&[])));
    assert_eq!(parse_ack(&p.recv_packet(), 0x50), (12, 0));
    p.send(&pubrel(12));
    assert_eq!(parse_ack(&p.recv_packet(), 0x70), (12, 0));
    let got = expect_publish(&mut s, &topic, b"b", 2, true);
    s.send(&pubrec(got.pid));
    assert_eq!(parse_ack(&s.recv_packet(), 0x62), (got.pid, 0));
    s.send(&pubcomp(got.pid));
    s.expect_silence(SILENCE_MS);
}

#[test]
fn v5_payload_format_indicator_is_forwarded_unaltered() {
    // [MQTT-3.3.2-4]
    let broker = Broker::start("");
    let topic = format!("pf/{}", uniq("t"));
    let (mut s, _) = broker.connected_v5(&uniq("sub5"));
    s.send(&subscribe(1, &topic, 0, true));
    parse_suback(&s.recv_packet(), 0x90, true);
    let (mut p, _) = broker.connected_v5(&uniq("pub5"));
    p.send(&publish(
        &topic,
        "héllo".as_bytes(),
        0,
        0,
        false,
        Some(&hex!("01 01")),
    ));
    let got = expect_publish(&mut s, &topic, "héllo".as_bytes(), 0, true);
    assert_eq!(prop(&got.properties, 0x01), Some(&Value::Int(1)), "{got:?}");
}
