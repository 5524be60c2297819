//! Measurement: the payload stamp, per-publisher sequence tracking (lost, duplicated, out of
//! order), a latency histogram, and CPU and scheduler time, resident memory and random run
//! tags read from `/proc`.

use std::sync::OnceLock;
use std::time::Instant;

use crate::report::Report;
use crate::Res;

/// Bytes of a payload taken by the stamp; payloads are at least this long.
pub(crate) const STAMP_LEN: usize = 16;

/// The generator's own monotonic clock, in nanoseconds since its first use.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64
}

/// Writes publisher id (16 bits), sequence number (48 bits) and send time (64 bits).
pub(crate) fn stamp(payload: &mut [u8], publisher: u16, seq: u64, sent_ns: u64) {
    payload[..2].copy_from_slice(&publisher.to_le_bytes());
    payload[2..8].copy_from_slice(&seq.to_le_bytes()[..6]);
    payload[8..16].copy_from_slice(&sent_ns.to_le_bytes());
}

/// Reads a stamp back: (publisher, sequence, send time).
pub(crate) fn unstamp(payload: &[u8]) -> Option<(u16, u64, u64)> {
    if payload.len() < STAMP_LEN {
        return None;
    }
    let publisher = u16::from_le_bytes([payload[0], payload[1]]);
    let mut seq = [0u8; 8];
    seq[..6].copy_from_slice(&payload[2..8]);
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&payload[8..16]);
    Some((publisher, u64::from_le_bytes(seq), u64::from_le_bytes(sent)))
}

/// What one subscriber saw of one publisher.
#[derive(Clone, Debug, Default)]
pub(crate) struct Track {
    seen: Vec<u64>,
    pub(crate) unique: u64,
    pub(crate) duplicates: u64,
    pub(crate) reordered: u64,
    next: u64,
}

impl Track {
    pub(crate) fn record(&mut self, seq: u64) {
        let word = (seq / 64) as usize;
        if word >= self.seen.len() {
            self.seen.resize((word + 1).next_power_of_two(), 0);
        }
        let bit = 1u64 << (seq % 64);
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= bit;
        self.unique += 1;
        if seq < self.next {
            self.reordered += 1;
        } else {
            self.next = seq + 1;
        }
    }
}

/// Latency histogram in nanoseconds: exact below 128, then 64 steps per power of two
/// (under 1.6 % error).
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    pub(crate) total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; 128 + 57 * 64],
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < 128 {
        return v as usize;
    }
    let bits = 63 - u64::from(v.leading_zeros());
    let sub = (v >> (bits - 6)) & 63;
    128 + (bits as usize - 7) * 64 + sub as usize
}

fn bucket_value(i: usize) -> u64 {
    if i < 128 {
        return i as u64;
    }
    let bits = (i - 128) / 64 + 7;
    let sub = ((i - 128) % 64) as u64;
    (64 + sub) << (bits - 6)
}

impl Histogram {
    pub(crate) fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn mean(&self) -> u64 {
        if self.total == 0 {
            return 0;
        }
        (self.sum / u128::from(self.total)) as u64
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }
}

/// CPU time (user + system) of a process in seconds, from `/proc/PID/stat`.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Res<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let after = text
        .rsplit_once(')')
        .ok_or("unexpected /proc stat format")?
        .1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Res<u64> {
        let field = fields.get(i).ok_or("short /proc stat")?;
        Ok(field.parse::<u64>()?)
    };
    // Fields 14 and 15 of stat(5), counted from the state field (3); USER_HZ is 100 on Linux.
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Nanoseconds a process's threads spent waiting to run (runnable, but another task had the
/// core), summed over its threads, from `/proc/PID/task/*/schedstat`: what other processes
/// took from it.
fn wait_ns(pid: Option<u32>) -> Res<u64> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let mut wait = 0;
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let path = entry?.path().join("schedstat");
        // A thread that ended meanwhile has no file any more.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(_run)), Some(Ok(w))) = (fields.next(), fields.next()) {
            wait += w;
        }
    }
    Ok(wait)
}

/// The generator counts as saturated when its threads ran or waited to run for more than
/// this share of the wall time: its figures may then be its own limit, not the broker's.
const GEN_BUSY_MAX_PCT: f64 = 90.0;

