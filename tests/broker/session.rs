//! Persistent sessions: subscriptions and QoS 1 messages survive a reconnect,
//! and a clean session discards them.

use crate::harness::*;
use crate::hex;

#[test]
fn persistent_session_queues_qos1_until_reconnect() {
    let broker = Broker::start("");
    let id = uniq("sess");
    let topic = format!("{id}/q");
    let mut c = broker.client();
    c.send(&connect_v311(&id, false, 60));
    c.expect(&hex!("20 02 00 00"));
    c.send(&subscribe(1, &topic, 1, false));
    c.expect(&hex!("90 03 00 01 01"));
    c.send(&disconnect());
    c.expect_bare_close();

    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"queued", 1, 2, false, None));
    p.expect(&hex!("40 02 00 02"));

    let mut c = broker.client();
    c.send(&connect_v311(&id, false, 60));
    c.expect(&hex!("20 02 01 00"));
    let got = c.recv_packet();
    let pid = parse_publish(&got, false).pid;
    assert_eq!(
        got,
        publish(&topic, b"queued", 1, pid, false, None),
        "{}",
        to_hex(&got)
    );
    c.send(&puback(pid));
    c.expect_silence(SILENCE_MS);
    c.send(&disconnect());

    // A clean session discards the stored session [MQTT-3.1.2-6].
    let mut c = broker.client();
    c.send(&connect_v311(&id, true, 60));
    c.expect(&hex!("20 02 00 00"));
    p.send(&publish(&topic, b"dropped", 1, 3, false, None));
    p.expect(&hex!("40 02 00 03"));
    c.expect_silence(SILENCE_MS);
}

#[test]
fn v5_session_expiry_keeps_session_across_reconnect() {
    let broker = Broker::start("");
    let id = uniq("sess5");
    let topic = format!("{id}/q");
    let expiry = hex!("11 00 00 00 3c");
    let mut c = broker.client();
    c.send(&connect_v5(&id, true, 60, &expiry));
    let ack = parse_connack(&c.recv_packet(), true);
    assert_eq!((ack.session_present, ack.reason), (false, 0));
    c.send(&subscribe(1, &topic, 1, true));
    assert_eq!(parse_suback(&c.recv_packet(), 0x90, true), (1, vec![1]));
    c.drop_connection();

    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"kept", 1, 2, false, None));
    p.expect(&hex!("40 02 00 02"));

    let mut c = broker.client();
    c.send(&connect_v5(&id, false, 60, &expiry));
    let ack = parse_connack(&c.recv_packet(), true);
    assert_eq!((ack.session_present, ack.reason), (true, 0));
    let got = expect_publish(&mut c, &topic, b"kept", 1, true);
    c.send(&puback(got.pid));
    // End the session so nothing is left behind on a shared broker.
    c.send(&hex!("e0 07 00 05 11 00 00 00 00"));
    c.expect_closed();
}
