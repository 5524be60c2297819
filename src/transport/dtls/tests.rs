//! Tests of the DTLS server against a client built from the same crate: handshakes with
//! certificates and pre-shared keys, the cookie gate, timers and bounds. The interoperability
//! tests with OpenSSL are in `tests/openssl.rs`.

mod client;
mod openssl;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rtc_dtls::cipher_suite::CipherSuiteId;
use rtc_dtls::config::ConfigBuilder;
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::providers::RingProvider;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use super::*;
use crate::config::TlsConfig;
use crate::rng::Rng;

pub(super) fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/transport/testdata")
        .join(name)
}

pub(super) fn tls(cert: &str, key: &str) -> TlsConfig {
    TlsConfig {
        certfile: testdata(cert),
        keyfile: testdata(key),
        cafile: None,
        capath: None,
        require_certificate: false,
        use_identity_as_username: false,
        use_subject_as_username: false,
        tls_version: None,
        ciphers: None,
        ciphers_tls13: None,
    }
}

fn with_ca(mut t: TlsConfig, require: bool) -> TlsConfig {
    t.cafile = Some(testdata("ca.pem"));
    t.require_certificate = require;
    t
}

pub(super) fn psk_server_config() -> DtlsConfig {
    let keys = parse_psk_file(
        "# test keys\nsensor-1:00112233445566778899aabbccddeeff\n",
        "psk",
    )
    .unwrap();
    psk_config(keys, Some("culex")).unwrap()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

const SERVER: u16 = 1884;

fn fixed_key<E: From<io::Error> + 'static>(key: Vec<u8>) -> config::KeyCallback<E> {
    Arc::new(move |_hint: &[u8]| Ok(key.clone()))
}

fn provider() -> Arc<dyn RTCCryptoProvider> {
    Arc::new(RingProvider::new())
}

fn ca_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(testdata("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A client certificate and key from the test data, through the server's own key loader.
fn client_certificate(cert: &str, key: &str) -> Certificate {
    let p = provider();
    let chain = CertificateDer::pem_file_iter(testdata(cert))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = config::signing_key(&testdata(key), p.crypto()).unwrap();
    Certificate::from_signing_key(chain, key)
}

/// What a test client presents.
enum Credentials {
    /// Verifies the server against the test CA; presents the certificate, if any.
    Certificate(Option<Certificate>),
    /// Sends `identity` with `key`.
    Psk(&'static str, Vec<u8>),
}

/// A DTLS client from the crate, talking to the server under test through the test itself.
struct Client {
    endpoint: Endpoint,
    addr: SocketAddr,
    established: bool,
    received: Vec<Vec<u8>>,
    closed: bool,
    /// Datagrams the client sent, in order, for tests that replay or drop them.
    sent: Vec<Vec<u8>>,
}

impl Client {
    fn new(port: u16, credentials: Credentials, origin: Instant) -> Self {
        let builder = ConfigBuilder::default().with_crypto_provider(provider());
        let builder = match credentials {
            Credentials::Certificate(cert) => builder
                .with_roots_cas(ca_roots())
                .with_server_name("localhost".to_owned())
                .with_certificates(cert.into_iter().collect()),
            Credentials::Psk(identity, key) => builder
                .with_cipher_suites(vec![CipherSuiteId::Tls_Psk_With_Aes_128_Ccm_8])
                .with_psk(Some(fixed_key(key)))
                .with_psk_identity_hint(Some(identity.as_bytes().to_vec())),
        };
        let config = Arc::new(builder.build(true, Some(addr(SERVER))).unwrap());
        let mut endpoint = Endpoint::new(addr(port), Default::default(), None);
        endpoint
            .connect(origin, addr(SERVER), config, None)
            .unwrap();
        Self {
            endpoint,
            addr: addr(port),
            established: false,
            received: Vec::new(),
            closed: false,
            sent: Vec::new(),
        }
    }

    fn outgoing(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            out.push(t.message.to_vec());
        }
        self.sent.extend(out.iter().cloned());
        out
    }

    fn deliver(&mut self, at: Instant, datagram: &[u8]) {
        let Ok(events) = self.endpoint.read(at, addr(SERVER), None, datagram.into()) else {
            return;
        };
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => self.established = true,
                EndpointEvent::ApplicationData(d) => self.received.push(d.to_vec()),
                EndpointEvent::PeerClosed => self.closed = true,
                _ => {}
            }
        }
    }
}

