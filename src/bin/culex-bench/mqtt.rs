//! The few MQTT 3.1.1 / 5.0 packets the load generator needs: encoders for CONNECT (clean or
//! persistent session, 5.0 Topic Alias Maximum), SUBSCRIBE, PUBLISH (5.0 topic alias),
//! PUBACK, PUBREC, PUBREL, PUBCOMP, PINGREQ and DISCONNECT, a framer that splits a byte
//! stream into packets, and readers for CONNACK (with the 5.0 limits the generator obeys),
//! SUBACK, PUBLISH and the four acknowledgements.

use crate::Res;

/// Packet type nibbles (upper four bits of the first byte).
pub(crate) const CONNACK: u8 = 2;
pub(crate) const PUBLISH: u8 = 3;
pub(crate) const PUBACK: u8 = 4;
pub(crate) const PUBREC: u8 = 5;
pub(crate) const PUBREL: u8 = 6;
pub(crate) const PUBCOMP: u8 = 7;
pub(crate) const SUBACK: u8 = 9;
pub(crate) const DISCONNECT: u8 = 14;

/// Protocol version byte: 4 is MQTT 3.1.1, 5 is MQTT 5.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V311,
    V5,
}

impl Version {
    fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }

    fn has_properties(self) -> bool {
        self == Self::V5
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Appends a fixed header for a packet whose remaining part is `len` bytes long.
fn put_header(out: &mut Vec<u8>, first: u8, len: usize) {
    out.push(first);
    put_varint(out, len);
}

/// What a CONNECT asks of the broker about the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Session {
    /// Clean session (3.1.1) / clean start without Session Expiry Interval (5.0): the broker
    /// discards any earlier session of the client id, and the new one ends with the
    /// connection.
    Clean,
    /// Clean session 0 (3.1.1) / clean start 0 and Session Expiry Interval 0xFFFFFFFF (5.0):
    /// the session, with its subscriptions, queue and in-flight messages, outlives the
    /// connection.
    Persistent,
}

/// Property identifiers (MQTT 5.0).
const SESSION_EXPIRY: u8 = 0x11;
const RECEIVE_MAXIMUM: u8 = 0x21;
const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
const TOPIC_ALIAS: u8 = 0x23;

