//! Retained messages: stored, delivered with the RETAIN bit to new
//! subscribers, cleared by an empty retained payload.

use crate::harness::*;
use crate::hex;

#[test]
fn retained_message_is_delivered_to_new_subscriber_with_retain_bit() {
    let broker = Broker::start("");
    let topic = format!("{}/r", uniq("ret"));
    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"kept", 1, 1, true, None));
    p.expect(&hex!("40 02 00 01"));

    let mut s = broker.connected_v311(&uniq("s"));
    s.send(&subscribe(1, &topic, 0, false));
    s.expect(&hex!("90 03 00 01 00"));
    // [MQTT-3.3.1-8]: RETAIN set on a message sent because of a new subscription.
    s.expect(&publish(&topic, b"kept", 0, 0, true, None));

    // [MQTT-3.3.1-9]: RETAIN cleared when forwarded to an existing subscription.
    p.send(&publish(&topic, b"live", 0, 0, true, None));
    s.expect(&publish(&topic, b"live", 0, 0, false, None));
}

#[test]
fn empty_retained_payload_clears_the_retained_message() {
    // [MQTT-3.3.1-10], [MQTT-3.3.1-11]
    let broker = Broker::start("");
    let topic = format!("{}/r", uniq("clr"));
    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"old", 0, 0, true, None));
    p.send(&publish(&topic, b"", 0, 0, true, None));
    p.ping();

    let mut s = broker.connected_v311(&uniq("s"));
    s.send(&subscribe(1, &topic, 0, false));
    s.expect(&hex!("90 03 00 01 00"));
    s.expect_silence(SILENCE_MS);
}
