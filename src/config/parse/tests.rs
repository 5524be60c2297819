//! Tests of the configuration parser: options, listener blocks, errors and the examples.

use super::*;
use crate::config::ListenerProtocol;

/// What an MQTT-SN option needs around it: the protocol, a multicast group (for the other
/// multicast options) and both PSK options (each requires the other).
const SN_CONTEXT: &str = "protocol mqttsn\nmulticast_group 225.1.1.1:1883\n\
                          psk_hint h\npsk_file f\n";

fn ok(text: &str) -> Config {
    parse(text, "t.conf").unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text, "t.conf") {
        Ok(config) => panic!("{text:?} parsed: {config:?}"),
        Err(e) => e.to_string(),
    }
}

fn limits(text: &str) -> Limits {
    ok(text).limits
}

fn file_defaults() -> Limits {
    Limits {
        allow_anonymous: false,
        ..Limits::default()
    }
}

#[test]
fn empty_file_listens_locally_and_refuses_anonymous() {
    let config = ok("");
    assert_eq!(config.listeners, vec![ListenerConfig::local(1883)]);
    assert!(config.implicit_listener);
    assert_eq!(config.limits, file_defaults());
    assert!(config.warnings.is_empty());
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let config = ok("# a comment\n\n   \t\n  # indented comment\n\t max_qos   1  \r\n");
    assert_eq!(config.limits.max_qos, QoS::AtLeastOnce);
}

#[test]
fn every_option_of_the_table_parses() {
    for spec in options::OPTIONS
        .iter()
        .filter(|s| s.support != Support::NotYet)
    {
        let line = format!(
            "{}{} {}\n{}",
            context(spec.name),
            spec.name,
            spec.example,
            after(spec.name)
        );
        let mut parser = Parser::new();
        let parsed = parser
            .parse_into(&line, "t.conf")
            .and_then(|_| parser.finish());
        assert!(parsed.is_ok(), "{line:?}: {parsed:?}");
    }
}

#[test]
fn tls_and_websocket_listeners() {
    let config = ok("listener 8883 127.0.0.1\n\
                     certfile s.crt\n\
                     keyfile s.key\n\
                     cafile ca.crt\n\
                     require_certificate true\n\
                     use_identity_as_username true\n\
                     listener 8084\n\
                     protocol websockets\n\
                     mount_point site1/\n");
    let tls = config.listeners[0]
        .tls
        .as_ref()
        .expect("TLS on the first listener");
    assert!(tls.require_certificate && tls.use_identity_as_username);
    assert_eq!(config.listeners[1].protocol, ListenerProtocol::WebSockets);
    assert_eq!(config.listeners[1].tls, None);
    assert_eq!(config.listeners[1].mount_point.as_deref(), Some("site1/"));
}

#[test]
fn tls_errors_name_file_and_line() {
    assert_eq!(
        err("listener 8883\ncafile ca.crt\n"),
        "t.conf:2: cafile: requires certfile and keyfile"
    );
    assert_eq!(
        err("listener 1\nlistener 8883\ncertfile s.crt\n"),
        "t.conf:2: listener: certfile and keyfile must be given together"
    );
    assert_eq!(
        err("listener 8883\ncertfile s\nkeyfile k\nrequire_certificate true\n"),
        "t.conf:4: require_certificate: requires cafile or capath"
    );
    assert_eq!(
        err("listener 8883\ntls_version tlsv1.1\n"),
        "t.conf:2: tls_version: tlsv1.1 is not supported: culex requires TLS 1.2 or later"
    );
}

#[test]
fn every_limit_is_applied() {
    let text = "allow_anonymous true\n\
                max_inflight_messages 5\n\
                max_queued_messages 6\n\
                max_queued_bytes 7000\n\
                message_size_limit 8000\n\
                max_packet_size 9000\n\
                max_keepalive 60\n\
                persistent_client_expiration 2d\n\
                sys_interval 0\n\
                retain_available false\n\
                max_topic_alias 0\n\
                max_qos 0\n\
                connection_messages false\n";
    let expected = Limits {
        allow_anonymous: true,
        max_inflight_messages: 5,
        max_queued_messages: 6,
        max_queued_bytes: 7000,
        message_size_limit: 8000,
        max_packet_size: 9000,
        max_keepalive: 60,
        persistent_client_expiration: Some(2 * 86_400),
        sys_interval: 0,
        retain_available: false,
        max_topic_alias: 0,
        max_qos: QoS::AtMostOnce,
        connection_messages: false,
        ..file_defaults()
    };
    assert_eq!(limits(text), expected);
}