/// Appends a CONNECT without credentials; with 5.0, `alias_max` > 0 lets the broker use
/// topic aliases towards this client.
pub(crate) fn connect(
    out: &mut Vec<u8>,
    version: Version,
    client_id: &str,
    keep_alive: u16,
    session: Session,
    alias_max: u16,
) {
    let mut props = Vec::new();
    if version.has_properties() && session == Session::Persistent {
        props.push(SESSION_EXPIRY);
        props.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    if version.has_properties() && alias_max > 0 {
        props.push(TOPIC_ALIAS_MAXIMUM);
        props.extend_from_slice(&alias_max.to_be_bytes());
    }
    let props_len = if version.has_properties() {
        1 + props.len()
    } else {
        0
    };
    let len = 10 + props_len + 2 + client_id.len();
    put_header(out, 0x10, len);
    put_str(out, b"MQTT");
    out.push(version.level());
    out.push(match session {
        Session::Clean => 0x02,
        Session::Persistent => 0x00,
    });
    out.extend_from_slice(&keep_alive.to_be_bytes());
    if version.has_properties() {
        // Fewer than 128 bytes of properties: a one-byte length.
        out.push(props.len() as u8);
        out.extend_from_slice(&props);
    }
    put_str(out, client_id.as_bytes());
}

/// Appends a SUBSCRIBE for one filter.
pub(crate) fn subscribe(out: &mut Vec<u8>, version: Version, id: u16, filter: &str, qos: u8) {
    let props = usize::from(version.has_properties());
    put_header(out, 0x82, 2 + props + 2 + filter.len() + 1);
    out.extend_from_slice(&id.to_be_bytes());
    if version.has_properties() {
        out.push(0);
    }
    put_str(out, filter.as_bytes());
    out.push(qos);
}

/// Appends a PUBLISH; `id` is only written for QoS 1 and 2.
pub(crate) fn publish(
    out: &mut Vec<u8>,
    version: Version,
    qos: u8,
    id: u16,
    topic: &[u8],
    payload: &[u8],
) {
    publish_aliased(out, version, qos, id, topic, None, payload);
}

/// Appends a PUBLISH that may carry a Topic Alias (5.0 only; `topic` may then be empty,
/// which names the topic by the alias alone).
pub(crate) fn publish_aliased(
    out: &mut Vec<u8>,
    version: Version,
    qos: u8,
    id: u16,
    topic: &[u8],
    alias: Option<u16>,
    payload: &[u8],
) {
    let id_len = if qos > 0 { 2 } else { 0 };
    let alias = alias.filter(|_| version.has_properties());
    let props = match (version.has_properties(), alias) {
        (false, _) => 0,
        (true, None) => 1,
        (true, Some(_)) => 4,
    };
    put_header(
        out,
        0x30 | (qos << 1),
        2 + topic.len() + id_len + props + payload.len(),
    );
    put_str(out, topic);
    if qos > 0 {
        out.extend_from_slice(&id.to_be_bytes());
    }
    if version.has_properties() {
        match alias {
            None => out.push(0),
            Some(a) => {
                out.extend_from_slice(&[3, TOPIC_ALIAS]);
                out.extend_from_slice(&a.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a PUBACK (success; the short form is valid in both versions).
pub(crate) fn puback(out: &mut Vec<u8>, id: u16) {
    out.extend_from_slice(&[0x40, 2]);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a PUBREC (success).
pub(crate) fn pubrec(out: &mut Vec<u8>, id: u16) {
    out.extend_from_slice(&[0x50, 2]);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a PUBREL (success); its reserved flags are 0010 [MQTT-3.6.1-1].
pub(crate) fn pubrel(out: &mut Vec<u8>, id: u16) {
    out.extend_from_slice(&[0x62, 2]);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a PUBCOMP (success).
pub(crate) fn pubcomp(out: &mut Vec<u8>, id: u16) {
    out.extend_from_slice(&[0x70, 2]);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a PINGREQ.
pub(crate) fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xc0, 0]);
}

/// Appends a DISCONNECT (normal disconnection).
pub(crate) fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xe0, 0]);
}

/// One packet found in a buffer: its first byte and where its body lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) first: u8,
    pub(crate) body_start: usize,
    pub(crate) end: usize,
}

impl Frame {
    pub(crate) fn kind(&self) -> u8 {
        self.first >> 4
    }
}

/// Finds the packet that starts at `buf[at..]`; `None` when it is not complete yet.
pub(crate) fn frame(buf: &[u8], at: usize) -> Res<Option<Frame>> {
    let mut len = 0usize;
    let mut shift = 0;
    let mut i = at + 1;
    loop {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err("malformed remaining length from the broker".into());
        }
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    Ok(Some(Frame {
        first: buf[at],
        body_start: i,
        end: i + len,
    }))
}

/// The reason code of a CONNACK body (0 is success in both versions).
pub(crate) fn connack_code(body: &[u8]) -> Res<u8> {
    match body.get(1) {
        Some(&code) => Ok(code),
        None => Err("short CONNACK".into()),
    }
}

/// What a CONNACK allows the client: the reason code and, with 5.0, the broker's Receive
/// Maximum (QoS 1 and 2 messages in flight from the client; 65535 when absent) and Topic
/// Alias Maximum (0 when absent: no aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Connack {
    pub(crate) code: u8,
    pub(crate) receive_max: u16,
    pub(crate) alias_max: u16,
}

/// Reads a CONNACK body.
pub(crate) fn connack(version: Version, body: &[u8]) -> Res<Connack> {
    let mut ack = Connack {
        code: connack_code(body)?,
        receive_max: u16::MAX,
        alias_max: 0,
    };
    if !version.has_properties() || body.len() == 2 {
        return Ok(ack);
    }
    let (mut at, end) = property_span(body, 2)?;
    while at < end {
        let id = body[at];
        let size = match id {
            0x11 | 0x27 => 4,
            0x21 | 0x22 | 0x13 => 2,
            0x24 | 0x25 | 0x28 | 0x29 | 0x2a => 1,
            0x12 | 0x1a | 0x1c | 0x1f | 0x15 | 0x16 => {
                let len = body
                    .get(at + 1..at + 3)
                    .ok_or("truncated CONNACK property")?;
                2 + usize::from(u16::from_be_bytes([len[0], len[1]]))
            }
            0x26 => {
                // User Property: two strings.
                let first = body
                    .get(at + 1..at + 3)
                    .ok_or("truncated CONNACK property")?;
                let k = 2 + usize::from(u16::from_be_bytes([first[0], first[1]]));
                let second = body
                    .get(at + 1 + k..at + 3 + k)
                    .ok_or("truncated CONNACK property")?;
                k + 2 + usize::from(u16::from_be_bytes([second[0], second[1]]))
            }
            other => return Err(format!("unknown CONNACK property {other:#x}").into()),
        };
        let value = body
            .get(at + 1..at + 1 + size)
            .ok_or("truncated CONNACK property")?;
        match id {
            RECEIVE_MAXIMUM => ack.receive_max = u16::from_be_bytes([value[0], value[1]]),
            TOPIC_ALIAS_MAXIMUM => ack.alias_max = u16::from_be_bytes([value[0], value[1]]),
            _ => {}
        }
        at += 1 + size;
    }
    Ok(ack)
}

/// The packet identifier and reason code (0 when absent: success) of a PUBACK, PUBREC,
/// PUBREL or PUBCOMP body.
pub(crate) fn ack(body: &[u8]) -> Res<(u16, u8)> {
    if body.len() < 2 {
        return Err("short acknowledgement".into());
    }
    let id = u16::from_be_bytes([body[0], body[1]]);
    Ok((id, body.get(2).copied().unwrap_or(0)))
}

/// The packet identifier and first granted QoS / reason code of a SUBACK body.
pub(crate) fn suback(version: Version, body: &[u8]) -> Res<(u16, u8)> {
    if body.len() < 3 {
        return Err("short SUBACK".into());
    }
    let id = u16::from_be_bytes([body[0], body[1]]);
    let mut at = 2;
    if version.has_properties() {
        at = skip_properties(body, at)?;
    }
    match body.get(at) {
        Some(&code) => Ok((id, code)),
        None => Err("SUBACK without reason code".into()),
    }
}

/// The packet identifier of a PUBACK body.
pub(crate) fn puback_id(body: &[u8]) -> Res<u16> {
    if body.len() < 2 {
        return Err("short PUBACK".into());
    }
    Ok(u16::from_be_bytes([body[0], body[1]]))
}

/// A PUBLISH as received: QoS, packet identifier (0 at QoS 0), whether the topic was named
/// by an alias alone (empty topic name) and where the payload lies in the body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Incoming {
    pub(crate) qos: u8,
    pub(crate) id: u16,
    pub(crate) by_alias: bool,
    pub(crate) payload_start: usize,
}

/// Reads a PUBLISH body whose first byte was `first`.
pub(crate) fn incoming(version: Version, first: u8, body: &[u8]) -> Res<Incoming> {
    let qos = (first >> 1) & 3;
    if body.len() < 2 {
        return Err("short PUBLISH".into());
    }
    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let mut at = 2 + topic_len;
    let mut id = 0;
    if qos > 0 {
        let bytes = body
            .get(at..at + 2)
            .ok_or("PUBLISH without packet identifier")?;
        id = u16::from_be_bytes([bytes[0], bytes[1]]);
        at += 2;
    }
    if version.has_properties() {
        at = skip_properties(body, at)?;
    }
    if at > body.len() {
        return Err("malformed PUBLISH".into());
    }
    Ok(Incoming {
        qos,
        id,
        by_alias: topic_len == 0,
        payload_start: at,
    })
}

fn skip_properties(body: &[u8], at: usize) -> Res<usize> {
    Ok(property_span(body, at)?.1)
}

/// Where the properties that start with their length at `body[at..]` lie: (first, end).
fn property_span(body: &[u8], at: usize) -> Res<(usize, usize)> {
    let mut len = 0usize;
    let mut shift = 0;
    let mut i = at;
    loop {
        let byte = *body.get(i).ok_or("truncated property length")?;
        len |= usize::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            if i + len > body.len() {
                return Err("properties run past the packet".into());
            }
            return Ok((i, i + len));
        }
        shift += 7;
        if shift > 21 {
            return Err("malformed property length".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trip() {
        for version in [Version::V311, Version::V5] {
            let payload = vec![7u8; 300];
            let mut out = Vec::new();
            publish(&mut out, version, 1, 42, b"a/b", &payload);
            let f = frame(&out, 0).unwrap().unwrap();
            assert_eq!(f.kind(), PUBLISH);
            assert_eq!(f.end, out.len());
            let body = &out[f.body_start..f.end];
            let inc = incoming(version, f.first, body).unwrap();
            assert_eq!((inc.qos, inc.id), (1, 42));
            assert_eq!(&body[inc.payload_start..], &payload[..]);
        }
    }

    #[test]
    fn partial_frames_wait() {
        let mut out = Vec::new();
        connect(&mut out, Version::V5, "x", 60, Session::Clean, 0);
        assert!(frame(&out[..out.len() - 1], 0).unwrap().is_none());
        assert_eq!(frame(&out, 0).unwrap().unwrap().end, out.len());
        assert_eq!(out[1] as usize, out.len() - 2);
    }

    #[test]
    fn connect_session_flags() {
        for version in [Version::V311, Version::V5] {
            for session in [Session::Clean, Session::Persistent] {
                let mut out = Vec::new();
                connect(&mut out, version, "id", 60, session, 0);
                assert_eq!(out[1] as usize, out.len() - 2);
                let clean = out[9] & 0x02 != 0;
                assert_eq!(clean, session == Session::Clean);
                let props: &[u8] = match (version, session) {
                    (Version::V311, _) => &[],
                    (Version::V5, Session::Clean) => &[0],
                    (Version::V5, Session::Persistent) => &[5, 0x11, 0xff, 0xff, 0xff, 0xff],
                };
                assert_eq!(&out[12..12 + props.len()], props);
                assert_eq!(&out[12 + props.len()..], b"\0\x02id");
            }
        }
    }

    #[test]
    fn aliased_publish_and_connack_limits() {
        let mut out = Vec::new();
        publish_aliased(&mut out, Version::V5, 2, 7, b"", Some(1), &[9; 16]);
        let f = frame(&out, 0).unwrap().unwrap();
        let body = &out[f.body_start..f.end];
        assert_eq!(&body[..8], &[0, 0, 0, 7, 3, TOPIC_ALIAS, 0, 1]);
        let inc = incoming(Version::V5, f.first, body).unwrap();
        assert!(inc.by_alias);
        assert_eq!((inc.qos, inc.id, inc.payload_start), (2, 7, 8));

        let body = [0, 0, 8, 0x21, 0, 20, 0x22, 0, 10, 0x24, 1];
        let ack = connack(Version::V5, &body).unwrap();
        assert_eq!((ack.code, ack.receive_max, ack.alias_max), (0, 20, 10));
        let ack = connack(Version::V311, &[0, 0]).unwrap();
        assert_eq!((ack.receive_max, ack.alias_max), (u16::MAX, 0));
        assert!(connack(Version::V5, &[0, 0, 5, 0x21]).is_err());
    }

    #[test]
    fn subscribe_length_matches() {
        let mut out = Vec::new();
        subscribe(&mut out, Version::V311, 1, "t/#", 1);
        assert_eq!(out[1] as usize, out.len() - 2);
        let suback_body = [0, 1, 0, 1];
        assert_eq!(suback(Version::V5, &suback_body).unwrap(), (1, 1));
    }
}
