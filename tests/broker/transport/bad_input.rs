//! Bad input at the transport level. Each case must end in a clean close and a log line
//! naming the peer, while another client keeps being served.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::*;
use crate::harness::*;
use crate::hex;

/// A broker with a plain listener, a TLS listener and a WebSocket listener.
fn broker(global: &str) -> Option<(Broker, u16, u16)> {
    let lines = format!(
        "{global}\n{}listener 0 127.0.0.1\nprotocol websockets\n",
        tls_listener("")
    );
    let broker = Broker::start_configured(&lines)?;
    let ports = broker.ports(3);
    Some((broker, ports[1], ports[2]))
}

/// The broker still serves: a fresh plain client connects and gets a PINGRESP.
fn still_serving(broker: &Broker) {
    let mut c = broker.connected_v311(&uniq("alive"));
    c.ping();
}

/// The first flight of a real TLS client.
fn client_hello() -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn =
        ClientConnection::new(client_config(&TlsOptions::default()), name).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("write_tls");
    }
    hello
}

fn peer(s: &TcpStream) -> String {
    s.local_addr().expect("local").to_string()
}

#[test]
fn plaintext_to_a_tls_port_is_closed() {
    let Some((broker, tls_port, _)) = broker("") else {
        return;
    };
    let mut s = raw(tls_port);
    s.write_all(&connect_v311(&uniq("plain"), true, 60))
        .expect("write");
    let answer = read_to_close(&mut s, Duration::from_secs(5));
    // Nothing, or a TLS alert record: never an MQTT CONNACK.
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:02x?}");
    broker.assert_log_contains(&format!("{}: read error: TLS handshake failed", peer(&s)));
    still_serving(&broker);
    let mut tls = Mqtt::new(tls_connect(tls_port, &TlsOptions::default()).expect("TLS"));
    tls.send(&connect_v311(&uniq("tls"), true, 60));
    tls.expect(&hex!("20 02 00 00"));
}

#[test]
fn a_tls_client_hello_to_a_plain_port_is_closed() {
    let Some((broker, _, _)) = broker("") else {
        return;
    };
    let mut s = broker.client();
    let addr = s.local_addr();
    s.send(&client_hello());
    s.expect_bare_close();
    broker.assert_log_contains(&format!("({addr}): bad packet"));
    still_serving(&broker);
}

#[test]
fn a_tls_client_hello_to_a_websocket_port_gets_400() {
    let Some((broker, _, ws_port)) = broker("") else {
        return;
    };
    let mut s = raw(ws_port);
    s.write_all(&client_hello()).expect("write");
    let answer = read_to_close(&mut s, Duration::from_secs(5));
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:02x?}");
    broker.assert_log_contains(&format!("{}: read error: WebSocket", peer(&s)));
    still_serving(&broker);
}

#[test]
fn half_finished_handshakes_are_closed_after_the_timeout() {
    let Some((broker, tls_port, ws_port)) = broker("") else {
        return;
    };
    let hello = client_hello();
    let mut tls = raw(tls_port);
    tls.write_all(&hello[..hello.len() / 2]).expect("write");
    let mut ws = raw(ws_port);
    ws.write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    // Both wait while others are served.
    still_serving(&broker);
    let start = Instant::now();
    let tls_rest = read_to_close(&mut tls, Duration::from_secs(20));
    let ws_rest = read_to_close(&mut ws, Duration::from_secs(20));
    assert!(
        tls_rest.is_empty() || tls_rest[0] == 0x15,
        "{tls_rest:02x?}"
    );
    assert!(!ws_rest.starts_with(b"HTTP/1.1 101"));
    assert!(start.elapsed() > Duration::from_secs(5), "closed too early");
    broker.assert_log_contains(&format!("({}): no CONNECT within", peer(&tls)));
    broker.assert_log_contains(&format!("({}): no CONNECT within", peer(&ws)));
    still_serving(&broker);
}

