//! MQTT over TLS: versions, ALPN, client certificates, certificate user names and the
//! certificate reload on SIGHUP.

use std::time::{Duration, Instant};

use super::*;
use crate::harness::*;
use crate::hex;

const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// A broker with a plain listener (first) and one TLS listener with `extra` settings.
fn broker(global: &str, extra: &str) -> Option<(Broker, u16)> {
    let broker = Broker::start_configured(&format!("{global}\n{}", tls_listener(extra)))?;
    let port = broker.ports(2)[1];
    Some((broker, port))
}

#[test]
fn tls12_and_tls13_carry_mqtt_both_ways_with_alpn() {
    let Some((broker, port)) = broker("", "") else {
        return;
    };
    let topic = format!("{}/t", uniq("tls"));
    for only in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let options = TlsOptions {
            alpn: vec![b"mqtt".to_vec()],
            only: Some(only),
            ..TlsOptions::default()
        };
        let stream = tls_connect(port, &options).expect("handshake");
        assert_eq!(stream.conn.alpn_protocol(), Some(&b"mqtt"[..]));
        assert_eq!(stream.conn.protocol_version(), Some(only.version));
        let mut tls = Mqtt::new(stream);
        tls.send(&connect_v5(&uniq("tls5"), true, 60, &[]));
        match tls.recv() {
            Got::Packet(p) => assert_eq!(p[..4], [0x20, p[1], 0x00, 0x00]),
            other => panic!("no CONNACK: {other:?}"),
        }
        tls.send(&subscribe(1, &topic, 1, true));
        tls.expect(&hex!("90 04 00 01 00 01"));

        // Plain TCP to TLS.
        let mut plain = broker.connected_v311(&uniq("plain"));
        plain.send(&publish(&topic, b"to tls", 0, 0, false, None));
        tls.expect(&publish(&topic, b"to tls", 0, 0, false, Some(&[])));

        // TLS to plain TCP, through a 3.1.1 TLS client.
        plain.send(&subscribe(1, &topic, 0, false));
        plain.expect(&hex!("90 03 00 01 00"));
        let mut tls311 = Mqtt::new(tls_connect(port, &options).expect("handshake"));
        tls311.send(&connect_v311(&uniq("tls3"), true, 60));
        tls311.expect(&CONNACK_OK);
        tls311.send(&publish(&topic, b"from tls", 0, 0, false, None));
        plain.expect(&publish(&topic, b"from tls", 0, 0, false, None));
        tls.expect(&publish(&topic, b"from tls", 0, 0, false, Some(&[])));
    }
}

#[test]
fn a_client_without_alpn_is_served_too() {
    let Some((_broker, port)) = broker("", "") else {
        return;
    };
    let stream = tls_connect(port, &TlsOptions::default()).expect("handshake");
    assert_eq!(stream.conn.alpn_protocol(), None);
    let mut tls = Mqtt::new(stream);
    tls.send(&connect_v311(&uniq("noalpn"), true, 60));
    tls.expect(&CONNACK_OK);
}

#[test]
fn tls_version_13_refuses_a_tls12_client() {
    let Some((broker, port)) = broker("", "tls_version tlsv1.3") else {
        return;
    };
    let only12 = TlsOptions {
        only: Some(&rustls::version::TLS12),
        ..TlsOptions::default()
    };
    assert!(tls_connect(port, &only12).is_err());
    broker.assert_log_contains("TLS handshake failed");
    let mut ok = Mqtt::new(tls_connect(port, &TlsOptions::default()).expect("TLS 1.3"));
    ok.send(&connect_v311(&uniq("tls13"), true, 60));
    ok.expect(&CONNACK_OK);
}

#[test]
fn required_client_certificate_lets_in_only_certified_clients() {
    let ca = testdata("ca.pem");
    let extra = format!("cafile {}\nrequire_certificate true", ca.display());
    let Some((broker, port)) = broker("", &extra) else {
        return;
    };
    // rustls (TLS 1.3) reports the refusal on the first read after the handshake.
    let refused = tls_connect(port, &TlsOptions::default()).map(|s| {
        let mut m = Mqtt::new(s);
        m.stream
            .write_all(&connect_v311(&uniq("nocert"), true, 60))
            .ok();
        m.recv()
    });
    assert!(
        matches!(refused, Err(_) | Ok(Got::Closed)),
        "a client without a certificate got {refused:?}"
    );
    broker.assert_log_contains("peer sent no certificates");

    let with_cert = TlsOptions {
        client_cert: true,
        ..TlsOptions::default()
    };
    let mut m = Mqtt::new(tls_connect(port, &with_cert).expect("handshake"));
    m.send(&connect_v311(&uniq("cert"), true, 60));
    m.expect(&CONNACK_OK);
}

