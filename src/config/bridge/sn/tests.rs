//! Tests of `bridge_predefined_topic`: in `connection` blocks and from the API.

use super::super::{bridge_from_options, BridgeConfig, BridgeKind, SnBridgeConfig};
use crate::config::parse;

const HEAD: &str = "connection b\nbridge_type mqttsn\naddress gw\nremote_clientid c\n";

fn sn(config: BridgeConfig) -> SnBridgeConfig {
    match config.kind {
        BridgeKind::MqttSn(s) => s,
        k => panic!("{k:?}"),
    }
}

fn err(text: &str) -> String {
    match parse(text, "t.conf") {
        Ok(config) => panic!("{text:?} parsed: {:?}", config.bridges),
        Err(e) => e.to_string(),
    }
}

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn predefined_topics_parse_sorted_by_id() {
    let text = format!(
        "{HEAD}bridge_predefined_topic 10 sensors/temp\n\
         bridge_predefined_topic   1\t$SYS/x  \nbridge_predefined_topic 65534 a\n"
    );
    let mut config = parse(&text, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    let s = sn(config.bridges.remove(0));
    let expected = [(1, "$SYS/x"), (10, "sensors/temp"), (65534, "a")];
    let expected: Vec<_> = expected
        .iter()
        .map(|(i, t)| (*i, (*t).to_owned()))
        .collect();
    assert_eq!(s.predefined, expected);
    let mut config = parse(HEAD, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    assert!(sn(config.bridges.remove(0)).predefined.is_empty());
}

#[test]
fn predefined_topic_errors() {
    let key = "bridge_predefined_topic";
    for (lines, message) in [
        (
            "0 a",
            "5: bridge_predefined_topic: expected a number from 1 to 65534, got \"0\"",
        ),
        (
            "65535 a",
            "5: bridge_predefined_topic: expected a number from 1 to 65534",
        ),
        (
            "x a",
            "5: bridge_predefined_topic: expected a number from 1 to 65534, got \"x\"",
        ),
        ("-1 a", "5: bridge_predefined_topic: expected a number"),
        (
            "1",
            "5: bridge_predefined_topic: expected ID TOPIC, got \"1\"",
        ),
        (
            "1 a b",
            "5: bridge_predefined_topic: expected ID TOPIC, got \"1 a b\"",
        ),
        (
            "1 a/+",
            "5: bridge_predefined_topic: expected a topic name without + or #",
        ),
        (
            "1 #",
            "5: bridge_predefined_topic: expected a topic name without + or #",
        ),
        (
            "1 a\n2 b\n1 c",
            "7: bridge_predefined_topic: topic id 1 is already \"a\"",
        ),
        (
            "1 a/b\n2 a/b",
            "6: bridge_predefined_topic: topic \"a/b\" already has id 1",
        ),
    ] {
        let lines: String = lines.lines().map(|l| format!("{key} {l}\n")).collect();
        let got = err(&format!("{HEAD}{lines}"));
        assert!(got.contains(message), "{lines:?}: {got}");
    }
    let wrong = "bridge_predefined_topic: only for bridge_type mqttsn";
    for block in [
        "address a\nbridge_predefined_topic 1 a\n",
        "bridge_predefined_topic 1 a\nbridge_type mqtt\naddress a\n",
        "bridge_type http\nbridge_url http://h/\nbridge_predefined_topic 1 a\ntopic x out\n",
    ] {
        let got = err(&format!("connection b\n{block}"));
        assert!(
            got.contains(&format!("t.conf:1: {wrong}")),
            "{block:?}: {got}"
        );
    }
}

#[test]
fn predefined_topics_from_options_like_config_lines() {
    let pairs = [
        ("bridge_type", "mqttsn"),
        ("address", "gw"),
        ("bridge_predefined_topic", "7 b/c"),
        ("bridge_predefined_topic", " 2  a "),
        ("remote_clientid", "c"),
    ];
    let from_api = bridge_from_options("b", &options(&pairs));
    let text = "connection b\nbridge_type mqttsn\naddress gw\nbridge_predefined_topic 7 b/c\n\
                bridge_predefined_topic 2 a\nremote_clientid c\n";
    let mut config = parse(text, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_api, Ok(config.bridges.remove(0)));
    let from_api = from_api.map(sn).map(|s| s.predefined);
    assert_eq!(
        from_api,
        Ok(vec![(2, "a".to_owned()), (7, "b/c".to_owned())])
    );
    let fails = |pairs: &[(&str, &str)]| bridge_from_options("b", &options(pairs));
    assert_eq!(
        fails(&[("address", "a"), ("bridge_predefined_topic", "1 a")]),
        Err("bridge_predefined_topic: only for bridge_type mqttsn".to_owned())
    );
    let twice = [
        ("bridge_type", "mqttsn"),
        ("address", "gw"),
        ("bridge_predefined_topic", "1 a"),
        ("bridge_predefined_topic", "1 b"),
    ];
    assert_eq!(
        fails(&twice),
        Err("bridge_predefined_topic: topic id 1 is already \"a\"".to_owned())
    );
    assert_eq!(
        fails(&[
            ("bridge_type", "mqttsn"),
            ("bridge_predefined_topic", "0 a")
        ]),
        Err("bridge_predefined_topic: expected a number from 1 to 65534, got \"0\"".to_owned())
    );
}
