//! Durable state in one redb file: the only module that names redb.
//!
//! [`Store::open`] takes the file (refusing one that is in use, damaged, empty or of another
//! format version: never a silent reset) and returns what it holds as a [`Snapshot`] for the
//! engine. From then on the reactor hands every loop turn's [`Change`]s to [`Store::commit`],
//! one write transaction per turn. A transaction reaches the disk (fsync) when packets wait
//! for it: an acknowledgement leaves only once what it acknowledges is on disk, so one fsync
//! serves every message since the previous one (group commit). With `persistence_sync
//! interval MS` transactions are written without an fsync and [`Store::next_deadline`] says
//! when the next flush is due.
//!
//! A commit that fails is fatal to the caller: the acknowledgements of that turn must not
//! leave the process.

mod dump;
mod record;
mod schema;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableError,
};

use crate::clock::Millis;
use crate::config::SyncPolicy;
use crate::engine::durable::{Change, QueueLoad, Snapshot, StoredQueue, StoredSession};
use crate::engine::session::Delivery;
pub use dump::dump;
use record::WallTime;
use schema::{
    FORMAT_KEY, FORMAT_VERSION, INCOMING, INFLIGHT, META, QUEUE, RETAINED, SESSIONS, SUBSCRIPTIONS,
};

/// Changes kept in memory at most before they are written (without a flush).
const BATCH_MAX: usize = 16_384;

/// With `every-turn`, how long changes that no packet waits for (a subscriber's
/// acknowledgement, a retained QoS 0 message) may stay off the disk.
pub const UNACKNOWLEDGED_FLUSH_MS: u64 = 1_000;

/// Memory redb may use to cache pages (its default is 1 GiB).
const CACHE_BYTES: usize = 16 << 20;

/// What is wrong with a store, always said with its path.
#[derive(Debug)]
pub struct StoreError {
    pub path: PathBuf,
    pub problem: Problem,
}

