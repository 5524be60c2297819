//! The TLS layer: one rustls session over a byte stream (a TCP socket, or an in-memory pipe
//! in tests), the server side of an accepted connection or the client side of one this
//! broker opened.
//!
//! Owns the session and its bounded record buffers. It must never block, never log and never
//! buffer more than [`TLS_BUFFER_LIMIT`] bytes of output: once that much waits for the
//! socket, `write` takes nothing more and the MQTT bytes stay in the reactor's bounded queue.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::{Layer, ReadOutcome};

/// Bytes rustls may hold for sending, plaintext written before the handshake completed and
/// encrypted records alike. Enough for several full records, so a busy connection keeps the
/// socket fed, and small enough that a peer that stops reading costs little.
pub const TLS_BUFFER_LIMIT: usize = 64 * 1024;

pub struct TlsTransport<S> {
    sock: S,
    session: Connection,
}

impl<S> std::fmt::Debug for TlsTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport")
            .field("client", &matches!(self.session, Connection::Client(_)))
            .field("handshaking", &self.session.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> TlsTransport<S> {
    /// Starts a server session over `sock` with the listener's current configuration.
    pub fn new(sock: S, config: Arc<ServerConfig>) -> io::Result<Self> {
        let session = ServerConnection::new(config)
            .map_err(|e| io::Error::other(format!("cannot start a TLS session: {e}")))?;
        Ok(Self::with_session(sock, session.into()))
    }

    /// Starts a client session over `sock` to the server `server_name`: a DNS name or an IP
    /// address (an IPv6 address with or without brackets), which the server's certificate
    /// must name unless the configuration says otherwise. The ClientHello is queued at once:
    /// [`Layer::wants_write`] is true until it has gone out.
    pub fn client(sock: S, config: Arc<ClientConfig>, server_name: &str) -> io::Result<Self> {
        let bare = server_name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(server_name);
        let name = ServerName::try_from(bare.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("\"{server_name}\" is neither a DNS name nor an IP address"),
            )
        })?;
        let session = ClientConnection::new(config, name)
            .map_err(|e| io::Error::other(format!("cannot start a TLS session: {e}")))?;
        Ok(Self::with_session(sock, session.into()))
    }

    fn with_session(sock: S, mut session: Connection) -> Self {
        session.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Self { sock, session }
    }

    /// The stream under the session.
    pub fn sock(&self) -> &S {
        &self.sock
    }

    /// The stream under the session, for the poller's registration.
    pub fn sock_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// True for the client side of a session (a connection this broker opened).
    pub fn is_client(&self) -> bool {
        matches!(self.session, Connection::Client(_))
    }

    /// The ALPN protocol both sides agreed on, once the handshake got that far.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    /// True once the handshake is complete: the peer's certificate (if any) is verified.
    pub fn is_established(&self) -> bool {
        !self.session.is_handshaking()
    }

    /// The DER of the peer's end-entity certificate, once verified.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        if self.session.is_handshaking() {
            return None;
        }
        self.session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.as_ref())
    }

    /// Moves decrypted bytes into `buf` until the budget is used; `Ok(None)` when none is left.
    fn drain_plaintext(
        &mut self,
        buf: &mut Vec<u8>,
        budget: &mut usize,
    ) -> io::Result<Option<ReadOutcome>> {
        let mut reader = self.session.reader();
        loop {
            if *budget == 0 {
                return Ok(Some(ReadOutcome::Full));
            }
            let chunk = match reader.fill_buf() {
                // An empty chunk is the peer's close_notify.
                Ok([]) => return Ok(Some(ReadOutcome::Eof)),
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                // TCP closed without close_notify: many MQTT clients end that way, and the
                // MQTT layer has its own DISCONNECT, so truncation is nothing to guard.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(Some(ReadOutcome::Eof))
                }
                Err(e) => return Err(e),
            };
            let n = chunk.len().min(*budget);
            buf.extend_from_slice(&chunk[..n]);
            reader.consume(n);
            *budget -= n;
        }
    }

    /// Writes queued records until the socket would block or nothing is left.
    fn flush_records(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<S: Read + Write> Layer for TlsTransport<S> {
    /// Decrypted bytes first, then more records from the socket, until the socket would
    /// block, the budget is used or the session ends. Never returns `WouldBlock` while
    /// decrypted bytes wait, so edge-triggered readiness loses nothing.
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        let mut budget = max;
        loop {
            if let Some(outcome) = self.drain_plaintext(buf, &mut budget)? {
                return Ok(outcome);
            }
            match self.session.read_tls(&mut self.sock) {
                // Zero is the end of the stream; the reader reports it on the next round.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::WouldBlock)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            // A failure queues an alert for the peer; the reactor flushes it before closing.
            if let Err(e) = self.session.process_new_packets() {
                let stage = if self.session.is_handshaking() {
                    "TLS handshake failed"
                } else {
                    "TLS error"
                };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{stage}: {e}"),
                ));
            }
        }
    }

    /// Takes a prefix of `data` into the session (encrypted at once after the handshake,
    /// held until it completes before). `WouldBlock` when the session's buffer is full.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.flush_records()?;
        let taken = self.session.writer().write(data)?;
        match self.flush_records() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if taken == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_records()
    }

    /// Queues a close_notify and tries once to send it; the socket is closed right after, so
    /// a peer that cannot take it now simply sees the TCP close.
    fn close(&mut self) {
        self.session.send_close_notify();
        let _ = self.flush_records();
    }

    fn peer_certificate(&self) -> Option<&[u8]> {
        Self::peer_certificate(self)
    }
}

#[cfg(test)]
#[path = "tests/tls.rs"]
mod tests;