#[test]
fn limits_at_their_bounds() {
    let l = limits(
        "max_inflight_messages 65535\nmax_keepalive 0\nmax_packet_size 20\n\
         message_size_limit 268435455\nmax_queued_bytes 18446744073709551615\n\
         max_queued_messages 4294967295\nmax_topic_alias 65535\nmax_qos 2\n",
    );
    assert_eq!(l.max_inflight_messages, 65535);
    assert_eq!(l.max_keepalive, 0);
    assert_eq!(l.max_packet_size, 20);
    assert_eq!(l.message_size_limit, PACKET_SIZE_MAX);
    assert_eq!(l.max_queued_bytes, u64::MAX);
    assert_eq!(l.max_queued_messages, 4_294_967_295);
    assert_eq!(l.max_topic_alias, 65535);
    assert_eq!(l.max_qos, QoS::ExactlyOnce);
    assert_eq!(limits("max_packet_size 0\n").max_packet_size, 0);
}

#[test]
fn durations() {
    let expiry = |v: &str| limits(&format!("persistent_client_expiration {v}\n"));
    assert_eq!(expiry("1h").persistent_client_expiration, Some(3600));
    assert_eq!(expiry("3d").persistent_client_expiration, Some(3 * 86_400));
    assert_eq!(expiry("2w").persistent_client_expiration, Some(14 * 86_400));
    assert_eq!(expiry("1m").persistent_client_expiration, Some(30 * 86_400));
    assert_eq!(
        expiry("1y").persistent_client_expiration,
        Some(365 * 86_400)
    );
}

#[test]
fn the_last_value_wins() {
    assert_eq!(limits("max_qos 0\nmax_qos 1\n").max_qos, QoS::AtLeastOnce);
}

#[test]
fn bad_lines_name_file_line_and_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "max_keepalive abc",
            "max_keepalive: expected a number from 0 to 65535, got \"abc\"",
        ),
        (
            "max_keepalive 65536",
            "max_keepalive: expected a number from 0 to 65535, got \"65536\"",
        ),
        (
            "max_keepalive -1",
            "max_keepalive: expected a number from 0 to 65535, got \"-1\"",
        ),
        (
            "max_keepalive +1",
            "max_keepalive: expected a number from 0 to 65535, got \"+1\"",
        ),
        ("max_keepalive", "max_keepalive: missing value"),
        (
            "max_keepalive 1 2",
            "max_keepalive: unexpected extra value \"2\"",
        ),
        (
            "max_keepalive 60 # one minute",
            "max_keepalive: unexpected extra value \"#\" (a comment must start its own line)",
        ),
        (
            "allow_anonymous yes",
            "allow_anonymous: expected true or false, got \"yes\"",
        ),
        (
            "retain_available 1",
            "retain_available: expected true or false, got \"1\"",
        ),
        (
            "max_qos 3",
            "max_qos: expected a number from 0 to 2, got \"3\"",
        ),
        (
            "max_inflight_messages 70000",
            "max_inflight_messages: expected a number from 0 to 65535, got \"70000\"",
        ),
        (
            "max_queued_messages 99999999999",
            "max_queued_messages: expected a number from 0 to 4294967295, got \"99999999999\"",
        ),
        (
            "max_queued_bytes 18446744073709551616",
            "max_queued_bytes: expected a number from 0 to 18446744073709551615, \
             got \"18446744073709551616\"",
        ),
        (
            "message_size_limit 268435456",
            "message_size_limit: expected a number from 0 to 268435455, got \"268435456\"",
        ),
        (
            "max_packet_size 19",
            "max_packet_size: expected 0 or a number from 20 to 268435455, got \"19\"",
        ),
        (
            "max_topic_alias 1.5",
            "max_topic_alias: expected a number from 0 to 65535, got \"1.5\"",
        ),
        (
            "sys_interval 10s",
            "sys_interval: expected a number from 0 to 4294967295, got \"10s\"",
        ),
        (
            "persistent_client_expiration 60",
            "persistent_client_expiration: expected a positive number followed by \
             h, d, w, m or y (as in 2d), got \"60\"",
        ),
        (
            "persistent_client_expiration 0d",
            "persistent_client_expiration: expected a positive number followed by \
             h, d, w, m or y (as in 2d), got \"0d\"",
        ),
        (
            "persistent_client_expiration 99999999999999999y",
            "persistent_client_expiration: expected a positive number followed by \
             h, d, w, m or y (as in 2d), got \"99999999999999999y\"",
        ),
        (
            "persistent_client_expiration d",
            "persistent_client_expiration: expected a positive number followed by \
             h, d, w, m or y (as in 2d), got \"d\"",
        ),
        (
            "port 65536",
            "port: expected a number from 0 to 65535, got \"65536\"",
        ),
        ("port", "port: missing value"),
        ("bind_address", "bind_address: missing value"),
        (
            "bind_address a b",
            "bind_address: unexpected extra value \"b\"",
        ),
        ("listener", "listener: missing port"),
        (
            "listener x",
            "listener: expected a number from 0 to 65535, got \"x\"",
        ),
        (
            "listener 1883 ::1 extra",
            "listener: unexpected extra value \"extra\"",
        ),
        (
            "listener 0 /run/culex.sock",
            "listener: unix sockets are not supported in this version",
        ),
        (
            "protocol https",
            "protocol: expected mqtt, websockets, mqttsn or http, got \"https\"",
        ),
        (
            "max_connections -2",
            "max_connections: expected -1 or a number from 0 to 4294967295, got \"-2\"",
        ),
        (
            "socket_domain ipv5",
            "socket_domain: expected ipv4 or ipv6, got \"ipv5\"",
        ),
        ("include_dir", "include_dir: missing value"),
        ("log_dest", "log_dest: missing value"),
        ("no_such_option 1", "unknown option \"no_such_option\""),
        ("Max_qos 1", "unknown option \"Max_qos\""),
        ("password_file", "password_file: missing value"),
        (
            "persistence yes",
            "persistence: expected true or false, got \"yes\"",
        ),
        (
            "persistence_file a/b.redb",
            "persistence_file: a file name without a directory (see persistence_location), \
             got \"a/b.redb\"",
        ),
        (
            "persistence_sync always",
            "persistence_sync: expected every-turn or interval MS, got \"always\"",
        ),
        (
            "persistence_sync interval 0",
            "persistence_sync: interval: expected milliseconds from 1 to 3600000, got \"0\"",
        ),
        (
            "crlfile /etc/culex/crl.pem",
            "crlfile is not supported in this version",
        ),
        (
            "plugin_opt_db x",
            "plugin_opt_db is not supported in this version",
        ),
    ];
    for (line, message) in cases {
        let text = format!("# header\n\nmax_qos 1\n{line}\nmax_qos 2\n");
        assert_eq!(err(&text), format!("t.conf:4: {message}"), "{line}");
    }
}

