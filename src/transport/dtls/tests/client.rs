//! Tests of [`DtlsClient`]: against the crate's server side ([`DtlsServer`]) in memory with a
//! fake clock, and against OpenSSL's `s_server -dtls1_2` over a real loopback socket.

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;
use crate::clock::Clock;

const CLIENT: u16 = 5000;

fn gateway() -> SocketAddr {
    addr(SERVER)
}

fn verified(cafile: &str) -> ClientCredentials {
    ClientCredentials::Certificates {
        cafile: Some(testdata(cafile)),
        insecure: false,
        certfile: None,
        keyfile: None,
        server_name: "localhost".to_owned(),
    }
}

fn psk(key: Vec<u8>) -> ClientCredentials {
    ClientCredentials::Psk {
        identity: "sensor-1".to_owned(),
        key,
    }
}

fn sensor_key() -> Vec<u8> {
    (0..16).map(|i| i * 0x11).collect()
}

/// A [`DtlsServer`] and a [`DtlsClient`] joined by the test, under a fake clock.
struct Link {
    server: DtlsServer,
    client: DtlsClient,
    now: Millis,
    /// What the server delivered, and what the client delivered.
    at_server: Vec<Vec<u8>>,
    at_client: Vec<Vec<u8>>,
}

impl Link {
    fn new(config: DtlsConfig, credentials: &ClientCredentials) -> Self {
        let now = Millis(1_000);
        Self {
            server: DtlsServer::new(config, 7, 4).unwrap(),
            client: DtlsClient::new(credentials, gateway(), now, 9).unwrap(),
            now,
            at_server: Vec::new(),
            at_client: Vec::new(),
        }
    }

    /// Moves datagrams both ways until neither side has anything to send.
    fn pump(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            while let Some(datagram) = self.client.poll_transmit() {
                moved = true;
                let data = self.server.receive(self.now, addr(CLIENT), &datagram);
                self.at_server.extend(data);
            }
            while let Some((to, datagram)) = self.server.poll_transmit() {
                moved = true;
                assert_eq!(to, addr(CLIENT));
                let data = self.client.receive(self.now, &datagram);
                self.at_client.extend(data);
            }
            if !moved {
                return;
            }
        }
        panic!("the exchange did not settle");
    }

    fn events(&mut self) -> Vec<DtlsEvent> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    fn established(&mut self) {
        self.pump();
        let failure = self.client.take_failure();
        assert!(
            self.client.is_established(),
            "{failure:?} {:?}",
            self.events()
        );
        assert!(self.server.established(addr(CLIENT)));
    }
}

#[test]
fn certificate_handshake_verifies_the_gateway_and_carries_data_both_ways() {
    let config = certificate_config(&tls("server.pem", "server.key")).unwrap();
    let mut link = Link::new(config, &verified("ca.pem"));
    assert!(!link.client.is_established());
    // Sent before the handshake: it waits for it.
    link.client.send(link.now, b"\x02\x18").unwrap();
    link.established();
    assert_eq!(
        link.events(),
        vec![DtlsEvent::Established { peer: addr(CLIENT) }]
    );
    assert_eq!(link.at_server, vec![b"\x02\x18".to_vec()]);

    link.client.send(link.now, b"up").unwrap();
    link.server.send(link.now, addr(CLIENT), b"down").unwrap();
    link.pump();
    assert_eq!(link.at_server, vec![b"\x02\x18".to_vec(), b"up".to_vec()]);
    assert_eq!(link.at_client, vec![b"down".to_vec()]);
    assert_eq!(link.client.take_failure(), None);
    assert_eq!(link.client.next_deadline(), None);
}

#[test]
fn psk_handshake_carries_data_both_ways() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    link.established();
    assert_eq!(
        link.server.psk_identity(addr(CLIENT)),
        Some(b"sensor-1".to_vec())
    );
    link.client.send(link.now, b"up").unwrap();
    link.server.send(link.now, addr(CLIENT), b"down").unwrap();
    link.pump();
    assert_eq!(link.at_server, vec![b"up".to_vec()]);
    assert_eq!(link.at_client, vec![b"down".to_vec()]);
}

#[test]
fn wrong_psk_fails() {
    let mut link = Link::new(psk_server_config(), &psk(vec![0x55; 16]));
    link.client.send(link.now, b"secret").unwrap();
    link.pump();
    assert!(!link.client.is_established());
    assert!(link.client.take_failure().is_some());
    assert!(link.at_server.is_empty());
}

#[test]
fn gateway_certificate_from_another_ca_fails_once() {
    let config = certificate_config(&tls("server.pem", "server.key")).unwrap();
    // A self-signed certificate as the only CA: the gateway's chain does not lead to it.
    let mut link = Link::new(config, &verified("rsa.pem"));
    link.client.send(link.now, b"secret").unwrap();
    link.pump();
    assert!(!link.client.is_established());
    let failure = link.client.take_failure();
    assert!(failure.is_some());
    assert_eq!(link.client.take_failure(), None);
    assert!(link.at_server.is_empty());
    assert!(!link.server.established(addr(CLIENT)));
    assert_eq!(link.client.next_deadline(), None);
    let err = link.client.send(link.now, b"late").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
}

