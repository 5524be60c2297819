//! Malformed packets and protocol errors, one test per class and protocol
//! version. Each test checks what the offending client receives (3.1.1: a bare
//! close; 5.0: DISCONNECT, or CONNACK for a bad CONNECT, with the reason code
//! the spec requires, then a close), that a client connected beforehand is
//! still served, and that the broker logged the offender's address.

use crate::harness::*;
use crate::hex;

/// What the offending client must see.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Connection closed without any packet (3.1.1).
    Close,
    /// DISCONNECT with this reason code, then close (5.0).
    Disconnect(u8),
    /// Like `Disconnect`, but in validation mode the other broker may use one of
    /// the listed codes instead, where the spec's wording leaves room for it.
    DisconnectLenient(u8, &'static [u8]),
    /// Bad CONNECT: close, optionally preceded by a CONNACK with this code.
    ConnackOrClose(u8),
    /// PUBACK with this reason code (connection stays up), or DISCONNECT with
    /// it followed by a close.
    PubackOrDisconnect(u8),
}

/// Whether the offending client first completes a CONNECT handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V311,
    V5,
    /// No handshake: the bad bytes are the CONNECT itself.
    Raw,
}

/// Runs one malformed case. `bad` builds the offending bytes from the CONNACK
/// properties the offender received (empty for 3.1.1 and raw).
fn check(config: &str, proto: Proto, bad: impl FnOnce(&[Property]) -> Vec<u8>, expect: Expect) {
    let broker = if config.is_empty() {
        Broker::start("")
    } else {
        match Broker::start_configured(config) {
            Some(b) => b,
            None => return,
        }
    };

    // A well-behaved client connected before the offender.
    let witness_topic = format!("{}/w", uniq("wit"));
    let mut witness = broker.connected_v311(&uniq("wit"));
    witness.send(&subscribe(1, &witness_topic, 1, false));
    witness.expect(&hex!("90 03 00 01 01"));

    let (mut offender, connack_props) = match proto {
        Proto::V311 => (broker.connected_v311(&uniq("bad")), Vec::new()),
        Proto::V5 => broker.connected_v5(&uniq("bad5")),
        Proto::Raw => (broker.client(), Vec::new()),
    };
    let peer = offender.local_addr();
    let bytes = bad(&connack_props);
    offender.send_lossy(&bytes);

    match expect {
        Expect::Close => offender.expect_bare_close(),
        Expect::Disconnect(code) => offender.expect_disconnect(code),
        Expect::DisconnectLenient(code, also) => offender.expect_disconnect_lenient(code, also),
        Expect::ConnackOrClose(code) => {
            let before = offender.expect_closed();
            match before.as_slice() {
                [] => {}
                [p] => {
                    let ack = parse_connack(p, true);
                    assert_eq!(ack.reason, code, "CONNACK reason: {}", to_hex(p));
                }
                _ => panic!("unexpected packets before close: {before:?}"),
            }
        }
        Expect::PubackOrDisconnect(code) => {
            let p = offender.recv_packet();
            match p[0] {
                0x40 => {
                    let (_, reason) = parse_ack(&p, 0x40);
                    // Validating the payload format is optional ("MAY") for a
                    // server; culex does it, other brokers may accept (success,
                    // or 0x10 "no matching subscribers").
                    if !(is_external() && reason < 0x80) {
                        assert_eq!(reason, code, "PUBACK reason: {}", to_hex(&p));
                    }
                    offender.ping();
                }
                0xe0 => {
                    assert_eq!(parse_disconnect(&p), code, "{}", to_hex(&p));
                    offender.expect_closed();
                }
                _ => panic!("expected PUBACK or DISCONNECT, got {}", to_hex(&p)),
            }
        }
    }

    // The witness is still served: publish to itself at QoS 1.
    witness.send(&publish(&witness_topic, b"still here", 1, 1, false, None));
    let mut got_ack = false;
    let mut got_msg = false;
    while !(got_ack && got_msg) {
        let p = witness.recv_packet();
        if p == hex!("40 02 00 01") && !got_ack {
            got_ack = true;
        } else {
            let msg = parse_publish(&p, false);
            assert_eq!(
                (
                    msg.topic.as_slice(),
                    msg.payload.as_slice(),
                    msg.qos,
                    got_msg
                ),
                (witness_topic.as_bytes(), &b"still here"[..], 1, false),
                "witness got {}",
                to_hex(&p)
            );
            witness.send(&puback(msg.pid));
            got_msg = true;
        }
    }

    broker.assert_log_contains(&peer.to_string());
}

fn fixed(bytes: &str) -> impl FnOnce(&[Property]) -> Vec<u8> + '_ {
    move |_| hex(bytes)
}

