//! The engine's one timer structure: a min-heap of (deadline, key).
//!
//! Timers are never cancelled in place. When one fires, its owner checks whether it still
//! applies (the client may have sent a packet since, the session may be gone) and re-arms it
//! if the deadline moved. This keeps arming O(log n) with no lookup, at the cost of stale
//! entries that expire harmlessly. `next_deadline` may therefore wake the loop early, never
//! late.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::event::ConnId;
use super::topic_tree::SessionKey;
use crate::clock::Millis;

/// A session's slot in the session table, as a timer holds it: 32 bits keep a timer at 16
/// bytes. A slot beyond them (four billion sessions at once) is held as `u32::MAX`: the
/// session's timers then do nothing, the id check keeping them from acting on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionSlot(u32);

impl SessionSlot {
    pub fn new(key: SessionKey) -> Self {
        Self(u32::try_from(key).unwrap_or(u32::MAX))
    }

    /// The session key the slot names.
    pub fn key(self) -> SessionKey {
        self.0 as SessionKey
    }
}

/// What a timer is for. Session timers carry the session's slot in the session table, to
/// find it, and its unique id, so that a timer armed for one session never acts on another
/// that reused its slot. The id comes first: timers due at the same time fire in the order
/// of the sessions' creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKey {
    /// A connection must send CONNECT within a bounded time.
    ConnectDeadline(ConnId),
    /// Keep alive: 1.5 times the keep alive without a packet closes the connection.
    KeepAlive(ConnId),
    /// A disconnected session ends when its expiry interval has passed.
    SessionExpiry { uid: u64, key: SessionSlot },
    /// A will message with a will delay interval is due.
    WillDelay { uid: u64, key: SessionSlot },
    /// `$SYS` topics are published.
    Sys,
}

impl TimerKey {
    /// The timer's name in traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConnectDeadline(_) => "connect_deadline",
            Self::KeepAlive(_) => "keep_alive",
            Self::SessionExpiry { .. } => "session_expiry",
            Self::WillDelay { .. } => "will_delay",
            Self::Sys => "sys",
        }
    }

    /// The connection the timer watches, if it watches one.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Self::ConnectDeadline(c) | Self::KeepAlive(c) => Some(*c),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Millis, TimerKey)>>,
}

impl Timers {
    pub fn arm(&mut self, at: Millis, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Millis) -> Option<TimerKey> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, k))| k),
            _ => None,
        }
    }

    /// The timers due at `now`, in the order [`Timers::pop_due`] gives them, appended to
    /// `out` (for traces; O(n) in the timers armed).
    pub fn due(&self, now: Millis, out: &mut Vec<TimerKey>) {
        let mut due: Vec<(Millis, TimerKey)> = self
            .heap
            .iter()
            .map(|Reverse(entry)| *entry)
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort_unstable();
        out.extend(due.into_iter().map(|(_, key)| key));
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every armed timer is one heap entry: a session timer stays as small as the others.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_timer_key_is_sixteen_bytes() {
        assert_eq!(size_of::<TimerKey>(), 16);
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        t.arm(Millis(30), TimerKey::Sys);
        t.arm(Millis(10), TimerKey::KeepAlive(ConnId(1)));
        let key = SessionSlot::new(2);
        t.arm(Millis(20), TimerKey::SessionExpiry { uid: 4, key });
        assert_eq!(t.next_deadline(), Some(Millis(10)));
        let mut due = Vec::new();
        t.due(Millis(25), &mut due);
        assert_eq!(
            due,
            [
                TimerKey::KeepAlive(ConnId(1)),
                TimerKey::SessionExpiry { uid: 4, key }
            ]
        );
        assert_eq!(due[0].name(), "keep_alive");
        assert_eq!(due[0].conn(), Some(ConnId(1)));
        assert_eq!(t.pop_due(Millis(5)), None);
        assert_eq!(t.pop_due(Millis(25)), Some(TimerKey::KeepAlive(ConnId(1))));
        assert_eq!(
            t.pop_due(Millis(25)),
            Some(TimerKey::SessionExpiry { uid: 4, key })
        );
        assert_eq!(t.pop_due(Millis(25)), None);
        assert_eq!(t.len(), 1);
    }
}
