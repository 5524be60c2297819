//! Signals: SIGTERM and SIGINT shut the broker down cleanly (MQTT 5.0 clients are told
//! 0x8B, the process exits 0), SIGHUP reloads the limits and survives a bad file.

use std::time::Duration;

use crate::harness::*;

const EXIT_WITHIN: Duration = Duration::from_secs(5);

fn shuts_down_cleanly_on(signal: &str) {
    let Some(mut broker) = Broker::start_configured("") else {
        return;
    };
    let (mut v5, _) = broker.connected_v5(&uniq("v5"));
    let mut v3 = broker.connected_v311(&uniq("v3"));
    broker.signal(signal);
    // [MQTT-4.13.2-1] the server says why before it closes a v5 connection.
    v5.expect_disconnect(0x8b);
    v3.expect_bare_close();
    let status = broker
        .wait_exit(EXIT_WITHIN)
        .expect("culex exits after the signal");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_disconnects_v5_clients_with_server_shutting_down_and_exits_0() {
    shuts_down_cleanly_on("TERM");
}

#[test]
fn sigint_shuts_down_cleanly() {
    shuts_down_cleanly_on("INT");
}

/// Publishes `len` bytes at QoS 1 from a fresh v5 connection and returns the PUBACK reason.
fn puback_reason(broker: &Broker, topic: &str, len: usize) -> u8 {
    let (mut c, _) = broker.connected_v5(&uniq("pub"));
    c.send(&publish(topic, &vec![b'x'; len], 1, 1, false, Some(&[])));
    parse_ack(&c.recv_packet(), 0x40).1
}

#[test]
fn sighup_reloads_limits_for_new_and_existing_clients() {
    let Some(broker) = Broker::start_configured("") else {
        return;
    };
    let topic = uniq("reload/t");
    let mut sub = broker.connected_v311(&uniq("sub"));
    sub.send(&subscribe(1, &topic, 0, false));
    sub.recv_packet();
    assert_eq!(
        puback_reason(&broker, &topic, 20),
        0,
        "no size limit before the reload"
    );
    expect_publish(&mut sub, &topic, &[b'x'; 20], 0, false);

    broker.rewrite_config("message_size_limit 10");
    broker.signal("HUP");
    broker.wait_for_log("configuration reloaded", EXIT_WITHIN);
    assert_eq!(
        puback_reason(&broker, &topic, 20),
        0x97,
        "quota exceeded after the reload"
    );
    sub.expect_silence(SILENCE_MS);
    assert_eq!(puback_reason(&broker, &topic, 5), 0);
    expect_publish(&mut sub, &topic, b"xxxxx", 0, false);
}

#[test]
fn sighup_with_a_bad_file_keeps_the_running_configuration() {
    let Some(broker) = Broker::start_configured("message_size_limit 10") else {
        return;
    };
    broker.rewrite_config("max_keepalive abc");
    broker.signal("HUP");
    // The file name and line of the error are logged; the broker keeps serving.
    broker.wait_for_log(":3: max_keepalive", EXIT_WITHIN);
    assert_eq!(
        puback_reason(&broker, &uniq("bad/t"), 20),
        0x97,
        "old limits still in force"
    );
    broker.connected_v311(&uniq("still")).ping();
}