#[test]
fn upgrade_without_the_mqtt_subprotocol_is_refused() {
    let Some((broker, _, ws_port)) = broker("") else {
        return;
    };
    for offer in [None, Some("chat"), Some("mqttv5, json")] {
        let (mut s, head) = raw_upgrade(ws_port, offer);
        assert!(head.starts_with("HTTP/1.1 400"), "{offer:?}: {head}");
        read_to_close(&mut s, Duration::from_secs(5));
        broker.assert_log_contains(&format!(
            "{}: read error: WebSocket upgrade refused",
            peer(&s)
        ));
    }
    // A client library gets the refusal as an error, not a connection.
    let url = format!("ws://127.0.0.1:{ws_port}/mqtt");
    assert!(ws_connect(raw(ws_port), &url, None).is_err());
    still_serving(&broker);
}

#[test]
fn a_text_frame_is_refused_with_close_1003() {
    let Some((broker, _, ws_port)) = broker("") else {
        return;
    };
    let (mut s, head) = raw_upgrade(ws_port, Some("mqtt"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(&masked(0x2, &connect_v311(&uniq("text"), true, 60)))
        .expect("write");
    s.write_all(&masked(0x1, b"{\"hello\":1}")).expect("write");
    let rest = read_to_close(&mut s, Duration::from_secs(5));
    let frames = server_frames(&rest);
    let close = frames.iter().find(|f| f.0 == 0x8).expect("close frame");
    assert_eq!(close.1[..2], 1003u16.to_be_bytes());
    broker.assert_log_contains(&format!("{}: read error: text frame", peer(&s)));
    still_serving(&broker);
}

#[test]
fn an_oversized_frame_is_refused_with_close_1009() {
    let Some((broker, _, ws_port)) = broker("max_packet_size 4096") else {
        return;
    };
    let (mut s, head) = raw_upgrade(ws_port, Some("mqtt"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Only the header of a 1 GiB frame: refused before any payload is buffered.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&header).expect("write");
    let rest = read_to_close(&mut s, Duration::from_secs(5));
    let frames = server_frames(&rest);
    let close = frames.iter().find(|f| f.0 == 0x8).expect("close frame");
    assert_eq!(close.1[..2], 1009u16.to_be_bytes());
    broker.assert_log_contains(&format!(
        "{}: read error: WebSocket frame refused",
        peer(&s)
    ));
    still_serving(&broker);
}

#[test]
fn a_websocket_peer_that_stops_reading_does_not_stall_others() {
    let Some((broker, _, ws_port)) = broker("") else {
        return;
    };
    let topic = format!("{}/flood", uniq("wsflood"));
    // Subscribes over WebSocket, then never reads again.
    let mut stalled = ws_plain(ws_port);
    stalled.send(&connect_v311(&uniq("stalled"), true, 60));
    stalled.expect(&hex!("20 02 00 00"));
    stalled.send(&subscribe(1, &topic, 0, false));
    stalled.expect(&hex!("90 03 00 01 00"));

    let mut other = ws_plain(ws_port);
    other.send(&connect_v311(&uniq("other"), true, 60));
    other.expect(&hex!("20 02 00 00"));

    let addr = broker.addr();
    let flood = topic.clone();
    let publisher = thread::spawn(move || {
        let mut p = RawClient::connect(addr);
        p.send(&connect_v311(&uniq("flooder"), true, 60));
        p.expect(&hex!("20 02 00 00"));
        let msg = publish(&flood, &[b'z'; 900], 0, 0, false, None);
        let batch: Vec<u8> = msg.iter().copied().cycle().take(msg.len() * 64).collect();
        let mut sent = 0;
        while sent < 4 * 1024 * 1024 {
            p.send_lossy(&batch);
            sent += batch.len();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pings = 0;
    while !publisher.is_finished() || pings < 5 {
        assert!(Instant::now() < deadline, "flood did not finish in time");
        other.send(&hex!("c0 00"));
        other.expect(&hex!("d0 00"));
        pings += 1;
        thread::sleep(Duration::from_millis(50));
    }
    publisher.join().expect("publisher");
    still_serving(&broker);
    drop(stalled);
}
