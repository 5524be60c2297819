//! The DTLS 1.2 client side of one association to one MQTT-SN gateway, driven without I/O.
//!
//! Like [`super::DtlsServer`], the client owns no socket and reads no clock. The caller hands
//! it each datagram from the gateway with the time, sends what [`DtlsClient::poll_transmit`]
//! returns to the gateway's address, and calls [`DtlsClient::tick`] when
//! [`DtlsClient::next_deadline`] is reached. It never logs: a handshake that fails or an
//! association the gateway ends is reported once through [`DtlsClient::take_failure`].
//!
//! ```text
//! let mut dtls = DtlsClient::new(&credentials, gateway, now, seed)?;
//! // a datagram arrived from the gateway's address (others are not for this client)
//! for message in dtls.receive(now, &buf[..n]) { mqtt_sn.handle(now, &message) }
//! // MQTT-SN bytes to the gateway, queued until the handshake is done
//! dtls.send(now, &bytes)?;
//! // the timer fired
//! dtls.tick(now);
//! // then, every time
//! while let Some(datagram) = dtls.poll_transmit() { socket.send_to(&datagram, gateway) }
//! if let Some(reason) = dtls.take_failure() { log it; start again later }
//! arm the timer at dtls.next_deadline()
//! ```
//!
//! Life cycle: handshaking from [`DtlsClient::new`], established when the gateway's Finished
//! arrives, and ended for good by a failure or [`DtlsClient::close`]; a new association
//! needs a new client. The handshake gives up after the crate's retransmissions are spent
//! (seven, from one second doubling), which [`DtlsClient::tick`] reports as a failure.
//!
//! Once established, a record the association cannot use is dropped without an answer, as
//! the server does: anyone can forge the gateway's address, and the crate would otherwise
//! answer with a fatal alert and end the association. The gateway's close_notify ends it.
//!
//! The handshake's secrets come from the crypto provider's secure random source, as the
//! server's do; the `seed` of [`DtlsClient::new`] never replaces it.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rtc_dtls::config::{ConfigBuilder, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::providers::RingProvider;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};

use super::config::{
    key_matches, signing_key, KeyCallback, CERTIFICATE_SUITES, PSK_MAX, PSK_SUITES,
};
use super::{instant_at, instant_origin, millis_at, RECORD_PAYLOAD_MAX};
use crate::clock::Millis;
use crate::transport::tls_config::certificates;

/// Application datagrams held while the handshake runs; beyond this the oldest is dropped.
pub const PENDING_MAX: usize = 16;

/// How the client authenticates the gateway, and itself.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// Verify the gateway's certificate chain against these PEM CA files; `insecure` skips
    /// verification entirely.
    Certificates {
        /// PEM file of the CA certificates the gateway's certificate must chain to; needed
        /// unless `insecure`.
        cafile: Option<PathBuf>,
        /// Accepts any certificate from the gateway (its handshake signatures still count).
        insecure: bool,
        /// PEM certificate chain presented to the gateway; needs `keyfile`.
        certfile: Option<PathBuf>,
        /// PEM private key of `certfile`.
        keyfile: Option<PathBuf>,
        /// The name the gateway's certificate must carry; empty: the gateway's IP address.
        server_name: String,
    },
    /// A pre-shared key, sent under `identity`.
    Psk {
        /// Sent to the gateway, which looks the key up by it.
        identity: String,
        /// The key itself, raw bytes (1 to 256).
        key: Vec<u8>,
    },
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificates {
                cafile,
                insecure,
                certfile,
                keyfile,
                server_name,
            } => f
                .debug_struct("Certificates")
                .field("cafile", cafile)
                .field("insecure", insecure)
                .field("certfile", certfile)
                .field("keyfile", keyfile)
                .field("server_name", server_name)
                .finish(),
            // The key stays out of logs.
            Self::Psk { identity, .. } => f
                .debug_struct("Psk")
                .field("identity", identity)
                .finish_non_exhaustive(),
        }
    }
}

/// Where the association stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshaking,
    Established,
    /// Failed, closed by the gateway, or closed here: nothing more goes in or out.
    Ended,
}

/// The DTLS client of one association to one gateway.
pub struct DtlsClient {
    endpoint: Endpoint,
    peer: SocketAddr,
    state: State,
    /// Application data sent before the handshake completed, oldest first.
    pending: VecDeque<Vec<u8>>,
    transmits: VecDeque<Vec<u8>>,
    failure: Option<String>,
    /// Culex time 0 as an `Instant`, which is what the crate counts in.
    origin: Instant,
}