// --- reserved fixed-header flags [MQTT-2.2.2-2] ---------------------------

#[test]
fn v311_subscribe_with_reserved_flags_zero_closes() {
    check(
        "",
        Proto::V311,
        fixed("80 06 00 01 00 01 61 00"),
        Expect::Close,
    );
}

#[test]
fn v5_subscribe_with_reserved_flags_zero_disconnects_0x81() {
    check(
        "",
        Proto::V5,
        fixed("80 07 00 01 00 00 01 61 00"),
        Expect::Disconnect(0x81),
    );
}

// --- PUBLISH QoS 3 [MQTT-3.3.1-4] ------------------------------------------

#[test]
fn v311_publish_qos3_closes() {
    check(
        "",
        Proto::V311,
        fixed("36 06 00 01 61 00 01 78"),
        Expect::Close,
    );
}

#[test]
fn v5_publish_qos3_disconnects_0x81() {
    check(
        "",
        Proto::V5,
        fixed("36 07 00 01 61 00 01 00 78"),
        Expect::Disconnect(0x81),
    );
}

// --- packet identifier 0 on QoS 1 [MQTT-2.2.1-3] ---------------------------

#[test]
fn v311_publish_qos1_with_packet_id_zero_closes() {
    check(
        "",
        Proto::V311,
        fixed("32 06 00 01 61 00 00 78"),
        Expect::Close,
    );
}

#[test]
fn v5_publish_qos1_with_packet_id_zero_disconnects_0x81() {
    // The packet parses, so another broker may call it a protocol error.
    let expect = Expect::DisconnectLenient(0x81, &[0x82]);
    check("", Proto::V5, fixed("32 07 00 01 61 00 00 00 78"), expect);
}

// --- wildcard in a topic name [MQTT-3.3.2-2] --------------------------------

#[test]
fn v311_publish_to_wildcard_topic_closes() {
    check(
        "",
        Proto::V311,
        |_| publish("a/+", b"x", 0, 0, false, None),
        Expect::Close,
    );
}

#[test]
fn v5_publish_to_wildcard_topic_disconnects_0x90() {
    let bad = |_: &[Property]| publish("a/#", b"x", 0, 0, false, Some(&[]));
    // 0x90 is "Topic Name invalid"; another broker may report a protocol error.
    check("", Proto::V5, bad, Expect::DisconnectLenient(0x90, &[0x82]));
}

// --- ill-formed UTF-8 in a topic [MQTT-1.5.3-1] -----------------------------

#[test]
fn v311_publish_topic_with_invalid_utf8_closes() {
    let bad = |_: &[Property]| publish_raw(b"a/\xff", b"x", 0, 0, false, false, None);
    check("", Proto::V311, bad, Expect::Close);
}

#[test]
fn v5_publish_topic_with_invalid_utf8_disconnects_0x81() {
    let bad = |_: &[Property]| publish_raw(b"a/\xed\xa0\x80", b"x", 0, 0, false, false, Some(&[]));
    check("", Proto::V5, bad, Expect::Disconnect(0x81));
}

// --- U+0000 in a topic [MQTT-1.5.3-2] --------------------------------------

#[test]
fn v311_publish_topic_with_nul_closes() {
    let bad = |_: &[Property]| publish_raw(b"a/\0", b"x", 0, 0, false, false, None);
    check("", Proto::V311, bad, Expect::Close);
}

#[test]
fn v5_publish_topic_with_nul_disconnects_0x81() {
    let bad = |_: &[Property]| publish_raw(b"a\0b", b"x", 0, 0, false, false, Some(&[]));
    check("", Proto::V5, bad, Expect::Disconnect(0x81));
}

// --- remaining length encodings [MQTT-1.5.5-1] ------------------------------

#[test]
fn v311_five_byte_remaining_length_closes() {
    check("", Proto::V311, fixed("30 ff ff ff ff 7f"), Expect::Close);
}

#[test]
fn v5_five_byte_remaining_length_disconnects_0x81() {
    check(
        "",
        Proto::V5,
        fixed("30 ff ff ff ff 7f"),
        Expect::Disconnect(0x81),
    );
}

#[test]
fn v311_remaining_length_shorter_than_content_closes() {
    // Declares 3 bytes, but the topic length inside claims 5.
    check("", Proto::V311, fixed("30 03 00 05 61"), Expect::Close);
}

#[test]
fn v5_remaining_length_shorter_than_content_disconnects_0x81() {
    check(
        "",
        Proto::V5,
        fixed("30 03 00 05 61"),
        Expect::Disconnect(0x81),
    );
}

#[test]
fn v311_remaining_length_longer_than_content_closes() {
    // UNSUBSCRIBE whose length counts one stray byte after the last filter.
    check(
        "",
        Proto::V311,
        fixed("a2 06 00 01 00 01 61 00"),
        Expect::Close,
    );
}

