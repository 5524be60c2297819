//! Interoperability of the DTLS server with OpenSSL's `s_client -dtls1_2`: a UDP loop in the
//! test thread drives a [`DtlsServer`] on a real loopback socket, and the test checks that the
//! handshake completes and that what s_client reads on its standard input arrives as
//! application data. The loop is bounded in time and stops by itself.

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;
use crate::clock::Clock;

/// How long one exchange may take before the test gives up.
const LIMIT_MS: u64 = 20_000;

struct Outcome {
    stdout: String,
    stderr: String,
    received: Vec<u8>,
    events: Vec<DtlsEvent>,
    counters: GateCounters,
}

/// Which datagrams the loop loses: indexes, counted from 0, of those the client sends and of
/// those the server sends.
#[derive(Default)]
struct Loss {
    from_client: &'static [usize],
    from_server: &'static [usize],
}

/// Serves one s_client run: waits for `message` to arrive, then closes s_client's input and
/// waits for it to leave.
fn serve(config: DtlsConfig, args: &[&str], message: &[u8]) -> Outcome {
    serve_lossy(config, args, message, &Loss::default())
}

fn serve_lossy(config: DtlsConfig, args: &[&str], message: &[u8], loss: &Loss) -> Outcome {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut child: Child = Command::new("openssl")
        .args([
            "s_client",
            "-dtls1_2",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed");
    // s_client reads its input only once connected, so it can be written at once.
    let mut stdin = child.stdin.take();
    if let Some(input) = stdin.as_mut() {
        input.write_all(message).unwrap();
    }
    let clock = Clock::system();
    let mut server = DtlsServer::new(config, 3, 8).unwrap();
    let mut received = Vec::new();
    let mut events = Vec::new();
    let mut buf = [0u8; 2048];
    let mut closing_since = None;
    let (mut from_client, mut from_server) = (0, 0);
    loop {
        let now = clock.now();
        if now.0 > LIMIT_MS {
            break;
        }
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            from_client += 1;
            if !loss.from_client.contains(&(from_client - 1)) {
                for data in server.receive(clock.now(), from, &buf[..n]) {
                    received.extend(data);
                }
            }
        }
        server.tick(clock.now());
        while let Some((to, datagram)) = server.poll_transmit() {
            from_server += 1;
            if !loss.from_server.contains(&(from_server - 1)) {
                socket.send_to(&datagram, to).unwrap();
            }
        }
        events.extend(std::iter::from_fn(|| server.poll_event()));
        if received.len() >= message.len() && closing_since.is_none() {
            // End of input: s_client sends close_notify and exits.
            stdin = None;
            closing_since = Some(now);
        }
        let closed = events
            .iter()
            .any(|e| matches!(e, DtlsEvent::Closed { .. } | DtlsEvent::Refused { .. }));
        if closed || closing_since.is_some_and(|t| now.since(t) > 3_000) {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        received,
        events,
        counters: server.counters(),
    }
}

fn check(outcome: &Outcome, message: &[u8]) {
    let context = format!(
        "stdout:\n{}\nstderr:\n{}\nevents: {:?}",
        outcome.stdout, outcome.stderr, outcome.events
    );
    assert!(
        matches!(outcome.events.first(), Some(DtlsEvent::Established { .. })),
        "{context}"
    );
    assert_eq!(outcome.received, message, "{context}");
    assert!(outcome.stdout.contains("Cipher is "), "{context}");
    assert!(outcome.counters.hello_verify_requests >= 1, "{context}");
}

#[test]
fn openssl_client_with_certificates() {
    let ca = testdata("ca.pem");
    let message = b"mqtt-sn over dtls\n";
    let outcome = serve(
        certificate_config(&tls("server.pem", "server.key")).unwrap(),
        &[
            "-CAfile",
            ca.to_str().unwrap(),
            "-verify_return_error",
            "-msg",
        ],
        message,
    );
    check(&outcome, message);
    // One cookie round, the gate's: the crate's own HelloVerifyRequest never goes out.
    // OpenSSL 3.0 names no DTLS message in its trace, but a HelloVerifyRequest is the only
    // server handshake message of 35 bytes (header 12, version 2, cookie 1 + 20).
    let rounds = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("<<<") && l.ends_with("content_type=22) [length 0023]"))
        .count();
    assert_eq!(rounds, 1, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("Verify return code: 0 (ok)"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn openssl_client_with_a_required_client_certificate() {
    let (ca, cert, key) = (
        testdata("ca.pem"),
        testdata("client.pem"),
        testdata("client.key"),
    );
    let message = b"\x05\x04hello\n";
    let outcome = serve(
        certificate_config(&with_ca(tls("server.pem", "server.key"), true)).unwrap(),
        &[
            "-CAfile",
            ca.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
        message,
    );
    check(&outcome, message);
}

#[test]
fn openssl_client_with_an_rsa_server_certificate() {
    let ca = testdata("rsa.pem");
    let message = b"rsa\n";
    let outcome = serve(
        certificate_config(&tls("rsa.pem", "rsa-pkcs1.key")).unwrap(),
        &["-CAfile", ca.to_str().unwrap()],
        message,
    );
    check(&outcome, message);
}

#[test]
fn openssl_client_with_psk() {
    let message = b"psk data\n";
    let outcome = serve(
        psk_server_config(),
        &[
            "-psk",
            "00112233445566778899aabbccddeeff",
            "-psk_identity",
            "sensor-1",
        ],
        message,
    );
    check(&outcome, message);
}

#[test]
fn openssl_client_with_psk_and_ccm8() {
    let message = b"ccm8\n";
    let outcome = serve(
        psk_server_config(),
        &[
            "-psk",
            "00112233445566778899aabbccddeeff",
            "-psk_identity",
            "sensor-1",
            "-cipher",
            "PSK-AES128-CCM8",
        ],
        message,
    );
    check(&outcome, message);
}

#[test]
fn openssl_client_with_a_wrong_psk_is_refused() {
    let outcome = serve(
        psk_server_config(),
        &["-psk", "0badc0de", "-psk_identity", "sensor-1"],
        b"x\n",
    );
    assert!(outcome.received.is_empty());
    assert!(
        matches!(outcome.events.as_slice(), [DtlsEvent::Refused { .. }]),
        "{:?}\n{}",
        outcome.events,
        outcome.stderr
    );
}

#[test]
fn openssl_client_through_lost_datagrams() {
    let ca = testdata("ca.pem");
    let message = b"lossy\n";
    // Lost: the client's ClientHello with cookie, then the server's first flight once.
    let loss = Loss {
        from_client: &[1],
        from_server: &[1],
    };
    let outcome = serve_lossy(
        certificate_config(&tls("server.pem", "server.key")).unwrap(),
        &["-CAfile", ca.to_str().unwrap()],
        message,
        &loss,
    );
    check(&outcome, message);
}
