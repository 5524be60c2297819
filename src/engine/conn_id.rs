//! Connection identities, and the tables keyed by them.
//!
//! A [`ConnId`] is two numbers in one word: a sequence number, counted from 1 at start-up
//! and never reused (what logs, traces and the API show), and a slot, reused once its
//! connection is gone. Slots are dense, so a table of connections is a vector indexed by
//! slot ([`ConnMap`]) instead of an ordered map: a lookup is an index and a comparison, and
//! an idle connection carries no map node. The full identity is compared on every lookup,
//! so an identity whose slot was reused never reaches the connection that reused it.

use std::collections::BTreeMap;
use std::fmt;
use std::mem;

/// Bits of the sequence number; the slot has the rest (about 16 million connections at
/// once). The sequence number wraps after about 10^12 connections, which only changes how
/// an identity prints: the slot keeps identities of live connections apart.
const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const SLOT_MAX: u64 = (1 << (64 - SEQ_BITS)) - 1;

/// A connection's identity, given by the reactor when the connection begins (see the module
/// documentation). Ordered by sequence number, so ordered maps keep connections in the order
/// they began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn new(seq: u64, slot: usize) -> Self {
        let slot = (slot as u64).min(SLOT_MAX);
        Self(slot << SEQ_BITS | (seq & SEQ_MASK))
    }

    /// The connection's number: what logs, traces and the API show.
    pub fn seq(self) -> u64 {
        self.0 & SEQ_MASK
    }

    /// Where tables keyed by identity keep the connection.
    pub fn slot(self) -> usize {
        (self.0 >> SEQ_BITS) as usize
    }
}

impl Ord for ConnId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.seq(), self.slot()).cmp(&(other.seq(), other.slot()))
    }
}

impl PartialOrd for ConnId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.seq())
    }
}

/// Hands out identities: the next sequence number, and the slot freed last (or a new one), so
/// that tables reuse warm entries.
#[derive(Debug)]
pub struct ConnIds {
    next_seq: u64,
    /// The identity holding each slot, as its word; 0 (no identity is 0) when free.
    holders: Vec<u64>,
    free: Vec<usize>,
}