#[derive(Debug)]
pub enum Problem {
    /// Another process holds the file.
    InUse,
    /// The file exists and is empty: not a store culex wrote.
    Empty,
    /// A redb file without the format version culex writes.
    NotAStore,
    /// A culex store of another format version.
    Version(u64),
    /// The file does not read as a redb file, or a record does not decode.
    Damaged(String),
    /// Opened read-only, the file needs the recovery that follows a crash.
    NeedsRecovery,
    Io(std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            Problem::InUse => write!(f, "store {path}: in use by another process"),
            Problem::Empty => write!(
                f,
                "store {path}: empty file, not a culex store (remove it to start afresh)"
            ),
            Problem::NotAStore => write!(f, "store {path}: not a culex store (no format version)"),
            Problem::Version(v) => write!(
                f,
                "store {path}: format version {v}; this culex reads format version \
                 {FORMAT_VERSION}"
            ),
            Problem::Damaged(why) => write!(
                f,
                "store {path}: damaged or not a culex store: {why} (move it away to start \
                 afresh)"
            ),
            Problem::NeedsRecovery => write!(
                f,
                "store {path}: not closed cleanly; start culex on it once to recover it"
            ),
            Problem::Io(e) => write!(f, "store {path}: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// How many rows of each kind a snapshot holds, for the start-up log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub sessions: usize,
    pub subscriptions: usize,
    pub queued: usize,
    pub inflight: usize,
    pub retained: usize,
}

impl Counts {
    pub fn of(snapshot: &Snapshot) -> Self {
        let mut c = Self {
            sessions: snapshot.sessions.len(),
            retained: snapshot.retained.len(),
            ..Self::default()
        };
        for s in &snapshot.sessions {
            c.subscriptions += s.subscriptions.len();
            c.queued += s.queue.len;
            c.inflight += s.inflight.len();
        }
        c
    }
}

pub struct Store {
    db: Database,
    path: PathBuf,
    sync: SyncPolicy,
    wall: WallTime,
    /// When the oldest change not yet on disk was taken.
    oldest_unflushed: Option<Millis>,
    /// Changes taken and not yet written, in order.
    pending: Vec<Change>,
    /// Reused to encode records, and to take each turn's changes and queue reads.
    buf: Vec<u8>,
    changes: Vec<Change>,
    loads: Vec<QueueLoad>,
    /// Changes written since `take_written`, and whether the last write was flushed.
    written: Option<(usize, bool)>,
}

impl Store {
    /// Opens (or creates) the store at `path` and reads what it holds. `wall_start_ms` is the
    /// wall-clock time of this run's [`Millis::ZERO`].
    pub fn open(
        path: &Path,
        sync: SyncPolicy,
        wall_start_ms: u64,
        now: Millis,
    ) -> Result<(Self, Snapshot), StoreError> {
        let fail = |problem| StoreError {
            path: path.to_owned(),
            problem,
        };
        let existed = match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => return Err(fail(Problem::Empty)),
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(fail(Problem::Io(e))),
        };
        if !existed {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| fail(Problem::Io(e)))?;
            }
        }
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        // Every page is checked on open: a damaged file is refused, not trusted.
        builder.set_check_integrity_on_open(true);
        let db = if existed {
            builder.open(path)
        } else {
            builder.create(path)
        }
        .map_err(|e| fail(database_problem(e)))?;
        if existed {
            let txn = db.begin_read().map_err(|e| fail(damaged(e)))?;
            check_format(&txn).map_err(fail)?;
        } else {
            write_format(&db).map_err(fail)?;
        }
        let wall = WallTime {
            start_ms: wall_start_ms,
        };
        let txn = db.begin_read().map_err(|e| fail(damaged(e)))?;
        let snapshot = read_all(&txn, wall, now).map_err(fail)?;
        let store = Self {
            db,
            path: path.to_owned(),
            sync,
            wall,
            oldest_unflushed: None,
            pending: Vec::new(),
            buf: Vec::new(),
            changes: Vec::new(),
            loads: Vec::new(),
            written: None,
        };
        Ok((store, snapshot))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes one turn's changes. They are kept in memory, and written with everything kept
    /// since, in one transaction, when the store must flush (`flush`: packets wait for it;
    /// or the oldest kept change is [`Store::next_deadline`] old), when the turn asks to
    /// read a stored queue (the read must see them), or when [`BATCH_MAX`] changes wait.
    /// Only a flush makes the transaction durable (one fsync); with `persistence_sync
    /// interval`, packets never wait and the interval alone decides. Changes that a later
    /// change of the same batch undoes (a message queued then sent, a flow started then
    /// completed) are never written.
    pub fn commit(
        &mut self,
        now: Millis,
        turn: &mut impl TurnSource,
        flush: bool,
    ) -> Result<(), StoreError> {
        let mut taken = std::mem::take(&mut self.changes);
        let mut loads = std::mem::take(&mut self.loads);
        turn.changes(&mut taken);
        turn.queue_loads(&mut loads);
        if !taken.is_empty() {
            self.oldest_unflushed.get_or_insert(now);
            self.pending.append(&mut taken);
        }
        let due = self.next_deadline().is_some_and(|at| at <= now);
        // Answers to queue reads record changes of their own, within the write.
        let unflushed = self.oldest_unflushed.is_some() || !loads.is_empty();
        let durable = due
            || match self.sync {
                SyncPolicy::EveryTurn => flush && unflushed,
                SyncPolicy::IntervalMs(_) => false,
            };
        let result = if durable || !loads.is_empty() || self.pending.len() >= BATCH_MAX {
            let mut pending = std::mem::take(&mut self.pending);
            let count = pending.len();
            let r = self.write(&mut pending, &mut loads, turn, durable);
            if r.is_ok() {
                self.note_written(count, durable);
            }
            pending.clear();
            self.pending = pending;
            if r.is_ok() {
                if durable {
                    self.oldest_unflushed = None;
                } else {
                    // Written without a flush, changes of the queue reads included.
                    self.oldest_unflushed.get_or_insert(now);
                }
            }
            r
        } else {
            Ok(())
        };
        loads.clear();
        self.changes = taken;
        self.loads = loads;
        result.map_err(|problem| StoreError {
            path: self.path.clone(),
            problem,
        })
    }

