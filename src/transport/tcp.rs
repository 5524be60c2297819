//! Plain TCP: the bottom layer of every transport stack.
//!
//! Owns a non-blocking mio stream (accepted, or opened by [`TcpTransport::connect`]) and the
//! read/write loops over it. It must never block (a connection being opened completes in
//! the background and is checked with [`TcpTransport::connect_result`]),
//! never log and never hold bytes of its own: every byte read goes straight into the caller's
//! buffer, so the caller's bounds are the only buffering. The TLS layer reads and writes it
//! through `io::Read`/`io::Write`.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::{Layer, ReadOutcome, READ_CHUNK};

thread_local! {
    /// The one receive area of every plain TCP read of the thread (the broker has one
    /// thread), zeroed once: a read then costs a copy of the bytes it got, where reading
    /// into the caller's buffer would first zero a whole chunk of it (safe code cannot read
    /// into uninitialised memory), most of it for nothing when a read brings a few bytes or
    /// none.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    /// Opened by this broker rather than accepted.
    outbound: bool,
}

impl TcpTransport {
    /// Wraps an accepted stream. Small MQTT packets (PINGRESP, PUBACK) must not wait for
    /// Nagle's algorithm, so delay is switched off; a failure to do so only costs latency.
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            outbound: false,
        }
    }

    /// Starts opening a connection to `addr` without waiting for it. The socket reports
    /// WRITABLE once the attempt is over either way; [`Self::connect_result`] then tells
    /// which. An error here is one the attempt could not even start with.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            outbound: true,
        })
    }

    /// Where a connection opened by [`Self::connect`] stands: `Ok(true)` once established,
    /// `Ok(false)` while still being opened, the reason when it failed. The failure is taken
    /// from the socket, so it is reported once; the caller closes the socket on it.
    pub fn connect_result(&self) -> io::Result<bool> {
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
                ) =>
            {
                match self.stream.take_error()? {
                    Some(failure) => Err(failure),
                    None => Ok(false),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// True for a connection this broker opened rather than accepted.
    pub fn is_outbound(&self) -> bool {
        self.outbound
    }

    pub fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut budget = max;
            loop {
                if budget == 0 {
                    return Ok(ReadOutcome::Full);
                }
                let want = budget.min(scratch.len());
                match self.stream.read(&mut scratch[..want]) {
                    Ok(0) => return Ok(ReadOutcome::Eof),
                    Ok(n) => {
                        buf.extend_from_slice(&scratch[..n]);
                        budget -= n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(ReadOutcome::WouldBlock)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        })
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write(data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

// Interrupted calls are retried here so no layer above has to care about signals.
impl Read for TcpTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl Write for TcpTransport {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Self::write(self, data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Layer for TcpTransport {
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        Self::read(self, buf, max)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Self::write(self, data)
    }

    // TCP keeps no bytes of its own: whatever the kernel did not take stays with the caller.
    fn wants_write(&self) -> bool {
        false
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for TcpTransport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.stream.deregister(registry)
    }
}
