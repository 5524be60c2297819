//! The byte form of every value the store keeps: pure functions, no file, no clock.
//!
//! Integers are big-endian. Times are wall-clock Unix milliseconds, 0 meaning "none", so
//! that deadlines keep their meaning across a restart; [`WallTime`] converts them to and
//! from the engine's [`Millis`]. Properties use their MQTT 5.0 wire form. Decoding checks
//! every length and value and fails with [`RecordError`] instead of trusting the file.
//!
//! | record       | fields                                                               |
//! |--------------|----------------------------------------------------------------------|
//! | message      | flags (qos, retain), expiry, topic, properties, payload              |
//! | delivery     | qos, retain, subscription identifiers, message                       |
//! | in-flight    | state, delivery                                                      |
//! | subscription | qos, flags (no local, retain as published), retain handling, id      |
//! | session      | expiry interval, expiry time, will (delay, due time, message fields) |

use std::fmt;
use std::rc::Rc;

use crate::clock::Millis;
use crate::codec::cursor::{Reader, Writer};
use crate::codec::mqtt::{
    decode_properties, encode_properties, PropertySet, QoS, SubOptions, Will,
};
use crate::engine::durable::{SessionRecord, StoredWill};
use crate::engine::message::Message;
use crate::engine::session::{Delivery, OutState};
use crate::engine::topic_tree::Subscription;

/// A record that does not decode: the file was damaged or written by something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordError(pub(super) &'static str);

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad {}", self.0)
    }
}

type Result<T> = std::result::Result<T, RecordError>;

/// Converts between the engine's clock and wall-clock time: `wall = start + millis`.
#[derive(Debug, Clone, Copy)]
pub(super) struct WallTime {
    pub(super) start_ms: u64,
}

impl WallTime {
    pub(super) fn to_wall(self, at: Option<Millis>) -> u64 {
        at.map_or(0, |m| self.start_ms.saturating_add(m.0).max(1))
    }

    /// A time before this run's start becomes 0: already past.
    pub(super) fn to_millis(self, wall: u64) -> Option<Millis> {
        (wall != 0).then(|| Millis(wall.saturating_sub(self.start_ms)))
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn get_u64(r: &mut Reader<'_>, what: &'static str) -> Result<u64> {
    let bytes = r.take(8).map_err(|_| RecordError(what))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Ok(u64::from_be_bytes(b))
}

fn put_long_bin(out: &mut Vec<u8>, b: &[u8]) {
    out.put_u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}

fn get_long_bin<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8]> {
    let n = r.u32().map_err(|_| RecordError(what))?;
    r.take(n as usize).map_err(|_| RecordError(what))
}

fn get_qos(r: &mut Reader<'_>, what: &'static str) -> Result<QoS> {
    r.u8().ok().and_then(QoS::from_u8).ok_or(RecordError(what))
}

fn end(r: &Reader<'_>, what: &'static str) -> Result<()> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(RecordError(what))
    }
}

/// Appends a message record.
pub(super) fn put_message(out: &mut Vec<u8>, m: &Message, wall: WallTime) {
    out.put_u8(m.qos as u8 | (u8::from(m.retain) << 2));
    put_u64(out, wall.to_wall(m.expires_at));
    out.put_str(&m.topic);
    encode_properties(&m.properties, PropertySet::Message, out);
    put_long_bin(out, &m.payload);
}

fn get_message(r: &mut Reader<'_>, wall: WallTime) -> Result<Message> {
    const WHAT: &str = "message";
    let flags = r.u8().map_err(|_| RecordError(WHAT))?;
    let qos = QoS::from_u8(flags & 3).ok_or(RecordError(WHAT))?;
    if flags & !7 != 0 {
        return Err(RecordError(WHAT));
    }
    let expires_at = wall.to_millis(get_u64(r, WHAT)?);
    let topic = r.str().map_err(|_| RecordError("message topic"))?;
    let properties = decode_properties(r, PropertySet::Message)
        .map_err(|_| RecordError("message properties"))?;
    let payload = get_long_bin(r, "message payload")?;
    Ok(Message {
        topic: topic.into(),
        payload: payload.into(),
        qos,
        retain: flags & 4 != 0,
        properties,
        expires_at,
        origin: None,
    })
}

/// Decodes a whole message record (a retained message).
pub(super) fn message(bytes: &[u8], wall: WallTime) -> Result<Message> {
    let mut r = Reader::new(bytes);
    let m = get_message(&mut r, wall)?;
    end(&r, "message")?;
    Ok(m)
}

/// Appends a delivery record (a message as queued for one session).
pub(super) fn put_delivery(out: &mut Vec<u8>, d: &Delivery, wall: WallTime) {
    out.put_u8(d.qos as u8);
    out.put_u8(u8::from(d.retain));
    out.put_u16(u16::try_from(d.sub_ids.len()).unwrap_or(u16::MAX));
    for id in d.sub_ids.iter().take(usize::from(u16::MAX)) {
        out.put_u32(*id);
    }
    put_message(out, &d.msg, wall);
}

fn get_delivery(r: &mut Reader<'_>, wall: WallTime, seq: u64) -> Result<Delivery> {
    const WHAT: &str = "delivery";
    let qos = get_qos(r, WHAT)?;
    let retain = match r.u8() {
        Ok(0) => false,
        Ok(1) => true,
        _ => return Err(RecordError(WHAT)),
    };
    let n = r.u16().map_err(|_| RecordError(WHAT))?;
    let mut sub_ids = Vec::with_capacity(usize::from(n).min(r.remaining() / 4));
    for _ in 0..n {
        sub_ids.push(r.u32().map_err(|_| RecordError(WHAT))?);
    }
    let msg = get_message(r, wall)?;
    Ok(Delivery {
        msg: Rc::new(msg),
        qos,
        retain,
        sub_ids,
        seq,
    })
}

