//! The MQTT-SN 1.2 gateway, driven with raw datagrams over real UDP sockets.
//!
//! Every test starts its own broker with an MQTT-SN listener next to the TCP one and
//! checks the exact datagrams the gateway sends back, and what MQTT clients on TCP see of
//! the same traffic. Datagrams are written either as literal hex, which pins the bytes of
//! the specification's message formats, or with the crate's own codec where the fields
//! vary (client ids, topic names); every datagram received is also decoded, so a malformed
//! answer fails even where only a few fields are compared.

mod bad_input;
mod discovery;
mod flows;
mod interop;
mod sleep;

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use culex::codec::mqttsn::{self as sn, Frame, Message};

use crate::harness::{to_hex, Broker, RawClient, READ_TIMEOUT, SILENCE_MS};

/// The lines of an MQTT-SN listener on an ephemeral loopback port, plus `options`.
pub(crate) fn sn_listener(options: &str) -> String {
    format!("listener 0 127.0.0.1\nprotocol mqttsn\n{options}\n")
}

/// A broker with a TCP listener and an MQTT-SN listener configured with `options`, and
/// the gateway's address; `None` (test skipped) against an external broker.
pub(crate) fn start(options: &str) -> Option<(Broker, SocketAddr)> {
    let broker = Broker::start_configured(&sn_listener(options))?;
    let gw = gateway_addr(&broker);
    Some((broker, gw))
}

/// The address of the (first) MQTT-SN listener, from its `listening on` log line.
pub(crate) fn gateway_addr(broker: &Broker) -> SocketAddr {
    const MARK: &str = "(mqttsn, udp)";
    broker.wait_for_log(MARK, READ_TIMEOUT);
    let log = broker.log();
    let line = log
        .lines()
        .find(|l| l.contains(MARK))
        .expect("an MQTT-SN listening line");
    let at = line.find("listening on ").expect("listening on") + "listening on ".len();
    let addr = line[at..].split_whitespace().next().expect("an address");
    addr.parse()
        .unwrap_or_else(|e| panic!("bad address {addr:?} in {line:?}: {e}"))
}

/// A predefined topics file (lines `ID TOPIC`) in the temporary directory, removed when
/// dropped.
pub(crate) struct TopicsFile(pub(crate) PathBuf);

impl TopicsFile {
    pub(crate) fn new(lines: &[(u16, &str)]) -> Self {
        let name = crate::harness::uniq("sntopics");
        let path = std::env::temp_dir().join(format!("culex-test-{name}.topics"));
        let text: String = lines
            .iter()
            .map(|(id, topic)| format!("{id} {topic}\n"))
            .collect();
        std::fs::write(&path, text).expect("write predefined topics");
        Self(path)
    }

    /// The `predefined_topics` option line.
    pub(crate) fn option(&self) -> String {
        format!("predefined_topics {}", self.0.display())
    }
}

impl Drop for TopicsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Encodes one message with the crate's codec.
pub(crate) fn enc(msg: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    sn::encode(msg, &mut out);
    out
}

/// Decodes a datagram the gateway sent, failing on anything that is not one valid message.
pub(crate) fn dec(bytes: &[u8]) -> Message<'_> {
    match sn::decode(bytes) {
        Ok(Frame::Message(m)) => m,
        Ok(Frame::Encapsulated(e)) => panic!("unexpected Encapsulated frame {e:?}"),
        Err(e) => panic!("gateway sent an invalid datagram {}: {e}", to_hex(bytes)),
    }
}

/// Fails unless `bytes` is one valid datagram: a message, or an Encapsulated frame holding
/// one.
pub(crate) fn check_valid(bytes: &[u8]) {
    let inner = match sn::decode(bytes) {
        Ok(Frame::Message(_)) => return,
        Ok(Frame::Encapsulated(e)) => sn::decode_message(e.inner),
        Err(e) => Err(e),
    };
    if let Err(e) = inner {
        panic!("gateway sent an invalid datagram {}: {e}", to_hex(bytes));
    }
}

/// A CONNECT (protocol id 0x01) for `client_id`.
pub(crate) fn connect_msg(client_id: &str, will: bool, clean: bool, duration: u16) -> Vec<u8> {
    enc(&Message::Connect {
        flags: sn::Flags {
            will,
            clean_session: clean,
            ..sn::Flags::default()
        },
        protocol_id: 1,
        duration,
        client_id: client_id.as_bytes(),
    })
}