    /// Writes and flushes everything not yet on disk (at shutdown).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.oldest_unflushed.is_none() {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let count = pending.len();
        self.write(&mut pending, &mut Vec::new(), &mut NoTurn, true)
            .map_err(|problem| StoreError {
                path: self.path.clone(),
                problem,
            })?;
        self.note_written(count, true);
        pending.clear();
        self.pending = pending;
        self.oldest_unflushed = None;
        Ok(())
    }

    /// The transactions written since the last call: the changes they held and whether
    /// the last was flushed to disk (for traces).
    pub fn take_written(&mut self) -> Option<(usize, bool)> {
        self.written.take()
    }

    fn note_written(&mut self, changes: usize, synced: bool) {
        let before = self.written.map_or(0, |(n, _)| n);
        self.written = Some((before + changes, synced));
    }

    /// True when every change taken has reached the disk.
    pub fn is_flushed(&self) -> bool {
        self.oldest_unflushed.is_none()
    }

    /// Whether acknowledgements wait for the flush of what they acknowledge (`every-turn`);
    /// with `interval` they leave at once.
    pub fn holds_acknowledgements(&self) -> bool {
        self.sync == SyncPolicy::EveryTurn
    }

    /// When the changes not yet on disk must be flushed: after the interval, or after
    /// [`UNACKNOWLEDGED_FLUSH_MS`] for changes no packet waits for.
    pub fn next_deadline(&self) -> Option<Millis> {
        let ms = match self.sync {
            SyncPolicy::EveryTurn => UNACKNOWLEDGED_FLUSH_MS,
            SyncPolicy::IntervalMs(ms) => ms,
        };
        self.oldest_unflushed.map(|t| t.saturating_add_ms(ms))
    }

    fn write(
        &mut self,
        changes: &mut Vec<Change>,
        loads: &mut Vec<QueueLoad>,
        turn: &mut impl TurnSource,
        durable: bool,
    ) -> Result<(), Problem> {
        let mut txn = self.db.begin_write().map_err(damaged)?;
        let level = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(level).map_err(damaged)?;
        {
            let mut t = Tables {
                sessions: txn.open_table(SESSIONS).map_err(damaged)?,
                subscriptions: txn.open_table(SUBSCRIPTIONS).map_err(damaged)?,
                queue: txn.open_table(QUEUE).map_err(damaged)?,
                inflight: txn.open_table(INFLIGHT).map_err(damaged)?,
                incoming: txn.open_table(INCOMING).map_err(damaged)?,
                retained: txn.open_table(RETAINED).map_err(damaged)?,
            };
            loop {
                let keep = compact(changes);
                for (change, keep) in changes.iter().zip(keep) {
                    if keep {
                        t.apply(change, self.wall, &mut self.buf).map_err(damaged)?;
                    }
                }
                if loads.is_empty() {
                    break;
                }
                for load in loads.iter() {
                    let entries = read_queue(&t.queue, load, self.wall)?;
                    turn.queue_loaded(&load.client_id, entries);
                }
                turn.changes(changes);
                turn.queue_loads(loads);
            }
        }
        txn.commit().map_err(damaged)
    }
}

