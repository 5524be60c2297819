//! Admission of accepted connections: the broker-wide bound on open connections
//! (`global_max_connections`) and the rate of new connections from one address
//! (`max_connection_rate`), decided the moment a connection is accepted, before any of its
//! bytes is read. A refused connection is closed at once (the peer sees the TCP close), and
//! the refusal is logged naming the peer, at most ten lines a second per kind.
//!
//! Owns the count of open connections and the per-address table. It must never read the
//! clock (the reactor's `now` is passed in), never block, and never track more than
//! [`RATE_ADDRESSES_MAX`] addresses. Connections to HTTP API listeners are not its concern:
//! they have their own `max_connections` (64 by default), so the API stays reachable while
//! MQTT clients are refused.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::clock::Millis;
use crate::engine::bounds::LogGate;
use crate::engine::event::ListenerId;
use crate::engine::limits::Limits;

/// Addresses whose connection rate is tracked at once; when a new one comes to a full table,
/// the addresses idle long enough to have their whole allowance back are forgotten (no loss:
/// a fresh entry starts the same), then, if none is, the one idle the longest.
pub(super) const RATE_ADDRESSES_MAX: usize = 4096;

/// The allowance of one address, in thousandths of a connection: a token bucket holding at
/// most `max_connection_rate` connections, refilled at that many a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    milli: u64,
    at: Millis,
}

/// Why an accepted connection is closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The listener's `max_connections`.
    Listener { id: ListenerId, max: u32 },
    /// `global_max_connections`.
    Global { max: u32 },
    /// `max_connection_rate`.
    Rate { per_sec: u32 },
}

#[derive(Debug, Default)]
pub(super) struct Admission {
    /// MQTT and WebSocket connections accepted and not yet removed.
    open: u32,
    rates: BTreeMap<IpAddr, Bucket>,
    /// One log gate per kind of refusal, in the order of [`Refusal`], then one for failed
    /// accepts (out of file descriptors: retried every turn while connections wait).
    gates: [LogGate; 4],
}

impl Admission {
    /// Decides on a connection accepted at `now` from `ip` by a listener that is not an API
    /// one; on success the caller opens it and calls [`Self::opened`].
    pub(super) fn admit(
        &mut self,
        now: Millis,
        ip: IpAddr,
        limits: &Limits,
    ) -> Result<(), Refusal> {
        if let Some(max) = limits.global_max_connections {
            if self.open >= max {
                return Err(Refusal::Global { max });
            }
        }
        match limits.max_connection_rate {
            0 => {
                if !self.rates.is_empty() {
                    self.rates = BTreeMap::new();
                }
                Ok(())
            }
            per_sec if self.take(now, rate_key(ip), per_sec) => Ok(()),
            per_sec => Err(Refusal::Rate { per_sec }),
        }
    }

    /// A connection admitted by [`Self::admit`] is open.
    pub(super) fn opened(&mut self) {
        self.open = self.open.saturating_add(1);
    }

