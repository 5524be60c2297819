//! Bounds against abusive clients, over real sockets: `connect_timeout`,
//! `global_max_connections`, `max_connection_rate`, `max_topic_levels`,
//! `max_subscriptions`, and the default `max_connections` of API listeners. Each test checks what the client sees and the log line
//! naming it. The floods themselves are in `tests/interop/test_abuse.py`.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::http_api::ApiBroker;

/// Opens a connection and sends CONNECT; true when a successful CONNACK comes back,
/// false when the broker closes the connection instead.
fn try_connect(broker: &Broker, id: &str) -> bool {
    let mut c = broker.client();
    c.send_lossy(&connect_v311(id, true, 60));
    match c.recv_within(READ_TIMEOUT) {
        Recv::Packet(p) => {
            assert_eq!(p, hex("20 02 00 00"), "{}", to_hex(&p));
            true
        }
        Recv::Closed => false,
        Recv::Timeout => panic!("neither CONNACK nor close within {READ_TIMEOUT:?}"),
    }
}

#[test]
fn silent_connection_is_closed_at_connect_timeout() {
    let Some(broker) = Broker::start_configured("connect_timeout 1") else {
        return;
    };
    let start = Instant::now();
    let mut silent = broker.client();
    match silent.recv_within(Duration::from_secs(5)) {
        Recv::Closed => {}
        r => panic!("expected the broker to close a silent connection, got {r:?}"),
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "closed after {waited:?}"
    );
    broker.assert_log_contains(&format!("{}): no CONNECT within 1 s", silent.local_addr()));
    // A client that sends CONNECT in time stays.
    let mut good = broker.connected_v311(&uniq("good"));
    thread::sleep(Duration::from_millis(1500));
    good.ping();
}

#[test]
fn global_max_connections_refuses_at_accept() {
    let Some(broker) = Broker::start_configured("global_max_connections 2") else {
        return;
    };
    let first = broker.connected_v311(&uniq("one"));
    let mut second = broker.connected_v311(&uniq("two"));
    let mut third = broker.client();
    third.send_lossy(&connect_v311(&uniq("three"), true, 60));
    assert!(matches!(third.recv_within(READ_TIMEOUT), Recv::Closed));
    broker.assert_log_contains("global_max_connections 2 reached");
    second.ping();
    // Room again once a connection has gone.
    first.drop_connection();
    let deadline = Instant::now() + READ_TIMEOUT;
    while !try_connect(&broker, &uniq("again")) {
        assert!(Instant::now() < deadline, "no room after a client left");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connection_rate_refuses_the_excess_from_one_address() {
    let Some(broker) = Broker::start_configured("max_connection_rate 3") else {
        return;
    };
    let start = Instant::now();
    let accepted = (0..12)
        .filter(|i| try_connect(&broker, &uniq(&format!("r{i}"))))
        .count();
    let secs = start.elapsed().as_secs_f64();
    // A burst of three, then three a second.
    let most = 3 + (3.0 * secs).ceil() as usize;
    assert!(
        (3..=most).contains(&accepted),
        "{accepted} accepted in {secs:.2} s"
    );
    broker.assert_log_contains("more than max_connection_rate 3 a second");
    // The allowance comes back with time.
    thread::sleep(Duration::from_millis(1100));
    assert!(try_connect(&broker, &uniq("later")));
}

#[test]
fn topic_with_too_many_levels_is_refused_like_an_invalid_one() {
    let Some(broker) = Broker::start_configured("max_topic_levels 4") else {
        return;
    };
    let (mut v5, _) = broker.connected_v5(&uniq("v5"));
    v5.send(&subscribe_many(
        1,
        &[("a/b/c/#", 1), ("a/b/c/d/#", 1)],
        true,
    ));
    let (_, codes) = parse_suback(&v5.recv_packet(), 0x90, true);
    assert_eq!(codes, vec![0x01, 0x8f]);
    v5.send(&publish("a/b/c/d", b"ok", 0, 0, false, Some(&[])));
    v5.send(&publish("a/b/c/d/e", b"deep", 1, 1, false, Some(&[])));
    let got = v5.recv_packet();
    assert_eq!(parse_publish(&got, true).payload, b"ok".to_vec());
    v5.expect_disconnect(0x90);

    let mut v3 = broker.connected_v311(&uniq("v3"));
    v3.send(&subscribe(2, "////", 0, false));
    let (_, codes) = parse_suback(&v3.recv_packet(), 0x90, false);
    assert_eq!(codes, vec![0x80]);
    v3.send(&publish("x/x/x/x/x", b"deep", 0, 0, false, None));
    v3.expect_bare_close();
    broker.assert_log_contains("protocol violation (PUBLISH) [max_topic_levels]");
}

#[test]
fn subscriptions_past_the_bound_get_quota_exceeded() {
    let Some(broker) = Broker::start_configured("max_subscriptions 3") else {
        return;
    };
    let filters = [("a", 0), ("b", 1), ("c", 2), ("d", 0), ("a", 1)];
    let (mut v5, _) = broker.connected_v5(&uniq("v5"));
    v5.send(&subscribe_many(1, &filters, true));
    let (_, codes) = parse_suback(&v5.recv_packet(), 0x90, true);
    assert_eq!(codes, vec![0x00, 0x01, 0x02, 0x97, 0x01]);
    let mut v3 = broker.connected_v311(&uniq("v3"));
    v3.send(&subscribe_many(1, &filters, false));
    let (_, codes) = parse_suback(&v3.recv_packet(), 0x90, false);
    assert_eq!(codes, vec![0x00, 0x01, 0x02, 0x80, 0x01]);
    broker.assert_log_contains("1 over max_subscriptions 3: refused");
    v5.ping();
    v3.ping();
}

#[test]
fn api_listener_takes_64_connections_by_default() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], api.broker.http_port()));
    let held: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut extra = TcpStream::connect(addr).expect("connect");
    extra.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 16];
    match extra.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the 65th API connection was not closed: {other:?}"),
    }
    api.broker.assert_log_contains("is at max_connections 64");
    // MQTT clients are not limited by it.
    let mut c = api.broker.connected_v311(&uniq("mqtt"));
    c.ping();
    drop(held);
}
