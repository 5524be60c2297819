//! CONNECT / CONNACK behaviour: acceptance, refusals, protocol violations and
//! session takeover.

use crate::harness::*;
use crate::hex;

#[test]
fn v311_connect_fixture_gets_connack_accepted() {
    let broker = Broker::start("");
    let mut c = broker.client();
    // Empty client id with clean session 1 is allowed [MQTT-3.1.3-7].
    c.send(&hex!("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"));
    c.expect(&hex!("20 02 00 00"));
    c.ping();
}

#[test]
fn v311_connect_gets_connack_accepted_without_session() {
    let broker = Broker::start("");
    let mut c = broker.client();
    c.send(&connect_v311(&uniq("con"), true, 30));
    c.expect(&hex!("20 02 00 00"));
}

#[test]
fn v5_connect_gets_connack_success_without_session() {
    let broker = Broker::start("");
    let mut c = broker.client();
    c.send(&connect_v5(&uniq("con5"), true, 30, &[]));
    let p = c.recv_packet();
    let ack = parse_connack(&p, true);
    assert_eq!(ack.reason, 0, "{}", to_hex(&p));
    assert!(
        !ack.session_present,
        "session present on clean start: {}",
        to_hex(&p)
    );
    c.ping();
}

#[test]
fn v311_second_connect_closes_connection() {
    // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
    let broker = Broker::start("");
    let id = uniq("twice");
    let mut c = broker.connected_v311(&id);
    c.send(&connect_v311(&id, true, 30));
    c.expect_bare_close();
}

#[test]
fn v5_second_connect_gets_disconnect_protocol_error() {
    let broker = Broker::start("");
    let id = uniq("twice5");
    let (mut c, _) = broker.connected_v5(&id);
    c.send(&connect_v5(&id, true, 30, &[]));
    c.expect_disconnect(0x82);
}

#[test]
fn first_packet_not_connect_closes_connection() {
    // [MQTT-3.1.0-1]
    let broker = Broker::start("");
    let mut c = broker.client();
    c.send(&hex!("c0 00"));
    c.expect_bare_close();
}

#[test]
fn first_packet_subscribe_closes_connection() {
    let broker = Broker::start("");
    let mut c = broker.client();
    c.send(&subscribe(1, "a/b", 0, false));
    c.expect_bare_close();
}

#[test]
fn unsupported_protocol_level_gets_connack_0x01_then_close() {
    // [MQTT-3.1.2-2]: level 6 with protocol name MQTT.
    let broker = Broker::start("");
    let mut c = broker.client();
    let id = uniq("lvl6");
    c.send(
        &Connect {
            level: 6,
            ..Connect::v311(&id)
        }
        .bytes(),
    );
    let before = c.expect_closed();
    assert_eq!(
        before.iter().map(|p| to_hex(p)).collect::<Vec<_>>(),
        ["20 02 00 01"],
        "expected the 3.1.1 refusal before close"
    );
}

#[test]
fn v5_empty_client_id_gets_assigned_client_identifier() {
    let broker = Broker::start("");
    let mut c = broker.client();
    c.send(&connect_v5("", true, 30, &[]));
    let p = c.recv_packet();
    let ack = parse_connack(&p, true);
    assert_eq!(ack.reason, 0, "{}", to_hex(&p));
    match prop(&ack.properties, 0x12) {
        Some(Value::Bytes(id)) => {
            assert!(!id.is_empty(), "empty assigned client id");
            assert!(std::str::from_utf8(id).is_ok(), "assigned id is not UTF-8");
        }
        other => panic!("no Assigned Client Identifier: {other:?} in {}", to_hex(&p)),
    }
    c.ping();
}

#[test]
fn v311_empty_client_id_without_clean_session_is_rejected() {
    // [MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), then close.
    let broker = Broker::start("");
    let mut c = broker.client();
    c.send(&connect_v311("", false, 30));
    let before = c.expect_closed();
    assert_eq!(
        before.iter().map(|p| to_hex(p)).collect::<Vec<_>>(),
        ["20 02 00 02"]
    );
}

#[test]
fn v311_same_client_id_takes_over_and_closes_first_connection() {
    // [MQTT-3.1.4-2]
    let broker = Broker::start("");
    let id = uniq("take");
    let mut first = broker.connected_v311(&id);
    let mut second = broker.connected_v311(&id);
    first.expect_bare_close();
    second.ping();
}

#[test]
fn v5_takeover_sends_disconnect_session_taken_over() {
    let broker = Broker::start("");
    let id = uniq("take5");
    let (mut first, _) = broker.connected_v5(&id);
    let (mut second, _) = broker.connected_v5(&id);
    // [MQTT-3.1.4-3]: the close is a MUST; the DISCONNECT 0x8E before it is
    // only required of culex (validation mode accepts a bare close).
    first.expect_disconnect(0x8e);
    second.ping();
}

/// `connection_messages false` moves the lines of clients connecting and leaving to debug
/// level; refusals are still logged. With the default, both are at info level.
#[test]
fn connection_messages_false_leaves_client_lines_out_of_the_info_log() {
    let timeout = std::time::Duration::from_secs(5);
    for quiet in [false, true] {
        let extra = if quiet {
            "connection_messages false\n"
        } else {
            ""
        };
        let Some(broker) = Broker::start_configured(extra) else {
            return;
        };
        let id = uniq("lines");
        let mut c = broker.connected_v311(&id);
        c.ping();
        c.send(&hex!("e0 00"));
        c.expect_closed();
        // An empty client identifier without a clean session is refused in 3.1.1.
        let mut refused = broker.client();
        refused.send(&connect_v311("", false, 60));
        refused.expect(&hex!("20 02 00 02"));
        broker.wait_for_log("connection refused", timeout);
        let log = broker.log();
        let connected = format!("client {id} connected on listener");
        let disconnected = format!("client {id} disconnected");
        assert_eq!(log.contains(&connected), !quiet, "{log}");
        assert_eq!(log.contains(&disconnected), !quiet, "{log}");
    }
}
