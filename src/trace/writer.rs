//! The trace file: lines appended as events happen, written out at the end of each loop
//! turn (and at exit), so a trace costs one write per turn.
//!
//! The only file access of tracing. A write that fails stops tracing with a log line; the
//! broker goes on.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::Event;
use crate::clock::Millis;

/// Bytes buffered before a write even within a turn.
const BUFFER_MAX: usize = 1 << 20;

pub struct TraceWriter {
    file: Option<File>,
    buffer: Vec<u8>,
}

impl TraceWriter {
    /// Creates (or truncates) the trace file.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: Some(File::create(path)?),
            buffer: Vec::new(),
        })
    }

    /// Adds an event at time `now`.
    pub fn record(&mut self, now: Millis, event: &Event<'_>) {
        if self.file.is_none() {
            return;
        }
        self.buffer.extend_from_slice(event.to_line(now).as_bytes());
        if self.buffer.len() >= BUFFER_MAX {
            self.flush();
        }
    }

    /// Writes what was recorded.
    pub fn flush(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if self.buffer.is_empty() {
            return;
        }
        if let Err(e) = file.write_all(&self.buffer) {
            log::error!("trace file: {e}; tracing stops");
            self.file = None;
        }
        self.buffer.clear();
    }
}