/// Which changes of a batch must be written: an insert that a later change of the batch
/// removes or replaces is left out. A queue entry queued and dequeued in the same batch is
/// left out whole (queue positions are never reused while stored); removals of in-flight
/// flows and inbound QoS 2 identifiers are always written, as the row may predate the batch.
fn compact(changes: &[Change]) -> Vec<bool> {
    const QUEUED: u8 = 0;
    const INFLIGHT: u8 = 1;
    const INCOMING: u8 = 2;
    let mut keep = vec![true; changes.len()];
    let mut live: BTreeMap<(u8, &str, u64), usize> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        match c {
            Change::Queued { client_id, seq, .. } => {
                live.insert((QUEUED, client_id, *seq), i);
            }
            Change::Dequeued { client_id, seq } => {
                if let Some(j) = live.remove(&(QUEUED, &**client_id, *seq)) {
                    keep[j] = false;
                    keep[i] = false;
                }
            }
            Change::InflightSaved {
                client_id,
                packet_id,
                ..
            } => {
                if let Some(j) = live.insert((INFLIGHT, client_id, u64::from(*packet_id)), i) {
                    keep[j] = false;
                }
            }
            Change::InflightReleased {
                client_id,
                packet_id,
            } => {
                if let Some(j) = live.remove(&(INFLIGHT, &**client_id, u64::from(*packet_id))) {
                    keep[j] = false;
                }
            }
            Change::IncomingQos2 {
                client_id,
                packet_id,
                pending,
            } => {
                let key = (INCOMING, &**client_id, u64::from(*packet_id));
                if *pending {
                    live.insert(key, i);
                } else if let Some(j) = live.remove(&key) {
                    keep[j] = false;
                }
            }
            // A session's deletion removes its rows whatever came before; later inserts
            // start afresh.
            Change::SessionDeleted { client_id } => {
                live.retain(|(_, id, _), _| *id != &**client_id);
            }
            _ => {}
        }
    }
    keep
}

/// Where a turn's changes come from, and where the stored queue entries it asked for go.
pub trait TurnSource {
    /// Moves the changes recorded since the last call into `out`.
    fn changes(&mut self, out: &mut Vec<Change>);
    /// Moves the queue reads asked for since the last call into `out`.
    fn queue_loads(&mut self, out: &mut Vec<QueueLoad>);
    /// Hands over the entries read for one [`QueueLoad`], in queue order.
    fn queue_loaded(&mut self, client_id: &str, entries: Vec<(u64, Delivery)>);
}

/// A turn with nothing to add (the final flush).
struct NoTurn;

impl TurnSource for NoTurn {
    fn changes(&mut self, out: &mut Vec<Change>) {
        out.clear();
    }

    fn queue_loads(&mut self, out: &mut Vec<QueueLoad>) {
        out.clear();
    }

    fn queue_loaded(&mut self, _: &str, _: Vec<(u64, Delivery)>) {}
}

/// Up to `load.max` entries of a stored queue from `load.from_seq` on, in order.
fn read_queue(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    load: &QueueLoad,
    wall: WallTime,
) -> Result<Vec<(u64, Delivery)>, Problem> {
    let id: &str = &load.client_id;
    let mut out = Vec::new();
    let rows = table
        .range((id, load.from_seq)..=(id, u64::MAX))
        .map_err(damaged)?;
    for row in rows.take(load.max) {
        let (k, v) = row.map_err(damaged)?;
        let (_, seq) = k.value();
        let d = record::delivery(v.value(), wall, seq)
            .map_err(|e| Problem::Damaged(format!("table queue, key {id:?}: {e}")))?;
        out.push((seq, d));
    }
    Ok(out)
}

struct Tables<'t> {
    sessions: Table<'t, &'static str, &'static [u8]>,
    subscriptions: Table<'t, (&'static str, &'static str), &'static [u8]>,
    queue: Table<'t, (&'static str, u64), &'static [u8]>,
    inflight: Table<'t, (&'static str, u16), &'static [u8]>,
    incoming: Table<'t, (&'static str, u16), ()>,
    retained: Table<'t, &'static str, &'static [u8]>,
}

