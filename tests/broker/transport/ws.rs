//! MQTT over WebSockets and secure WebSockets: subprotocols, messages that do not line up
//! with packets, large messages, ping and close.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use super::*;
use crate::harness::*;
use crate::hex;

const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// A broker with a plain listener, a WebSocket listener and a secure WebSocket listener.
fn broker(global: &str) -> Option<(Broker, u16, u16)> {
    let lines = format!(
        "{global}\nlistener 0 127.0.0.1\nprotocol websockets\n{}protocol websockets\n",
        tls_listener("")
    );
    let broker = Broker::start_configured(&lines)?;
    let ports = broker.ports(3);
    Some((broker, ports[1], ports[2]))
}

fn still_open_for_others(broker: &Broker) {
    let mut c = broker.connected_v311(&uniq("other"));
    c.ping();
}

#[test]
fn ws_and_wss_carry_mqtt_both_ways() {
    let Some((broker, ws_port, wss_port)) = broker("") else {
        return;
    };
    let topic = format!("{}/t", uniq("ws"));
    let mut ws = ws_plain(ws_port);
    ws.send(&connect_v311(&uniq("ws"), true, 60));
    ws.expect(&CONNACK_OK);
    ws.send(&subscribe(1, &topic, 1, false));
    ws.expect(&hex!("90 03 00 01 01"));

    let mut wss = ws_secure(wss_port);
    wss.send(&connect_v5(&uniq("wss"), true, 60, &[]));
    match wss.recv() {
        Got::Packet(p) => assert_eq!(p[..4], [0x20, p[1], 0x00, 0x00]),
        other => panic!("no CONNACK: {other:?}"),
    }
    wss.send(&subscribe(1, &topic, 0, true));
    wss.expect(&hex!("90 04 00 01 00 00"));

    // From plain TCP to both; then from WSS to both, QoS 1 acknowledged over WSS.
    let mut plain = broker.connected_v311(&uniq("plain"));
    plain.send(&publish(&topic, b"tcp", 0, 0, false, None));
    ws.expect(&publish(&topic, b"tcp", 0, 0, false, None));
    wss.expect(&publish(&topic, b"tcp", 0, 0, false, Some(&[])));
    wss.send(&publish(&topic, b"wss", 1, 7, false, Some(&[])));
    // The WSS client is subscribed too: its own message and the PUBACK, in either order.
    let got = [wss.recv(), wss.recv()];
    assert!(got.contains(&Got::Packet(hex!("40 02 00 07"))), "{got:?}");
    match ws.recv() {
        Got::Packet(p) => assert_eq!(&p[p.len() - 3..], b"wss"),
        other => panic!("no PUBLISH over ws: {other:?}"),
    }
}

#[test]
fn large_message_crosses_many_frames_and_reads() {
    let Some((_broker, ws_port, wss_port)) = broker("") else {
        return;
    };
    let topic = format!("{}/big", uniq("big"));
    let mut sub = ws_secure(wss_port);
    sub.send(&connect_v311(&uniq("bigsub"), true, 60));
    sub.expect(&CONNACK_OK);
    sub.send(&subscribe(1, &topic, 0, false));
    sub.expect(&hex!("90 03 00 01 00"));

    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let packet = publish(&topic, &payload, 0, 0, false, None);
    let mut publisher = ws_plain(ws_port);
    publisher.send(&connect_v311(&uniq("bigpub"), true, 60));
    publisher.expect(&CONNACK_OK);
    // The packet cut into uneven messages, none aligned with the packet.
    for piece in packet.chunks(7_001) {
        publisher.send(piece);
    }
    sub.expect(&packet);
}

#[test]
fn several_packets_in_one_message_and_one_packet_over_byte_writes() {
    let Some((_broker, ws_port, _)) = broker("") else {
        return;
    };
    let (mut s, head) = raw_upgrade(ws_port, Some("mqtt"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // CONNECT and PINGREQ in one message.
    let mut two = connect_v311(&uniq("bytes"), true, 60);
    two.extend_from_slice(&hex!("c0 00"));
    s.write_all(&masked(0x2, &two)).expect("write");
    // Then a PINGREQ frame written one byte at a time.
    for b in masked(0x2, &hex!("c0 00")) {
        s.write_all(&[b]).expect("write");
        thread::sleep(Duration::from_millis(5));
    }
    let mut got = Vec::new();
    let expected_len = 2 * 2 + 4 + 2 + 2;
    while server_frames(&got).iter().map(|f| f.1.len()).sum::<usize>() < 8 {
        let mut chunk = [0u8; 256];
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&chunk[..n]);
        assert!(got.len() <= expected_len + 16, "{got:02x?}");
    }
    let payload: Vec<u8> = server_frames(&got).into_iter().flat_map(|f| f.1).collect();
    assert_eq!(payload, hex!("20 02 00 00 d0 00 d0 00"));
}

#[test]
fn old_clients_get_the_mqttv31_subprotocol() {
    let Some((_broker, ws_port, _)) = broker("") else {
        return;
    };
    let (_s, head) = raw_upgrade(ws_port, Some("mqttv3.1"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqttv3.1\r\n"),
        "{head}"
    );
}

#[test]
fn ping_is_answered_and_close_is_returned() {
    let Some((broker, ws_port, _)) = broker("") else {
        return;
    };
    let (mut s, head) = raw_upgrade(ws_port, Some("mqtt"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(&masked(0x9, b"are you there"))
        .expect("write ping");
    let mut got = vec![0u8; 2 + 13];
    s.read_exact(&mut got).expect("pong");
    assert_eq!(server_frames(&got), vec![(0xA, b"are you there".to_vec())]);
    s.write_all(&masked(0x8, &1000u16.to_be_bytes()))
        .expect("write close");
    let rest = read_to_close(&mut s, Duration::from_secs(5));
    assert_eq!(server_frames(&rest).first().map(|f| f.0), Some(0x8));
    still_open_for_others(&broker);
}