#[test]
fn v5_remaining_length_longer_than_content_disconnects_0x81() {
    check(
        "",
        Proto::V5,
        fixed("a2 07 00 01 00 00 01 61 00"),
        Expect::Disconnect(0x81),
    );
}

#[test]
fn v311_subscribe_with_trailing_garbage_closes() {
    // One byte after the last filter's options cannot start another filter.
    check(
        "",
        Proto::V311,
        fixed("82 07 00 01 00 01 61 00 00"),
        Expect::Close,
    );
}

#[test]
fn v5_subscribe_with_trailing_garbage_disconnects_0x81() {
    check(
        "",
        Proto::V5,
        fixed("82 08 00 01 00 00 01 61 00 00"),
        Expect::Disconnect(0x81),
    );
}

// --- properties -------------------------------------------------------------

#[test]
fn v5_duplicate_payload_format_indicator_disconnects_0x82() {
    let bad = |_: &[Property]| publish("t", b"x", 0, 0, false, Some(&hex("01 01 01 01")));
    check("", Proto::V5, bad, Expect::Disconnect(0x82));
}

#[test]
fn v5_unknown_property_identifier_disconnects_0x81() {
    let bad = |_: &[Property]| publish("t", b"x", 0, 0, false, Some(&hex("04 00")));
    check("", Proto::V5, bad, Expect::Disconnect(0x81));
}

// --- SUBSCRIBE without filters [MQTT-3.8.3-3] -------------------------------

#[test]
fn v311_subscribe_without_filters_closes() {
    check("", Proto::V311, fixed("82 02 00 01"), Expect::Close);
}

#[test]
fn v5_subscribe_without_filters_disconnects_0x82() {
    // The spec names this a protocol error; another broker may call it malformed.
    check(
        "",
        Proto::V5,
        fixed("82 03 00 01 00"),
        Expect::DisconnectLenient(0x82, &[0x81]),
    );
}

// --- CONNECT reserved flag [MQTT-3.1.2-3] ----------------------------------

#[test]
fn v311_connect_with_reserved_flag_closes() {
    let bad = |_: &[Property]| {
        Connect {
            extra_flags: 1,
            ..Connect::v311("resv")
        }
        .bytes()
    };
    check("", Proto::Raw, bad, Expect::Close);
}

#[test]
fn v5_connect_with_reserved_flag_gets_connack_0x81_or_close() {
    let bad = |_: &[Property]| {
        Connect {
            extra_flags: 1,
            ..Connect::v5("resv5")
        }
        .bytes()
    };
    check("", Proto::Raw, bad, Expect::ConnackOrClose(0x81));
}

// --- maximum packet size ----------------------------------------------------

const MAX_PACKET: &str = "max_packet_size 1000\n";

#[test]
fn v311_packet_over_maximum_size_closes() {
    let bad = |_: &[Property]| publish("big", &[b'x'; 1100], 0, 0, false, None);
    check(MAX_PACKET, Proto::V311, bad, Expect::Close);
}

#[test]
fn v5_packet_over_maximum_size_disconnects_0x95() {
    let bad = |_: &[Property]| publish("big", &[b'x'; 1100], 0, 0, false, Some(&[]));
    check(MAX_PACKET, Proto::V5, bad, Expect::Disconnect(0x95));
}

// --- topic aliases [MQTT-3.3.2-8], [MQTT-3.3.2-9] ---------------------------

#[test]
fn v5_topic_alias_zero_disconnects_0x94() {
    let bad = |_: &[Property]| publish("t", b"x", 0, 0, false, Some(&hex("23 00 00")));
    // The spec requires 0x94; another broker may report a malformed packet.
    check("", Proto::V5, bad, Expect::DisconnectLenient(0x94, &[0x81]));
}

#[test]
fn v5_topic_alias_above_maximum_disconnects_0x94() {
    let bad = |connack: &[Property]| {
        let max = match prop(connack, 0x22) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        let alias = u16::try_from(max + 1).expect("alias maximum below 65535");
        let mut p = vec![0x23];
        p.extend(alias.to_be_bytes());
        publish("t", b"x", 0, 0, false, Some(&p))
    };
    check("", Proto::V5, bad, Expect::Disconnect(0x94));
}

// --- payload format indicator with a non-UTF-8 payload [MQTT-3.3.2-4] -------

#[test]
fn v5_invalid_utf8_payload_with_format_indicator_is_rejected_0x99() {
    let bad = |_: &[Property]| publish("t", b"\xff\xfe", 1, 1, false, Some(&hex("01 01")));
    check("", Proto::V5, bad, Expect::PubackOrDisconnect(0x99));
}
