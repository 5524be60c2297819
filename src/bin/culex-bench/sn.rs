//! MQTT-SN publishers for the flow scenarios: a UDP client that connects, registers its
//! topic and publishes at QoS 0 or 1 with the registered topic id, so that the rate of
//! MQTT-SN messages into MQTT subscribers can be measured.
//!
//! Speaks just the MQTT-SN 1.2 messages a publisher needs, with the 1-byte length form
//! (payloads up to 248 bytes) and the 3-byte form above.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::Res;

const CONNECT: u8 = 0x04;
const CONNACK: u8 = 0x05;
const REGISTER: u8 = 0x0A;
const REGACK: u8 = 0x0B;
const PUBLISH: u8 = 0x0C;
const PUBACK: u8 = 0x0D;
const DISCONNECT: u8 = 0x18;

pub(crate) struct SnClient {
    socket: UdpSocket,
    topic_id: u16,
    buf: Vec<u8>,
}

/// Appends one message: length (1 or 3 bytes), type, body.
fn message(out: &mut Vec<u8>, kind: u8, body: &[&[u8]]) {
    let len: usize = body.iter().map(|b| b.len()).sum::<usize>() + 2;
    if len <= 255 {
        out.push(len as u8);
    } else {
        out.push(0x01);
        out.extend_from_slice(&((len + 2) as u16).to_be_bytes());
    }
    out.push(kind);
    for part in body {
        out.extend_from_slice(part);
    }
}

impl SnClient {
    /// Connects to the gateway at `gateway` and registers `topic`.
    pub(crate) fn connect(
        gateway: SocketAddr,
        client_id: &str,
        topic: &str,
        timeout: Duration,
    ) -> Res<Self> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        socket.connect(gateway)?;
        let mut client = Self {
            socket,
            topic_id: 0,
            buf: vec![0; 65_536],
        };
        let mut out = Vec::new();
        // Clean session, protocol id 1, keep alive 60 s.
        message(
            &mut out,
            CONNECT,
            &[&[0x04, 0x01, 0, 60], client_id.as_bytes()],
        );
        client.socket.send(&out)?;
        let ack = client.wait_for(CONNACK, timeout)?;
        if ack.get(2) != Some(&0) {
            return Err(format!("MQTT-SN CONNACK refused: {ack:02x?}").into());
        }
        out.clear();
        message(&mut out, REGISTER, &[&[0, 0, 0, 1], topic.as_bytes()]);
        client.socket.send(&out)?;
        let ack = client.wait_for(REGACK, timeout)?;
        if ack.len() < 7 || ack[6] != 0 {
            return Err(format!("MQTT-SN REGACK refused: {ack:02x?}").into());
        }
        client.topic_id = u16::from_be_bytes([ack[2], ack[3]]);
        Ok(client)
    }

    /// The next datagram of type `kind`, skipping others.
    fn wait_for(&mut self, kind: u8, timeout: Duration) -> Res<Vec<u8>> {
        let until = Instant::now() + timeout;
        self.socket.set_read_timeout(Some(timeout))?;
        while Instant::now() < until {
            let n = self.socket.recv(&mut self.buf)?;
            let d = &self.buf[..n];
            let at = if d.first() == Some(&0x01) { 3 } else { 1 };
            if d.get(at) == Some(&kind) {
                return Ok(d.to_vec());
            }
        }
        Err(format!("no MQTT-SN message {kind:#04x} within {timeout:?}").into())
    }

    /// Sends one PUBLISH; QoS 0 or 1, message id `id` (ignored at QoS 0).
    pub(crate) fn publish(
        &mut self,
        qos: u8,
        id: u16,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Res<()> {
        out.clear();
        let flags = if qos == 1 { 0x20 } else { 0x00 };
        let id = if qos == 0 { 0 } else { id };
        let topic = self.topic_id.to_be_bytes();
        message(
            out,
            PUBLISH,
            &[&[flags], &topic, &id.to_be_bytes(), payload],
        );
        self.socket.send(out)?;
        Ok(())
    }

    /// Reads the PUBACKs that arrived (waiting up to `wait` for the first), clearing each
    /// acknowledged id in `outstanding`; returns how many.
    pub(crate) fn read_acks(&mut self, outstanding: &mut [bool], wait: Duration) -> Res<u64> {
        self.socket.set_nonblocking(false)?;
        self.socket.set_read_timeout(Some(wait))?;
        let mut acked = 0;
        loop {
            let n = match self.socket.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(acked)
                }
                Err(e) => return Err(e.into()),
            };
            let d = &self.buf[..n];
            if d.len() == 7 && d[1] == PUBACK {
                if d[6] != 0 {
                    return Err(format!("PUBACK refused a message: {d:02x?}").into());
                }
                let id = usize::from(u16::from_be_bytes([d[4], d[5]]));
                if outstanding.get(id) == Some(&true) {
                    outstanding[id] = false;
                    acked += 1;
                }
            } else if d.get(1) == Some(&DISCONNECT) {
                return Err("the gateway sent DISCONNECT to a publisher".into());
            }
            // What else has arrived is taken without waiting.
            self.socket.set_nonblocking(true)?;
        }
    }

    pub(crate) fn disconnect(self) -> Res<()> {
        let mut out = Vec::new();
        message(&mut out, DISCONNECT, &[]);
        self.socket.send(&out)?;
        Ok(())
    }
}
