//! The TLS layer against a real rustls client over an in-memory socket: handshakes fed a
//! byte at a time, bounded output for a peer that stops reading, close_notify and garbage.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;
use crate::transport::tls_config::server_config;
use crate::transport::tls_config::tests::plain;

/// A socket end whose inbound bytes arrive `step` at a time, one step per read call, with
/// `WouldBlock` in between, and whose writes are taken only up to `room` bytes.
#[derive(Default)]
struct Sock {
    inbound: VecDeque<u8>,
    step: usize,
    /// False between two reads that delivered something: the next read says WouldBlock.
    ready: bool,
    outbound: Vec<u8>,
    room: usize,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbound.is_empty() || !self.ready {
            self.ready = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.ready = false;
        let n = buf.len().min(self.step).min(self.inbound.len());
        for b in buf.iter_mut().take(n) {
            *b = self.inbound.pop_front().unwrap_or_default();
        }
        Ok(n)
    }
}

impl Write for Sock {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.room);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.outbound.extend_from_slice(&data[..n]);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn client() -> ClientConnection {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(include_bytes!("../testdata/ca.pem")).unwrap();
    roots.add(ca).unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
}

fn server(step: usize) -> TlsTransport<Sock> {
    let sock = Sock {
        step,
        room: usize::MAX,
        ..Sock::default()
    };
    TlsTransport::new(sock, server_config(&plain(), false).unwrap()).unwrap()
}

/// Moves bytes both ways until neither side has anything to say; returns the server's
/// plaintext.
fn pump(c: &mut ClientConnection, s: &mut TlsTransport<Sock>) -> io::Result<Vec<u8>> {
    let mut plaintext = Vec::new();
    for _ in 0..100_000 {
        let mut moved = false;
        while c.wants_write() {
            let mut bytes = Vec::new();
            c.write_tls(&mut bytes).unwrap();
            s.sock.inbound.extend(bytes);
            moved = true;
        }
        if s.read(&mut plaintext, 1 << 20)? == ReadOutcome::Eof {
            return Ok(plaintext);
        }
        s.flush()?;
        let out = std::mem::take(&mut s.sock.outbound);
        if !out.is_empty() {
            moved = true;
            c.read_tls(&mut &out[..]).unwrap();
            c.process_new_packets().unwrap();
        }
        if !moved && s.sock.inbound.is_empty() {
            return Ok(plaintext);
        }
    }
    panic!("no progress");
}

#[test]
fn handshake_and_records_fed_one_byte_per_read() {
    let mut c = client();
    let mut s = server(1);
    c.writer().write_all(b"\x10\x0cMQTT bytes").unwrap();
    let got = pump(&mut c, &mut s).unwrap();
    assert!(s.is_established());
    assert_eq!(got, b"\x10\x0cMQTT bytes");
    assert_eq!(s.peer_certificate(), None);

    // Server to client.
    assert_eq!(Layer::write(&mut s, b"\x20\x02\x00\x00").unwrap(), 4);
    pump(&mut c, &mut s).unwrap();
    let mut back = [0u8; 4];
    c.reader().read_exact(&mut back).unwrap();
    assert_eq!(back, [0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn read_budget_leaves_the_rest_for_the_next_call() {
    let mut c = client();
    let mut s = server(1 << 20);
    pump(&mut c, &mut s).unwrap();
    c.writer().write_all(&[7u8; 1000]).unwrap();
    let mut bytes = Vec::new();
    c.write_tls(&mut bytes).unwrap();
    s.sock.inbound.extend(bytes);
    s.sock.ready = true;
    let mut buf = Vec::new();
    assert_eq!(s.read(&mut buf, 300).unwrap(), ReadOutcome::Full);
    assert_eq!(buf.len(), 300);
    // The decrypted rest is served before the socket is asked again.
    assert_eq!(s.read(&mut buf, 1000).unwrap(), ReadOutcome::WouldBlock);
    assert_eq!(buf.len(), 1000);
}

#[test]
fn output_for_a_peer_that_stops_reading_is_bounded() {
    let mut c = client();
    let mut s = server(1 << 20);
    pump(&mut c, &mut s).unwrap();
    // The socket takes nothing more.
    s.sock.room = 0;
    let chunk = [1u8; 4096];
    let mut taken = 0;
    loop {
        match Layer::write(&mut s, &chunk) {
            Ok(n) => taken += n,
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                break;
            }
        }
        assert!(taken < 10 * TLS_BUFFER_LIMIT, "no bound");
    }
    assert!(taken <= TLS_BUFFER_LIMIT, "took {taken}");
    assert!(s.wants_write());
}

#[test]
fn garbage_is_a_handshake_error() {
    let mut s = server(1 << 20);
    s.sock
        .inbound
        .extend(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c");
    s.sock.ready = true;
    let err = s.read(&mut Vec::new(), 100).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
    // An alert is owed to the peer.
    assert!(s.wants_write());
}

#[test]
fn close_notify_is_the_end_of_the_stream() {
    let mut c = client();
    let mut s = server(1 << 20);
    pump(&mut c, &mut s).unwrap();
    c.send_close_notify();
    let mut bytes = Vec::new();
    c.write_tls(&mut bytes).unwrap();
    s.sock.inbound.extend(bytes);
    s.sock.ready = true;
    assert_eq!(s.read(&mut Vec::new(), 100).unwrap(), ReadOutcome::Eof);
}

#[test]
fn close_sends_close_notify() {
    let mut c = client();
    let mut s = server(1 << 20);
    pump(&mut c, &mut s).unwrap();
    s.close();
    let out = std::mem::take(&mut s.sock.outbound);
    c.read_tls(&mut &out[..]).unwrap();
    let state = c.process_new_packets().unwrap();
    assert!(state.peer_has_closed());
}