#[test]
fn ignored_options_warn() {
    let config = ok("log_dest file /var/log/culex.log\nuser culex\nlog_type all\n");
    assert_eq!(
        config.warnings,
        vec![
            "t.conf:1: option log_dest is accepted and ignored",
            "t.conf:2: option user is accepted and ignored",
            "t.conf:3: option log_type is accepted and ignored",
        ]
    );
}

#[test]
fn listeners_in_file_order_with_their_options() {
    let config = ok("listener 1884 127.0.0.1\n\
         max_connections 10\n\
         socket_domain ipv4\n\
         protocol mqtt\n\
         allow_anonymous true\n\
         listener 8883\n\
         socket_domain ipv6\n\
         listener 0 ::1\n");
    let mut first = ListenerConfig::local(1884);
    first.max_connections = Some(10);
    first.socket_domain = Some(SocketDomain::Ipv4);
    let mut second = ListenerConfig::new(8883, None);
    second.socket_domain = Some(SocketDomain::Ipv6);
    let third = ListenerConfig::new(0, Some("::1".to_owned()));
    assert_eq!(config.listeners, vec![first, second, third]);
    assert!(!config.implicit_listener);
    // A global option inside a listener block is still global.
    assert!(config.limits.allow_anonymous);
}

#[test]
fn default_listener_from_global_options() {
    let config = ok("port 1884\nbind_address 10.0.0.1\nmax_connections 5\n");
    let mut expected = ListenerConfig::new(1884, Some("10.0.0.1".to_owned()));
    expected.max_connections = Some(5);
    assert_eq!(config.listeners, vec![expected]);

    let config = ok("max_connections -1\n");
    assert_eq!(config.listeners, vec![ListenerConfig::new(1883, None)]);

    let config = ok("bind_address 10.0.0.1\n");
    assert_eq!(
        config.listeners,
        vec![ListenerConfig::new(1883, Some("10.0.0.1".into()))]
    );
}

#[test]
fn default_listener_comes_first() {
    let config = ok("max_connections 3\nlistener 1884\nmax_connections 4\nport 1885\n");
    let mut default = ListenerConfig::new(1885, None);
    default.max_connections = Some(3);
    let mut block = ListenerConfig::new(1884, None);
    block.max_connections = Some(4);
    assert_eq!(config.listeners, vec![default, block]);
}

