//! Broker-wide bounds the engine enforces against abuse: the memory budget of all session
//! queues together (`max_queued_memory`), the depth of topic names and filters
//! (`max_topic_levels`, and the 65,535 bytes a mount point could push a topic past), the
//! subscriptions of one client (`max_subscriptions`), and the rate-limited log lines that
//! report each of them. The CONNECT deadline (`connect_timeout`) is armed in `mod.rs`.
//!
//! Owns the queue-memory counter and the log gates. It must never read the clock (times
//! come from the engine's `now`), never drop or refuse anything the broker has acknowledged,
//! and never cost more per message than a zero check when a bound is off and a counter
//! update when it is on.

use std::fmt;

use super::event::ConnId;
use super::session::{Delivery, Session};
use super::topic_tree::SessionKey;
use super::Engine;
use crate::clock::Millis;
use crate::codec::mqtt::QoS;

/// The bytes a topic name or filter may hold (a UTF-8 string's length field, spec 1.5.4).
pub const TOPIC_BYTES_MAX: usize = u16::MAX as usize;

/// What one queue entry costs besides its payload: the delivery record (the shared message
/// itself, with its topic and properties, is held once however many queues it waits in).
pub const QUEUE_ENTRY_OVERHEAD: u64 = size_of::<Delivery>() as u64;

/// At most [`LOG_LINES_PER_INTERVAL`] lines of each kind of refusal per this interval; the
/// next line after a pause says how many were left out, so a flood cannot fill the log.
pub const LOG_INTERVAL_MS: u64 = 1_000;

/// Lines of one kind written per [`LOG_INTERVAL_MS`] before the others are held back: enough
/// for a few misbehaving clients at once to be named each.
pub const LOG_LINES_PER_INTERVAL: u32 = 10;

/// Lets [`LOG_LINES_PER_INTERVAL`] log lines of a kind through per [`LOG_INTERVAL_MS`] and
/// counts the others.
#[derive(Debug, Default, Clone)]
pub struct LogGate {
    /// When the current interval ends.
    interval_end: Millis,
    /// Lines written in the current interval.
    written: u32,
    /// Lines held back since the last one written.
    held_back: u64,
}

impl LogGate {
    /// `Some` when a line may be written at `now`, carrying the number of lines held back
    /// since the previous one; `None` (and one more held back) otherwise.
    pub fn pass(&mut self, now: Millis) -> Option<HeldBack> {
        if now >= self.interval_end {
            self.interval_end = now.saturating_add_ms(LOG_INTERVAL_MS);
            self.written = 0;
        }
        if self.written >= LOG_LINES_PER_INTERVAL {
            self.held_back = self.held_back.saturating_add(1);
            return None;
        }
        self.written += 1;
        Some(HeldBack(std::mem::take(&mut self.held_back)))
    }
}

/// The number of like lines not written since the last one; shown only when there were some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldBack(pub u64);

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} more like this not logged)"),
        }
    }
}

/// The engine's running totals behind the broker-wide bounds.
#[derive(Debug, Default)]
pub(super) struct Bounds {
    /// Payload bytes plus [`QUEUE_ENTRY_OVERHEAD`] of every entry of every session queue,
    /// in memory or (persistent sessions with a store) in the store only.
    queued_memory: u64,
    pub(super) connect_log: LogGate,
    memory_log: LogGate,
    subscription_log: LogGate,
}

impl Bounds {
    /// One entry of `payload` bytes joined a session queue.
    pub(super) fn queued(&mut self, payload: u64) {
        self.queued_memory = self
            .queued_memory
            .saturating_add(payload.saturating_add(QUEUE_ENTRY_OVERHEAD));
    }

    /// One entry of `payload` bytes left a session queue (sent or expired).
    pub(super) fn dequeued(&mut self, payload: u64) {
        self.queued_memory = self
            .queued_memory
            .saturating_sub(payload.saturating_add(QUEUE_ENTRY_OVERHEAD));
    }

    /// `entries` queue entries holding `payload` bytes in all joined (a session restored
    /// from the store) or, with `joined` false, left (a session ended).
    pub(super) fn queue_changed(&mut self, entries: usize, payload: u64, joined: bool) {
        let cost = (entries as u64)
            .saturating_mul(QUEUE_ENTRY_OVERHEAD)
            .saturating_add(payload);
        self.queued_memory = if joined {
            self.queued_memory.saturating_add(cost)
        } else {
            self.queued_memory.saturating_sub(cost)
        };
    }

    /// A session's whole queue, as [`Self::queue_changed`] counts it.
    pub(super) fn session_queue_gone(&mut self, s: &Session) {
        self.queue_changed(s.queue_len(), s.queued_bytes(), false);
    }
}

impl Engine {
    /// The bytes `max_queued_memory` is compared with (see [`Bounds`]).
    pub fn queued_memory(&self) -> u64 {
        self.bounds.queued_memory
    }

    /// Whether a topic name (as the broker holds it, mount point included) is within
    /// `max_topic_levels` and 65,535 bytes. Costs one length comparison for a topic shorter
    /// than the level bound, as it cannot have more levels than bytes.
    pub(super) fn topic_within_bounds(&self, topic: &str) -> bool {
        if topic.len() > TOPIC_BYTES_MAX {
            return false;
        }
        let max = self.limits.max_topic_levels as usize;
        // Levels are separators plus one: too many only with at least `max` separators.
        max == 0 || topic.len() < max || topic.bytes().filter(|&b| b == b'/').count() < max
    }