#[test]
fn gateway_name_must_match_its_certificate() {
    let config = certificate_config(&tls("server.pem", "server.key")).unwrap();
    let credentials = ClientCredentials::Certificates {
        cafile: Some(testdata("ca.pem")),
        insecure: false,
        certfile: None,
        keyfile: None,
        server_name: "gateway.example".to_owned(),
    };
    let mut link = Link::new(config, &credentials);
    link.pump();
    assert!(!link.client.is_established());
    assert!(link.client.take_failure().is_some());
}

#[test]
fn insecure_skips_verification() {
    let config = certificate_config(&tls("rsa.pem", "rsa-pkcs1.key")).unwrap();
    let credentials = ClientCredentials::Certificates {
        cafile: Some(testdata("ca.pem")),
        insecure: true,
        certfile: None,
        keyfile: None,
        server_name: "gateway.example".to_owned(),
    };
    let mut link = Link::new(config, &credentials);
    link.established();
    link.client.send(link.now, b"rsa").unwrap();
    link.pump();
    assert_eq!(link.at_server, vec![b"rsa".to_vec()]);
}

#[test]
fn client_certificate_is_presented() {
    let t = tls("server.pem", "server.key");
    let t = TlsConfig {
        cafile: Some(testdata("ca.pem")),
        require_certificate: true,
        ..t
    };
    let credentials = ClientCredentials::Certificates {
        cafile: Some(testdata("ca.pem")),
        insecure: false,
        certfile: Some(testdata("client.pem")),
        keyfile: Some(testdata("client.key")),
        server_name: String::new(),
    };
    let mut link = Link::new(certificate_config(&t).unwrap(), &credentials);
    link.established();
    assert!(link.server.peer_certificate(addr(CLIENT)).is_some());
}

#[test]
fn waiting_data_is_bounded_oldest_dropped() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    for i in 0..20u8 {
        link.client.send(link.now, &[i]).unwrap();
    }
    link.established();
    let expected: Vec<Vec<u8>> = (4..20u8).map(|i| vec![i]).collect();
    assert_eq!(link.at_server, expected);
}

#[test]
fn lost_flights_are_resent_until_the_handshake_gives_up() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    let mut sent = 0;
    while link.client.poll_transmit().is_some() {
        sent += 1;
    }
    assert_eq!(sent, 1);
    let first = link.client.next_deadline().unwrap();
    assert!(first > link.now);
    link.client.tick(link.now);
    assert!(link.client.poll_transmit().is_none(), "resent early");
    let mut resent = 0;
    for _ in 0..20 {
        let Some(deadline) = link.client.next_deadline() else {
            break;
        };
        link.now = deadline;
        link.client.tick(link.now);
        while link.client.poll_transmit().is_some() {
            resent += 1;
        }
    }
    assert!(resent >= 3, "{resent}");
    assert!(link.client.take_failure().is_some());
    assert_eq!(link.client.next_deadline(), None);
}

/// The gate's HelloVerifyRequest echoes the resent ClientHello's record number (1), and the
/// server's first ServerHello carries the same number, so the crate's client drops it as a
/// replay; the server's next retransmission, under fresh numbers, gets through.
#[test]
fn handshake_completes_through_a_lost_client_hello() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    while link.client.poll_transmit().is_some() {}
    link.now = link.client.next_deadline().unwrap();
    link.client.tick(link.now);
    link.pump();
    let deadlines = [link.client.next_deadline(), link.server.next_deadline()];
    link.now = deadlines.into_iter().flatten().min().unwrap();
    link.client.tick(link.now);
    link.server.tick(link.now);
    link.established();
}

#[test]
fn close_sends_close_notify() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    link.established();
    link.events();
    link.client.close(link.now);
    assert!(!link.client.is_established());
    link.pump();
    assert!(matches!(
        link.events().as_slice(),
        [DtlsEvent::Closed { .. }]
    ));
    assert_eq!(link.client.take_failure(), None);
    assert!(link.client.send(link.now, b"x").is_err());
}

#[test]
fn gateway_close_is_a_failure() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    link.established();
    assert!(link.server.close(link.now, addr(CLIENT)));
    link.pump();
    assert!(!link.client.is_established());
    let failure = link.client.take_failure().unwrap();
    assert!(failure.contains("closed"), "{failure}");
}

#[test]
fn forged_records_do_not_end_the_association() {
    let mut link = Link::new(psk_server_config(), &psk(sensor_key()));
    link.established();
    // An application-data record of epoch 1 that no key produced.
    let mut forged = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 24];
    forged.extend([0xaa; 24]);
    assert!(link.client.receive(link.now, &forged).is_empty());
    assert!(link.client.poll_transmit().is_none());
    assert!(link.client.is_established());
    link.server.send(link.now, addr(CLIENT), b"still").unwrap();
    link.pump();
    assert_eq!(link.at_client, vec![b"still".to_vec()]);
}