#[test]
fn duplicate_listeners_are_refused() {
    assert_eq!(
        err("listener 1884\nlistener 1884\n"),
        "t.conf:2: listener on port 1884 is already defined at t.conf:1"
    );
    assert_eq!(
        err("\nport 1884\nlistener 1884\n"),
        "t.conf:3: listener on port 1884 is already defined at t.conf:2"
    );
    let config = ok("listener 1884 127.0.0.1\nlistener 1884 ::1\nlistener 0\nlistener 0\n");
    assert_eq!(config.listeners.len(), 4);
    let config = ok("listener 1884\nsocket_domain ipv4\nlistener 1884\nsocket_domain ipv6\n");
    assert_eq!(config.listeners.len(), 2);
}

#[test]
fn include_dir_is_returned_and_included_text_continues_the_block() {
    let mut parser = Parser::new();
    let includes = parser
        .parse_into(
            "listener 1884\ninclude_dir /etc/culex/conf d\n",
            "main.conf",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        includes,
        vec![Include {
            dir: "/etc/culex/conf d".to_owned(),
            file: "main.conf".to_owned(),
            line: 2
        }]
    );
    let nested = parser
        .parse_into("max_connections 7\nmax_qos 1\n", "/etc/culex/conf d/a.conf")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(nested.is_empty());
    let e = parser.parse_into("\nmax_qos 9\n", "/etc/culex/conf d/b.conf");
    assert_eq!(
        e.map_err(|e| e.to_string()),
        Err(
            "/etc/culex/conf d/b.conf:2: max_qos: expected a number from 0 to 2, got \"9\""
                .to_owned()
        )
    );
    let config = parser.finish().unwrap_or_else(|e| panic!("{e}"));
    let mut expected = ListenerConfig::new(1884, None);
    expected.max_connections = Some(7);
    assert_eq!(config.listeners, vec![expected]);
    assert_eq!(config.limits.max_qos, QoS::AtLeastOnce);
}

#[test]
fn parse_warns_that_it_does_not_follow_include_dir() {
    let config = ok("include_dir conf.d\n");
    assert_eq!(
        config.warnings,
        vec![
            "t.conf:1: include_dir conf.d is only read when the configuration is loaded \
              from a file"
        ]
    );
}

#[test]
fn odd_input_never_panics() {
    for text in [
        "\u{feff}max_qos 1",
        "\0",
        "max_qos \u{1F600}",
        "persistent_client_expiration é",
    ] {
        let _ = parse(text, "t.conf");
    }
    assert_eq!(limits("\u{feff}max_qos 1\n").max_qos, QoS::AtLeastOnce);
}

/// What an option needs before it: a TLS option a listener with certificates, an
/// MQTT-SN or API option a listener of its kind, a bridge option a bridge with TLS.
fn context(name: &str) -> String {
    if matches!(
        name,
        "bridge_identity" | "bridge_psk" | "bridge_predefined_topic"
    ) {
        "connection b\naddress h\nbridge_type mqttsn\nbridge_identity i\nbridge_psk 00\n".to_owned()
    } else if options::lookup(name).is_some_and(|s| s.scope == Scope::Bridge) {
        "connection b\naddress 127.0.0.1\nremote_username u\n\
         bridge_cafile a\nbridge_certfile c\nbridge_keyfile k\n"
            .to_owned()
    } else if tls::OPTIONS.contains(&name) {
        "listener 1\ncertfile c\nkeyfile k\ncafile a\n".to_owned()
    } else if mqttsn::OPTIONS.contains(&name) {
        format!("listener 1\n{SN_CONTEXT}")
    } else if name.starts_with("http_") {
        "listener 1\nprotocol http\n".to_owned()
    } else {
        String::new()
    }
}

/// What an option needs after it: a `connection` line an address.
fn after(name: &str) -> &'static str {
    if name == "connection" {
        "address 127.0.0.1\n"
    } else {
        ""
    }
}

/// Every commented-out option line of the examples is valid when uncommented.
#[test]
fn example_configuration_options_are_valid_when_uncommented() {
    for text in [
        include_str!("../../../conf/culex.conf"),
        include_str!("../../../conf/culex-tls.conf"),
        include_str!("../../../conf/culex-gateway.conf"),
    ] {
        for line in text.lines().filter_map(|l| l.strip_prefix("#")) {
            let Some(first) = line.split_whitespace().next() else {
                continue;
            };
            if options::lookup(first).is_none() || line.starts_with(' ') {
                continue;
            }
            let text = format!("{}{line}\n{}", context(first), after(first));
            let parsed = parse(&text, "culex.conf");
            assert!(parsed.is_ok(), "{line:?}: {parsed:?}");
        }
    }
}
