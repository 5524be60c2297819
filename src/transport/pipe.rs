//! An in-memory, non-blocking byte pipe: the stream tungstenite reads and writes, while the
//! WebSocket layer moves the bytes between it and the layer below.
//!
//! Owns two byte buffers shared between the layer and the stream handed to tungstenite
//! (tungstenite takes its stream by value and drops it on a failed handshake, while the
//! layer still has to send the HTTP error response it wrote). It must never block: reading
//! an empty pipe is `WouldBlock`, exactly like an idle socket.

use std::cell::{RefCell, RefMut};
use std::io::{self, Read, Write};
use std::rc::Rc;

#[derive(Debug, Default)]
pub struct PipeBuffers {
    /// Bytes put in by the layer, not yet read by the stream's user.
    pub inbound: Vec<u8>,
    /// How much of `inbound` was read; the rest is still to serve.
    pub read_pos: usize,
    /// Bytes written by the stream's user, not yet taken by the layer.
    pub outbound: Vec<u8>,
}

impl PipeBuffers {
    /// Whether every inbound byte has been read.
    pub fn drained(&self) -> bool {
        self.read_pos >= self.inbound.len()
    }

    /// Forgets the bytes already read, keeping what is still to serve. Buffers emptied this
    /// way give their memory back, so an idle connection holds none.
    pub fn compact(&mut self) {
        if self.drained() {
            self.inbound = Vec::new();
        } else if self.read_pos > 0 {
            self.inbound.drain(..self.read_pos);
        }
        self.read_pos = 0;
    }
}

/// One handle on a pipe; clones share the buffers.
#[derive(Clone, Debug, Default)]
pub struct Pipe {
    buffers: Rc<RefCell<PipeBuffers>>,
}

impl Pipe {
    pub fn new() -> Self {
        Self::default()
    }

    /// The buffers, for the layer that feeds and drains the pipe. Borrowing twice at once
    /// is a bug of this module, reported as an error rather than a panic.
    pub fn buffers(&self) -> io::Result<RefMut<'_, PipeBuffers>> {
        self.buffers
            .try_borrow_mut()
            .map_err(|_| io::Error::other("pipe buffers borrowed twice"))
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut b = self.buffers()?;
        let start = b.read_pos;
        let available = b.inbound.get(start..).unwrap_or_default();
        if available.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        b.read_pos += n;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffers()?.outbound.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_pipe_would_block() {
        let mut p = Pipe::new();
        let mut buf = [0u8; 4];
        assert_eq!(
            p.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn bytes_flow_both_ways_and_compact() {
        let mut p = Pipe::new();
        let handle = p.clone();
        handle
            .buffers()
            .unwrap()
            .inbound
            .extend_from_slice(b"hello");
        let mut buf = [0u8; 3];
        assert_eq!(p.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf, b"hel");
        handle.buffers().unwrap().compact();
        assert_eq!(handle.buffers().unwrap().inbound, b"lo");
        assert_eq!(p.read(&mut buf).unwrap(), 2);
        assert!(handle.buffers().unwrap().drained());
        handle.buffers().unwrap().compact();
        assert_eq!(handle.buffers().unwrap().inbound.capacity(), 0);
        assert_eq!(p.write(b"out").unwrap(), 3);
        assert_eq!(handle.buffers().unwrap().outbound, b"out");
    }

    #[test]
    fn double_borrow_is_an_error() {
        let p = Pipe::new();
        let _held = p.buffers().unwrap();
        assert!(p.buffers().is_err());
    }
}
