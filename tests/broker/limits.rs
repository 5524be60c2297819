//! Resource behaviour: a subscriber that never reads must not stall the broker
//! for everyone else.

use std::thread;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::hex;

const TOTAL: usize = 4 * 1024 * 1024;
const PAYLOAD: usize = 900;
const PROMPT: Duration = Duration::from_millis(1000);

#[test]
fn slow_subscriber_does_not_stall_other_clients() {
    let broker = Broker::start("");
    let topic = format!("{}/flood", uniq("slow"));

    // Subscribes, then never reads again.
    let mut slow = broker.connected_v311(&uniq("slow"));
    slow.send(&subscribe(1, &topic, 0, false));
    slow.expect(&hex!("90 03 00 01 00"));

    let mut other = broker.connected_v311(&uniq("other"));

    // The publisher runs on its own thread: if the broker pushes back on it,
    // that must not block this test's checks on the other client.
    let addr = broker.addr();
    let flood_topic = topic.clone();
    let publisher = thread::spawn(move || {
        let mut p = RawClient::connect(addr);
        p.send(&connect_v311(&uniq("flood"), true, 60));
        p.expect(&hex!("20 02 00 00"));
        let msg = publish(&flood_topic, &[b'z'; PAYLOAD], 0, 0, false, None);
        let mut batch = Vec::new();
        for _ in 0..64 {
            batch.extend_from_slice(&msg);
        }
        let mut sent = 0;
        while sent < TOTAL {
            p.send_lossy(&batch);
            sent += batch.len();
        }
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pings = 0;
    while !publisher.is_finished() || pings < 5 {
        assert!(Instant::now() < deadline, "flood did not finish in time");
        let start = Instant::now();
        other.send(&hex!("c0 00"));
        match other.recv_within(PROMPT) {
            Recv::Packet(p) => assert_eq!(p, hex!("d0 00"), "{}", to_hex(&p)),
            r => panic!("no PINGRESP within {PROMPT:?} while flooding: {r:?}"),
        }
        assert!(start.elapsed() < PROMPT);
        pings += 1;
        thread::sleep(Duration::from_millis(50));
    }
    publisher.join().expect("publisher thread");

    // After the flood the broker still serves new and existing clients.
    other.ping();
    let mut late = broker.connected_v311(&uniq("late"));
    late.ping();
    drop(slow);
}
