//! Will messages: published when the connection ends without DISCONNECT, and
//! discarded after a normal DISCONNECT.

use crate::harness::*;
use crate::hex;

fn will_client(broker: &Broker, topic: &str, v5: bool) -> RawClient {
    let id = uniq("will");
    let mut connect = if v5 {
        Connect::v5(&id)
    } else {
        Connect::v311(&id)
    };
    connect.will = Some(Will {
        topic,
        payload: b"gone",
        qos: 0,
        retain: false,
        props: &[],
    });
    let mut c = broker.client();
    c.send(&connect.bytes());
    let ack = parse_connack(&c.recv_packet(), v5);
    assert_eq!(ack.reason, 0);
    c
}

fn watcher(broker: &Broker, topic: &str) -> RawClient {
    let mut s = broker.connected_v311(&uniq("watch"));
    s.send(&subscribe(1, topic, 0, false));
    s.expect(&hex!("90 03 00 01 00"));
    s
}

#[test]
fn will_is_published_when_socket_closes_without_disconnect() {
    let broker = Broker::start("");
    let topic = format!("{}/w", uniq("will"));
    let mut s = watcher(&broker, &topic);
    let mut w = will_client(&broker, &topic, false);
    w.ping();
    w.drop_connection();
    s.expect(&publish(&topic, b"gone", 0, 0, false, None));
}

#[test]
fn v5_will_is_published_when_socket_closes_without_disconnect() {
    let broker = Broker::start("");
    let topic = format!("{}/w", uniq("will5"));
    let mut s = watcher(&broker, &topic);
    let w = will_client(&broker, &topic, true);
    w.drop_connection();
    s.expect(&publish(&topic, b"gone", 0, 0, false, None));
}

#[test]
fn will_is_discarded_after_disconnect() {
    // [MQTT-3.1.2-10]
    let broker = Broker::start("");
    let topic = format!("{}/w", uniq("nowill"));
    let mut s = watcher(&broker, &topic);
    let mut w = will_client(&broker, &topic, false);
    w.send(&disconnect());
    w.expect_bare_close();
    s.expect_silence(SILENCE_MS);
}
