//! Tests of the bridge options: `connection` blocks in files and the same options from the API.

use super::*;
use crate::config::{parse, Config, ListenerConfig};

fn ok(text: &str) -> Config {
    parse(text, "t.conf").unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text, "t.conf") {
        Ok(config) => panic!("{text:?} parsed: {:?}", config.bridges),
        Err(e) => e.to_string(),
    }
}

/// The only bridge of `block`, written after `connection b`.
fn bridge(block: &str) -> BridgeConfig {
    let mut bridges = ok(&format!("connection b\n{block}")).bridges;
    assert_eq!(bridges.len(), 1);
    bridges.remove(0)
}

fn address(host: &str, port: u16) -> RemoteAddress {
    RemoteAddress {
        host: host.to_owned(),
        port,
    }
}

fn mapping(
    pattern: &str,
    direction: Direction,
    qos: QoS,
    local: &str,
    remote: &str,
) -> TopicMapping {
    TopicMapping {
        pattern: pattern.to_owned(),
        direction,
        qos,
        local_prefix: local.to_owned(),
        remote_prefix: remote.to_owned(),
    }
}

#[test]
fn a_full_mosquitto_block() {
    let config = ok("listener 1883\n\
         connection cloud\n\
         address mqtt.example.com:8883 10.0.0.2\n\
         round_robin true\n\
         bridge_protocol_version mqttv50\n\
         remote_clientid gw-7\n\
         local_clientid gw-7.here\n\
         remote_username gw\n\
         remote_password s3cret\n\
         cleansession true\n\
         keepalive_interval 30\n\
         try_private false\n\
         notifications false\n\
         notification_topic bridges/gw-7\n\
         notifications_local_only true\n\
         restart_timeout 10 120\n\
         bridge_cafile /etc/ca.crt\n\
         bridge_capath /etc/ca.d\n\
         bridge_certfile /etc/gw.crt\n\
         bridge_keyfile /etc/gw.key\n\
         bridge_insecure true\n\
         bridge_alpn x-amzn-mqtt-ca\n\
         bridge_max_queued_messages 500\n\
         bridge_transport websockets /ws\n\
         topic sensors/# out 1\n\
         topic cmd/+ in 2 local/ remote/\n\
         topic state both\n\
         topic all\n");
    let expected = BridgeConfig {
        name: "cloud".to_owned(),
        addresses: vec![address("mqtt.example.com", 8883), address("10.0.0.2", 1883)],
        round_robin: true,
        topics: vec![
            mapping("sensors/#", Direction::Out, QoS::AtLeastOnce, "", ""),
            mapping(
                "cmd/+",
                Direction::In,
                QoS::ExactlyOnce,
                "local/",
                "remote/",
            ),
            mapping("state", Direction::Both, QoS::AtMostOnce, "", ""),
            mapping("all", Direction::Out, QoS::AtMostOnce, "", ""),
        ],
        protocol: BridgeProtocol::V5,
        transport: BridgeTransport::WebSockets {
            path: "/ws".to_owned(),
        },
        tls: Some(BridgeTls {
            cafile: Some("/etc/ca.crt".into()),
            capath: Some("/etc/ca.d".into()),
            certfile: Some("/etc/gw.crt".into()),
            keyfile: Some("/etc/gw.key".into()),
            insecure: true,
            alpn: Some("x-amzn-mqtt-ca".to_owned()),
        }),
        remote_clientid: "gw-7".to_owned(),
        local_clientid: "gw-7.here".to_owned(),
        remote_username: Some("gw".to_owned()),
        remote_password: Some("s3cret".to_owned()),
        cleansession: true,
        keepalive_secs: 30,
        try_private: false,
        notifications: false,
        notification_topic: "bridges/gw-7".to_owned(),
        notifications_local_only: true,
        restart_timeout_base_secs: 10,
        restart_timeout_cap_secs: Some(120),
        max_queued_messages: 500,
        kind: BridgeKind::Mqtt,
    };
    assert_eq!(config.bridges, vec![expected]);
    assert_eq!(config.listeners, vec![ListenerConfig::new(1883, None)]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn defaults() {
    let b = bridge("address broker\n");
    assert_eq!(b, BridgeConfig::new("b", "broker", 1883));
    assert_eq!(b.remote_clientid, "culex.b");
    assert_eq!(b.local_clientid, "local.culex.b");
    assert_eq!(b.notification_topic, "$SYS/broker/connection/culex.b/state");
    assert_eq!(
        (b.protocol, b.tls, b.keepalive_secs),
        (BridgeProtocol::V311, None, 60)
    );
    assert!(b.try_private && b.notifications && !b.cleansession && !b.round_robin);
    assert_eq!(ok("").bridges, vec![]);
}

#[test]
fn aliases_and_single_values() {
    let b = bridge(
        "addresses h:1\nclientid c\nusername u\npassword p\nrestart_timeout 7\n\
         bridge_transport websockets\nbridge_insecure true\n",
    );
    assert_eq!(b.addresses, vec![address("h", 1)]);
    assert_eq!(b.remote_clientid, "c");
    assert_eq!(
        (b.remote_username.as_deref(), b.remote_password.as_deref()),
        (Some("u"), Some("p"))
    );
    assert_eq!(
        (b.restart_timeout_base_secs, b.restart_timeout_cap_secs),
        (7, None)
    );
    assert_eq!(
        b.transport,
        BridgeTransport::WebSockets {
            path: "/mqtt".to_owned()
        }
    );
    let insecure = BridgeTls {
        insecure: true,
        ..BridgeTls::default()
    };
    assert_eq!(b.tls, Some(insecure));
    // The last address line wins; bridge_insecure false alone leaves TLS off.
    let b = bridge("address a\naddress b:2 c\nbridge_insecure false\nbridge_transport tcp\n");
    assert_eq!(b.addresses, vec![address("b", 2), address("c", 1883)]);
    assert_eq!((b.tls, b.transport), (None, BridgeTransport::Tcp));
    let b = bridge("address a\nbridge_capath /ca\n");
    assert_eq!(b.tls.and_then(|t| t.capath), Some(PathBuf::from("/ca")));
    let b = bridge("address a\nkeepalive_interval 5\nrestart_timeout 1 1\n");
    assert_eq!((b.keepalive_secs, b.restart_timeout_cap_secs), (5, Some(1)));
}

#[test]
fn ipv6_addresses() {
    let b = bridge(
        "address [::1]:1884 ::1 [fe80::2] 2001:db8::7 127.0.0.1:9 [1:2:3:4:5:6:7:8]:65535 \
         ::ffff:10.0.0.1 [::]:2\n",
    );
    let expected = [
        ("::1", 1884),
        ("::1", 1883),
        ("fe80::2", 1883),
        ("2001:db8::7", 1883),
        ("127.0.0.1", 9),
        ("1:2:3:4:5:6:7:8", 65535),
        ("::ffff:10.0.0.1", 1883),
        ("::", 2),
    ];
    let expected: Vec<_> = expected.iter().map(|&(h, p)| address(h, p)).collect();
    assert_eq!(b.addresses, expected);
    for bad in [
        "a:b:c",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "[::g]",
        "::12345",
        "[1:2:3:4:5:6:7]",
        "::1.2.3.256",
        "[::1]1883",
        "[host]:1",
    ] {
        let e = err(&format!("connection b\naddress {bad}\n"));
        assert!(
            e.starts_with("t.conf:2: address: expected host[:port]"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn empty_patterns_and_prefixes() {
    let b = bridge(
        "address a\ntopic \"\" out 0 sensors/temp site1/temp\n\
         topic # in 1 \"\" site1/\ntopic x/# both 2 here/ \"\"\n",
    );
    assert_eq!(
        b.topics,
        vec![
            mapping(
                "",
                Direction::Out,
                QoS::AtMostOnce,
                "sensors/temp",
                "site1/temp"
            ),
            mapping("#", Direction::In, QoS::AtLeastOnce, "", "site1/"),
            mapping("x/#", Direction::Both, QoS::ExactlyOnce, "here/", ""),
        ]
    );
}

#[test]
fn clientid_defaults_do_not_depend_on_order() {
    let after = bridge("address a\nremote_clientid r\n");
    let before = ok("connection b\nremote_clientid r\naddress a\n").bridges;
    assert_eq!(vec![after.clone()], before);
    assert_eq!(after.local_clientid, "local.r");
    assert_eq!(after.notification_topic, "$SYS/broker/connection/r/state");
    let set_first =
        bridge("local_clientid l\nnotification_topic n\nremote_clientid r\naddress a\n");
    assert_eq!(
        (
            set_first.local_clientid.as_str(),
            set_first.notification_topic.as_str()
        ),
        ("l", "n")
    );
}

#[test]
fn several_bridges_listeners_and_global_options() {
    let config = ok("connection one\n\
         address a\n\
         max_qos 1\n\
         connection two\n\
         address b\n\
         listener 1884\n\
         max_connections 3\n\
         connection three\n\
         address c\n");
    let names: Vec<_> = config.bridges.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["one", "two", "three"]);
    // A global option in a bridge block stays global.
    assert_eq!(config.limits.max_qos, QoS::AtLeastOnce);
    let mut listener = ListenerConfig::new(1884, None);
    listener.max_connections = Some(3);
    assert_eq!(config.listeners, vec![listener]);
}

#[test]
fn ignored_options_warn() {
    let config =
        ok("connection b\naddress a\nstart_type automatic\nbridge_attempt_unsubscribe false\n");
    assert_eq!(
        config.warnings,
        [
            "t.conf:3: option start_type is accepted and ignored",
            "t.conf:4: option bridge_attempt_unsubscribe is accepted and ignored",
        ]
    );
}

#[test]
fn errors_name_file_and_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("address", 3, "address: missing value"),
        (
            "address h:0",
            3,
            "address: expected a port from 1 to 65535, got \"0\"",
        ),
        (
            "address h:65536",
            3,
            "address: expected a port from 1 to 65535, got \"65536\"",
        ),
        (
            "address h:",
            3,
            "address: expected a port from 1 to 65535, got \"\"",
        ),
        (
            "address [::1]x",
            3,
            "address: expected host[:port], [IPv6 address]:port or an IPv6 address, \
             got \"[::1]x\"",
        ),
        (
            "address :1883",
            3,
            "address: expected host[:port], [IPv6 address]:port or an IPv6 address, \
             got \":1883\"",
        ),
        (
            "address a:b:c",
            3,
            "address: expected host[:port], [IPv6 address]:port or an IPv6 address, \
             got \"a:b:c\"",
        ),
        (
            "round_robin yes",
            3,
            "round_robin: expected true or false, got \"yes\"",
        ),
        ("topic", 3, "topic: missing value"),
        (
            "topic a up",
            3,
            "topic: expected in, out or both, got \"up\"",
        ),
        (
            "topic a in 3",
            3,
            "topic: expected a QoS of 0, 1 or 2, got \"3\"",
        ),
        (
            "topic a in 1 l/",
            3,
            "topic: the local prefix \"l/\" needs a remote prefix after it (\"\" for none)",
        ),
        (
            "topic a in 1 l/ r/ x",
            3,
            "topic: unexpected extra value \"x\"",
        ),
        (
            "topic a in 1 l/+/ r/",
            3,
            "topic: a prefix must not contain + or #, got \"l/+/\"",
        ),
        (
            "topic \"\"",
            3,
            "topic: an empty pattern (\"\") needs a local or remote prefix",
        ),
        (
            "topic \"\" out 0 \"\" \"\"",
            3,
            "topic: an empty pattern (\"\") needs a local or remote prefix",
        ),
        (
            "topic \"\" out 0 \"\" r",
            3,
            "topic: the local topic filter \"\" (prefix and pattern) is not valid",
        ),
        (
            "topic a/#/b",
            3,
            "topic: the local topic filter \"a/#/b\" (prefix and pattern) is not valid",
        ),
        (
            "topic +x out 0 a/ b/",
            3,
            "topic: the local topic filter \"a/+x\" (prefix and pattern) is not valid",
        ),
        (
            "bridge_protocol_version mqttv31",
            3,
            "bridge_protocol_version: mqttv31 is not supported",
        ),
        (
            "bridge_protocol_version 5",
            3,
            "bridge_protocol_version: expected mqttv311 or mqttv50, got \"5\"",
        ),
        ("remote_clientid", 3, "remote_clientid: missing value"),
        (
            "remote_password a b",
            3,
            "remote_password: unexpected extra value \"b\"",
        ),
        (
            "keepalive_interval 4",
            3,
            "keepalive_interval: expected a number from 5 to 65535, got \"4\"",
        ),
        (
            "keepalive_interval 65536",
            3,
            "keepalive_interval: expected a number from 5 to 65535, got \"65536\"",
        ),
        (
            "notification_topic a/#",
            3,
            "notification_topic: expected a topic name without + or #, got \"a/#\"",
        ),
        (
            "restart_timeout 0",
            3,
            "restart_timeout: expected a number from 1 to 4294967295, got \"0\"",
        ),
        (
            "restart_timeout 5 4",
            3,
            "restart_timeout: the cap (4) must not be below the base (5)",
        ),
        (
            "restart_timeout 5 6 7",
            3,
            "restart_timeout: unexpected extra value \"7\"",
        ),
        ("restart_timeout", 3, "restart_timeout: missing value"),
        (
            "bridge_transport udp",
            3,
            "bridge_transport: expected tcp or websockets, got \"udp\"",
        ),
        (
            "bridge_transport tcp /p",
            3,
            "bridge_transport: unexpected extra value \"/p\"",
        ),
        (
            "bridge_transport websockets p",
            3,
            "bridge_transport: the path must start with /, got \"p\"",
        ),
        ("bridge_transport", 3, "bridge_transport: missing value"),
        (
            "bridge_max_queued_messages -1",
            3,
            "bridge_max_queued_messages: expected a number from 0 to 4294967295, got \"-1\"",
        ),
        (
            "bridge_insecure 1",
            3,
            "bridge_insecure: expected true or false, got \"1\"",
        ),
        (
            "start_type lazy",
            3,
            "start_type lazy is not supported in this version",
        ),
        (
            "start_type sometimes",
            3,
            "start_type: expected automatic, lazy, once or manual, got \"sometimes\"",
        ),
        (
            "bridge_attempt_unsubscribe maybe",
            3,
            "bridge_attempt_unsubscribe: expected true or false, got \"maybe\"",
        ),
        (
            "bridge_psk 0a",
            1,
            "bridge_identity, bridge_psk: only for bridge_type mqttsn",
        ),
        (
            "local_username u",
            3,
            "local_username is not supported in this version",
        ),
        (
            "idle_timeout 60",
            3,
            "idle_timeout is not supported in this version",
        ),
        ("certfile c", 3, "certfile: not a bridge option"),
        ("protocol mqtt", 3, "protocol: not a bridge option"),
        (
            "bridge_certfile c",
            1,
            "connection: bridge_certfile and bridge_keyfile must be given together",
        ),
        (
            "bridge_keyfile k\nbridge_cafile a",
            1,
            "connection: bridge_certfile and bridge_keyfile must be given together",
        ),
        (
            "bridge_certfile c\nbridge_keyfile k",
            1,
            "connection: bridge_certfile: the remote broker's certificate needs \
             bridge_cafile or bridge_capath (or bridge_insecure true)",
        ),
        (
            "bridge_alpn mqtt",
            1,
            "connection: bridge_alpn requires TLS (bridge_cafile, bridge_capath or \
             bridge_insecure true)",
        ),
        (
            "remote_password p",
            1,
            "connection: remote_password requires remote_username with mqttv311",
        ),
    ];
    for (line, at, message) in cases {
        let text = format!("connection b\naddress a\n{line}\nmax_qos 1\n");
        assert_eq!(err(&text), format!("t.conf:{at}: {message}"), "{line}");
    }
    // With MQTT 5.0 a password needs no user name.
    bridge("address a\nbridge_protocol_version mqttv50\nremote_password p\n");
}

#[test]
fn block_errors() {
    let cases: &[(&str, &str)] = &[
        ("connection", "t.conf:1: connection: missing value"),
        (
            "connection a b\naddress h",
            "t.conf:1: connection: unexpected extra value \"b\"",
        ),
        (
            "connection a/b\naddress h",
            "t.conf:1: connection: expected a name without /, + or #, got \"a/b\"",
        ),
        (
            "connection #1\naddress h",
            "t.conf:1: connection: expected a name without /, + or #, got \"#1\"",
        ),
        (
            "\nconnection a\nround_robin true\n",
            "t.conf:2: connection: bridge \"a\" has no address",
        ),
        (
            "connection a\nconnection b\naddress h",
            "t.conf:1: connection: bridge \"a\" has no address",
        ),
        (
            "connection a\nlistener 1",
            "t.conf:1: connection: bridge \"a\" has no address",
        ),
        (
            "connection a\naddress h\nlistener 1\nconnection a\naddress h",
            "t.conf:4: connection: bridge \"a\" is already defined at t.conf:1",
        ),
        (
            "address h",
            "t.conf:1: address: only allowed in a connection block",
        ),
        (
            "topic a",
            "t.conf:1: topic: only allowed in a connection block",
        ),
        (
            "start_type automatic",
            "t.conf:1: start_type: only allowed in a connection block",
        ),
        (
            "listener 1\nconnection a\naddress h\nmax_connections 3",
            "t.conf:4: max_connections: not a bridge option",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(&err(text), message, "{text}");
    }
}

#[test]
fn from_options_like_config_lines() {
    let options = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let b = bridge_from_options(
        "api",
        &options(&[
            ("address", "h:1 [::1]"),
            ("topic", "a/# out 1"),
            ("topic", " b in 2 \"\" r/ "),
            ("remote_clientid", "r"),
            ("start_type", "automatic"),
        ]),
    );
    let text = "connection api\naddress h:1 [::1]\ntopic a/# out 1\ntopic b in 2 \"\" r/\n\
                remote_clientid r\nstart_type automatic\n";
    assert_eq!(Ok(ok(text).bridges.remove(0)), b);
    let fails = |name: &str, pairs: &[(&str, &str)]| bridge_from_options(name, &options(pairs));
    assert_eq!(
        fails("a", &[]),
        Err("connection: bridge \"a\" has no address".to_owned())
    );
    assert_eq!(
        fails("a/b", &[]),
        Err("connection: expected a name without /, + or #, got \"a/b\"".to_owned())
    );
    assert_eq!(fails("", &[]), Err("connection: missing value".to_owned()));
    assert_eq!(
        fails("a", &[("max_qos", "1")]),
        Err("max_qos: not a bridge option".to_owned())
    );
    assert_eq!(
        fails("a", &[("connection", "b")]),
        Err("connection: not a bridge option".to_owned())
    );
    assert_eq!(
        fails("a", &[("nope", "1")]),
        Err("unknown option \"nope\"".to_owned())
    );
    assert_eq!(
        fails("a", &[("topic", "a up")]),
        Err("topic: expected in, out or both, got \"up\"".to_owned())
    );
}

#[test]
fn odd_input_never_panics() {
    for value in [
        "[",
        "]",
        "[]",
        "[:",
        ":",
        "\u{1F600}:1",
        "[::1]:",
        "\0",
        "\"\"",
        "é",
    ] {
        for key in [
            "address",
            "topic",
            "bridge_transport",
            "restart_timeout",
            "notification_topic",
        ] {
            let _ = parse(&format!("connection b\n{key} {value}\n"), "t.conf");
        }
    }
}

/// The webhook settings of an http bridge.
fn hook(b: &BridgeConfig) -> &WebhookConfig {
    match &b.kind {
        BridgeKind::Http(h) => h,
        _ => panic!("not an http bridge: {b:?}"),
    }
}

#[test]
fn a_full_webhook_block() {
    let b = bridge(
        "bridge_type http\n\
         bridge_url https://hooks.example.com:8443/in/culex?k=1\n\
         bridge_cafile /etc/ca.crt\n\
         bridge_events subscribed, message,connected\n\
         bridge_hmac_secret s3cret\n\
         bridge_batch 50\n\
         bridge_timeout 30\n\
         local_clientid hook.here\n\
         restart_timeout 2 20\n\
         topic sensors/# out 1 site/ remote/\n\
         topic state both 2\n",
    );
    assert_eq!(b.addresses, vec![address("hooks.example.com", 8443)]);
    assert_eq!(b.local_clientid, "hook.here");
    assert_eq!(
        (b.restart_timeout_base_secs, b.restart_timeout_cap_secs),
        (2, Some(20))
    );
    assert_eq!(
        b.topics,
        vec![
            mapping(
                "sensors/#",
                Direction::Out,
                QoS::AtLeastOnce,
                "site/",
                "remote/"
            ),
            mapping("state", Direction::Both, QoS::ExactlyOnce, "", ""),
        ]
    );
    let tls = b.tls.as_ref().expect("tls");
    assert_eq!(tls.cafile, Some(PathBuf::from("/etc/ca.crt")));
    assert_eq!(
        hook(&b),
        &WebhookConfig {
            path: "/in/culex?k=1".to_owned(),
            host: "hooks.example.com:8443".to_owned(),
            https: true,
            events: vec![
                WebhookEvent::Message,
                WebhookEvent::Connected,
                WebhookEvent::Subscribed
            ],
            hmac_secret: Some("s3cret".to_owned()),
            batch: 50,
            timeout_secs: 30,
        }
    );
}

#[test]
fn webhook_defaults_and_urls() {
    let b = bridge("bridge_type http\nbridge_url http://h\ntopic a\n");
    assert_eq!(b.addresses, vec![address("h", 80)]);
    assert_eq!(b.tls, None);
    assert_eq!(b.local_clientid, "local.culex.b");
    assert!(!b.notifications);
    assert_eq!(
        hook(&b),
        &WebhookConfig {
            path: "/".to_owned(),
            host: "h".to_owned(),
            https: false,
            events: vec![WebhookEvent::Message],
            hmac_secret: None,
            batch: 1,
            timeout_secs: 10,
        }
    );
    let cases: &[(&str, RemoteAddress, &str, &str)] = &[
        ("http://h:80/x", address("h", 80), "h", "/x"),
        ("http://h:8080", address("h", 8080), "h:8080", "/"),
        (
            "HTTP://10.0.0.1:81/",
            address("10.0.0.1", 81),
            "10.0.0.1:81",
            "/",
        ),
        (
            "http://[::1]:8080/a/b",
            address("::1", 8080),
            "[::1]:8080",
            "/a/b",
        ),
        ("http://[fe80::1]", address("fe80::1", 80), "[fe80::1]", "/"),
        ("https://h:443/p", address("h", 443), "h", "/p"),
        ("https://h/p", address("h", 443), "h", "/p"),
        ("https://h:80/p", address("h", 80), "h:80", "/p"),
    ];
    for (url, addr, host, path) in cases {
        let tls = if url.starts_with("https") {
            "bridge_insecure true\n"
        } else {
            ""
        };
        let b = bridge(&format!(
            "bridge_type http\nbridge_url {url}\n{tls}bridge_events connected\n"
        ));
        assert_eq!(&b.addresses, std::slice::from_ref(addr), "{url}");
        let h = hook(&b);
        assert_eq!((h.host.as_str(), h.path.as_str()), (*host, *path), "{url}");
        assert_eq!(b.tls.is_some(), h.https, "{url}");
    }
    // The type may come after the options of its kind; mqtt is the default.
    let b = bridge("topic a\nbridge_url http://h\nbridge_type http\n");
    assert_eq!(hook(&b).host, "h");
    assert_eq!(
        bridge("bridge_type mqtt\naddress h\n").kind,
        BridgeKind::Mqtt
    );
    assert_eq!(bridge("address h\n").kind, BridgeKind::Mqtt);
    // An MQTT bridge leaves the webhook options unused.
    let b = bridge("address h\nbridge_url http://w\nbridge_batch 5\n");
    assert_eq!(
        (b.kind, b.addresses),
        (BridgeKind::Mqtt, vec![address("h", 1883)])
    );
}

#[test]
fn webhook_errors() {
    let http = "connection w\nbridge_type http\n";
    let with_url = "connection w\nbridge_type http\nbridge_url http://h\ntopic a\n";
    let cases: &[(&str, &str)] = &[
        (
            "connection w\nbridge_type ftp",
            "t.conf:2: bridge_type: expected mqtt, http or mqttsn, got \"ftp\"",
        ),
        (
            http,
            "t.conf:1: connection: bridge \"w\" of bridge_type http has no bridge_url",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://h\n",
            "t.conf:1: connection: bridge \"w\" posts messages (bridge_events message) but \
             has no topic line",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://h\naddress h\n",
            "t.conf:1: address: not for bridge_type http (use bridge_url)",
        ),
        (
            "connection w\nbridge_type http\nbridge_url ftp://h\n",
            "t.conf:3: bridge_url: expected an http or https URL, got \"ftp://h\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url h:80\n",
            "t.conf:3: bridge_url: expected http[s]://host[:port][/path], got \"h:80\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://u@h/\n",
            "t.conf:3: bridge_url: user information is not supported in the URL, \
             got \"http://u@h/\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://h/a#f\n",
            "t.conf:3: bridge_url: expected http[s]://host[:port][/path] without a fragment, \
             got \"http://h/a#f\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://::1/\n",
            "t.conf:3: bridge_url: an IPv6 address must be in brackets, got \"http://::1/\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://h:0/\n",
            "t.conf:3: bridge_url: expected a port from 1 to 65535, got \"0\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http:///x\n",
            "t.conf:3: bridge_url: expected host[:port], [IPv6 address]:port or an IPv6 \
             address, got \"\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_url https://h/\ntopic a\n",
            "t.conf:1: connection: an https bridge_url needs bridge_cafile or bridge_capath \
             (or bridge_insecure true)",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://h/\ntopic a\nbridge_capath /c\n",
            "t.conf:1: connection: the TLS options (bridge_cafile and friends) need an https \
             bridge_url",
        ),
        (
            "connection w\nbridge_type http\nbridge_url http://h\nbridge_events message,\n",
            "t.conf:4: bridge_events: expected message, connected, disconnected or \
             subscribed, got \"\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_events message connected\n",
            "t.conf:3: bridge_events: expected message, connected, disconnected or \
             subscribed, got \"message connected\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_batch 0\n",
            "t.conf:3: bridge_batch: expected a number from 1 to 1000, got \"0\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_batch 1001\n",
            "t.conf:3: bridge_batch: expected a number from 1 to 1000, got \"1001\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_timeout 601\n",
            "t.conf:3: bridge_timeout: expected a number from 1 to 600, got \"601\"",
        ),
        (
            "connection w\nbridge_type http\nbridge_hmac_secret\n",
            "t.conf:3: bridge_hmac_secret: missing value",
        ),
        (
            "connection w\nbridge_type http\nbridge_hmac_secret a b\n",
            "t.conf:3: bridge_hmac_secret: unexpected extra value \"b\"",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(&err(text), message, "{text}");
    }
    // A topic line in direction in, and each MQTT-only option.
    assert_eq!(
        err(&format!("{with_url}topic b in\n")),
        "t.conf:1: topic: b: direction in is not for bridge_type http (out or both)"
    );
    for (key, value) in [
        ("addresses", "h"),
        ("round_robin", "true"),
        ("bridge_protocol_version", "mqttv50"),
        ("remote_clientid", "r"),
        ("clientid", "r"),
        ("remote_username", "u"),
        ("username", "u"),
        ("remote_password", "p"),
        ("password", "p"),
        ("cleansession", "true"),
        ("keepalive_interval", "30"),
        ("try_private", "false"),
        ("notifications", "false"),
        ("notification_topic", "n"),
        ("notifications_local_only", "true"),
        ("bridge_transport", "tcp"),
    ] {
        let expected = if key == "addresses" {
            format!("t.conf:1: {key}: not for bridge_type http (use bridge_url)")
        } else {
            format!("t.conf:1: {key}: not for bridge_type http")
        };
        assert_eq!(err(&format!("{with_url}{key} {value}\n")), expected);
    }
}

#[test]
fn webhook_from_options_like_config_lines() {
    let options: Vec<(String, String)> = [
        ("bridge_type", "http"),
        ("bridge_url", " https://h:8443/x "),
        ("bridge_insecure", "true"),
        ("bridge_events", "message, disconnected"),
        ("bridge_batch", "10"),
        ("topic", "a/# out 1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let from_api = bridge_from_options("w", &options);
    let text = "connection w\nbridge_type http\nbridge_url https://h:8443/x\n\
                bridge_insecure true\nbridge_events message, disconnected\nbridge_batch 10\n\
                topic a/# out 1\n";
    assert_eq!(Ok(ok(text).bridges.remove(0)), from_api);
    let only_type = [("bridge_type".to_owned(), "http".to_owned())];
    assert_eq!(
        bridge_from_options("w", &only_type),
        Err("connection: bridge \"w\" of bridge_type http has no bridge_url".to_owned())
    );
}

#[test]
#[rustfmt::skip]
fn mqttsn_bridges() {
    let sn = |block: &str| match bridge(&format!("bridge_type mqttsn\n{block}")).kind {
        BridgeKind::MqttSn(s) => s,
        k => panic!("{k:?}"),
    };
    let b = bridge("bridge_type mqttsn\naddress gw\nremote_clientid n1\nkeepalive_interval 30\n");
    assert_eq!((b.addresses, b.keepalive_secs, b.tls), (vec![address("gw", 1883)], 30, None));
    let s = sn("bridge_multicast_group 225.1.1.1:1883\nbridge_search_radius 3\n\
                bridge_gateway_id 7\nbridge_identity me\nbridge_psk 0aFf\nremote_clientid c\n");
    let group = "225.1.1.1:1883".parse().ok();
    assert_eq!((s.multicast_group, s.search_radius, s.gateway_id), (group, 3, Some(7)));
    assert_eq!(s.dtls, Some(SnDtls::Psk { identity: "me".into(), key: vec![0x0a, 0xff] }));
    let s = sn("address gw:1884\nbridge_cafile ca.crt\n");
    assert!(matches!(s.dtls, Some(SnDtls::Certificates(t)) if t.cafile.is_some()));
    assert_eq!((s.multicast_group, s.search_radius, s.gateway_id), (None, 1, None));
    let api = [("bridge_type", "mqttsn"), ("address", "gw"), ("remote_clientid", "c")];
    let api: Vec<_> = api.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    assert!(matches!(bridge_from_options("a", &api).map(|b| b.kind), Ok(BridgeKind::MqttSn(_))));
}

#[test]
#[rustfmt::skip]
fn mqttsn_errors() {
    let head = "connection b\nbridge_type mqttsn\nremote_clientid c\n";
    for (block, message) in [
        ("address gw\nbridge_protocol_version mqttv50\n", "1: bridge_protocol_version: not for"),
        ("address gw\nremote_username u\n", "1: remote_username: not for bridge_type mqttsn"),
        ("address gw\ntry_private false\n", "1: try_private: not for bridge_type mqttsn"),
        ("address gw\nbridge_transport tcp\n", "1: bridge_transport: not for"),
        ("", "1: connection: bridge \"b\" of bridge_type mqttsn has no address"),
        ("address a b\n", "1: address: one address, or bridge_multicast_group"),
        ("address a\nbridge_multicast_group 225.1.1.1:1\n", "1: address: one address"),
        ("bridge_multicast_group 10.0.0.1:1883\n", "4: bridge_multicast_group: expected a"),
        ("bridge_multicast_group 225.1.1.1:0\n", "4: bridge_multicast_group: expected a"),
        ("address a\nbridge_search_radius 256\n", "5: bridge_search_radius: expected a number"),
        ("address a\nbridge_gateway_id x\n", "5: bridge_gateway_id: expected a number"),
        ("address a\nbridge_psk abc\n", "5: bridge_psk: expected 2 to 512 hex digits"),
        ("address a\nbridge_psk zz\n", "5: bridge_psk: expected 2 to 512 hex digits"),
        ("address a\nbridge_psk 00\n", "1: connection: bridge_identity and bridge_psk go"),
        ("address a\nbridge_identity i\nbridge_psk 00\nbridge_insecure true\n", "1: bridge_psk"),
        ("address a\nremote_clientid 123456789012345678901234\n", "1: remote_clientid: MQTT-SN"),
    ] {
        let got = err(&format!("{head}{block}"));
        assert!(got.contains(message), "{block:?}: {got}");
    }
    let got = err("connection b\naddress a\nbridge_identity i\n");
    assert!(got.contains("1: bridge_identity, bridge_psk: only for bridge_type mqttsn"), "{got}");
}
