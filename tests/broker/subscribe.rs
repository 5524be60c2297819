//! SUBSCRIBE / UNSUBSCRIBE: return codes, wildcard matching, `$` topics,
//! overlapping subscriptions and invalid filters.

use crate::harness::*;
use crate::hex;

/// Topics of all QoS 0 PUBLISH packets received until silence.
fn received_topics(c: &mut RawClient) -> Vec<String> {
    c.collect_until_silence(SILENCE_MS)
        .iter()
        .map(|p| String::from_utf8(parse_publish(p, false).topic).expect("utf8 topic"))
        .collect()
}

#[test]
fn suback_grants_requested_qos_per_filter() {
    let broker = Broker::start("");
    let base = uniq("sa");
    let mut c = broker.connected_v311(&uniq("c"));
    let filters = [
        (format!("{base}/0"), 0),
        (format!("{base}/1"), 1),
        (format!("{base}/2"), 2),
    ];
    let refs: Vec<(&str, u8)> = filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
    c.send(&subscribe_many(0x1234, &refs, false));
    c.expect(&hex!("90 05 12 34 00 01 02"));
}

#[test]
fn wildcards_match_levels_as_specified() {
    let broker = Broker::start("");
    let b = uniq("wc");
    let cases: [(String, Vec<String>); 4] = [
        (
            format!("{b}/+/c"),
            vec![format!("{b}/a/c"), format!("{b}/b/c"), format!("{b}//c")],
        ),
        (
            format!("{b}/#"),
            [
                "", "/", "/a", "/ab", "/a/c", "/b/c", "//c", "/c", "/a/b/c", "/a/x/y",
            ]
            .iter()
            .map(|s| format!("{b}{s}"))
            .collect(),
        ),
        (
            format!("{b}/+"),
            vec![
                format!("{b}/"),
                format!("{b}/a"),
                format!("{b}/ab"),
                format!("{b}/c"),
            ],
        ),
        (
            format!("{b}/a/#"),
            vec![
                format!("{b}/a"),
                format!("{b}/a/c"),
                format!("{b}/a/b/c"),
                format!("{b}/a/x/y"),
            ],
        ),
    ];
    let mut subs: Vec<RawClient> = cases
        .iter()
        .map(|(filter, _)| {
            let mut s = broker.connected_v311(&uniq("s"));
            s.send(&subscribe(1, filter, 0, false));
            s.expect(&hex!("90 03 00 01 00"));
            s
        })
        .collect();
    let mut p = broker.connected_v311(&uniq("p"));
    for suffix in [
        "", "/", "/a", "/ab", "/a/c", "/b/c", "//c", "/c", "/a/b/c", "/a/x/y",
    ] {
        p.send(&publish(&format!("{b}{suffix}"), b"m", 0, 0, false, None));
    }
    p.ping();
    for ((filter, expected), s) in cases.iter().zip(subs.iter_mut()) {
        let mut got = received_topics(s);
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "filter {filter}");
    }
}

#[test]
fn leading_wildcards_do_not_match_dollar_topics() {
    // [MQTT-4.7.2-1]
    let broker = Broker::start("");
    let u = uniq("dl");
    let dollar = format!("${u}/x");
    let plain = format!("{u}/x");
    let mut all = broker.connected_v311(&uniq("all"));
    all.send(&subscribe(1, "#", 0, false));
    all.expect(&hex!("90 03 00 01 00"));
    let mut plus = broker.connected_v311(&uniq("plus"));
    plus.send(&subscribe(1, "+/x", 0, false));
    plus.expect(&hex!("90 03 00 01 00"));
    let mut explicit = broker.connected_v311(&uniq("dol"));
    explicit.send(&subscribe(1, &format!("${u}/#"), 0, false));
    explicit.expect(&hex!("90 03 00 01 00"));

    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&dollar, b"d", 0, 0, false, None));
    p.send(&publish(&plain, b"p", 0, 0, false, None));
    // Positive control: the `$` topic was accepted and routed.
    explicit.expect(&publish(&dollar, b"d", 0, 0, false, None));
    for c in [&mut all, &mut plus] {
        // Other traffic may be present against a shared broker: skip it, but
        // nothing starting with `$` may arrive before our plain message.
        loop {
            let got = parse_publish(&c.recv_packet(), false);
            assert!(
                !got.topic.starts_with(b"$"),
                "wildcard matched {:?}",
                String::from_utf8_lossy(&got.topic)
            );
            if got.topic == plain.as_bytes() {
                break;
            }
        }
    }
}