/// Use of one process so far: CPU time (user + system) and time waiting for a core.
struct Taken {
    cpu_s: f64,
    wait_ns: u64,
}

impl Taken {
    fn read(pid: Option<u32>) -> Res<Self> {
        Ok(Self {
            cpu_s: cpu_seconds(pid)?,
            wait_ns: wait_ns(pid)?,
        })
    }

    /// Adds `{who}_cpu_s`, `{who}_cpu_pct` (CPU time / wall time) and `{who}_wait_pct` (time
    /// runnable but not running / wall time) since `self`; returns (cpu %, wait %).
    fn report(&self, now: &Self, who: &str, wall: f64, report: &mut Report) -> (f64, f64) {
        let cpu = now.cpu_s - self.cpu_s;
        let cpu_pct = 100.0 * cpu / wall;
        let wait_pct = 100.0 * now.wait_ns.saturating_sub(self.wait_ns) as f64 / 1e9 / wall;
        report.num(&format!("{who}_cpu_s"), cpu);
        report.num(&format!("{who}_cpu_pct"), cpu_pct);
        report.num(&format!("{who}_wait_pct"), wait_pct);
        (cpu_pct, wait_pct)
    }
}

/// CPU use over one run, of the generator and (with its pid) the broker.
pub(crate) struct Usage {
    start: Instant,
    gen: Taken,
    broker: Option<(u32, Taken)>,
}

impl Usage {
    /// Takes the readings at the start of the measured part of a run.
    pub(crate) fn start(broker_pid: Option<u32>) -> Res<Self> {
        Ok(Self {
            start: Instant::now(),
            gen: Taken::read(None)?,
            broker: broker_pid
                .map(|pid| Taken::read(Some(pid)).map(|t| (pid, t)))
                .transpose()?,
        })
    }

    /// Adds wall time and both processes' CPU use to `report`, and a warning when the
    /// generator was saturated (`paced`: the generator polls without sleeping to keep its
    /// schedule, so it is busy by design and the warning would say nothing).
    pub(crate) fn finish(&self, report: &mut Report, paced: bool) -> Res<()> {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        report.num("wall_s", wall);
        let (cpu, wait) = self.gen.report(&Taken::read(None)?, "gen", wall, report);
        if let Some((pid, before)) = &self.broker {
            before.report(&Taken::read(Some(*pid))?, "broker", wall, report);
        }
        if !paced && cpu + wait > GEN_BUSY_MAX_PCT {
            report.warn(format!(
                "the generator ran {cpu:.0} % and waited for its core {wait:.0} % of the \
                 time: the figures may be the generator's limit"
            ));
        }
        Ok(())
    }
}

/// 48 random bits as 12 hex digits, from `/proc/sys/kernel/random/uuid`: a tag that makes
/// client ids and topics unique to one run.
pub(crate) fn random_tag() -> Res<String> {
    let path = "/proc/sys/kernel/random/uuid";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let tag: String = text
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    if tag.len() < 12 {
        return Err(format!("{path}: unexpected content {text:?}").into());
    }
    Ok(tag)
}

/// Resident set size of a process in KiB, from `/proc/PID/status`.
pub(crate) fn rss_kib(pid: u32) -> Res<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS line")?;
    let value = line.split_whitespace().nth(1).ok_or("empty VmRSS line")?;
    Ok(value.parse::<u64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip() {
        let mut p = [0u8; 20];
        stamp(&mut p, 513, (1 << 40) + 5, 123_456_789);
        assert_eq!(unstamp(&p), Some((513, (1 << 40) + 5, 123_456_789)));
    }

    #[test]
    fn track_counts() {
        let mut t = Track::default();
        for s in [0, 1, 3, 2, 3, 200] {
            t.record(s);
        }
        assert_eq!((t.unique, t.duplicates, t.reordered), (5, 1, 1));
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert_eq!(h.quantile(1.0), 10_000_000);
        for v in [0u64, 127, 128, 1 << 20, u64::MAX / 2] {
            assert!(bucket_value(bucket(v)) <= v);
        }
    }
}