impl Tables<'_> {
    fn apply(&mut self, c: &Change, wall: WallTime, buf: &mut Vec<u8>) -> redb::Result<()> {
        buf.clear();
        match c {
            Change::SessionSaved { client_id, record } => {
                record::put_session(buf, record, wall);
                self.sessions.insert(&**client_id, buf.as_slice())?;
            }
            Change::SessionDeleted { client_id } => self.delete_session(client_id)?,
            Change::Subscribed {
                client_id,
                filter,
                sub,
            } => {
                record::put_subscription(buf, sub);
                self.subscriptions
                    .insert((&**client_id, filter.as_str()), buf.as_slice())?;
            }
            Change::Unsubscribed { client_id, filter } => {
                self.subscriptions.remove((&**client_id, filter.as_str()))?;
            }
            Change::Queued {
                client_id,
                seq,
                delivery,
            } => {
                record::put_delivery(buf, delivery, wall);
                self.queue.insert((&**client_id, *seq), buf.as_slice())?;
            }
            Change::Dequeued { client_id, seq } => {
                self.queue.remove((&**client_id, *seq))?;
            }
            Change::InflightSaved {
                client_id,
                packet_id,
                state,
                delivery,
            } => {
                record::put_inflight(buf, *state, delivery, wall);
                self.inflight
                    .insert((&**client_id, *packet_id), buf.as_slice())?;
            }
            Change::InflightReleased {
                client_id,
                packet_id,
            } => {
                self.inflight.remove((&**client_id, *packet_id))?;
            }
            Change::IncomingQos2 {
                client_id,
                packet_id,
                pending,
            } => {
                let key = (&**client_id, *packet_id);
                if *pending {
                    self.incoming.insert(key, ())?;
                } else {
                    self.incoming.remove(key)?;
                }
            }
            Change::RetainSet { msg } => {
                record::put_message(buf, msg, wall);
                self.retained.insert(&*msg.topic, buf.as_slice())?;
            }
            Change::RetainCleared { topic } => {
                self.retained.remove(&**topic)?;
            }
        }
        Ok(())
    }

    /// Removes a session and every row it owns.
    fn delete_session(&mut self, client_id: &str) -> redb::Result<()> {
        self.sessions.remove(client_id)?;
        let filters: Vec<String> = self
            .subscriptions
            .range((client_id, "")..)?
            .map_while(|row| {
                let (k, _) = row.ok()?;
                let (id, filter) = k.value();
                (id == client_id).then(|| filter.to_owned())
            })
            .collect();
        for filter in &filters {
            self.subscriptions.remove((client_id, filter.as_str()))?;
        }
        self.queue
            .retain_in((client_id, 0)..=(client_id, u64::MAX), |_, _| false)?;
        self.inflight
            .retain_in((client_id, 0)..=(client_id, u16::MAX), |_, _| false)?;
        self.incoming
            .retain_in((client_id, 0)..=(client_id, u16::MAX), |_, _| false)?;
        Ok(())
    }
}

fn damaged(e: impl fmt::Display) -> Problem {
    Problem::Damaged(e.to_string())
}

fn database_problem(e: DatabaseError) -> Problem {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Problem::InUse,
        DatabaseError::RepairAborted => Problem::NeedsRecovery,
        // A file too short or too strange to be redb's is damaged, not an I/O failure.
        DatabaseError::Storage(redb::StorageError::Io(e))
            if !matches!(
                e.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Problem::Io(e)
        }
        other => damaged(other),
    }
}

fn write_format(db: &Database) -> Result<(), Problem> {
    let txn = db.begin_write().map_err(damaged)?;
    {
        let mut meta = txn.open_table(META).map_err(damaged)?;
        meta.insert(FORMAT_KEY, FORMAT_VERSION).map_err(damaged)?;
        // Every table exists from the start, so readers never meet a missing one.
        txn.open_table(SESSIONS).map_err(damaged)?;
        txn.open_table(SUBSCRIPTIONS).map_err(damaged)?;
        txn.open_table(QUEUE).map_err(damaged)?;
        txn.open_table(INFLIGHT).map_err(damaged)?;
        txn.open_table(INCOMING).map_err(damaged)?;
        txn.open_table(RETAINED).map_err(damaged)?;
    }
    txn.commit().map_err(damaged)
}

fn check_format(txn: &ReadTransaction) -> Result<(), Problem> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Err(Problem::NotAStore),
        Err(e) => return Err(damaged(e)),
    };
    match meta.get(FORMAT_KEY).map_err(damaged)? {
        Some(v) if v.value() == FORMAT_VERSION => Ok(()),
        Some(v) => Err(Problem::Version(v.value())),
        None => Err(Problem::NotAStore),
    }
}