impl Default for ConnIds {
    fn default() -> Self {
        Self {
            next_seq: 1,
            holders: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl ConnIds {
    pub fn alloc(&mut self) -> ConnId {
        if self.next_seq & SEQ_MASK == 0 {
            // Wrapped: 0 is no sequence number, so that no identity is the word 0.
            self.next_seq += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = self.free.pop().unwrap_or(self.holders.len());
        let id = ConnId::new(seq, slot);
        match self.holders.get_mut(slot) {
            Some(holder) => *holder = id.0,
            None => self.holders.push(id.0),
        }
        id
    }

    /// Frees the slot of `id`. Releasing an identity again, or one whose slot another
    /// identity holds, does nothing.
    pub fn release(&mut self, id: ConnId) {
        if let Some(holder) = self.holders.get_mut(id.slot()) {
            if *holder == id.0 {
                *holder = 0;
                self.free.push(id.slot());
            }
        }
    }

    /// Slots held.
    pub fn len(&self) -> usize {
        self.holders.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A table keyed by [`ConnId`]: a vector indexed by slot. Two identities on one slot at once
/// (a slot freed before every table let go of it, or identities made up by tests) are kept
/// apart by an ordered map beside the vector, so a table is always right and usually a
/// plain index.
#[derive(Debug)]
pub struct ConnMap<T> {
    slots: Vec<Option<(ConnId, T)>>,
    overflow: BTreeMap<ConnId, T>,
    len: usize,
}

impl<T> Default for ConnMap<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            overflow: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> ConnMap<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, id: &ConnId) -> Option<&T> {
        match self.slots.get(id.slot()) {
            Some(Some((held, value))) if held == id => Some(value),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.get(id),
        }
    }

    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut T> {
        match self.slots.get_mut(id.slot()) {
            Some(Some((held, value))) if held == id => Some(value),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.get_mut(id),
        }
    }

    pub fn contains_key(&self, id: &ConnId) -> bool {
        self.get(id).is_some()
    }

    /// Inserts or replaces the value of `id`, returning the one it replaced.
    pub fn insert(&mut self, id: ConnId, value: T) -> Option<T> {
        let slot = id.slot();
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let entry = &mut self.slots[slot];
        let old = match entry {
            None => {
                *entry = Some((id, value));
                None
            }
            Some((held, old)) if *held == id => Some(mem::replace(old, value)),
            Some(_) => self.overflow.insert(id, value),
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, id: &ConnId) -> Option<T> {
        let removed = match self.slots.get_mut(id.slot()) {
            Some(entry @ Some(_)) if entry.as_ref().is_some_and(|(held, _)| held == id) => {
                let value = entry.take().map(|(_, value)| value);
                // An identity waiting beside the vector for this slot moves in.
                let waiting = self
                    .overflow
                    .keys()
                    .find(|k| k.slot() == id.slot())
                    .copied();
                if let Some(k) = waiting {
                    *entry = self.overflow.remove(&k).map(|v| (k, v));
                }
                value
            }
            _ => self.overflow.remove(id),
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every entry, in slot order, then the overflow in identity order.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &T)> {
        let slots = self.slots.iter().flatten().map(|(id, value)| (*id, value));
        slots.chain(self.overflow.iter().map(|(id, value)| (*id, value)))
    }

    pub fn keys(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_print_their_sequence_number_and_order_by_it() {
        let a = ConnId::new(7, 3);
        let b = ConnId::new(8, 0);
        assert_eq!((a.seq(), a.slot()), (7, 3));
        assert_eq!(a.to_string(), "#7");
        assert!(a < b);
        assert_eq!(ConnId(5).seq(), 5);
        assert_eq!(ConnId(5).slot(), 0);
    }

    #[test]
    fn slots_are_reused_and_sequence_numbers_are_not() {
        let mut ids = ConnIds::default();
        let a = ids.alloc();
        let b = ids.alloc();
        assert_eq!((a.seq(), a.slot(), b.seq(), b.slot()), (1, 0, 2, 1));
        ids.release(a);
        ids.release(a);
        assert_eq!(ids.len(), 1);
        let c = ids.alloc();
        assert_eq!((c.seq(), c.slot()), (3, 0));
        // A stale identity does not free the slot its successor holds.
        ids.release(a);
        assert_eq!(ids.alloc().slot(), 2);
    }

    #[test]
    fn a_map_tells_identities_on_one_slot_apart() {
        let mut m = ConnMap::default();
        let (old, new) = (ConnId::new(1, 0), ConnId::new(5, 0));
        assert_eq!(m.insert(old, "old"), None);
        assert_eq!(m.insert(new, "new"), None);
        assert_eq!(m.insert(ConnId::new(2, 4), "other"), None);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&old), Some(&"old"));
        assert_eq!(m.get(&new), Some(&"new"));
        assert_eq!(m.get(&ConnId::new(9, 0)), None);
        assert_eq!(m.remove(&old), Some("old"));
        // The one beside the vector moved into the slot.
        assert!(m.overflow.is_empty());
        assert_eq!(m.get(&new), Some(&"new"));
        assert_eq!(m.insert(new, "newer"), Some("new"));
        assert_eq!(m.keys().collect::<Vec<_>>(), [new, ConnId::new(2, 4)]);
        assert_eq!(m.remove(&new), Some("newer"));
        assert_eq!(m.remove(&new), None);
        assert_eq!(m.len(), 1);
        *m.get_mut(&ConnId::new(2, 4)).unwrap_or(&mut "") = "changed";
        assert_eq!(m.values().collect::<Vec<_>>(), [&"changed"]);
    }
}