#[test]
fn overlapping_subscriptions_deliver_at_maximum_qos() {
    // 3.1.1 [MQTT-3.3.5-1]: at least one copy at the highest granted QoS;
    // further copies are allowed.
    let broker = Broker::start("");
    let b = uniq("ov");
    let topic = format!("{b}/a");
    let mut s = broker.connected_v311(&uniq("s"));
    s.send(&subscribe(1, &format!("{b}/#"), 0, false));
    s.expect(&hex!("90 03 00 01 00"));
    s.send(&subscribe(2, &topic, 1, false));
    s.expect(&hex!("90 03 00 02 01"));
    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"o", 1, 1, false, None));
    p.expect(&hex!("40 02 00 01"));
    let copies: Vec<Publish> = s
        .collect_until_silence(SILENCE_MS)
        .iter()
        .map(|pk| parse_publish(pk, false))
        .collect();
    assert!(
        !copies.is_empty() && copies.len() <= 2,
        "copies: {copies:?}"
    );
    assert!(copies
        .iter()
        .all(|c| c.topic == topic.as_bytes() && c.payload == b"o"));
    assert!(
        copies.iter().any(|c| c.qos == 1),
        "no QoS 1 copy: {copies:?}"
    );
    for c in copies.iter().filter(|c| c.qos == 1) {
        s.send(&puback(c.pid));
    }
}

#[test]
fn resubscribe_replaces_existing_subscription() {
    // [MQTT-3.8.4-3]: same filter again replaces the old one (one copy).
    let broker = Broker::start("");
    let topic = format!("{}/r", uniq("rs"));
    let mut s = broker.connected_v311(&uniq("s"));
    s.send(&subscribe(1, &topic, 1, false));
    s.expect(&hex!("90 03 00 01 01"));
    s.send(&subscribe(2, &topic, 0, false));
    s.expect(&hex!("90 03 00 02 00"));
    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"r", 1, 4, false, None));
    p.expect(&hex!("40 02 00 04"));
    s.expect(&publish(&topic, b"r", 0, 0, false, None));
    s.expect_silence(SILENCE_MS);
}

#[test]
fn unsubscribe_gets_unsuback_and_stops_delivery() {
    let broker = Broker::start("");
    let topic = format!("{}/u", uniq("un"));
    let mut s = broker.connected_v311(&uniq("s"));
    s.send(&subscribe(3, &topic, 0, false));
    s.expect(&hex!("90 03 00 03 00"));
    s.send(&unsubscribe(4, &[&topic], false));
    s.expect(&hex!("b0 02 00 04"));
    let mut p = broker.connected_v311(&uniq("p"));
    p.send(&publish(&topic, b"gone", 0, 0, false, None));
    p.ping();
    s.expect_silence(SILENCE_MS);
}

#[test]
fn v5_unsubscribe_reports_success_and_no_subscription() {
    let broker = Broker::start("");
    let topic = format!("{}/u", uniq("un5"));
    let (mut s, _) = broker.connected_v5(&uniq("s"));
    s.send(&subscribe(3, &topic, 0, true));
    assert_eq!(parse_suback(&s.recv_packet(), 0x90, true), (3, vec![0]));
    let other = format!("{topic}/none");
    s.send(&unsubscribe(4, &[&topic, &other], true));
    assert_eq!(
        parse_suback(&s.recv_packet(), 0xb0, true),
        (4, vec![0x00, 0x11])
    );
}

#[test]
fn v5_invalid_filter_gets_suback_0x8f() {
    let broker = Broker::start("");
    let (mut c, _) = broker.connected_v5(&uniq("bad"));
    c.send(&subscribe(5, "a/#/b", 0, true));
    match c.recv_within(READ_TIMEOUT) {
        Recv::Packet(p) if p[0] == 0x90 => {
            assert_eq!(
                parse_suback(&p, 0x90, true),
                (5, vec![0x8f]),
                "{}",
                to_hex(&p)
            );
            c.ping();
        }
        // An invalid filter is also a malformed packet; a conforming broker may
        // disconnect instead. culex answers with SUBACK 0x8F.
        Recv::Packet(p) if is_external() && p[0] == 0xe0 => {
            assert!(
                matches!(parse_disconnect(&p), 0x81 | 0x8f),
                "{}",
                to_hex(&p)
            );
            c.expect_closed();
        }
        Recv::Closed if is_external() => {}
        other => panic!("expected SUBACK 0x8F, got {other:?}"),
    }
}

#[test]
fn v311_invalid_filter_gets_failure_code_or_close() {
    let broker = Broker::start("");
    let mut c = broker.connected_v311(&uniq("bad"));
    c.send(&subscribe(5, "a/#/b", 0, false));
    match c.recv_within(READ_TIMEOUT) {
        Recv::Packet(p) => {
            assert_eq!(p, hex!("90 03 00 05 80"), "{}", to_hex(&p));
            c.ping();
        }
        Recv::Closed => {}
        Recv::Timeout => panic!("no answer to an invalid filter"),
    }
}
