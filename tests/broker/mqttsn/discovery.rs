//! Gateway discovery (spec 6.1) over IPv4 multicast on loopback: SEARCHGW sent to the
//! group is answered with GWINFO, and ADVERTISE goes to the group every
//! `advertise_interval`.
//!
//! The test sockets join the group on the loopback interface and send through it, so
//! nothing leaves the machine. Where the system refuses multicast on loopback, the tests
//! fail and say so: they are never skipped silently.

use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use super::*;
use crate::hex;

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 1, 1);

/// A port no UDP socket uses right now, for the group.
fn free_port() -> u16 {
    let s = UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
    s.local_addr().expect("local addr").port()
}

/// Panics with a message saying that multicast on loopback does not work here.
fn no_multicast(step: &str, e: std::io::Error) -> ! {
    panic!("multicast on loopback does not work on this machine: {step}: {e}")
}

/// A UDP socket bound to `bind`, joined to the group on the loopback interface and sending
/// to the group through it, with its own datagrams looped back.
fn group_socket(bind: SocketAddrV4, reuse: bool) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .unwrap_or_else(|e| no_multicast("socket", e));
    if reuse {
        // The gateway's own group socket shares the port.
        s.set_reuse_address(true)
            .unwrap_or_else(|e| no_multicast("SO_REUSEADDR", e));
        s.set_reuse_port(true)
            .unwrap_or_else(|e| no_multicast("SO_REUSEPORT", e));
    }
    s.bind(&SocketAddr::V4(bind).into())
        .unwrap_or_else(|e| no_multicast(&format!("bind {bind}"), e));
    s.join_multicast_v4(&GROUP, &Ipv4Addr::LOCALHOST)
        .unwrap_or_else(|e| no_multicast(&format!("join {GROUP} on 127.0.0.1"), e));
    s.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap_or_else(|e| no_multicast("IP_MULTICAST_IF 127.0.0.1", e));
    s.set_multicast_loop_v4(true)
        .unwrap_or_else(|e| no_multicast("IP_MULTICAST_LOOP", e));
    s.set_multicast_ttl_v4(1)
        .unwrap_or_else(|e| no_multicast("IP_MULTICAST_TTL", e));
    s.into()
}

/// Starts the broker with the gateway in `group`; a broker that cannot join the group
/// fails the test with the reason from its log.
fn start_in_group(port: u16, options: &str) -> Option<(Broker, SocketAddr)> {
    let lines = format!("multicast_group {GROUP}:{port}\ngateway_id 42\n{options}");
    start(&lines)
}

#[test]
fn searchgw_to_the_group_is_answered_with_gwinfo() {
    let port = free_port();
    // The searcher is joined to the group but listens on a port of its own, where the
    // answer comes.
    let searcher = group_socket(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), false);
    let Some((broker, gw)) = start_in_group(port, "") else {
        return;
    };
    broker.assert_log_contains(&format!("joined multicast group {GROUP}:{port}"));
    searcher
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    // SEARCHGW with radius 1, to the group.
    searcher
        .send_to(&hex!("03 01 01"), SocketAddrV4::new(GROUP, port))
        .unwrap_or_else(|e| no_multicast("send SEARCHGW to the group", e));
    let mut buf = [0u8; 512];
    let (n, from) = loop {
        match searcher.recv_from(&mut buf) {
            // Its own SEARCHGW, should the system loop it back here, is no answer.
            Ok((n, _)) if buf[..n] == hex!("03 01 01") => continue,
            Ok(got) => break got,
            Err(e) => panic!(
                "no GWINFO for a SEARCHGW sent to {GROUP}:{port} within {READ_TIMEOUT:?} \
                 ({e}); multicast on loopback may not work on this machine; log:\n{}",
                broker.log()
            ),
        }
    };
    // GWINFO with gateway id 42 and no address (sent by the gateway itself), from the
    // gateway's own address.
    assert_eq!(to_hex(&buf[..n]), "03 02 2a");
    assert_eq!(from, gw);

    // A SEARCHGW sent straight to the gateway is answered the same way.
    let c = SnClient::new(gw);
    c.send(&hex!("03 01 00"));
    c.expect(&hex!("03 02 2a"));
}

#[test]
fn advertise_goes_to_the_group_every_interval() {
    let port = free_port();
    // Listening on the group's port before the gateway starts, so that no ADVERTISE is
    // missed.
    let listener = group_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), true);
    let Some((broker, gw)) = start_in_group(port, "advertise_interval 1") else {
        return;
    };
    let deadline = Instant::now() + Duration::from_millis(3500);
    let mut buf = [0u8; 512];
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        listener.set_read_timeout(Some(left)).expect("timeout");
        match listener.recv_from(&mut buf) {
            Ok((n, from)) if from == gw => seen.push(buf[..n].to_vec()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("receive on the group: {e}"),
        }
    }
    assert!(
        seen.len() >= 2,
        "{} ADVERTISE on {GROUP}:{port} within 3.5 s with advertise_interval 1 (want at \
         least 2); multicast on loopback may not work on this machine; log:\n{}",
        seen.len(),
        broker.log()
    );
    // ADVERTISE: gateway id 42, duration 1 s.
    for got in &seen {
        assert_eq!(to_hex(got), "05 00 2a 00 01");
    }
}