#[test]
fn certificate_common_name_is_the_user_name() {
    let ca = testdata("ca.pem");
    let extra = format!("cafile {}\nuse_identity_as_username true", ca.display());
    // allow_anonymous false: the plain listener refuses anonymous clients, the
    // certificate's user name lets the TLS client in.
    let Some((broker, port)) = broker("allow_anonymous false", &extra) else {
        return;
    };
    let mut anonymous = broker.client();
    anonymous.send(&connect_v311(&uniq("anon"), true, 60));
    anonymous.expect(&hex!("20 02 00 05"));

    let with_cert = TlsOptions {
        client_cert: true,
        ..TlsOptions::default()
    };
    let mut m = Mqtt::new(tls_connect(port, &with_cert).expect("handshake"));
    m.send(&connect_v311(&uniq("cn"), true, 60));
    m.expect(&CONNACK_OK);
    broker.assert_log_contains("user \"alice\")");
}

#[test]
fn certificate_subject_is_the_user_name() {
    let ca = testdata("ca.pem");
    let extra = format!("cafile {}\nuse_subject_as_username true", ca.display());
    let Some((broker, port)) = broker("allow_anonymous false", &extra) else {
        return;
    };
    let with_cert = TlsOptions {
        client_cert: true,
        ..TlsOptions::default()
    };
    let mut m = Mqtt::new(tls_connect(port, &with_cert).expect("handshake"));
    m.send(&connect_v311(&uniq("subj"), true, 60));
    m.expect(&CONNACK_OK);
    broker.assert_log_contains(r#"user "CN=alice,OU=R&D,O=Example\\, Inc.,C=US")"#);
}

#[test]
fn sighup_reloads_certificates_and_keeps_connections() {
    // The listener's files are copies the test swaps: first the server certificate, then
    // one that does not name "localhost" (the client certificate), then a broken key.
    let dir = std::env::temp_dir().join(uniq("certs"));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let install = |pem: &str, k: &str| {
        std::fs::copy(testdata(pem), &cert).expect("copy cert");
        std::fs::copy(testdata(k), &key).expect("copy key");
    };
    install("server.pem", "server.key");
    let lines = format!(
        "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        cert.display(),
        key.display()
    );
    let Some(broker) = Broker::start_configured(&lines) else {
        return;
    };
    let port = broker.ports(2)[1];
    let mut before = Mqtt::new(tls_connect(port, &TlsOptions::default()).expect("handshake"));
    before.send(&connect_v311(&uniq("before"), true, 60));
    before.expect(&CONNACK_OK);

    install("client.pem", "client.key");
    broker.rewrite_config(&lines);
    broker.signal("HUP");
    broker.wait_for_log("certificates reloaded", Duration::from_secs(5));
    let err = tls_connect(port, &TlsOptions::default()).err();
    // The client certificate is not a server certificate: refused by this client.
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("invalid peer certificate")),
        "the new certificate is not in use: {err:?}"
    );
    // The established session is untouched.
    before.send(&hex!("c0 00"));
    before.expect(&hex!("d0 00"));

    // A key that does not match keeps the previous certificate.
    std::fs::copy(testdata("server.key"), &key).expect("copy key");
    broker.signal("HUP");
    broker.wait_for_log("certificates not reloaded", Duration::from_secs(5));
    assert!(tls_connect(port, &TlsOptions::default()).is_err());

    install("server.pem", "server.key");
    broker.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while tls_connect(port, &TlsOptions::default()).is_err() {
        assert!(Instant::now() < deadline, "reload back failed");
        std::thread::sleep(Duration::from_millis(50));
    }
    before.send(&hex!("c0 00"));
    before.expect(&hex!("d0 00"));
    let _ = std::fs::remove_dir_all(&dir);
}