impl fmt::Debug for DtlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsClient")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl DtlsClient {
    /// Starts the handshake to `peer` (the gateway's address): the first ClientHello is ready
    /// to poll. Fails on credentials that cannot be used (unreadable files, a key that is not
    /// the certificate's, no CA without `insecure`, an empty pre-shared key).
    pub fn new(
        credentials: &ClientCredentials,
        peer: SocketAddr,
        now: Millis,
        seed: u64,
    ) -> io::Result<Self> {
        // Handshake randomness must be unpredictable, so it comes from the provider; the seed
        // is part of the interface every transport shares and has no use here.
        let _ = seed;
        let config = handshake_config(credentials, peer)?;
        let mut client = Self {
            endpoint: Endpoint::new(
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                Default::default(),
                None,
            ),
            peer,
            state: State::Handshaking,
            pending: VecDeque::new(),
            transmits: VecDeque::new(),
            failure: None,
            origin: instant_origin(),
        };
        let at = instant_at(client.origin, now);
        client
            .endpoint
            .connect(at, peer, Arc::new(config), None)
            .map_err(|e| io::Error::other(format!("DTLS handshake to {peer}: {e}")))?;
        client.drain_transmits();
        Ok(client)
    }

    /// A datagram from the gateway. Returns the application data it carried (MQTT-SN
    /// messages), if any, in order; replies are queued for [`Self::poll_transmit`].
    pub fn receive(&mut self, now: Millis, datagram: &[u8]) -> Vec<Vec<u8>> {
        let mut data = Vec::new();
        if self.state == State::Ended {
            return data;
        }
        let at = instant_at(self.origin, now);
        let result = self.endpoint.read(at, self.peer, None, datagram.into());
        let events = match result {
            Ok(events) => events,
            Err(_) if self.state == State::Established => {
                // A forged or damaged record: dropped, and the crate's alert with it.
                while self.endpoint.poll_transmit().is_some() {}
                return data;
            }
            Err(e) => {
                // The crate's alert (bad certificate, handshake failure) goes out.
                self.drain_transmits();
                self.end(
                    now,
                    format!("DTLS handshake with {} failed: {e}", self.peer),
                );
                return data;
            }
        };
        self.drain_transmits();
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => {
                    self.state = State::Established;
                    self.flush(now);
                }
                EndpointEvent::ApplicationData(bytes) => data.push(bytes.to_vec()),
                EndpointEvent::PeerClosed => {
                    // The crate has dropped the association and queued its close_notify.
                    self.drain_transmits();
                    self.state = State::Ended;
                    self.pending.clear();
                    self.failure = Some(format!("DTLS closed by the gateway {}", self.peer));
                }
                _ => {}
            }
        }
        data
    }

    /// Application data to the gateway; queued until the handshake is done (bounded: at most
    /// [`PENDING_MAX`] datagrams waiting, older dropped).
    pub fn send(&mut self, now: Millis, data: &[u8]) -> io::Result<()> {
        if data.len() > RECORD_PAYLOAD_MAX {
            return Err(invalid(format!(
                "{} bytes do not fit in one DTLS record",
                data.len()
            )));
        }
        match self.state {
            State::Ended => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no DTLS association with {}", self.peer),
            )),
            State::Handshaking => {
                if self.pending.len() >= PENDING_MAX {
                    self.pending.pop_front();
                }
                self.pending.push_back(data.to_vec());
                Ok(())
            }
            State::Established => self.write(now, data),
        }
    }

    fn write(&mut self, now: Millis, data: &[u8]) -> io::Result<()> {
        let at = instant_at(self.origin, now);
        let result = self.endpoint.write(at, self.peer, data);
        self.drain_transmits();
        result.map_err(|e| io::Error::other(format!("DTLS send to {}: {e}", self.peer)))
    }

    /// Sends what waited for the handshake.
    fn flush(&mut self, now: Millis) {
        while let Some(data) = self.pending.pop_front() {
            if let Err(e) = self.write(now, &data) {
                self.end(now, e.to_string());
                return;
            }
        }
    }

    /// The next datagram to put on the wire, to the gateway's address.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// When [`Self::tick`] next has work: a handshake retransmission.
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.state == State::Ended {
            return None;
        }
        let at = self.endpoint.poll_timeout(&self.peer)?;
        Some(millis_at(self.origin, at))
    }

    /// Retransmits the last handshake flight when it is due; ends the handshake when the
    /// retransmissions are spent.
    pub fn tick(&mut self, now: Millis) {
        if self.state == State::Ended || self.next_deadline().is_none_or(|d| d > now) {
            return;
        }
        let at = instant_at(self.origin, now);
        let result = self.endpoint.handle_timeout(self.peer, at);
        self.drain_transmits();
        if let Err(e) = result {
            self.end(
                now,
                format!("DTLS handshake with {} timed out: {e}", self.peer),
            );
        }
    }

    /// Whether the handshake completed and the association still stands.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// The handshake failed or the gateway closed: a reason, once.
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Ends the association, sending the gateway a close_notify if the handshake is done. No
    /// failure is reported for it; data still waiting is dropped.
    pub fn close(&mut self, now: Millis) {
        if self.state == State::Ended {
            return;
        }
        let notify = self.state == State::Established;
        self.state = State::Ended;
        self.pending.clear();
        self.stop(now, notify);
    }

    /// Ends the association after `reason`, without a close_notify.
    fn end(&mut self, now: Millis, reason: String) {
        if self.state == State::Ended {
            return;
        }
        self.state = State::Ended;
        self.pending.clear();
        self.failure = Some(reason);
        self.stop(now, false);
    }

    /// Drops the crate's association; `notify` sends the close_notify it queues.
    fn stop(&mut self, now: Millis, notify: bool) {
        self.drain_transmits();
        let at = instant_at(self.origin, now);
        let _ = self.endpoint.stop(at, self.peer);
        if notify {
            self.drain_transmits();
        } else {
            while self.endpoint.poll_transmit().is_some() {}
        }
    }

    fn drain_transmits(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmits.push_back(t.message.to_vec());
        }
    }
}

