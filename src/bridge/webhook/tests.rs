//! The webhook state machine driven with packets, bytes and times, no sockets.

use super::*;
use std::rc::Rc;

use crate::bridge::mqtt::BRIDGE_LISTENER;
use crate::codec::mqtt::{Props, ProtocolVersion, SubOptions};
use crate::config::bridge::bridge_from_options;
use crate::engine::session::EXPIRY_NEVER;

const WALL: u64 = 1_700_000_000_000;
const LOCAL: ConnId = ConnId(50);

/// A webhook to `http://hooks.test:8080/in` posting messages of `s/#` (QoS 1) with these
/// extra options; a constant backoff of 5 s.
fn config(extra: &[(&str, &str)]) -> BridgeConfig {
    let options: Vec<(String, String)> = [
        ("bridge_type", "http"),
        ("bridge_url", "http://hooks.test:8080/in"),
        ("topic", "s/# out 1"),
        ("restart_timeout", "5"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    bridge_from_options("w", &options).unwrap_or_else(|e| panic!("{e}"))
}

fn webhook(extra: &[(&str, &str)]) -> Webhook {
    Webhook::new(config(extra), 3, Millis(0), LOCAL, WALL)
}

fn drain(w: &mut Webhook) -> Vec<WebhookOutput> {
    std::iter::from_fn(|| w.poll()).collect()
}

fn sends(out: &[WebhookOutput]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            WebhookOutput::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

fn engine_packets(out: &[WebhookOutput]) -> Vec<&Packet> {
    out.iter()
        .filter_map(|o| match o {
            WebhookOutput::Engine(Input::Packet { conn, packet }) => {
                assert_eq!(*conn, LOCAL);
                Some(packet)
            }
            _ => None,
        })
        .collect()
}

fn connects(out: &[WebhookOutput]) -> usize {
    out.iter()
        .filter(|o| matches!(o, WebhookOutput::Connect(_)))
        .count()
}

fn closes(out: &[WebhookOutput]) -> usize {
    out.iter()
        .filter(|o| matches!(o, WebhookOutput::Close))
        .count()
}

/// The body of a request.
fn body(request: &str) -> &str {
    request.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn publish(topic: &str, qos: QoS, id: u16, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Props::none(),
        payload: Rc::from(payload),
    })
}

fn pub_ack(id: u16) -> Ack {
    Ack::success(id)
}

/// A webhook whose local session is open and whose outputs so far are drained.
fn ready(extra: &[(&str, &str)]) -> Webhook {
    let mut w = webhook(extra);
    drain(&mut w);
    w
}

/// Feeds `text` as read from the connection.
fn answer(w: &mut Webhook, now: u64, text: &str) -> Vec<WebhookOutput> {
    let mut buf = text.as_bytes().to_vec();
    w.received(Millis(now), &mut buf);
    drain(w)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const ERROR: &str = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\nno";

/// Posts one QoS 1 message `id` on a new connection at `now`; returns the request.
fn post_one(w: &mut Webhook, now: u64, id: u16) -> String {
    w.from_engine(Millis(now), publish("s/t", QoS::AtLeastOnce, id, b"x"));
    let out = drain(w);
    assert_eq!(connects(&out), 1, "{out:?}");
    w.transport_up(Millis(now));
    let out = drain(w);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    sent[0].clone()
}

#[test]
fn the_local_session_opens_at_once() {
    let mut w = webhook(&[("bridge_batch", "7")]);
    let out = drain(&mut w);
    assert!(matches!(
        &out[0],
        WebhookOutput::Engine(Input::Opened { conn: LOCAL, listener, .. })
            if *listener == BRIDGE_LISTENER
    ));
    assert!(matches!(
        &out[1],
        WebhookOutput::Engine(Input::PeerIdentity { conn: LOCAL, username })
            if &**username == "local.culex.w"
    ));
    let packets = engine_packets(&out);
    let Packet::Connect(c) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(c.protocol, ProtocolVersion::V5);
    assert!(!c.clean_start);
    assert_eq!(c.client_id, "local.culex.w");
    assert_eq!(c.properties.session_expiry_interval, Some(EXPIRY_NEVER));
    assert_eq!(c.properties.receive_maximum, Some(7));
    let Packet::Subscribe(s) = packets[1] else {
        panic!("{packets:?}");
    };
    let opts = SubOptions {
        qos: QoS::AtLeastOnce,
        no_local: false,
        retain_as_published: true,
        retain_handling: 2,
    };
    assert_eq!(s.filters, vec![("s/#".to_owned(), opts)]);
    assert_eq!(out.len(), 4);
    assert_eq!(w.local_conn(), Some(LOCAL));
    assert_eq!(w.next_deadline(), None);
    assert_eq!(w.counters().state, "idle");
    // Without the message event there is no local session.
    let mut w = webhook(&[("bridge_events", "connected")]);
    assert!(drain(&mut w).is_empty());
    assert_eq!(w.local_conn(), None);
}

#[test]
fn a_message_becomes_one_signed_post() {
    let mut w = ready(&[("bridge_hmac_secret", "k3y")]);
    let mut p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "s/t".into(),
        packet_id: 9,
        properties: Props::none(),
        payload: Rc::from(&b"hi \"x\""[..]),
    };
    p.properties.content_type = Some("text/plain".to_owned());
    p.properties.correlation_data = Some(vec![1, 2]);
    p.properties.user_properties = vec![("a".to_owned(), "b".to_owned())];
    w.from_engine(Millis(123), Packet::Publish(p));
    let out = drain(&mut w);
    let [WebhookOutput::Connect(addr)] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!((addr.host.as_str(), addr.port), ("hooks.test", 8080));
    assert_eq!(w.counters().state, "connecting");
    w.transport_up(Millis(130));
    let out = drain(&mut w);
    let sent = sends(&out);
    let expected_body = format!(
        "{{\"event\":\"message\",\"topic\":\"s/t\",\"qos\":1,\"retain\":true,\
         \"payload\":\"hi \\\"x\\\"\",\"payload_encoding\":\"text\",\
         \"properties\":{{\"content_type\":\"text/plain\",\"correlation_data\":\"AQI=\",\
         \"user_properties\":[{{\"name\":\"a\",\"value\":\"b\"}}]}},\
         \"timestamp\":{}}}",
        WALL + 123
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k3y");
    let tag = ring::hmac::sign(&key, expected_body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let expected = format!(
        "POST /in HTTP/1.1\r\nHost: hooks.test:8080\r\nUser-Agent: culex/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\
         X-Culex-Signature: sha256={hex}\r\n\r\n{expected_body}",
        env!("CARGO_PKG_VERSION"),
        expected_body.len()
    );
    assert_eq!(sent, vec![expected]);
    assert!(engine_packets(&out).is_empty(), "no ack before the answer");
    assert_eq!(w.counters().state, "posting");
    let out = answer(&mut w, 140, OK);
    assert_eq!(engine_packets(&out), vec![&Packet::PubAck(pub_ack(9))]);
    let c = w.counters();
    assert_eq!(
        (c.posted, c.failed, c.queued, c.last_status),
        (1, 0, 0, Some(200))
    );
    assert_eq!(c.state, "connected");
}

#[test]
fn signatures_are_hmac_sha256_in_hex() {
    // RFC 4231, test case 2.
    assert_eq!(
        sign("Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn binary_payloads_are_base64_and_qos0_needs_no_ack() {
    let mut w = ready(&[]);
    w.from_engine(Millis(1), publish("s/b", QoS::AtMostOnce, 0, &[0xff, 0]));
    drain(&mut w);
    w.transport_up(Millis(2));
    let sent = sends(&drain(&mut w));
    assert_eq!(
        body(&sent[0]),
        format!(
            "{{\"event\":\"message\",\"topic\":\"s/b\",\"qos\":0,\"retain\":false,\
             \"payload\":\"/wA=\",\"payload_encoding\":\"base64\",\"properties\":{{}},\
             \"timestamp\":{}}}",
            WALL + 1
        )
    );
    assert!(!sent[0].contains("X-Culex-Signature"));
    let out = answer(&mut w, 3, OK);
    assert!(engine_packets(&out).is_empty());
    assert_eq!(w.counters().posted, 1);
}

#[test]
fn batches_are_arrays_of_up_to_batch_events() {
    let mut w = ready(&[("bridge_batch", "3")]);
    for id in 1..=4 {
        w.from_engine(Millis(1), publish("s/t", QoS::AtLeastOnce, id, b"x"));
    }
    assert_eq!(connects(&drain(&mut w)), 1, "one connection for all");
    w.transport_up(Millis(2));
    let sent = sends(&drain(&mut w));
    assert_eq!(sent.len(), 1);
    let events: serde_json::Value = serde_json::from_str(body(&sent[0])).expect("json");
    assert_eq!(events.as_array().map(Vec::len), Some(3));
    assert_eq!(w.counters().queued, 4);
    let out = answer(&mut w, 3, OK);
    let acks: Vec<&Packet> = engine_packets(&out);
    assert_eq!(
        acks,
        vec![
            &Packet::PubAck(pub_ack(1)),
            &Packet::PubAck(pub_ack(2)),
            &Packet::PubAck(pub_ack(3))
        ]
    );
    // The fourth goes at once on the same connection, still as an array.
    let sent = sends(&out);
    let events: serde_json::Value = serde_json::from_str(body(&sent[0])).expect("json");
    assert_eq!(events.as_array().map(Vec::len), Some(1));
    assert_eq!(connects(&out), 0);
    let out = answer(&mut w, 4, OK);
    assert_eq!(engine_packets(&out), vec![&Packet::PubAck(pub_ack(4))]);
    assert_eq!(w.counters().posted, 4);
}

#[test]
fn qos2_is_received_on_2xx_and_completed_on_release() {
    let mut w = ready(&[]);
    w.from_engine(Millis(1), publish("s/t", QoS::ExactlyOnce, 5, b"x"));
    drain(&mut w);
    w.transport_up(Millis(2));
    drain(&mut w);
    let out = answer(&mut w, 3, OK);
    assert_eq!(engine_packets(&out), vec![&Packet::PubRec(pub_ack(5))]);
    w.from_engine(Millis(4), Packet::PubRel(Ack::success(5)));
    let out = drain(&mut w);
    assert_eq!(engine_packets(&out), vec![&Packet::PubComp(pub_ack(5))]);
}

#[test]
fn an_error_status_retries_the_same_body_after_the_backoff() {
    let mut w = ready(&[]);
    let first = post_one(&mut w, 10, 1);
    let out = answer(&mut w, 20, ERROR);
    assert_eq!(closes(&out), 1);
    assert!(
        engine_packets(&out).is_empty(),
        "nothing acknowledged: {out:?}"
    );
    let c = w.counters();
    assert_eq!((c.failed, c.posted, c.last_status), (1, 0, Some(500)));
    assert_eq!(
        c.last_error.as_deref(),
        Some("the web service answered 500")
    );
    assert_eq!(c.state, "waiting");
    assert_eq!(w.next_deadline(), Some(Millis(5020)));
    w.tick(Millis(5019));
    assert!(drain(&mut w).is_empty());
    w.tick(Millis(5020));
    assert_eq!(connects(&drain(&mut w)), 1);
    w.transport_up(Millis(5021));
    let out = drain(&mut w);
    assert_eq!(sends(&out), vec![first]);
    assert!(engine_packets(&out).is_empty());
    let out = answer(&mut w, 5022, OK);
    assert_eq!(engine_packets(&out), vec![&Packet::PubAck(pub_ack(1))]);
    assert_eq!(w.counters().posted, 1);
}

#[test]
fn the_backoff_grows_up_to_its_cap() {
    let mut w = ready(&[("restart_timeout", "1 4")]);
    w.from_engine(Millis(0), publish("s/t", QoS::AtLeastOnce, 1, b"x"));
    drain(&mut w);
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..6 {
        w.transport_down(Millis(now), "refused");
        let next = w.next_deadline().expect("retry").0;
        delays.push(next - now);
        now = next;
        w.tick(Millis(now));
        assert_eq!(connects(&drain(&mut w)), 1);
    }
    assert_eq!(delays[0], 1000);
    assert!(
        delays.iter().all(|d| (1000..=4000).contains(d)),
        "{delays:?}"
    );
    assert_eq!(w.counters().failed, 6);
}

#[test]
fn no_answer_in_time_fails_and_retries() {
    let mut w = ready(&[("bridge_timeout", "2")]);
    let first = post_one(&mut w, 100, 1);
    assert_eq!(w.next_deadline(), Some(Millis(2100)));
    w.tick(Millis(2099));
    assert!(drain(&mut w).is_empty());
    w.tick(Millis(2100));
    let out = drain(&mut w);
    assert_eq!(closes(&out), 1);
    assert_eq!(
        w.counters().last_error.as_deref(),
        Some("no answer in time")
    );
    // An answer on the closed connection is ignored.
    assert!(answer(&mut w, 2101, OK).is_empty());
    w.tick(Millis(7100));
    assert_eq!(connects(&drain(&mut w)), 1);
    w.transport_up(Millis(7101));
    assert_eq!(sends(&drain(&mut w)), vec![first]);
}

#[test]
fn a_connection_that_does_not_come_up_is_retried() {
    let mut w = ready(&[("bridge_timeout", "3")]);
    w.from_engine(Millis(0), publish("s/t", QoS::AtLeastOnce, 1, b"x"));
    drain(&mut w);
    w.transport_down(Millis(5), "connection refused");
    let out = drain(&mut w);
    assert_eq!(closes(&out), 0, "the reactor has no connection to close");
    assert_eq!(
        w.counters().last_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(w.next_deadline(), Some(Millis(5005)));
    w.tick(Millis(5005));
    assert_eq!(connects(&drain(&mut w)), 1);
    // No transport up within the timeout: closed and retried.
    assert_eq!(w.next_deadline(), Some(Millis(8005)));
    w.tick(Millis(8005));
    let out = drain(&mut w);
    assert_eq!(closes(&out), 1);
    assert_eq!(w.counters().failed, 2);
    assert_eq!(
        w.counters().last_error.as_deref(),
        Some("no connection in time")
    );
}

#[test]
fn client_events_are_posted_when_configured() {
    let mut w = ready(&[("bridge_events", "connected,disconnected")]);
    w.event(
        Millis(1),
        BrokerEvent::Subscribed {
            client_id: "c".to_owned(),
            filters: vec![("a/#".to_owned(), 1)],
        },
    );
    w.event(
        Millis(1),
        BrokerEvent::Connected {
            client_id: "local.culex.w".to_owned(),
            address: "x".to_owned(),
            protocol: "mqtt 5.0".to_owned(),
            username: None,
        },
    );
    assert!(drain(&mut w).is_empty(), "not posted");
    w.event(
        Millis(2),
        BrokerEvent::Connected {
            client_id: "c".to_owned(),
            address: "10.0.0.1:5000".to_owned(),
            protocol: "mqtt 5.0".to_owned(),
            username: Some("u".to_owned()),
        },
    );
    w.event(
        Millis(3),
        BrokerEvent::Disconnected {
            client_id: "c".to_owned(),
            reason: "closed by the client".to_owned(),
        },
    );
    assert_eq!(connects(&drain(&mut w)), 1);
    w.transport_up(Millis(4));
    let sent = sends(&drain(&mut w));
    assert_eq!(
        body(&sent[0]),
        format!(
            "{{\"event\":\"connected\",\"client_id\":\"c\",\"address\":\"10.0.0.1:5000\",\
             \"protocol\":\"mqtt 5.0\",\"username\":\"u\",\"timestamp\":{}}}",
            WALL + 2
        )
    );
    let sent = sends(&answer(&mut w, 5, OK));
    assert_eq!(
        body(&sent[0]),
        format!(
            "{{\"event\":\"disconnected\",\"client_id\":\"c\",\
             \"reason\":\"closed by the client\",\"timestamp\":{}}}",
            WALL + 3
        )
    );
    let mut w = ready(&[("bridge_events", "subscribed")]);
    w.event(
        Millis(6),
        BrokerEvent::Subscribed {
            client_id: "c".to_owned(),
            filters: vec![("a/#".to_owned(), 1), ("b".to_owned(), 0)],
        },
    );
    drain(&mut w);
    w.transport_up(Millis(7));
    let sent = sends(&drain(&mut w));
    assert_eq!(
        body(&sent[0]),
        format!(
            "{{\"event\":\"subscribed\",\"client_id\":\"c\",\"filters\":[\
             {{\"filter\":\"a/#\",\"qos\":1}},{{\"filter\":\"b\",\"qos\":0}}],\
             \"timestamp\":{}}}",
            WALL + 6
        )
    );
}

#[test]
fn the_memory_queue_drops_its_oldest_beyond_its_bound() {
    let mut w = ready(&[("bridge_events", "message,disconnected")]);
    assert_eq!(w.memory_max(), 100);
    w.from_engine(Millis(0), publish("s/q1", QoS::AtLeastOnce, 1, b"x"));
    for i in 0..105 {
        w.event(
            Millis(i),
            BrokerEvent::Disconnected {
                client_id: format!("c{i}"),
                reason: "r".to_owned(),
            },
        );
    }
    w.from_engine(Millis(0), publish("s/q0", QoS::AtMostOnce, 0, b"x"));
    let c = w.counters();
    assert_eq!((c.queued, c.dropped), (101, 6));
    drain(&mut w);
    w.transport_up(Millis(200));
    // The QoS 1 message stays; the oldest events went.
    assert!(sends(&drain(&mut w))[0].contains("s/q1"));
    let sent = sends(&answer(&mut w, 201, OK));
    assert!(sent[0].contains("\"client_id\":\"c6\""), "{sent:?}");
}

#[test]
fn chunked_answers_one_byte_at_a_time_and_kept_connections() {
    let mut w = ready(&[]);
    post_one(&mut w, 0, 1);
    let chunked = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let chunked = format!(
        "{chunked}HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n0\r\n\r\n"
    );
    // The 204 answers the post; the 200 that follows answers nothing: an error.
    let mut buf = Vec::new();
    let mut acked = Vec::new();
    for (i, &b) in chunked.as_bytes().iter().enumerate() {
        buf.push(b);
        w.received(Millis(i as u64), &mut buf);
        acked.extend(
            engine_packets(&drain(&mut w))
                .into_iter()
                .cloned()
                .map(|p| (i, p)),
        );
    }
    assert_eq!(acked.len(), 1);
    assert_eq!(w.counters().failed, 1);
    assert_eq!(
        w.counters().last_error.as_deref(),
        Some("an answer without a request")
    );
    // A chunked answer byte by byte, then the connection kept for the next post.
    let mut w = ready(&[]);
    post_one(&mut w, 0, 1);
    let answer_text =
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for &b in answer_text.as_bytes() {
        buf.push(b);
        w.received(Millis(1), &mut buf);
        out.extend(drain(&mut w));
    }
    assert!(buf.is_empty());
    assert_eq!(engine_packets(&out), vec![&Packet::PubAck(pub_ack(1))]);
    w.from_engine(Millis(2), publish("s/t", QoS::AtLeastOnce, 2, b"x"));
    let out = drain(&mut w);
    assert_eq!((connects(&out), sends(&out).len()), (0, 1));
    // `Connection: close`: the next post needs a new connection.
    let out = answer(
        &mut w,
        3,
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(closes(&out), 1);
    assert_eq!(engine_packets(&out), vec![&Packet::PubAck(pub_ack(2))]);
    w.from_engine(Millis(4), publish("s/t", QoS::AtLeastOnce, 3, b"x"));
    assert_eq!(connects(&drain(&mut w)), 1);
}

#[test]
fn idle_and_reused_connections_closed_by_the_server_are_not_failures() {
    let mut w = ready(&[]);
    post_one(&mut w, 0, 1);
    answer(&mut w, 1, OK);
    // Closed while idle.
    w.end_of_stream(Millis(2));
    let out = drain(&mut w);
    assert_eq!(closes(&out), 1);
    assert_eq!(w.counters().failed, 0);
    assert_eq!(w.counters().state, "idle");
    let first = post_one(&mut w, 3, 2);
    answer(&mut w, 4, OK);
    // Closed by the server just as the next post goes out: sent again at once.
    w.from_engine(Millis(5), publish("s/t", QoS::AtLeastOnce, 3, b"x"));
    let sent = sends(&drain(&mut w));
    assert_eq!(sent.len(), 1);
    assert_ne!(sent[0], first);
    w.transport_down(Millis(6), "reset");
    assert_eq!(connects(&drain(&mut w)), 1);
    assert_eq!(w.counters().failed, 0);
    w.transport_up(Millis(7));
    assert_eq!(sends(&drain(&mut w)), sent);
    // On a new connection, the same is a failure.
    w.end_of_stream(Millis(8));
    let out = drain(&mut w);
    assert_eq!((closes(&out), connects(&out)), (1, 0));
    assert_eq!(w.counters().failed, 1);
}

#[test]
fn answers_without_length_end_with_the_connection() {
    let mut w = ready(&[]);
    post_one(&mut w, 0, 1);
    let out = answer(
        &mut w,
        1,
        "HTTP/1.1 200 OK\r\nServer: s\r\n\r\npartial body",
    );
    assert_eq!(closes(&out), 1);
    assert_eq!(engine_packets(&out), vec![&Packet::PubAck(pub_ack(1))]);
    // The end of stream that follows changes nothing.
    w.end_of_stream(Millis(2));
    assert!(drain(&mut w).is_empty());
    assert_eq!(w.counters().failed, 0);
    // Garbage is a failure.
    post_one(&mut w, 3, 2);
    let out = answer(&mut w, 4, "SMTP ready\r\n\r\n");
    assert_eq!(closes(&out), 1);
    assert_eq!(w.counters().failed, 1);
}

#[test]
fn the_local_session_reopens_and_resent_messages_are_not_posted_twice() {
    let mut w = ready(&[("bridge_batch", "2")]);
    w.from_engine(Millis(0), publish("s/t", QoS::AtLeastOnce, 1, b"x"));
    w.from_engine(Millis(0), publish("s/t", QoS::AtLeastOnce, 2, b"x"));
    drain(&mut w);
    w.transport_up(Millis(1));
    drain(&mut w);
    w.from_engine(Millis(1), publish("s/t", QoS::AtLeastOnce, 3, b"x"));
    assert_eq!(w.counters().queued, 3);
    w.local_closed(Millis(2));
    let out = drain(&mut w);
    assert!(matches!(
        out[..],
        [WebhookOutput::Engine(Input::Closed { conn: LOCAL, .. })]
    ));
    let again = ConnId(51);
    w.reopen_local(Millis(3), again);
    let out = drain(&mut w);
    assert!(matches!(
        out[0],
        WebhookOutput::Engine(Input::Opened { conn, .. }) if conn == again
    ));
    // The engine sends 1, 2 and 3 again: 1 and 2 are being posted, 3 is taken anew.
    assert_eq!(w.counters().queued, 2);
    for id in 1..=3 {
        w.from_engine(Millis(4), publish("s/t", QoS::AtLeastOnce, id, b"x"));
    }
    assert_eq!(w.counters().queued, 3);
    let out = answer(&mut w, 5, OK);
    let acks: Vec<&Input> = out
        .iter()
        .filter_map(|o| match o {
            WebhookOutput::Engine(i) => Some(i),
            _ => None,
        })
        .collect();
    assert!(matches!(
        acks[..],
        [
            Input::Packet { conn: a, packet: Packet::PubAck(_) },
            Input::Packet { conn: b, packet: Packet::PubAck(_) },
        ] if *a == again && *b == again
    ));
}

#[test]
fn stop_closes_everything() {
    let mut w = ready(&[("bridge_events", "message,connected")]);
    post_one(&mut w, 0, 1);
    w.stop(Millis(1));
    let out = drain(&mut w);
    assert_eq!(closes(&out), 1);
    assert!(out
        .iter()
        .any(|o| matches!(o, WebhookOutput::Engine(Input::Closed { conn: LOCAL, .. }))));
    assert_eq!(w.next_deadline(), None);
    let c = w.counters();
    assert_eq!((c.state, c.queued), ("stopped", 0));
    w.from_engine(Millis(2), publish("s/t", QoS::AtLeastOnce, 2, b"x"));
    w.event(
        Millis(2),
        BrokerEvent::Connected {
            client_id: "c".to_owned(),
            address: "a".to_owned(),
            protocol: "p".to_owned(),
            username: None,
        },
    );
    w.tick(Millis(100_000));
    w.transport_up(Millis(100_000));
    w.reopen_local(Millis(100_000), ConnId(60));
    assert!(drain(&mut w).is_empty());
    assert_eq!(answer(&mut w, 100_001, OK).len(), 0);
}
