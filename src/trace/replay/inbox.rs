//! What one replayed connection or MQTT-SN peer has received and not yet matched with an
//! event of the trace: the matching rules of `culex replay`, apart from its sockets.
//!
//! - an `out` event takes the first received packet of its type; the packets of other
//!   types ahead of it stay, in order, and are named in an `order` difference;
//! - an `out` event that gets nothing in time is remembered as missed; a packet of its type
//!   that arrives later is matched with the earliest such miss (and compared then), so one
//!   late packet does not put every later one out of order;
//! - what is left at the end is unexpected.
//!
//! Pure and bounded by what the peer sent: must never touch a socket or the clock.

use std::collections::VecDeque;

/// Received items of one party; `T` is a decoded packet or a datagram, `name` its type.
pub(super) struct Inbox<T> {
    name: fn(&T) -> &'static str,
    queue: VecDeque<T>,
    /// `out` events whose item did not come in time: (their number, the recorded item).
    missed: VecDeque<(usize, T)>,
    /// `out` events so far.
    outs: usize,
    /// Unexpected items so far.
    extras: usize,
}

/// An item taken by an `out` event.
pub(super) struct Taken<T> {
    pub(super) item: T,
    /// The types of the items received before it and left in place.
    pub(super) ahead: Vec<&'static str>,
}

impl<T> Inbox<T> {
    pub(super) fn new(name: fn(&T) -> &'static str) -> Self {
        Self {
            name,
            queue: VecDeque::new(),
            missed: VecDeque::new(),
            outs: 0,
            extras: 0,
        }
    }

    pub(super) fn push(&mut self, item: T) {
        self.queue.push_back(item);
    }

    /// Whether an item of type `name` waits.
    pub(super) fn has(&self, name: &str) -> bool {
        self.queue.iter().any(|i| (self.name)(i) == name)
    }

    /// Numbers the next `out` event (from 1).
    pub(super) fn next_out(&mut self) -> usize {
        self.outs += 1;
        self.outs
    }

    /// Takes the first item of type `name`.
    pub(super) fn take(&mut self, name: &str) -> Option<Taken<T>> {
        let pos = self.queue.iter().position(|i| (self.name)(i) == name)?;
        let ahead = self.queue.iter().take(pos).map(self.name).collect();
        let item = self.queue.remove(pos)?;
        Some(Taken { item, ahead })
    }

    /// Remembers that `out` event number `index` got nothing in time.
    pub(super) fn miss(&mut self, index: usize, expected: T) {
        self.missed.push_back((index, expected));
    }

    /// The late items, each with the missed event it answers: (number, recorded, received).
    pub(super) fn late(&mut self) -> Vec<(usize, T, T)> {
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            let name = self.queue.get(i).map_or("", self.name);
            let miss = self.missed.iter().position(|(_, e)| (self.name)(e) == name);
            match miss.and_then(|m| self.missed.remove(m)) {
                Some((index, expected)) => {
                    if let Some(got) = self.queue.remove(i) {
                        pairs.push((index, expected, got));
                    }
                }
                None => i += 1,
            }
        }
        pairs
    }

    /// Everything left, numbered as unexpected items (from 1 on each party).
    pub(super) fn extras(&mut self) -> Vec<(usize, T)> {
        let mut out = Vec::new();
        while let Some(item) = self.queue.pop_front() {
            self.extras += 1;
            out.push((self.extras, item));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox() -> Inbox<&'static str> {
        Inbox::new(|s: &&'static str| *s)
    }

    #[test]
    fn an_out_event_takes_the_first_item_of_its_type() {
        let mut b = inbox();
        for i in ["PUBACK", "PUBLISH", "PUBLISH"] {
            b.push(i);
        }
        assert!(b.has("PUBLISH") && !b.has("SUBACK"));
        let t = b.take("PUBLISH").unwrap();
        assert_eq!((t.item, t.ahead), ("PUBLISH", vec!["PUBACK"]));
        let t = b.take("PUBACK").unwrap();
        assert!(t.ahead.is_empty());
        assert!(b.take("SUBACK").is_none());
        assert_eq!(b.extras(), vec![(1, "PUBLISH")]);
        assert!(b.extras().is_empty());
    }

    #[test]
    fn a_late_item_answers_the_earliest_miss_of_its_type() {
        let mut b = inbox();
        assert_eq!(b.next_out(), 1);
        b.miss(1, "PUBLISH");
        assert_eq!(b.next_out(), 2);
        b.miss(2, "PUBLISH");
        b.push("PUBREL");
        b.push("PUBLISH");
        assert_eq!(b.late(), vec![(1, "PUBLISH", "PUBLISH")]);
        // The PUBREL is no longer behind a PUBLISH.
        assert!(b.take("PUBREL").unwrap().ahead.is_empty());
        b.push("PUBLISH");
        assert_eq!(b.late(), vec![(2, "PUBLISH", "PUBLISH")]);
        assert!(b.late().is_empty());
    }
}
