//! The WebSocket layer against hand-made client bytes over an in-memory lower layer: the
//! upgrade, the subprotocol choice, frames cut anywhere, and every refusal.

use std::collections::VecDeque;
use std::io;

use super::*;

/// A lower layer that hands out one queued chunk per read call and records what is written.
#[derive(Default)]
struct Mem {
    chunks: VecDeque<Vec<u8>>,
    eof: bool,
    written: Vec<u8>,
    closed: bool,
}

impl Layer for Mem {
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        let Some(mut chunk) = self.chunks.pop_front() else {
            return Ok(if self.eof {
                ReadOutcome::Eof
            } else {
                ReadOutcome::WouldBlock
            });
        };
        if chunk.len() > max {
            let rest = chunk.split_off(max);
            self.chunks.push_front(rest);
            buf.extend_from_slice(&chunk);
            return Ok(ReadOutcome::Full);
        }
        buf.extend_from_slice(&chunk);
        Ok(ReadOutcome::WouldBlock)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(data);
        Ok(data.len())
    }

    fn wants_write(&self) -> bool {
        false
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn close(&mut self) {
        self.closed = true;
    }
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade(protocols: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocols {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// A masked client frame (RFC 6455 5.2), as every client must send.
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn binary(payload: &[u8]) -> Vec<u8> {
    frame(0x2, true, payload)
}

fn ws(chunks: Vec<Vec<u8>>) -> WsTransport<Mem> {
    let lower = Mem {
        chunks: chunks.into(),
        ..Mem::default()
    };
    WsTransport::new(lower, 1024)
}

/// Reads until the lower layer has nothing more, returning the payload and how it ended.
/// Each queued chunk stands for one readiness event, so `WouldBlock` with chunks left means
/// "read again".
fn read_all(t: &mut WsTransport<Mem>) -> (Vec<u8>, io::Result<ReadOutcome>) {
    let mut buf = Vec::new();
    loop {
        match t.read(&mut buf, 100_000) {
            Ok(ReadOutcome::Full) => continue,
            Ok(ReadOutcome::WouldBlock) if !t.lower().chunks.is_empty() => continue,
            other => {
                let _ = t.flush();
                return (buf, other);
            }
        }
    }
}

fn written(t: &WsTransport<Mem>) -> String {
    String::from_utf8_lossy(&t.lower().written).into_owned()
}

/// The server's frames after the 101 response: (opcode, payload) pairs.
fn server_frames(t: &WsTransport<Mem>) -> Vec<(u8, Vec<u8>)> {
    let all = &t.lower().written;
    let start = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    let mut rest = &all[start..];
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0F;
        assert_eq!(rest[1] & 0x80, 0, "server frames are never masked");
        let (len, header) = match rest[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        frames.push((opcode, rest[header..header + len].to_vec()));
        rest = &rest[header + len..];
    }
    frames
}

#[test]
fn upgrade_selects_mqtt_and_carries_binary_payload() {
    let mut t = ws(vec![upgrade(Some("mqtt")), binary(&[0xC0, 0x00])]);
    let (payload, end) = read_all(&mut t);
    assert_eq!(end.unwrap(), ReadOutcome::WouldBlock);
    assert_eq!(payload, [0xC0, 0x00]);
    assert!(t.is_established());
    let answer = written(&t);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer
        .to_ascii_lowercase()
        .contains("sec-websocket-protocol: mqtt\r\n"));
    assert!(
        answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "accept key: {answer}"
    );
}

#[test]
fn old_clients_get_mqttv31_and_mqtt_is_preferred() {
    let mut t = ws(vec![upgrade(Some("mqttv3.1"))]);
    read_all(&mut t).1.unwrap();
    assert!(written(&t)
        .to_ascii_lowercase()
        .contains("sec-websocket-protocol: mqttv3.1\r\n"));
    let mut t = ws(vec![upgrade(Some("mqttv3.1, mqtt"))]);
    read_all(&mut t).1.unwrap();
    assert!(written(&t)
        .to_ascii_lowercase()
        .contains("sec-websocket-protocol: mqtt\r\n"));
}

#[test]
fn missing_or_wrong_subprotocol_is_refused_with_400() {
    for protocols in [None, Some("chat"), Some("mqtt5x")] {
        let mut t = ws(vec![upgrade(protocols)]);
        let err = read_all(&mut t).1.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(written(&t).starts_with("HTTP/1.1 400"), "{}", written(&t));
        assert!(!t.is_established());
    }
}

#[test]
fn garbage_instead_of_an_upgrade_gets_400() {
    let mut t = ws(vec![
        b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\r\n\r\n".to_vec(),
    ]);
    let err = read_all(&mut t).1.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(written(&t).starts_with("HTTP/1.1 400"), "{}", written(&t));
}

#[test]
fn endless_request_headers_are_refused_with_431() {
    let mut long = b"GET /mqtt HTTP/1.1\r\n".to_vec();
    long.extend_from_slice(b"X-Padding: ");
    long.resize(HANDSHAKE_REQUEST_MAX + 100, b'a');
    let chunks = long.chunks(1000).map(<[u8]>::to_vec).collect();
    let mut t = ws(chunks);
    let err = read_all(&mut t).1.unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    assert!(written(&t).starts_with("HTTP/1.1 431"), "{}", written(&t));
}

#[test]
fn frames_split_into_single_bytes_are_reassembled() {
    // The upgrade in a few pieces (tungstenite counts a request dribbled out in tiny pieces
    // as an attack), then the frames one byte per readiness event.
    let request = upgrade(Some("mqtt"));
    let mut chunks: Vec<Vec<u8>> = request.chunks(60).map(<[u8]>::to_vec).collect();
    let packet: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let mut frames = binary(&packet);
    frames.extend(binary(&[0xC0, 0x00]));
    chunks.extend(frames.iter().map(|b| vec![*b]));
    let mut t = ws(chunks);
    let (payload, end) = read_all(&mut t);
    assert_eq!(end.unwrap(), ReadOutcome::WouldBlock);
    let mut expected = packet.clone();
    expected.extend_from_slice(&[0xC0, 0x00]);
    assert_eq!(payload, expected);
}

#[test]
fn packets_need_not_align_with_frames() {
    // Two MQTT packets cut across three frames at arbitrary points.
    let stream = [0x30, 0x05, 0x00, 0x01, b't', b'h', b'i', 0xC0, 0x00];
    let mut chunks = vec![upgrade(Some("mqtt"))];
    chunks.push(binary(&stream[..3]));
    chunks.push(binary(&stream[3..8]));
    chunks.push(binary(&stream[8..]));
    let mut t = ws(chunks);
    assert_eq!(read_all(&mut t).0, stream);
}

#[test]
fn fragmented_messages_are_joined() {
    let mut chunks = vec![upgrade(Some("mqtt"))];
    chunks.push(frame(0x2, false, &[0x30, 0x03]));
    // A ping may come between fragments (RFC 6455 5.4).
    chunks.push(frame(0x9, true, b"p"));
    chunks.push(frame(0x0, false, &[0x00, 0x01]));
    chunks.push(frame(0x0, true, b"t"));
    let mut t = ws(chunks);
    assert_eq!(read_all(&mut t).0, [0x30, 0x03, 0x00, 0x01, b't']);
    assert!(server_frames(&t).contains(&(0xA, b"p".to_vec())), "pong");
}

#[test]
fn ping_is_answered_with_pong() {
    let mut t = ws(vec![upgrade(Some("mqtt")), frame(0x9, true, b"hello")]);
    let (payload, end) = read_all(&mut t);
    assert!(payload.is_empty());
    assert_eq!(end.unwrap(), ReadOutcome::WouldBlock);
    assert_eq!(server_frames(&t), vec![(0xA, b"hello".to_vec())]);
}

#[test]
fn text_frame_is_refused_with_close_1003() {
    let mut t = ws(vec![upgrade(Some("mqtt")), frame(0x1, true, b"{}")]);
    let err = read_all(&mut t).1.unwrap_err();
    assert!(err.to_string().contains("text frame"), "{err}");
    let frames = server_frames(&t);
    let (opcode, body) = frames.last().expect("a close frame");
    assert_eq!(*opcode, 0x8);
    assert_eq!(body[..2], 1003u16.to_be_bytes());
}

#[test]
fn oversized_frame_is_refused_with_close_1009() {
    // The limit is the packet size limit (1024 here) plus a little slack.
    let big = vec![0u8; 1024 + MESSAGE_SLACK + 1];
    let mut t = ws(vec![upgrade(Some("mqtt")), binary(&big)]);
    let err = read_all(&mut t).1.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let frames = server_frames(&t);
    let (opcode, body) = frames.last().expect("a close frame");
    assert_eq!(*opcode, 0x8);
    assert_eq!(body[..2], 1009u16.to_be_bytes());
}

#[test]
fn frame_header_claiming_huge_length_is_refused_before_buffering() {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let mut t = ws(vec![upgrade(Some("mqtt")), header]);
    assert!(read_all(&mut t).1.is_err());
}

#[test]
fn unmasked_client_frame_is_a_protocol_error() {
    let mut t = ws(vec![upgrade(Some("mqtt")), vec![0x82, 0x02, 0xC0, 0x00]]);
    let err = read_all(&mut t).1.unwrap_err();
    assert!(err.to_string().contains("protocol"), "{err}");
}

#[test]
fn close_frame_ends_the_stream_and_is_answered() {
    let mut t = ws(vec![
        upgrade(Some("mqtt")),
        frame(0x8, true, &1000u16.to_be_bytes()),
    ]);
    assert_eq!(read_all(&mut t).1.unwrap(), ReadOutcome::Eof);
    assert_eq!(server_frames(&t).last().map(|f| f.0), Some(0x8));
}

#[test]
fn end_of_the_lower_stream_is_eof() {
    let mut t = ws(vec![upgrade(Some("mqtt"))]);
    read_all(&mut t).1.unwrap();
    t.lower.eof = true;
    assert_eq!(t.read(&mut Vec::new(), 100).unwrap(), ReadOutcome::Eof);
    // Before the upgrade completes too.
    let mut t = ws(vec![upgrade(Some("mqtt"))[..20].to_vec()]);
    read_all(&mut t).1.unwrap();
    t.lower.eof = true;
    assert_eq!(t.read(&mut Vec::new(), 100).unwrap(), ReadOutcome::Eof);
}

#[test]
fn writes_are_unmasked_binary_frames_after_the_upgrade() {
    let mut t = ws(vec![upgrade(Some("mqtt"))]);
    assert_eq!(
        t.write(b"early").unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "nothing goes out before the upgrade"
    );
    read_all(&mut t).1.unwrap();
    assert_eq!(t.write(&[0x20, 0x02, 0x00, 0x00]).unwrap(), 4);
    let big = vec![7u8; MESSAGE_OUT_MAX + 10];
    assert_eq!(t.write(&big).unwrap(), MESSAGE_OUT_MAX);
    let frames = server_frames(&t);
    assert_eq!(frames[0], (0x2, vec![0x20, 0x02, 0x00, 0x00]));
    assert_eq!(frames[1].0, 0x2);
    assert_eq!(frames[1].1.len(), MESSAGE_OUT_MAX);
}

#[test]
fn close_sends_a_close_frame_and_closes_below() {
    let mut t = ws(vec![upgrade(Some("mqtt"))]);
    read_all(&mut t).1.unwrap();
    t.close();
    assert_eq!(server_frames(&t).last().map(|f| f.0), Some(0x8));
    assert!(t.lower().closed);
}
