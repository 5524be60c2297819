//! Flow control and outbound features at the byte level: the client's Receive Maximum,
//! `max_inflight_messages`, the offline queue bound, topic aliases from the broker, AUTH
//! after CONNACK, Server Keep Alive and `$SYS`.

use crate::harness::*;

/// A v5 subscriber with the given CONNECT properties, subscribed to `filter` at `qos`.
fn v5_subscriber(broker: &Broker, props: &[u8], filter: &str, qos: u8) -> RawClient {
    let mut c = broker.client();
    c.send(&connect_v5(&uniq("sub"), true, 60, props));
    assert_eq!(parse_connack(&c.recv_packet(), true).reason, 0);
    c.send(&subscribe(1, filter, qos, true));
    parse_suback(&c.recv_packet(), 0x90, true);
    c
}

fn publish_qos1(broker: &Broker, topic: &str, payloads: &[&[u8]]) {
    let mut p = broker.connected_v311(&uniq("pub"));
    for (i, payload) in payloads.iter().enumerate() {
        let pid = u16::try_from(i + 1).expect("small count");
        p.send(&publish(topic, payload, 1, pid, false, None));
        assert_eq!(parse_ack(&p.recv_packet(), 0x40).0, pid);
    }
}

#[test]
fn client_receive_maximum_bounds_unacknowledged_deliveries() {
    let broker = Broker::start("");
    let topic = uniq("flow/rm");
    // Receive Maximum (0x21) = 2.
    let mut sub = v5_subscriber(&broker, &[0x21, 0x00, 0x02], &topic, 1);
    let payloads: [&[u8]; 5] = [b"m1", b"m2", b"m3", b"m4", b"m5"];
    publish_qos1(&broker, &topic, &payloads);
    let first = expect_publish(&mut sub, &topic, b"m1", 1, true);
    let second = expect_publish(&mut sub, &topic, b"m2", 1, true);
    // [MQTT-3.3.4-7] no more than Receive Maximum unacknowledged QoS 1 PUBLISH packets.
    sub.expect_silence(SILENCE_MS);
    sub.send(&puback(first.pid));
    let third = expect_publish(&mut sub, &topic, b"m3", 1, true);
    sub.expect_silence(SILENCE_MS);
    sub.send(&puback(second.pid));
    sub.send(&puback(third.pid));
    let fourth = expect_publish(&mut sub, &topic, b"m4", 1, true);
    let fifth = expect_publish(&mut sub, &topic, b"m5", 1, true);
    sub.send(&puback(fourth.pid));
    sub.send(&puback(fifth.pid));
    sub.expect_silence(SILENCE_MS);
}

#[test]
fn max_inflight_messages_sends_one_at_a_time() {
    let Some(broker) = Broker::start_configured("max_inflight_messages 1") else {
        return;
    };
    let topic = uniq("flow/inflight");
    let mut sub = broker.connected_v311(&uniq("sub"));
    sub.send(&subscribe(1, &topic, 1, false));
    sub.recv_packet();
    publish_qos1(&broker, &topic, &[b"a", b"b"]);
    let a = expect_publish(&mut sub, &topic, b"a", 1, false);
    sub.expect_silence(SILENCE_MS);
    sub.send(&puback(a.pid));
    expect_publish(&mut sub, &topic, b"b", 1, false);
}

#[test]
fn offline_queue_keeps_at_most_max_queued_messages() {
    let Some(broker) = Broker::start_configured("max_queued_messages 3") else {
        return;
    };
    let topic = uniq("flow/queue");
    let id = uniq("persist");
    let mut sub = broker.client();
    sub.send(&connect_v311(&id, false, 60));
    sub.expect(&hex("20 02 00 00"));
    sub.send(&subscribe(1, &topic, 1, false));
    sub.recv_packet();
    sub.drop_connection();
    let payloads: Vec<Vec<u8>> = (0..10).map(|i| format!("q{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    publish_qos1(&broker, &topic, &refs);
    let mut again = broker.client();
    again.send(&connect_v311(&id, false, 60));
    again.expect(&hex("20 02 01 00"));
    for expected in [b"q0", b"q1", b"q2"] {
        let p = expect_publish(&mut again, &topic, expected, 1, false);
        again.send(&puback(p.pid));
    }
    again.expect_silence(SILENCE_MS);
}

#[test]
fn broker_uses_topic_aliases_when_the_client_allows_them() {
    let Some(broker) = Broker::start_configured("") else {
        return;
    };
    let topic = uniq("flow/alias");
    // Topic Alias Maximum (0x22) = 5.
    let mut sub = v5_subscriber(&broker, &[0x22, 0x00, 0x05], &topic, 0);
    let mut p = broker.connected_v311(&uniq("pub"));
    p.send(&publish(&topic, b"one", 0, 0, false, None));
    p.send(&publish(&topic, b"two", 0, 0, false, None));
    let first = parse_publish(&sub.recv_packet(), true);
    assert_eq!(first.topic, topic.as_bytes());
    let Some(Value::Int(alias)) = prop(&first.properties, 0x23).cloned() else {
        panic!("first PUBLISH carries a Topic Alias: {first:?}");
    };
    assert!((1..=5).contains(&alias));
    let second = parse_publish(&sub.recv_packet(), true);
    assert!(
        second.topic.is_empty(),
        "second PUBLISH uses the alias alone"
    );
    assert_eq!(prop(&second.properties, 0x23), Some(&Value::Int(alias)));
    assert_eq!(second.payload, b"two");
}

#[test]
fn auth_without_an_authentication_method_is_refused() {
    let Some(broker) = Broker::start_configured("") else {
        return;
    };
    let (mut c, _) = broker.connected_v5(&uniq("auth"));
    c.send(&hex("f0 00"));
    c.expect_disconnect(0x8c);
}

#[test]
fn server_keep_alive_caps_the_requested_keep_alive() {
    let Some(broker) = Broker::start_configured("max_keepalive 10") else {
        return;
    };
    let mut c = broker.client();
    c.send(&connect_v5(&uniq("ka"), true, 60, &[]));
    let ack = parse_connack(&c.recv_packet(), true);
    assert_eq!(ack.reason, 0);
    // [MQTT-3.2.2-21] the client must use the Server Keep Alive it is given.
    assert_eq!(prop(&ack.properties, 0x13), Some(&Value::Int(10)));
}

#[test]
fn sys_uptime_is_published_and_hidden_from_hash() {
    let Some(broker) = Broker::start_configured("sys_interval 1") else {
        return;
    };
    let mut c = broker.connected_v311(&uniq("sys"));
    c.send(&subscribe(1, "$SYS/broker/uptime", 0, false));
    c.recv_packet();
    let p = parse_publish(&c.recv_packet(), false);
    assert_eq!(p.topic, b"$SYS/broker/uptime");
    assert!(
        p.payload.ends_with(b" seconds"),
        "{:?}",
        String::from_utf8_lossy(&p.payload)
    );
    let mut all = broker.connected_v311(&uniq("all"));
    all.send(&subscribe(1, "#", 0, false));
    all.recv_packet();
    // [MQTT-4.7.2-1] `#` does not match topics beginning with `$`.
    all.expect_silence(1_200);
}