/// Decodes a whole delivery record; `seq` is its queue position (from the key).
pub(super) fn delivery(bytes: &[u8], wall: WallTime, seq: u64) -> Result<Delivery> {
    let mut r = Reader::new(bytes);
    let d = get_delivery(&mut r, wall, seq)?;
    end(&r, "delivery")?;
    Ok(d)
}

fn state_byte(s: OutState) -> u8 {
    match s {
        OutState::AwaitPubAck => 1,
        OutState::AwaitPubRec => 2,
        OutState::AwaitPubComp => 3,
    }
}

/// Appends an in-flight record: the flow's state, then the delivery.
pub(super) fn put_inflight(out: &mut Vec<u8>, state: OutState, d: &Delivery, wall: WallTime) {
    out.put_u8(state_byte(state));
    put_delivery(out, d, wall);
}

pub(super) fn inflight(bytes: &[u8], wall: WallTime) -> Result<(OutState, Delivery)> {
    let mut r = Reader::new(bytes);
    let state = match r.u8() {
        Ok(1) => OutState::AwaitPubAck,
        Ok(2) => OutState::AwaitPubRec,
        Ok(3) => OutState::AwaitPubComp,
        _ => return Err(RecordError("in-flight state")),
    };
    let d = get_delivery(&mut r, wall, 0)?;
    end(&r, "in-flight message")?;
    Ok((state, d))
}

pub(super) fn put_subscription(out: &mut Vec<u8>, s: &Subscription) {
    let o = &s.options;
    out.put_u8(o.qos as u8);
    out.put_u8(u8::from(o.no_local) | (u8::from(o.retain_as_published) << 1));
    out.put_u8(o.retain_handling);
    match s.identifier {
        Some(id) => {
            out.put_u8(1);
            out.put_u32(id);
        }
        None => out.put_u8(0),
    }
}

pub(super) fn subscription(bytes: &[u8]) -> Result<Subscription> {
    const WHAT: &str = "subscription";
    let mut r = Reader::new(bytes);
    let qos = get_qos(&mut r, WHAT)?;
    let flags = r.u8().map_err(|_| RecordError(WHAT))?;
    let retain_handling = r.u8().map_err(|_| RecordError(WHAT))?;
    if flags > 3 || retain_handling > 2 {
        return Err(RecordError(WHAT));
    }
    let identifier = match r.u8() {
        Ok(0) => None,
        Ok(1) => Some(r.u32().map_err(|_| RecordError(WHAT))?),
        _ => return Err(RecordError(WHAT)),
    };
    end(&r, WHAT)?;
    Ok(Subscription {
        options: SubOptions {
            qos,
            no_local: flags & 1 != 0,
            retain_as_published: flags & 2 != 0,
            retain_handling,
        },
        identifier,
    })
}

pub(super) fn put_session(out: &mut Vec<u8>, s: &SessionRecord, wall: WallTime) {
    out.put_u32(s.expiry_secs);
    put_u64(out, wall.to_wall(s.expires_at));
    match &s.will {
        None => out.put_u8(0),
        Some(w) => {
            out.put_u8(1);
            out.put_u32(w.delay_secs);
            put_u64(out, wall.to_wall(w.due));
            out.put_u8(w.will.qos as u8 | (u8::from(w.will.retain) << 2));
            put_long_bin(out, w.will.topic.as_bytes());
            encode_properties(&w.will.properties, PropertySet::Will, out);
            put_long_bin(out, &w.will.payload);
        }
    }
}

pub(super) fn session(bytes: &[u8], wall: WallTime) -> Result<SessionRecord> {
    const WHAT: &str = "session";
    let mut r = Reader::new(bytes);
    let expiry_secs = r.u32().map_err(|_| RecordError(WHAT))?;
    let expires_at = wall.to_millis(get_u64(&mut r, WHAT)?);
    let will = match r.u8() {
        Ok(0) => None,
        Ok(1) => {
            let delay_secs = r.u32().map_err(|_| RecordError("will"))?;
            let due = wall.to_millis(get_u64(&mut r, "will")?);
            let flags = r.u8().map_err(|_| RecordError("will"))?;
            let qos = QoS::from_u8(flags & 3).ok_or(RecordError("will"))?;
            if flags & !7 != 0 {
                return Err(RecordError("will"));
            }
            let topic = std::str::from_utf8(get_long_bin(&mut r, "will topic")?)
                .map_err(|_| RecordError("will topic"))?;
            let properties = decode_properties(&mut r, PropertySet::Will)
                .map_err(|_| RecordError("will properties"))?;
            let payload = get_long_bin(&mut r, "will payload")?;
            Some(StoredWill {
                will: Will {
                    topic: topic.to_owned(),
                    payload: payload.to_vec(),
                    qos,
                    retain: flags & 4 != 0,
                    properties,
                },
                delay_secs,
                due,
            })
        }
        _ => return Err(RecordError(WHAT)),
    };
    end(&r, WHAT)?;
    Ok(SessionRecord {
        expiry_secs,
        expires_at,
        will,
    })
}