/// The server under test, its clock, and what it delivered.
struct Net {
    server: DtlsServer,
    now: Millis,
    delivered: Vec<(SocketAddr, Vec<u8>)>,
}

impl Net {
    fn new(config: DtlsConfig) -> Self {
        Self::with_max(config, 16)
    }

    fn with_max(config: DtlsConfig, max_peers: usize) -> Self {
        Self {
            server: DtlsServer::new(config, 42, max_peers).unwrap(),
            now: Millis(1_000),
            delivered: Vec::new(),
        }
    }

    fn at(&self) -> Instant {
        self.server.instant(self.now)
    }

    fn client(&self, port: u16, credentials: Credentials) -> Client {
        Client::new(port, credentials, self.at())
    }

    /// Moves datagrams both ways until neither side has anything to send.
    fn pump(&mut self, client: &mut Client) {
        for _ in 0..50 {
            let mut moved = false;
            for datagram in client.outgoing() {
                moved = true;
                let data = self.server.receive(self.now, client.addr, &datagram);
                self.delivered
                    .extend(data.into_iter().map(|d| (client.addr, d)));
            }
            while let Some((to, datagram)) = self.server.poll_transmit() {
                moved = true;
                if to == client.addr {
                    client.deliver(self.at(), &datagram);
                }
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

    fn handshake(&mut self, client: &mut Client) {
        self.pump(client);
        assert!(
            client.established,
            "client not established: {:?}",
            self.events()
        );
        assert!(self.server.established(client.addr));
    }
}

#[test]
fn certificate_handshake_and_data_both_ways() {
    let mut net = Net::new(certificate_config(&tls("server.pem", "server.key")).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    net.handshake(&mut client);
    assert_eq!(
        net.events(),
        vec![DtlsEvent::Established { peer: client.addr }]
    );
    // One HelloVerifyRequest, from the gate: the crate's own round is not seen.
    assert_eq!(net.server.counters().hello_verify_requests, 1);
    assert_eq!(net.server.peer_count(), 1);

    client
        .endpoint
        .write(net.at(), addr(SERVER), b"\x02\x18")
        .unwrap();
    net.pump(&mut client);
    assert_eq!(net.delivered, vec![(client.addr, b"\x02\x18".to_vec())]);

    net.server.send(net.now, client.addr, b"\x02\x17").unwrap();
    net.pump(&mut client);
    assert_eq!(client.received, vec![b"\x02\x17".to_vec()]);
    assert_eq!(net.server.peer_certificate(client.addr), None);
}

#[test]
fn rsa_certificate_with_pkcs1_key() {
    let t = tls("rsa.pem", "rsa-pkcs1.key");
    let mut net = Net::new(certificate_config(&t).unwrap());
    // The certificate is self-signed, which the crate's client cannot take as its own root:
    // this checks the server's RSA signatures, OpenSSL checks the chain (tests/openssl.rs).
    let config = ConfigBuilder::default()
        .with_crypto_provider(provider())
        .with_insecure_skip_verify(true)
        .build(true, None)
        .unwrap();
    let mut client = net.client(5000, Credentials::Certificate(None));
    client.endpoint = Endpoint::new(client.addr, Default::default(), None);
    client
        .endpoint
        .connect(net.at(), addr(SERVER), Arc::new(config), None)
        .unwrap();
    net.handshake(&mut client);
}

#[test]
fn sec1_key_loads() {
    assert!(certificate_config(&tls("server.pem", "server-sec1.key")).is_ok());
}

#[test]
fn psk_handshake_and_identity() {
    let mut net = Net::new(psk_server_config());
    let key = (0..16).map(|i| i * 0x11).collect();
    let mut client = net.client(5000, Credentials::Psk("sensor-1", key));
    net.handshake(&mut client);
    assert_eq!(
        net.server.psk_identity(client.addr),
        Some(b"sensor-1".to_vec())
    );
    client
        .endpoint
        .write(net.at(), addr(SERVER), b"up")
        .unwrap();
    net.server.send(net.now, client.addr, b"down").unwrap();
    net.pump(&mut client);
    assert_eq!(net.delivered, vec![(client.addr, b"up".to_vec())]);
    assert_eq!(client.received, vec![b"down".to_vec()]);
}

fn assert_refused(net: &mut Net, client: &Client) {
    assert!(!client.established);
    assert!(!net.server.established(client.addr));
    assert_eq!(net.server.peer_count(), 0);
    let events = net.events();
    assert!(
        matches!(events.as_slice(), [DtlsEvent::Refused { peer, .. }] if *peer == client.addr),
        "{events:?}"
    );
}

#[test]
fn wrong_psk_is_refused() {
    let mut net = Net::new(psk_server_config());
    let mut client = net.client(5000, Credentials::Psk("sensor-1", vec![0x55; 16]));
    net.pump(&mut client);
    assert_refused(&mut net, &client);
}

#[test]
fn unknown_psk_identity_is_refused() {
    let mut net = Net::new(psk_server_config());
    let key = (0..16).map(|i| i * 0x11).collect();
    let mut client = net.client(5000, Credentials::Psk("intruder", key));
    net.pump(&mut client);
    assert_refused(&mut net, &client);
}

#[test]
fn trusted_client_certificate_is_accepted_and_exposed() {
    let t = with_ca(tls("server.pem", "server.key"), true);
    let mut net = Net::new(certificate_config(&t).unwrap());
    let cert = client_certificate("client.pem", "client.key");
    let der = cert.certificate[0].to_vec();
    let mut client = net.client(5000, Credentials::Certificate(Some(cert)));
    net.handshake(&mut client);
    assert_eq!(net.server.peer_certificate(client.addr), Some(der));
}

#[test]
fn untrusted_client_certificate_is_refused_when_required() {
    let t = with_ca(tls("server.pem", "server.key"), true);
    let mut net = Net::new(certificate_config(&t).unwrap());
    // Self-signed, so it does not chain to the listener's CA.
    let cert = client_certificate("rsa.pem", "rsa-pkcs1.key");
    let mut client = net.client(5000, Credentials::Certificate(Some(cert)));
    net.pump(&mut client);
    assert_refused(&mut net, &client);
}

#[test]
fn missing_client_certificate_is_refused_when_required() {
    let t = with_ca(tls("server.pem", "server.key"), true);
    let mut net = Net::new(certificate_config(&t).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    net.pump(&mut client);
    assert_refused(&mut net, &client);
}

#[test]
fn client_certificate_is_optional_without_require_certificate() {
    let t = with_ca(tls("server.pem", "server.key"), false);
    let mut net = Net::new(certificate_config(&t).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    net.handshake(&mut client);
}

/// The client's first ClientHello, which carries no cookie.
fn first_client_hello(net: &Net) -> Vec<u8> {
    let mut client = net.client(5000, Credentials::Certificate(None));
    client.outgoing().remove(0)
}

#[test]
fn client_hello_without_cookie_creates_no_peer() {
    let mut net = Net::new(certificate_config(&tls("server.pem", "server.key")).unwrap());
    let hello = first_client_hello(&net);
    // A spoofed source: the answer goes to that address and nothing is remembered.
    let victim = addr(6000);
    for _ in 0..100 {
        assert!(net.server.receive(net.now, victim, &hello).is_empty());
    }
    assert_eq!(net.server.peer_count(), 0);
    assert_eq!(net.server.next_deadline(), None);
    let mut replies = 0;
    while let Some((to, reply)) = net.server.poll_transmit() {
        assert_eq!(to, victim);
        // No amplification: the reply is smaller than the request.
        assert!(
            reply.len() < hello.len(),
            "{} >= {}",
            reply.len(),
            hello.len()
        );
        replies += 1;
    }
    assert_eq!(replies, 100);
    assert!(net.events().is_empty());
}

#[test]
fn cookie_is_bound_to_the_address_and_expires() {
    let mut net = Net::new(certificate_config(&tls("server.pem", "server.key")).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    let hello = client.outgoing().remove(0);
    net.server.receive(net.now, client.addr, &hello);
    let (_, verify) = net.server.poll_transmit().unwrap();
    client.deliver(net.at(), &verify);
    let with_cookie = client.outgoing().remove(0);

    // The right cookie from another address (or port) is no cookie at all.
    net.server.receive(net.now, addr(5001), &with_cookie);
    assert_eq!(net.server.peer_count(), 0);
    // Nor is a stale one: two windows later.
    net.server
        .receive(Millis(net.now.0 + 60_000), client.addr, &with_cookie);
    assert_eq!(net.server.peer_count(), 0);
    assert_eq!(net.server.counters().hello_verify_requests, 3);
    // A forged cookie of the right length.
    let cookie::ClientHello { cookie, .. } = cookie::client_hello(&with_cookie).unwrap();
    let start = with_cookie
        .windows(cookie.len())
        .position(|w| w == cookie)
        .unwrap();
    let mut forged = with_cookie.clone();
    forged[start] ^= 1;
    net.server.receive(net.now, client.addr, &forged);
    assert_eq!(net.server.peer_count(), 0);

    // The genuine one, in time, from the right address, creates the peer.
    net.server.receive(net.now, client.addr, &with_cookie);
    assert_eq!(net.server.peer_count(), 1);
}

#[test]
fn same_seed_gives_the_same_cookie() {
    let config = certificate_config(&tls("server.pem", "server.key")).unwrap();
    let mut a = DtlsServer::new(config.clone(), 7, 4).unwrap();
    let mut b = DtlsServer::new(config.clone(), 7, 4).unwrap();
    let mut c = DtlsServer::new(config, 8, 4).unwrap();
    let net = Net::new(psk_server_config());
    let hello = first_client_hello(&net);
    let reply = |s: &mut DtlsServer| {
        s.receive(Millis(5), addr(5000), &hello);
        s.poll_transmit().unwrap().1
    };
    let ra = reply(&mut a);
    assert_eq!(ra, reply(&mut b));
    assert_ne!(ra, reply(&mut c));
}

#[test]
fn garbage_never_panics_and_creates_no_peer() {
    let mut net = Net::new(certificate_config(&tls("server.pem", "server.key")).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    let hello = client.outgoing().remove(0);
    net.server.receive(net.now, client.addr, &hello);
    let (_, verify) = net.server.poll_transmit().unwrap();
    client.deliver(net.at(), &verify);
    let with_cookie = client.outgoing().remove(0);

    let mut rng = Rng::new(1);
    let mut samples: Vec<Vec<u8>> = vec![Vec::new(), vec![22], vec![0xff; 13], vec![22; 200]];
    for len in 0..with_cookie.len() {
        samples.push(with_cookie[..len].to_vec());
    }
    for _ in 0..3_000 {
        let base = if rng.below(2) == 0 {
            &hello
        } else {
            &with_cookie
        };
        let mut d = base.clone();
        for _ in 0..=rng.below(4) {
            let i = rng.below(d.len() as u64) as usize;
            d[i] = rng.next_u64() as u8;
        }
        samples.push(d);
    }
    for _ in 0..500 {
        let len = rng.below(300) as usize;
        samples.push((0..len).map(|_| rng.next_u64() as u8).collect());
    }
    // From an address that never got a cookie, nothing may create state.
    for d in &samples {
        assert!(net.server.receive(net.now, addr(7000), d).is_empty());
    }
    assert_eq!(net.server.peer_count(), 0);
    while net.server.poll_transmit().is_some() {}
    // And an established peer survives the same noise from its own address.
    net.server.receive(net.now, client.addr, &with_cookie);
    while let Some((_, d)) = net.server.poll_transmit() {
        client.deliver(net.at(), &d);
    }
    net.pump(&mut client);
    assert!(client.established);
    for d in &samples {
        net.server.receive(net.now, client.addr, d);
    }
    assert_eq!(net.server.peer_count(), 1);
}

#[test]
fn lost_client_flight_is_recovered_on_tick() {
    let mut net = Net::new(certificate_config(&tls("server.pem", "server.key")).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    // ClientHello, HelloVerifyRequest, ClientHello with cookie, the server's flight.
    let mut flight = Vec::new();
    for _ in 0..2 {
        for d in client.outgoing() {
            net.server.receive(net.now, client.addr, &d);
        }
        flight.clear();
        while let Some((_, d)) = net.server.poll_transmit() {
            client.deliver(net.at(), &d);
            flight.push(d);
        }
    }
    // The server's flight starts with its ServerHello.
    assert_eq!((flight[0][0], flight[0][13]), (22, 2));
    // The client's answer is lost.
    assert!(!client.outgoing().is_empty());
    assert!(!net.server.established(client.addr));
    let deadline = net.server.next_deadline().unwrap();
    assert!(deadline > net.now);
    net.server.tick(net.now);
    assert!(net.server.poll_transmit().is_none(), "nothing is due yet");

    net.now = deadline;
    net.server.tick(net.now);
    let resent: Vec<Vec<u8>> = std::iter::from_fn(|| net.server.poll_transmit())
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        resent.len(),
        flight.len(),
        "the server did not repeat its flight"
    );
    assert_eq!((resent[0][0], resent[0][13]), (22, 2));
    // The client repeats its flight on its own timer, and the handshake completes.
    let client_deadline = client.endpoint.poll_timeout(&addr(SERVER)).unwrap();
    client
        .endpoint
        .handle_timeout(addr(SERVER), client_deadline)
        .unwrap();
    net.pump(&mut client);
    assert!(client.established);
    assert!(net.server.established(client.addr));
}

#[test]
fn silent_half_open_peer_is_dropped() {
    let mut net = Net::new(certificate_config(&tls("server.pem", "server.key")).unwrap());
    let mut client = net.client(5000, Credentials::Certificate(None));
    for _ in 0..2 {
        for d in client.outgoing() {
            net.server.receive(net.now, client.addr, &d);
        }
        while let Some((_, d)) = net.server.poll_transmit() {
            client.deliver(net.at(), &d);
        }
    }
    assert_eq!(net.server.peer_count(), 1);
    // The client goes away; the server retransmits until the handshake deadline.
    let limit = Millis(net.now.0 + DEFAULT_HANDSHAKE_TIMEOUT_MS);
    while let Some(deadline) = net.server.next_deadline() {
        assert!(deadline <= limit, "{deadline:?} > {limit:?}");
        net.now = deadline;
        net.server.tick(net.now);
        while net.server.poll_transmit().is_some() {}
    }
    assert_eq!(net.server.peer_count(), 0);
    let events = net.events();
    assert!(
        matches!(events.as_slice(), [DtlsEvent::Refused { .. }]),
        "{events:?}"
    );
}

#[test]
fn idle_peer_expires() {
    let mut config = psk_server_config();
    config.idle_timeout_ms = 60_000;
    let mut net = Net::new(config);
    let key = (0..16).map(|i| i * 0x11).collect();
    let mut client = net.client(5000, Credentials::Psk("sensor-1", key));
    net.handshake(&mut client);
    net.events();
    let heard = net.now;
    assert_eq!(net.server.next_deadline(), Some(Millis(heard.0 + 60_000)));

    // Traffic from the peer pushes the deadline back.
    net.now = Millis(heard.0 + 30_000);
    client
        .endpoint
        .write(net.at(), addr(SERVER), b"ping")
        .unwrap();
    net.pump(&mut client);
    net.server.tick(net.now);
    assert_eq!(net.server.next_deadline(), Some(Millis(net.now.0 + 60_000)));

    net.now = net.server.next_deadline().unwrap();
    net.server.tick(net.now);
    assert_eq!(net.server.peer_count(), 0);
    assert_eq!(
        net.events(),
        vec![DtlsEvent::Closed {
            peer: client.addr,
            reason: "idle".to_owned()
        }]
    );
    // The client is told.
    while let Some((_, d)) = net.server.poll_transmit() {
        client.deliver(net.at(), &d);
    }
    assert!(client.closed);
    assert!(net.server.send(net.now, client.addr, b"x").is_err());
}

#[test]
fn peers_are_bounded() {
    let mut net = Net::with_max(psk_server_config(), 2);
    let key: Vec<u8> = (0..16).map(|i| i * 0x11).collect();
    let mut clients: Vec<Client> = (0..3)
        .map(|i| net.client(5000 + i, Credentials::Psk("sensor-1", key.clone())))
        .collect();
    for client in &mut clients {
        net.pump(client);
    }
    assert_eq!(net.server.peer_count(), 2);
    assert!(clients[0].established && clients[1].established);
    assert!(!clients[2].established);
    let events = net.events();
    assert!(
        events.contains(&DtlsEvent::Refused {
            peer: clients[2].addr,
            reason: "too many DTLS peers (max 2)".to_owned()
        }),
        "{events:?}"
    );
    // A freed place is taken by the next client that tries.
    assert!(net.server.close(net.now, clients[0].addr));
    let mut late = net.client(5002, Credentials::Psk("sensor-1", key));
    net.handshake(&mut late);
    assert_eq!(net.server.peer_count(), 2);
}

#[test]
fn client_close_notify_ends_the_association() {
    let mut net = Net::new(psk_server_config());
    let key = (0..16).map(|i| i * 0x11).collect();
    let mut client = net.client(5000, Credentials::Psk("sensor-1", key));
    net.handshake(&mut client);
    net.events();
    client.endpoint.close(net.at()).unwrap();
    net.pump(&mut client);
    assert_eq!(net.server.peer_count(), 0);
    assert_eq!(
        net.events(),
        vec![DtlsEvent::Closed {
            peer: client.addr,
            reason: "closed by the client".to_owned()
        }]
    );
}

#[test]
fn restarted_client_gets_a_new_association() {
    let mut net = Net::new(psk_server_config());
    let key: Vec<u8> = (0..16).map(|i| i * 0x11).collect();
    let mut first = net.client(5000, Credentials::Psk("sensor-1", key.clone()));
    net.handshake(&mut first);
    net.events();
    // Same address, fresh client state.
    let mut second = net.client(5000, Credentials::Psk("sensor-1", key));
    net.handshake(&mut second);
    assert_eq!(net.server.peer_count(), 1);
    let events = net.events();
    assert!(
        matches!(
            events.as_slice(),
            [DtlsEvent::Closed { .. }, DtlsEvent::Established { .. }]
        ),
        "{events:?}"
    );
    second
        .endpoint
        .write(net.at(), addr(SERVER), b"again")
        .unwrap();
    net.pump(&mut second);
    assert_eq!(net.delivered, vec![(second.addr, b"again".to_vec())]);
}

#[test]
fn send_needs_an_established_peer() {
    let mut net = Net::new(psk_server_config());
    let err = net.server.send(net.now, addr(5000), b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    let key = (0..16).map(|i| i * 0x11).collect();
    let mut client = net.client(5000, Credentials::Psk("sensor-1", key));
    net.handshake(&mut client);
    let big = vec![0u8; RECORD_PAYLOAD_MAX + 1];
    assert!(net.server.send(net.now, client.addr, &big).is_err());
}

// --- configuration ----------------------------------------------------------------------

fn config_err(result: io::Result<DtlsConfig>) -> String {
    match result {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn psk_file_errors_name_the_line() {
    let cases = [
        ("a:0011\nb\n", "keys.txt:2: expected identity:hexkey"),
        (":0011\n", "keys.txt:1: empty identity"),
        ("a:001\n", "keys.txt:1: the key is not hexadecimal"),
        ("a:zz\n", "keys.txt:1: the key is not hexadecimal"),
        ("a:\n", "keys.txt:1: the key must be 1 to 256 bytes"),
        ("a:00\na:11\n", "keys.txt:2: identity \"a\" given twice"),
        ("# only a comment\n\n", "keys.txt: no pre-shared key found"),
    ];
    for (text, expected) in cases {
        let got = parse_psk_file(text, "keys.txt").map(|_| ()).unwrap_err();
        assert_eq!(got.to_string(), expected, "{text:?}");
    }
    let keys = parse_psk_file("  a : 0aFF \nb:00\n", "k").unwrap();
    assert_eq!(keys.get(b"b".as_slice()), Some(&vec![0]));
}

#[test]
fn dtls_config_reads_the_psk_file_through_the_caller() {
    let mut read = |p: &Path| -> io::Result<String> {
        assert_eq!(p, Path::new("/etc/culex/psk"));
        Ok("id:0102\n".to_owned())
    };
    let path = Path::new("/etc/culex/psk");
    assert!(dtls_config(None, Some(path), Some("hint"), &mut read).is_ok());
    let mut missing = |_: &Path| -> io::Result<String> { Err(io::ErrorKind::NotFound.into()) };
    let err = config_err(dtls_config(None, Some(path), None, &mut missing));
    assert!(err.starts_with("/etc/culex/psk: cannot read"), "{err}");
}

#[test]
fn certificates_and_psk_are_not_mixed() {
    let t = tls("server.pem", "server.key");
    let mut read = |_: &Path| -> io::Result<String> { Ok("id:0102\n".to_owned()) };
    let err = config_err(dtls_config(
        Some(&t),
        Some(Path::new("psk")),
        None,
        &mut read,
    ));
    assert!(
        err.contains("certificates or pre-shared keys, not both"),
        "{err}"
    );
    let err = config_err(dtls_config(None, None, None, &mut read));
    assert!(
        err.contains("needs certfile and keyfile, or psk_file"),
        "{err}"
    );
}

#[test]
fn certificate_errors_name_the_file() {
    let mut read = |_: &Path| -> io::Result<String> { Ok(String::new()) };
    let t = tls("nope.pem", "server.key");
    let err = config_err(dtls_config(Some(&t), None, None, &mut read));
    assert!(err.contains("nope.pem"), "{err}");
    let err = config_err(certificate_config(&tls("server.pem", "nope.key")));
    assert!(err.contains("nope.key"), "{err}");
    let err = config_err(certificate_config(&tls("server.pem", "client.key")));
    assert!(err.contains("rejected"), "{err}");
    let mut t = tls("server.pem", "server.key");
    t.require_certificate = true;
    assert!(config_err(certificate_config(&t)).contains("cafile"));
    t.cafile = Some(testdata("server.key"));
    assert!(config_err(certificate_config(&t)).contains("server.key"));
    t.cafile = None;
    t.capath = Some(testdata(""));
    assert!(certificate_config(&t).is_ok());
}

#[test]
fn forged_records_do_not_end_an_association() {
    for psk in [true, false] {
        let config = if psk {
            psk_server_config()
        } else {
            certificate_config(&tls("server.pem", "server.key")).unwrap()
        };
        let mut net = Net::new(config);
        let credentials = if psk {
            Credentials::Psk("sensor-1", (0..16).map(|i| i * 0x11).collect())
        } else {
            Credentials::Certificate(None)
        };
        let mut client = net.client(5000, credentials);
        net.handshake(&mut client);
        net.events();
        // Epoch 1 application data that no key produced, from the client's address.
        let mut forged = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0x10, 0, 0, 40];
        forged.extend((0..40).map(|i| i as u8));
        assert!(net.server.receive(net.now, client.addr, &forged).is_empty());
        assert!(
            net.server.poll_transmit().is_none(),
            "psk {psk}: the forgery was answered"
        );
        assert!(
            net.server.established(client.addr),
            "psk {psk}: {:?}",
            net.events()
        );
        assert!(net.events().is_empty());
        client
            .endpoint
            .write(net.at(), addr(SERVER), b"still")
            .unwrap();
        net.pump(&mut client);
        assert_eq!(net.delivered, vec![(client.addr, b"still".to_vec())]);
    }
}