#[test]
fn unusable_credentials_are_refused_up_front() {
    let no_ca = ClientCredentials::Certificates {
        cafile: None,
        insecure: false,
        certfile: None,
        keyfile: None,
        server_name: String::new(),
    };
    let half = ClientCredentials::Certificates {
        cafile: None,
        insecure: true,
        certfile: Some(testdata("client.pem")),
        keyfile: None,
        server_name: String::new(),
    };
    let wrong_key = ClientCredentials::Certificates {
        cafile: Some(testdata("ca.pem")),
        insecure: false,
        certfile: Some(testdata("client.pem")),
        keyfile: Some(testdata("server.key")),
        server_name: String::new(),
    };
    for credentials in [no_ca, half, wrong_key, psk(Vec::new())] {
        let err = DtlsClient::new(&credentials, gateway(), Millis(0), 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
    let missing = verified("no-such-ca.pem");
    assert!(DtlsClient::new(&missing, gateway(), Millis(0), 1).is_err());
}

#[test]
fn psk_key_stays_out_of_debug_output() {
    let text = format!("{:?}", psk(vec![0xab; 4]));
    assert!(text.contains("sensor-1"), "{text}");
    assert!(!text.contains("171"), "{text}");
}

/// How long one exchange with s_server may take before the test gives up.
const LIMIT_MS: u64 = 20_000;

struct ServerRun {
    stdout: String,
    stderr: String,
    /// What the client received from s_server.
    received: Vec<u8>,
    failure: Option<String>,
}

/// Runs `openssl s_server -dtls1_2` for one connection with `args`, connects a [`DtlsClient`]
/// to it, sends `message`, reads what s_server sends from its standard input, then closes.
fn against_s_server(args: &[&str], credentials: &ClientCredentials, message: &[u8]) -> ServerRun {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // A free port for s_server: taken, released, handed over.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child: Child = Command::new("openssl")
        .args(["s_server", "-dtls1_2", "-naccept", "1", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed");
    let mut stdin = child.stdin.take();
    if let Some(input) = stdin.as_mut() {
        input.write_all(b"from-gateway\n").unwrap();
    }
    let gateway = SocketAddr::from(([127, 0, 0, 1], port));
    let clock = Clock::system();
    let mut client = DtlsClient::new(credentials, gateway, clock.now(), 5).unwrap();
    // Queued: it leaves once the handshake is done.
    client.send(clock.now(), message).unwrap();
    let mut received = Vec::new();
    let mut failure = None;
    let mut buf = [0u8; 4096];
    let mut closed_at = None;
    loop {
        let now = clock.now();
        if now.0 > LIMIT_MS {
            break;
        }
        // Errors (s_server not listening yet) are left to the retransmissions.
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if from == gateway {
                for data in client.receive(clock.now(), &buf[..n]) {
                    received.extend(data);
                }
            }
        }
        client.tick(clock.now());
        while let Some(datagram) = client.poll_transmit() {
            let _ = socket.send_to(&datagram, gateway);
        }
        if let Some(reason) = client.take_failure() {
            failure = Some(reason);
            break;
        }
        if closed_at.is_none() && received.ends_with(b"from-gateway\n") {
            client.close(clock.now());
            while let Some(datagram) = client.poll_transmit() {
                let _ = socket.send_to(&datagram, gateway);
            }
            closed_at = Some(now);
        }
        // After its one connection s_server exits by itself.
        if closed_at.is_some_and(|t| now.since(t) > 3_000)
            || matches!(child.try_wait(), Ok(Some(_)))
        {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    ServerRun {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        received,
        failure,
    }
}

fn check_run(run: &ServerRun, message: &str) {
    let context = format!(
        "stdout:\n{}\nstderr:\n{}\nfailure: {:?}",
        run.stdout, run.stderr, run.failure
    );
    assert_eq!(run.failure, None, "{context}");
    assert_eq!(run.received, b"from-gateway\n", "{context}");
    // s_server copies what it reads to its standard output, a line here.
    assert!(run.stdout.lines().any(|l| l == message), "{context}");
}

#[test]
fn openssl_server_with_psk() {
    let run = against_s_server(
        &[
            "-nocert",
            "-psk",
            "00112233445566778899aabbccddeeff",
            "-psk_identity",
            "sensor-1",
        ],
        &psk(sensor_key()),
        b"hello\n",
    );
    check_run(&run, "hello");
}

#[test]
fn openssl_server_with_an_ecdsa_certificate() {
    let (cert, key) = (testdata("server.pem"), testdata("server.key"));
    let run = against_s_server(
        &[
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
        &verified("ca.pem"),
        b"hello\n",
    );
    check_run(&run, "hello");
}

#[test]
fn openssl_server_with_an_rsa_certificate_insecure() {
    let (cert, key) = (testdata("rsa.pem"), testdata("rsa-pkcs1.key"));
    let credentials = ClientCredentials::Certificates {
        cafile: None,
        insecure: true,
        certfile: None,
        keyfile: None,
        server_name: String::new(),
    };
    let run = against_s_server(
        &[
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
        &credentials,
        b"hello rsa\n",
    );
    check_run(&run, "hello rsa");
}