/// A PUBLISH with the raw flags byte `flags` (DUP, QoS, retain, topic id type).
pub(crate) fn publish_msg(flags: u8, topic_id: u16, msg_id: u16, data: &[u8]) -> Vec<u8> {
    let len = 7 + data.len();
    assert!(len < 256, "short form only");
    let mut out = vec![len as u8, 0x0c, flags];
    out.extend(topic_id.to_be_bytes());
    out.extend(msg_id.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A REGISTER (client to gateway: topic id 0) of `name`.
pub(crate) fn register_msg(msg_id: u16, name: &str) -> Vec<u8> {
    enc(&Message::Register {
        topic_id: 0,
        msg_id,
        topic_name: name.as_bytes(),
    })
}

/// A SUBSCRIBE by topic name (may hold wildcards) at `qos` (0..=2).
pub(crate) fn subscribe_name(msg_id: u16, name: &str, qos: u8) -> Vec<u8> {
    let len = 5 + name.len();
    assert!(len < 256, "short form only");
    let mut out = vec![len as u8, 0x12, qos << 5];
    out.extend(msg_id.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// A 7-byte message of `msg_type` carrying a topic id, a message id and a return code
/// (REGACK, PUBACK).
pub(crate) fn id_ack(msg_type: u8, topic_id: u16, msg_id: u16, code: u8) -> Vec<u8> {
    let mut out = vec![7, msg_type];
    out.extend(topic_id.to_be_bytes());
    out.extend(msg_id.to_be_bytes());
    out.push(code);
    out
}

/// A 4-byte message of `msg_type` carrying a message id (PUBREC, PUBREL, PUBCOMP, UNSUBACK).
pub(crate) fn msg_id_only(msg_type: u8, msg_id: u16) -> Vec<u8> {
    let mut out = vec![4, msg_type];
    out.extend(msg_id.to_be_bytes());
    out
}

/// A SUBACK: granted QoS (flags), topic id, message id and return code.
pub(crate) fn suback(qos: u8, topic_id: u16, msg_id: u16, code: u8) -> Vec<u8> {
    let mut out = vec![8, 0x13, qos << 5];
    out.extend(topic_id.to_be_bytes());
    out.extend(msg_id.to_be_bytes());
    out.push(code);
    out
}

/// A PUBLISH as received from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnPublish {
    pub(crate) flags: u8,
    pub(crate) topic_id: u16,
    pub(crate) msg_id: u16,
    pub(crate) data: Vec<u8>,
}

/// Parses a PUBLISH from the gateway (checking it decodes as one).
pub(crate) fn parse_publish(bytes: &[u8]) -> SnPublish {
    assert!(
        matches!(dec(bytes), Message::Publish { .. }),
        "expected PUBLISH, got {}",
        to_hex(bytes)
    );
    let body = &bytes[2..];
    SnPublish {
        flags: body[0],
        topic_id: u16::from_be_bytes([body[1], body[2]]),
        msg_id: u16::from_be_bytes([body[3], body[4]]),
        data: body[5..].to_vec(),
    }
}

/// A UDP socket on loopback talking to the gateway.
pub(crate) struct SnClient {
    sock: UdpSocket,
    gw: SocketAddr,
}

impl SnClient {
    /// A fresh socket on an ephemeral loopback port.
    pub(crate) fn new(gw: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        Self { sock, gw }
    }

    /// A fresh socket that has completed a clean CONNECT with keep alive `duration`.
    pub(crate) fn connected(gw: SocketAddr, client_id: &str, duration: u16) -> Self {
        let mut c = Self::new(gw);
        c.connect(client_id, duration);
        c
    }

    /// This socket's address: the peer address the gateway sees and logs.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    pub(crate) fn send(&self, bytes: &[u8]) {
        self.sock
            .send_to(bytes, self.gw)
            .unwrap_or_else(|e| panic!("send {}: {e}", to_hex(bytes)));
    }

    /// The next datagram from the gateway within `timeout`, if any, checked to be valid
    /// MQTT-SN; datagrams from other addresses are ignored.
    pub(crate) fn recv_within(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).expect("timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.gw => {
                    check_valid(&buf[..n]);
                    return Some(buf[..n].to_vec());
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("receive from the gateway: {e}"),
            }
        }
    }

    /// The next datagram; panics when none arrives within the read timeout.
    pub(crate) fn recv(&self) -> Vec<u8> {
        self.recv_within(READ_TIMEOUT)
            .unwrap_or_else(|| panic!("no datagram from the gateway within {READ_TIMEOUT:?}"))
    }

    /// Asserts that the next datagram is exactly `expected`.
    pub(crate) fn expect(&self, expected: &[u8]) {
        let got = self.recv();
        assert!(
            got == expected,
            "datagram mismatch\n  expected: {}\n       got: {}",
            to_hex(expected),
            to_hex(&got)
        );
    }

    /// Asserts that nothing arrives for `ms`.
    pub(crate) fn expect_silence(&self, ms: u64) {
        if let Some(got) = self.recv_within(Duration::from_millis(ms)) {
            panic!("expected silence, got {}", to_hex(&got));
        }
    }

    /// A clean CONNECT without will, answered by CONNACK accepted.
    pub(crate) fn connect(&mut self, client_id: &str, duration: u16) {
        self.send(&connect_msg(client_id, false, true, duration));
        self.expect(&crate::hex!("03 05 00"));
    }

    /// PINGREQ (no client id) answered by PINGRESP.
    pub(crate) fn ping(&self) {
        self.send(&crate::hex!("02 16"));
        self.expect(&crate::hex!("02 17"));
    }

    /// REGISTER of `name`, answered by REGACK accepted; returns the topic id.
    pub(crate) fn register(&self, msg_id: u16, name: &str) -> u16 {
        self.send(&register_msg(msg_id, name));
        let got = self.recv();
        match dec(&got) {
            Message::RegAck {
                topic_id,
                msg_id: m,
                code: sn::ReturnCode::Accepted,
            } if m == msg_id && topic_id != 0 && topic_id != 0xffff => topic_id,
            _ => panic!(
                "expected REGACK accepted for {msg_id}, got {}",
                to_hex(&got)
            ),
        }
    }

    /// SUBSCRIBE by name at `qos`, answered by SUBACK accepted; returns the topic id.
    pub(crate) fn subscribe(&self, msg_id: u16, name: &str, qos: u8) -> u16 {
        self.send(&subscribe_name(msg_id, name, qos));
        let got = self.recv();
        match dec(&got) {
            Message::SubAck {
                topic_id,
                msg_id: m,
                code: sn::ReturnCode::Accepted,
                ..
            } if m == msg_id => {
                assert_eq!(got[2], qos << 5, "granted QoS: {}", to_hex(&got));
                topic_id
            }
            _ => panic!(
                "expected SUBACK accepted for {msg_id}, got {}",
                to_hex(&got)
            ),
        }
    }

    /// Expects a gateway REGISTER of `name`, acknowledges it, and returns its topic id and
    /// message id.
    pub(crate) fn accept_register(&self, name: &str) -> (u16, u16) {
        let got = self.recv();
        let (topic_id, msg_id) = match dec(&got) {
            Message::Register {
                topic_id,
                msg_id,
                topic_name,
            } if topic_name == name.as_bytes() => (topic_id, msg_id),
            _ => panic!("expected REGISTER of {name:?}, got {}", to_hex(&got)),
        };
        assert!(topic_id != 0 && topic_id != 0xffff, "{}", to_hex(&got));
        self.send(&id_ack(0x0b, topic_id, msg_id, 0));
        (topic_id, msg_id)
    }

    /// Expects a PUBLISH and returns it.
    pub(crate) fn recv_publish(&self) -> SnPublish {
        parse_publish(&self.recv())
    }

    /// DISCONNECT (no duration), answered by DISCONNECT.
    pub(crate) fn disconnect(&self) {
        self.send(&crate::hex!("02 18"));
        self.expect(&crate::hex!("02 18"));
    }
}

/// A 3.1.1 TCP client subscribed to `filter` at `qos`.
pub(crate) fn tcp_subscriber(broker: &Broker, id: &str, filter: &str, qos: u8) -> RawClient {
    let mut c = broker.connected_v311(id);
    c.send(&crate::harness::subscribe(1, filter, qos, false));
    let mut suback = crate::hex!("90 03 00 01");
    suback.push(qos);
    c.expect(&suback);
    c
}

/// The quiet period used for "nothing arrives" checks.
pub(crate) const QUIET: u64 = SILENCE_MS;
