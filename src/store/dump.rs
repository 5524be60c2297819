//! `culex --dump-store FILE`: the store's contents as text, opened read-only (a store left
//! by a crash is first recovered, as start-up would).
//!
//! One line per session, indented lines for what it owns, then the retained messages.
//! Times are wall-clock UTC. Payloads are summarised by size, never printed.

use std::fmt::Write as _;
use std::path::Path;

use redb::{Builder, DatabaseError, ReadableDatabase};

use super::record::WallTime;
use super::schema::QUEUE;
use super::{check_format, damaged, database_problem, read_all, read_queue, Problem, StoreError};
use crate::clock::Millis;
use crate::engine::durable::QueueLoad;
use crate::engine::message::Message;
use crate::engine::session::{Delivery, OutState};
use crate::engine::topic_tree::Subscription;

/// Reads the store at `path` without changing it and describes it.
pub fn dump(path: &Path) -> Result<String, StoreError> {
    let fail = |problem| StoreError {
        path: path.to_owned(),
        problem,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Err(fail(Problem::Empty)),
        Ok(_) => {}
        Err(e) => return Err(fail(Problem::Io(e))),
    }
    // Both handles live as long as the read: dropping a database closes its file.
    let (read_only, recovered);
    let txn = match Builder::new().open_read_only(path) {
        Ok(db) => {
            read_only = db;
            read_only.begin_read()
        }
        // After a crash the file must be recovered first, as culex does at start-up; the
        // recovery changes no row.
        Err(DatabaseError::RepairAborted) => {
            let mut builder = Builder::new();
            builder.set_check_integrity_on_open(true);
            recovered = builder.open(path).map_err(|e| fail(database_problem(e)))?;
            recovered.begin_read()
        }
        Err(e) => return Err(fail(database_problem(e))),
    }
    .map_err(|e| fail(damaged(e)))?;
    check_format(&txn).map_err(fail)?;
    // With a zero start, the snapshot's times are wall-clock milliseconds.
    let wall = WallTime { start_ms: 0 };
    let snapshot = read_all(&txn, wall, Millis::ZERO).map_err(fail)?;
    let queue = txn.open_table(QUEUE).map_err(|e| fail(damaged(e)))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "store {} (format version {}): {} sessions, {} retained messages",
        path.display(),
        super::FORMAT_VERSION,
        snapshot.sessions.len(),
        snapshot.retained.len()
    );
    for s in &snapshot.sessions {
        let r = &s.record;
        let expiry = match r.expiry_secs {
            u32::MAX => "never expires".to_owned(),
            secs => format!("expiry {secs} s"),
        };
        let _ = write!(out, "session {:?}: {expiry}", s.client_id);
        if let Some(at) = r.expires_at {
            let _ = write!(out, ", expires {}", utc(at));
        }
        let _ = writeln!(out);
        if let Some(w) = &r.will {
            let _ = write!(
                out,
                "  will on {:?}: qos {}{}, {} bytes, delay {} s",
                w.will.topic,
                w.will.qos as u8,
                if w.will.retain { ", retain" } else { "" },
                w.will.payload.len(),
                w.delay_secs
            );
            if let Some(due) = w.due {
                let _ = write!(out, ", due {}", utc(due));
            }
            let _ = writeln!(out);
        }
        for (filter, sub) in &s.subscriptions {
            let _ = writeln!(out, "  subscription {filter:?}: {}", options(sub));
        }
        let load = QueueLoad {
            client_id: s.client_id.as_str().into(),
            from_seq: 0,
            max: usize::MAX,
        };
        for (seq, d) in &read_queue(&queue, &load, wall).map_err(fail)? {
            let _ = writeln!(out, "  queued #{seq}: {}", delivery(d));
        }
        for (id, state, d) in &s.inflight {
            let state = match state {
                OutState::AwaitPubAck => "awaiting PUBACK",
                OutState::AwaitPubRec => "awaiting PUBREC",
                OutState::AwaitPubComp => "awaiting PUBCOMP",
            };
            let _ = writeln!(out, "  in flight, packet id {id}, {state}: {}", delivery(d));
        }
        for id in &s.incoming_qos2 {
            let _ = writeln!(out, "  received QoS 2, packet id {id}, awaiting PUBREL");
        }
    }
    for m in &snapshot.retained {
        let _ = writeln!(out, "retained {:?}: {}", m.topic, message(m));
    }
    Ok(out)
}

fn options(s: &Subscription) -> String {
    let o = &s.options;
    let mut text = format!("qos {}", o.qos as u8);
    if o.no_local {
        text.push_str(", no local");
    }
    if o.retain_as_published {
        text.push_str(", retain as published");
    }
    let _ = write!(text, ", retain handling {}", o.retain_handling);
    if let Some(id) = s.identifier {
        let _ = write!(text, ", identifier {id}");
    }
    text
}

fn delivery(d: &Delivery) -> String {
    let mut text = format!("{:?} qos {}", d.msg.topic, d.qos as u8);
    if d.retain {
        text.push_str(", retain");
    }
    let _ = write!(text, ", {} bytes", d.msg.payload.len());
    if let Some(at) = d.msg.expires_at {
        let _ = write!(text, ", expires {}", utc(at));
    }
    text
}

fn message(m: &Message) -> String {
    let mut text = format!("qos {}, {} bytes", m.qos as u8, m.payload.len());
    if let Some(at) = m.expires_at {
        let _ = write!(text, ", expires {}", utc(at));
    }
    text
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn utc(at: Millis) -> String {
    let secs = at.0 / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (era-based, exact for every u64 day here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(Millis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(utc(Millis(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(utc(Millis(1_795_000_000_999)), "2026-11-18T11:06:40Z");
    }
}
