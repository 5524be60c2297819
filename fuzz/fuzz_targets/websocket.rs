//! The broker's WebSocket layer (`transport::WsTransport`, tungstenite over the in-memory
//! pipe) on the server side, over an in-memory lower layer instead of a socket.
//!
//! Input: a mode byte, a read-size byte, then the client's bytes. Mode bit 0 puts a valid
//! upgrade request in front of the client's bytes (so the fuzzer spends its time on frames),
//! otherwise the upgrade request is fuzzed too; the other bits choose how the bytes are cut
//! into the reads the lower layer hands out. The layer is read as the reactor reads it,
//! every payload byte is written back (as the broker's answers would be), and then it is
//! closed. It must never panic, never hand over more than asked, never hand over payload
//! before the upgrade is done, and its output must stay proportional to its input.

#![no_main]

use std::collections::VecDeque;
use std::io;

use culex::engine::limits::Limits;
use culex::transport::{Layer, ReadOutcome, WsTransport, READ_CHUNK};
use libfuzzer_sys::fuzz_target;

/// The upgrade request a browser's MQTT client sends.
const UPGRADE: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: localhost:8083\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

/// The status line that accepts the upgrade.
const SWITCHING: &[u8] = b"HTTP/1.1 101 ";

/// The socket below: hands out one queued chunk per read, then reports the end of stream.
struct Mem {
    chunks: VecDeque<Vec<u8>>,
    written: usize,
    /// The first bytes written: the status line of the answer to the upgrade.
    status: Vec<u8>,
}

impl Layer for Mem {
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        let Some(mut chunk) = self.chunks.pop_front() else {
            return Ok(ReadOutcome::Eof);
        };
        if chunk.len() > max {
            let rest = chunk.split_off(max);
            self.chunks.push_front(rest);
            buf.extend_from_slice(&chunk);
            return Ok(ReadOutcome::Full);
        }
        buf.extend_from_slice(&chunk);
        Ok(ReadOutcome::WouldBlock)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = SWITCHING.len().saturating_sub(self.status.len());
        self.status.extend(data.iter().take(room));
        self.written += data.len();
        Ok(data.len())
    }

    fn wants_write(&self) -> bool {
        false
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, read_size, client @ ..] = data else {
        return;
    };
    let mut stream = Vec::with_capacity(UPGRADE.len() + client.len());
    if mode & 1 == 1 {
        stream.extend_from_slice(UPGRADE);
    }
    stream.extend_from_slice(client);
    let chunk = match usize::from(mode >> 1) {
        0 => stream.len().max(1),
        n => n,
    };
    let max = match usize::from(*read_size) {
        0 => READ_CHUNK,
        n => n,
    };
    let lower = Mem {
        chunks: stream.chunks(chunk).map(<[u8]>::to_vec).collect(),
        written: 0,
        status: Vec::new(),
    };
    let mut ws = WsTransport::new(lower, Limits::default().packet_size_max());
    let mut buf = Vec::new();
    let mut payload = 0usize;
    // Each read takes at least one chunk or fills its budget, so this bound is never met.
    for _ in 0..2 * stream.len() + 16 {
        buf.clear();
        let outcome = ws.read(&mut buf, max);
        assert!(
            buf.len() <= max,
            "{} bytes for a budget of {max}",
            buf.len()
        );
        if !buf.is_empty() {
            payload += buf.len();
            let mut sent = 0;
            while sent < buf.len() {
                match ws.write(&buf[sent..]) {
                    Ok(n) if n > 0 => sent += n,
                    _ => break,
                }
            }
        }
        let _ = ws.flush();
        if payload > 0 {
            // The upgrade was accepted (and its answer sent) before any payload.
            assert_eq!(ws.lower().status, SWITCHING, "payload before the upgrade");
        }
        match outcome {
            Ok(ReadOutcome::Full) => {}
            Ok(ReadOutcome::WouldBlock) if !ws.lower().chunks.is_empty() => {}
            _ => break,
        }
    }
    assert!(
        payload <= stream.len(),
        "{payload} payload bytes from {}",
        stream.len()
    );
    ws.close();
    let _ = ws.flush();
    // The answer to the upgrade, pongs, a close frame and the echoed payload, which may take
    // one frame per byte when the read budget is one byte.
    let written = ws.lower().written;
    assert!(
        written <= 1024 + 4 * stream.len(),
        "{written} bytes written"
    );
});