/// The crate's client configuration for `credentials`.
fn handshake_config(
    credentials: &ClientCredentials,
    peer: SocketAddr,
) -> io::Result<HandshakeConfig> {
    let provider: Arc<dyn RTCCryptoProvider> = Arc::new(RingProvider::new());
    let builder = ConfigBuilder::default().with_crypto_provider(Arc::clone(&provider));
    let builder = match credentials {
        ClientCredentials::Certificates {
            cafile,
            insecure,
            certfile,
            keyfile,
            server_name,
        } => {
            let mut builder = builder
                .with_cipher_suites(CERTIFICATE_SUITES.to_vec())
                .with_server_name(server_name.clone())
                .with_insecure_skip_verify(*insecure);
            if !*insecure {
                let Some(cafile) = cafile else {
                    return Err(invalid(
                        "a DTLS client needs cafile to verify the gateway, or insecure".to_owned(),
                    ));
                };
                builder = builder.with_roots_cas(roots(cafile)?);
            }
            let own = match (certfile, keyfile) {
                (Some(cert), Some(key)) => vec![certificate(cert, key, provider.as_ref())?],
                (None, None) => Vec::new(),
                _ => {
                    return Err(invalid(
                        "a DTLS client certificate needs both certfile and keyfile".to_owned(),
                    ))
                }
            };
            builder.with_certificates(own)
        }
        ClientCredentials::Psk { identity, key } => {
            if identity.is_empty() {
                return Err(invalid("empty DTLS PSK identity".to_owned()));
            }
            if key.is_empty() || key.len() > PSK_MAX {
                return Err(invalid(format!(
                    "a DTLS pre-shared key must be 1 to {PSK_MAX} bytes"
                )));
            }
            builder
                .with_cipher_suites(PSK_SUITES.to_vec())
                .with_psk(Some(fixed_key(key.clone())))
                .with_psk_identity_hint(Some(identity.as_bytes().to_vec()))
        }
    };
    builder
        .build(true, Some(peer))
        .map_err(|e| invalid(format!("DTLS client configuration rejected: {e}")))
}

/// The CA certificates of a PEM file.
fn roots(cafile: &std::path::Path) -> io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(cafile)? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("{}: bad CA certificate: {e}", cafile.display())))?;
    }
    Ok(roots)
}

/// The client's own certificate chain and key, checked to belong together.
fn certificate(
    certfile: &std::path::Path,
    keyfile: &std::path::Path,
    provider: &dyn RTCCryptoProvider,
) -> io::Result<Certificate> {
    let chain = certificates(certfile)?;
    let key = signing_key(keyfile, provider.crypto())?;
    if !key_matches(&chain[0], key.as_ref()) {
        return Err(invalid(format!(
            "{} / {}: the key is not the certificate's",
            certfile.display(),
            keyfile.display()
        )));
    }
    Ok(Certificate::from_signing_key(chain, key))
}

/// The crate's key callback: the one key, whatever hint the gateway sends.
fn fixed_key<E: 'static>(key: Vec<u8>) -> KeyCallback<E> {
    Arc::new(move |_hint: &[u8]| Ok(key.clone()))
}