/// Reads every row into a snapshot, in client identifier order.
fn read_all(txn: &ReadTransaction, wall: WallTime, now: Millis) -> Result<Snapshot, Problem> {
    let bad = |table: &str, key: &str, e: record::RecordError| {
        Problem::Damaged(format!("table {table}, key {key:?}: {e}"))
    };
    let mut sessions: BTreeMap<String, StoredSession> = BTreeMap::new();
    for row in txn
        .open_table(SESSIONS)
        .map_err(damaged)?
        .iter()
        .map_err(damaged)?
    {
        let (k, v) = row.map_err(damaged)?;
        let id = k.value();
        let record = record::session(v.value(), wall).map_err(|e| bad("sessions", id, e))?;
        sessions.insert(
            id.to_owned(),
            StoredSession {
                client_id: id.to_owned(),
                record,
                subscriptions: Vec::new(),
                queue: StoredQueue::default(),
                inflight: Vec::new(),
                incoming_qos2: Vec::new(),
            },
        );
    }
    let table = txn.open_table(SUBSCRIPTIONS).map_err(damaged)?;
    for row in table.iter().map_err(damaged)? {
        let (k, v) = row.map_err(damaged)?;
        let (id, filter) = k.value();
        let sub = record::subscription(v.value()).map_err(|e| bad("subscriptions", id, e))?;
        owner(&mut sessions, id, "subscriptions")?
            .subscriptions
            .push((filter.to_owned(), sub));
    }
    for row in txn
        .open_table(QUEUE)
        .map_err(damaged)?
        .iter()
        .map_err(damaged)?
    {
        let (k, v) = row.map_err(damaged)?;
        let (id, seq) = k.value();
        let d = record::delivery(v.value(), wall, seq).map_err(|e| bad("queue", id, e))?;
        // Queues are only counted: their messages stay in the store until their client is
        // back.
        let q = &mut owner(&mut sessions, id, "queue")?.queue;
        q.end_seq = seq + 1;
        if d.msg.is_expired(now) {
            q.expired.push(seq);
        } else {
            if q.len == 0 {
                q.first_seq = seq;
            }
            q.len += 1;
            q.bytes += d.msg.size();
        }
    }
    for row in txn
        .open_table(INFLIGHT)
        .map_err(damaged)?
        .iter()
        .map_err(damaged)?
    {
        let (k, v) = row.map_err(damaged)?;
        let (id, packet_id) = k.value();
        let (state, d) = record::inflight(v.value(), wall).map_err(|e| bad("inflight", id, e))?;
        owner(&mut sessions, id, "inflight")?
            .inflight
            .push((packet_id, state, d));
    }
    for row in txn
        .open_table(INCOMING)
        .map_err(damaged)?
        .iter()
        .map_err(damaged)?
    {
        let (k, _) = row.map_err(damaged)?;
        let (id, packet_id) = k.value();
        owner(&mut sessions, id, "incoming_qos2")?
            .incoming_qos2
            .push(packet_id);
    }
    let mut retained = Vec::new();
    for row in txn
        .open_table(RETAINED)
        .map_err(damaged)?
        .iter()
        .map_err(damaged)?
    {
        let (k, v) = row.map_err(damaged)?;
        let topic = k.value();
        let msg = record::message(v.value(), wall).map_err(|e| bad("retained", topic, e))?;
        if *msg.topic != *topic {
            return Err(Problem::Damaged(format!(
                "table retained, key {topic:?}: holds a message on {:?}",
                msg.topic
            )));
        }
        retained.push(msg);
    }
    Ok(Snapshot {
        sessions: sessions.into_values().collect(),
        retained,
    })
}

/// The session a row belongs to; a row without one means the file is inconsistent.
fn owner<'a>(
    sessions: &'a mut BTreeMap<String, StoredSession>,
    id: &str,
    table: &str,
) -> Result<&'a mut StoredSession, Problem> {
    sessions
        .get_mut(id)
        .ok_or_else(|| Problem::Damaged(format!("table {table}: a row of unknown session {id:?}")))
}
