//! The engine's timers: a min-heap of (deadline, key), and beside it a queue of CONNECT
//! deadlines.
//!
//! Every connection gets a CONNECT deadline the same timeout after it opens, so these are
//! armed in the order they fall due: a queue holds them, O(1) to arm and to pop and two
//! words an entry. One armed out of that order (the timeout was shortened at run time) goes
//! to the heap. Timers fire in (deadline, key) order across both, as from one heap.
//!
//! Timers are never cancelled in place. When one fires, its owner checks whether it still
//! applies (the client may have sent a packet since, the session may be gone) and re-arms it
//! if the deadline moved. This keeps arming O(log n) with no lookup, at the cost of stale
//! entries that expire harmlessly. `next_deadline` may therefore wake the loop early, never
//! late.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

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
    /// CONNECT deadlines in (deadline, key) order.
    deadlines: VecDeque<(Millis, ConnId)>,
}

impl Timers {
    pub fn arm(&mut self, at: Millis, key: TimerKey) {
        if let TimerKey::ConnectDeadline(conn) = key {
            let in_order = self
                .deadlines
                .back()
                .is_none_or(|&(last, c)| (last, c) <= (at, conn));
            if in_order {
                self.deadlines.push_back((at, conn));
                return;
            }
        }
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest timer of the heap and of the queue.
    fn first(&self) -> Option<(Millis, TimerKey)> {
        let heap = self.heap.peek().map(|Reverse(entry)| *entry);
        let queue = self
            .deadlines
            .front()
            .map(|&(at, conn)| (at, TimerKey::ConnectDeadline(conn)));
        match (heap, queue) {
            (Some(h), Some(q)) => Some(h.min(q)),
            (h, q) => h.or(q),
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.first().map(|(at, _)| at)
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Millis) -> Option<TimerKey> {
        let (at, key) = self.first()?;
        if at > now {
            return None;
        }
        let from_queue = self
            .deadlines
            .front()
            .is_some_and(|&(a, c)| (a, TimerKey::ConnectDeadline(c)) == (at, key));
        if from_queue {
            self.deadlines.pop_front();
        } else {
            self.heap.pop();
        }
        Some(key)
    }

    /// The timers due at `now`, in the order [`Timers::pop_due`] gives them, appended to
    /// `out` (for traces; O(n) in the heap's timers).
    pub fn due(&self, now: Millis, out: &mut Vec<TimerKey>) {
        let mut due: Vec<(Millis, TimerKey)> = self
            .heap
            .iter()
            .map(|Reverse(entry)| *entry)
            .filter(|(at, _)| *at <= now)
            .collect();
        let queued = self.deadlines.iter().take_while(|(at, _)| *at <= now);
        due.extend(queued.map(|&(at, conn)| (at, TimerKey::ConnectDeadline(conn))));
        due.sort_unstable();
        out.extend(due.into_iter().map(|(_, key)| key));
    }

    pub fn len(&self) -> usize {
        self.heap.len() + self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.deadlines.is_empty()
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
    fn connect_deadlines_fire_in_one_order_with_the_other_timers() {
        let mut t = Timers::default();
        let c = |seq| ConnId::new(seq, 0);
        t.arm(Millis(10), TimerKey::ConnectDeadline(c(1)));
        t.arm(Millis(10), TimerKey::KeepAlive(c(9)));
        t.arm(Millis(20), TimerKey::ConnectDeadline(c(2)));
        // Out of order (a shorter timeout, or an older id at the same time): to the heap.
        t.arm(Millis(15), TimerKey::ConnectDeadline(c(3)));
        t.arm(Millis(20), TimerKey::ConnectDeadline(c(0)));
        assert_eq!((t.deadlines.len(), t.heap.len(), t.len()), (2, 3, 5));
        assert_eq!(t.next_deadline(), Some(Millis(10)));
        let order = [
            TimerKey::ConnectDeadline(c(1)),
            TimerKey::KeepAlive(c(9)),
            TimerKey::ConnectDeadline(c(3)),
            TimerKey::ConnectDeadline(c(0)),
            TimerKey::ConnectDeadline(c(2)),
        ];
        let mut due = Vec::new();
        t.due(Millis(20), &mut due);
        assert_eq!(due, order);
        assert_eq!(t.pop_due(Millis(9)), None);
        let popped: Vec<TimerKey> = std::iter::from_fn(|| t.pop_due(Millis(20))).collect();
        assert_eq!(popped, order);
        assert!(t.is_empty());
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