    /// Whether an inbound QoS 1/2 PUBLISH of `conn` must be refused because the session
    /// queues hold `max_queued_memory` bytes already. The broker's own clients (the local
    /// sessions of bridges) are never refused: their remote broker would not send again.
    pub(super) fn queue_memory_full(&self, conn: ConnId) -> bool {
        let max = self.limits.max_queued_memory;
        max != 0
            && self.bounds.queued_memory >= max
            && !self.conns.get(&conn).is_some_and(|c| c.internal)
    }

    /// Refuses an inbound PUBLISH while the queue memory budget is spent, so that nothing
    /// acknowledged is lost: a v5 QoS 1/2 message is to be answered Quota exceeded (0x97)
    /// by the caller (true is returned); a 3.1.1 one is not acknowledged and the connection
    /// is closed here, so the client sends it again after reconnecting; QoS 0 is dropped.
    /// Counted as dropped in every case.
    pub(super) fn refuse_for_memory(&mut self, conn: ConnId, qos: QoS) -> bool {
        self.stats.publish_dropped += 1;
        let v5 = self.conn_version(conn).is_v5();
        let closing = qos != QoS::AtMostOnce && !v5;
        if let Some(held_back) = self.bounds.memory_log.pass(self.now) {
            let what = if closing { "closing" } else { "refused" };
            log::warn!(
                "{conn} ({}): PUBLISH at QoS {} {what}: max_queued_memory {} reached{held_back}",
                self.peer(conn),
                qos as u8,
                self.limits.max_queued_memory,
            );
        }
        if closing {
            self.close(conn, "max_queued_memory reached", None);
        }
        v5 && qos != QoS::AtMostOnce
    }

    /// Whether `filter` (as stored, mount point and `$share/GROUP/` included) would be one
    /// subscription too many for the session: a filter it holds already is not a new one.
    /// The broker's own clients are not bound.
    pub(super) fn over_subscription_quota(
        &self,
        conn: ConnId,
        key: SessionKey,
        filter: &str,
    ) -> bool {
        let max = self.limits.max_subscriptions as usize;
        if max == 0 {
            return false;
        }
        let subs = &self.sessions[key].subscriptions;
        subs.len() >= max
            && !subs.contains_key(filter)
            && !self.conns.get(&conn).is_some_and(|c| c.internal)
    }

    /// Logs (rate-limited) the filters of one SUBSCRIBE refused for `max_topic_levels`
    /// (`deep`) and for `max_subscriptions` (`over_quota`).
    pub(super) fn log_refused_filters(&mut self, conn: ConnId, deep: usize, over_quota: usize) {
        if let Some(held_back) = self.bounds.subscription_log.pass(self.now) {
            log::warn!(
                "{conn} ({}): SUBSCRIBE: {deep} filter(s) over max_topic_levels {} or 65535 \
                 bytes, {over_quota} over max_subscriptions {}: refused{held_back}",
                self.peer(conn),
                self.limits.max_topic_levels,
                self.limits.max_subscriptions,
            );
        }
    }

    /// The queue memory counted afresh from every session (tests check the running total
    /// against it).
    #[cfg(test)]
    pub(super) fn queued_memory_recount(&self) -> u64 {
        self.sessions
            .iter()
            .map(|(_, s)| {
                (s.queue_len() as u64)
                    .saturating_mul(QUEUE_ENTRY_OVERHEAD)
                    .saturating_add(s.queued_bytes())
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_lets_a_few_lines_through_per_interval_and_counts_the_rest() {
        let mut gate = LogGate::default();
        for _ in 0..LOG_LINES_PER_INTERVAL {
            assert_eq!(gate.pass(Millis(0)), Some(HeldBack(0)));
        }
        assert_eq!(gate.pass(Millis(1)), None);
        assert_eq!(gate.pass(Millis(LOG_INTERVAL_MS - 1)), None);
        assert_eq!(gate.pass(Millis(LOG_INTERVAL_MS)), Some(HeldBack(2)));
        assert_eq!(gate.pass(Millis(LOG_INTERVAL_MS)), Some(HeldBack(0)));
        assert_eq!(gate.pass(Millis(5 * LOG_INTERVAL_MS)), Some(HeldBack(0)));
        assert_eq!(HeldBack(0).to_string(), "");
        assert_eq!(HeldBack(3).to_string(), " (3 more like this not logged)");
    }

    /// The manual page states the overhead: a change to `Delivery` must update it.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn queue_entry_overhead_is_the_documented_one() {
        assert_eq!(QUEUE_ENTRY_OVERHEAD, 48);
    }

    #[test]
    fn queue_accounting_saturates_instead_of_wrapping() {
        let mut b = Bounds::default();
        b.queued(10);
        assert_eq!(b.queued_memory, 10 + QUEUE_ENTRY_OVERHEAD);
        b.dequeued(10);
        b.dequeued(10);
        assert_eq!(b.queued_memory, 0);
        b.queue_changed(3, 30, true);
        assert_eq!(b.queued_memory, 30 + 3 * QUEUE_ENTRY_OVERHEAD);
        b.queue_changed(3, 30, false);
        assert_eq!(b.queued_memory, 0);
    }
}