    /// A connection admitted by [`Self::admit`] is gone.
    pub(super) fn closed(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// Logs a refusal, naming the peer; rate-limited per kind.
    pub(super) fn log_refusal(&mut self, now: Millis, peer: SocketAddr, refusal: Refusal) {
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let gate = match refusal {
            Refusal::Listener { .. } => &mut self.gates[0],
            Refusal::Global { .. } => &mut self.gates[1],
            Refusal::Rate { .. } => &mut self.gates[2],
        };
        let Some(held_back) = gate.pass(now) else {
            return;
        };
        match refusal {
            Refusal::Listener { id, max } => log::warn!(
                "refused connection from {peer}: listener {} is at max_connections \
                 {max}{held_back}",
                id.0
            ),
            Refusal::Global { max } => log::warn!(
                "refused connection from {peer}: global_max_connections {max} \
                 reached{held_back}"
            ),
            Refusal::Rate { per_sec } => log::warn!(
                "refused connection from {peer}: more than max_connection_rate {per_sec} \
                 a second from its address{held_back}"
            ),
        }
    }

    /// Logs a failed accept on listener `id`; rate-limited.
    pub(super) fn log_accept_error(&mut self, now: Millis, id: ListenerId, e: &io::Error) {
        if let Some(held_back) = self.gates[3].pass(now) {
            log::warn!("accept failed on listener {}: {e}{held_back}", id.0);
        }
    }

    /// Takes one connection from the allowance of `key`; false when none is left.
    fn take(&mut self, now: Millis, key: IpAddr, per_sec: u32) -> bool {
        let full = u64::from(per_sec).saturating_mul(1000);
        if !self.rates.contains_key(&key) && self.rates.len() >= RATE_ADDRESSES_MAX {
            self.make_room(now, per_sec);
        }
        let bucket = self.rates.entry(key).or_insert(Bucket {
            milli: full,
            at: now,
        });
        let refill = now.since(bucket.at).saturating_mul(u64::from(per_sec));
        bucket.milli = bucket.milli.saturating_add(refill).min(full);
        bucket.at = now;
        if bucket.milli < 1000 {
            return false;
        }
        bucket.milli -= 1000;
        true
    }

    /// Frees at least one entry of the full table.
    fn make_room(&mut self, now: Millis, per_sec: u32) {
        let full = u64::from(per_sec).saturating_mul(1000);
        let per_sec = u64::from(per_sec);
        self.rates.retain(|_, b| {
            b.milli
                .saturating_add(now.since(b.at).saturating_mul(per_sec))
                < full
        });
        if self.rates.len() < RATE_ADDRESSES_MAX {
            return;
        }
        let oldest = self
            .rates
            .iter()
            .min_by_key(|(_, b)| b.at)
            .map(|(ip, _)| *ip);
        if let Some(ip) = oldest {
            self.rates.remove(&ip);
        }
    }
}

/// The address a rate is kept for: an IPv4 address (IPv4-mapped IPv6 ones included), or the
/// /64 prefix of an IPv6 address, as one host usually holds a whole /64.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits(global: Option<u32>, rate: u32) -> Limits {
        Limits {
            global_max_connections: global,
            max_connection_rate: rate,
            ..Limits::default()
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn global_bound_counts_open_connections() {
        let mut a = Admission::default();
        let l = limits(Some(2), 0);
        for _ in 0..2 {
            assert_eq!(a.admit(Millis(0), v4(1), &l), Ok(()));
            a.opened();
        }
        assert_eq!(
            a.admit(Millis(0), v4(2), &l),
            Err(Refusal::Global { max: 2 })
        );
        a.closed();
        assert_eq!(a.admit(Millis(0), v4(2), &l), Ok(()));
        let unbounded = limits(None, 0);
        a.opened();
        a.opened();
        assert_eq!(a.admit(Millis(0), v4(2), &unbounded), Ok(()));
    }

    #[test]
    fn rate_allows_a_burst_then_refills_with_time() {
        let mut a = Admission::default();
        let l = limits(None, 5);
        for _ in 0..5 {
            assert_eq!(a.admit(Millis(1000), v4(1), &l), Ok(()));
        }
        let refused = Err(Refusal::Rate { per_sec: 5 });
        assert_eq!(a.admit(Millis(1000), v4(1), &l), refused);
        // Other addresses have their own allowance.
        assert_eq!(a.admit(Millis(1000), v4(2), &l), Ok(()));
        // One fifth of a second gives one connection back.
        assert_eq!(a.admit(Millis(1199), v4(1), &l), refused);
        assert_eq!(a.admit(Millis(1200), v4(1), &l), Ok(()));
        assert_eq!(a.admit(Millis(1200), v4(1), &l), refused);
        // A long pause gives the whole burst back, never more.
        for _ in 0..5 {
            assert_eq!(a.admit(Millis(60_000), v4(1), &l), Ok(()));
        }
        assert_eq!(a.admit(Millis(60_000), v4(1), &l), refused);
    }

    #[test]
    fn rate_off_forgets_every_address() {
        let mut a = Admission::default();
        assert_eq!(a.admit(Millis(0), v4(1), &limits(None, 1)), Ok(()));
        assert_eq!(a.rates.len(), 1);
        assert_eq!(a.admit(Millis(0), v4(1), &limits(None, 0)), Ok(()));
        assert!(a.rates.is_empty());
    }

    #[test]
    fn table_stays_bounded_and_evicts_the_idle_first() {
        let mut a = Admission::default();
        let l = limits(None, 2);
        let addr = |i: usize| IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32));
        for i in 0..RATE_ADDRESSES_MAX {
            // Two each: every bucket is empty, nothing is idle enough to forget.
            assert_eq!(a.admit(Millis(i as u64), addr(i), &l), Ok(()));
            assert_eq!(a.admit(Millis(i as u64), addr(i), &l), Ok(()));
        }
        assert_eq!(a.rates.len(), RATE_ADDRESSES_MAX);
        let now = Millis(RATE_ADDRESSES_MAX as u64);
        assert_eq!(a.admit(now, addr(RATE_ADDRESSES_MAX), &l), Ok(()));
        assert!(a.rates.len() < RATE_ADDRESSES_MAX);
        // Those idle a whole second had their allowance back and were forgotten; the
        // newest, still refilling, are kept.
        assert!(!a.rates.contains_key(&addr(0)));
        assert!(a.rates.contains_key(&addr(RATE_ADDRESSES_MAX - 1)));
        assert_eq!(
            a.admit(now, addr(RATE_ADDRESSES_MAX - 1), &l),
            Err(Refusal::Rate { per_sec: 2 })
        );
    }

    #[test]
    fn full_table_of_busy_addresses_evicts_the_oldest() {
        let mut a = Admission::default();
        let l = limits(None, 1);
        let addr = |i: usize| IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32));
        for i in 0..RATE_ADDRESSES_MAX {
            assert_eq!(a.admit(Millis(0), addr(i), &l), Ok(()));
        }
        assert_eq!(a.admit(Millis(1), addr(RATE_ADDRESSES_MAX), &l), Ok(()));
        assert_eq!(a.rates.len(), RATE_ADDRESSES_MAX);
    }

    #[test]
    fn ipv6_is_counted_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(rate_key(a), rate_key(b));
        assert_ne!(rate_key(a), rate_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(rate_key(mapped), v4(1));
    }
}
