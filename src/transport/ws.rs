//! The WebSocket layer (RFC 6455, MQTT-6.0.0): the server or client handshake and binary
//! messages over any lower layer (TCP or TLS), driven by tungstenite through an in-memory
//! [`Pipe`].
//!
//! Owns the handshake state, the tungstenite session and the unread rest of the last
//! message. It must never block, never log, never pass on anything but binary payloads, and
//! never hold more output than one message: `write` takes nothing while earlier frames still
//! wait for the layer below. As a client it asks for the `mqtt` subprotocol, masks its
//! frames (tungstenite does, in the client role) and accepts no upgrade without `mqtt`.

use std::io;
use std::mem;

use std::net::Ipv6Addr;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response as ClientResponse;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tungstenite::handshake::MidHandshake;
use tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tungstenite::http::{HeaderValue, StatusCode, Uri};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Bytes, ClientRequestBuilder, Error as WsError, HandshakeError, Message};
use tungstenite::{ClientHandshake, ServerHandshake, Utf8Bytes, WebSocket};

use super::pipe::Pipe;
use super::{Layer, ReadOutcome, READ_CHUNK};

/// Largest upgrade request accepted, and largest upgrade response taken as a client. Real
/// peers send well under 1 KiB; the bound keeps a peer from making us buffer headers forever.
pub const HANDSHAKE_REQUEST_MAX: usize = 8 * 1024;

/// tungstenite's frame read buffer, allocated per connection for its lifetime: small, since
/// most connections are idle and a large frame grows the buffer only while it arrives.
const WS_READ_BUFFER: usize = 4 * 1024;

/// Inbound messages and frames may be this much larger than the listener's packet size
/// limit. A client normally sends one MQTT packet per message, and the packet itself is
/// checked against the limit by the reactor; the slack only keeps a packet of exactly the
/// limit from being refused here first.
pub const MESSAGE_SLACK: usize = 16;

/// Largest binary message `write` makes from the reactor's queue. One message per call keeps
/// frames few; the cap bounds the copy tungstenite needs and the frame held for the socket.
pub const MESSAGE_OUT_MAX: usize = 64 * 1024;

/// The subprotocols MQTT clients ask for: `mqtt` (MQTT 3.1.1 and 5.0) and, from older
/// clients, `mqttv3.1`. The first is preferred when both are offered.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The subprotocol asked for, and required in the answer, as a client.
const CLIENT_SUBPROTOCOL: &str = "mqtt";

/// Accepts the upgrade only when the client offers an MQTT subprotocol, and names it in the
/// response (MQTT-6.0.0-3/4).
#[derive(Debug)]
pub struct MqttSubprotocol;

impl Callback for MqttSubprotocol {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        let offered: Vec<&str> = request
            .headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        match SUBPROTOCOLS.iter().find(|p| offered.contains(p)) {
            Some(chosen) => {
                response
                    .headers_mut()
                    .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(chosen));
                Ok(response)
            }
            None => {
                let mut refusal = ErrorResponse::new(Some(
                    "Sec-WebSocket-Protocol must offer mqtt or mqttv3.1".to_owned(),
                ));
                *refusal.status_mut() = StatusCode::BAD_REQUEST;
                Err(refusal)
            }
        }
    }
}

type Accept = MidHandshake<ServerHandshake<Pipe, MqttSubprotocol>>;
type Connect = MidHandshake<ClientHandshake<Pipe>>;

enum State {
    /// Server: waiting for the upgrade request.
    Accepting(Box<Accept>),
    /// Client: the request is written, waiting for the response.
    Connecting(Box<Connect>),
    Open(Box<WebSocket<Pipe>>),
    /// The handshake failed or the session ended; only pending output is left to send.
    Done,
}

pub struct WsTransport<L> {
    lower: L,
    /// The layer's handle on the pipe tungstenite reads and writes.
    pipe: Pipe,
    state: State,
    /// Upgrade request (server) or response (client) bytes received so far, against
    /// [`HANDSHAKE_REQUEST_MAX`].
    handshake_bytes: usize,
    /// The last binary message and how much of it the reactor has taken.
    message: Bytes,
    message_pos: usize,
    /// The lower layer said `WouldBlock` since the pipe was last refilled.
    lower_blocked: bool,
    lower_eof: bool,
}

impl<L> std::fmt::Debug for WsTransport<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Accepting(_) => "accepting",
            State::Connecting(_) => "connecting",
            State::Open(_) => "open",
            State::Done => "done",
        };
        f.debug_struct("WsTransport")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Fails a client upgrade whose answer does not name the `mqtt` subprotocol (tungstenite
/// checks the name against the request; this keeps the rule here whatever it does).
fn check_subprotocol(response: &ClientResponse) -> io::Result<()> {
    let chosen = response.headers().get(SEC_WEBSOCKET_PROTOCOL);
    if chosen.and_then(|v| v.to_str().ok()).map(str::trim) == Some(CLIENT_SUBPROTOCOL) {
        return Ok(());
    }
    Err(invalid(format!(
        "WebSocket upgrade accepted without the {CLIENT_SUBPROTOCOL} subprotocol"
    )))
}

/// The error of a client upgrade that failed; nothing is owed to the server.
fn connect_failed(e: WsError) -> io::Error {
    match e {
        WsError::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            invalid(format!(
                "WebSocket upgrade refused by the server ({}): {body}",
                response.status()
            ))
        }
        WsError::Protocol(tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(e)) => {
            invalid(format!(
                "WebSocket upgrade without the {CLIENT_SUBPROTOCOL} subprotocol: {e}"
            ))
        }
        other => invalid(format!("WebSocket handshake failed: {other}")),
    }
}

/// A minimal HTTP refusal for handshakes tungstenite gave up on without answering.
fn http_refusal(status: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// The session settings for a connection whose packets are at most `packet_size_max` bytes.
fn session_config(packet_size_max: u32) -> WebSocketConfig {
    let limit = usize::try_from(packet_size_max)
        .unwrap_or(usize::MAX)
        .saturating_add(MESSAGE_SLACK);
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        // Every message is framed straight into the pipe; `write` bounds the output.
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// The upgrade request of a client: `GET path` with `Host: host` (an IPv6 address gets its
/// brackets) and the MQTT subprotocol.
fn client_request(host: &str, path: &str) -> io::Result<Request> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let authority = match host.parse::<Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host.to_owned(),
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    let uri: Uri = format!("ws://{authority}{slash}{path}")
        .parse()
        .map_err(|e| {
            bad(format!(
                "bad WebSocket host \"{host}\" or path \"{path}\": {e}"
            ))
        })?;
    ClientRequestBuilder::new(uri)
        .with_sub_protocol(CLIENT_SUBPROTOCOL)
        .into_client_request()
        .map_err(|e| bad(format!("bad WebSocket upgrade request: {e}")))
}

impl<L: Layer> WsTransport<L> {
    /// Waits for the upgrade request on `lower`. Inbound messages and frames are bounded by
    /// `packet_size_max` plus [`MESSAGE_SLACK`].
    pub fn new(lower: L, packet_size_max: u32) -> Self {
        let pipe = Pipe::new();
        let config = session_config(packet_size_max);
        let handshake = ServerHandshake::start(pipe.clone(), MqttSubprotocol, Some(config));
        Self::with_state(lower, pipe, State::Accepting(Box::new(handshake)))
    }

    /// Opens a session as the client: the upgrade request for `path` with `Host: host` (a
    /// name or address, with `:port` where the server wants it) asking for the `mqtt`
    /// subprotocol is queued at once, so [`Layer::wants_write`] is true until it has gone to
    /// `lower`. `write` takes nothing until the server's answer is in; an answer without
    /// `mqtt` fails the read. Inbound messages and frames are bounded as with [`Self::new`].
    pub fn client(lower: L, host: &str, path: &str, packet_size_max: u32) -> io::Result<Self> {
        let request = client_request(host, path)?;
        let pipe = Pipe::new();
        let config = session_config(packet_size_max);
        let handshake = ClientHandshake::start(pipe.clone(), request, Some(config))
            .map_err(|e| invalid(format!("WebSocket upgrade request refused: {e}")))?;
        let mut transport = Self::with_state(lower, pipe, State::Connecting(Box::new(handshake)));
        // The first round writes the request into the pipe and stops for the answer.
        transport.advance_handshake()?;
        Ok(transport)
    }

    fn with_state(lower: L, pipe: Pipe, state: State) -> Self {
        Self {
            lower,
            pipe,
            state,
            handshake_bytes: 0,
            message: Bytes::new(),
            message_pos: 0,
            lower_blocked: false,
            lower_eof: false,
        }
    }

    pub fn lower(&self) -> &L {
        &self.lower
    }

    /// The layer below, for the poller's registration.
    pub fn lower_mut(&mut self) -> &mut L {
        &mut self.lower
    }

    /// True once the upgrade is done and MQTT bytes may flow.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Moves up to `max` bytes from the lower layer into the pipe.
    fn refill(&mut self, max: usize) -> io::Result<(usize, ReadOutcome)> {
        let mut b = self.pipe.buffers()?;
        b.compact();
        let before = b.inbound.len();
        let outcome = self.lower.read(&mut b.inbound, max)?;
        let got = b.inbound.len() - before;
        match outcome {
            ReadOutcome::WouldBlock => self.lower_blocked = true,
            ReadOutcome::Eof => self.lower_eof = true,
            ReadOutcome::Full => {}
        }
        Ok((got, outcome))
    }

    /// Whether the upgrade is still going on, either way.
    fn handshaking(&self) -> bool {
        matches!(self.state, State::Accepting(_) | State::Connecting(_))
    }

    /// Advances the upgrade. `Ok(None)` once the session is open; otherwise how the read
    /// ended. A server's refusal leaves the HTTP answer in the pipe and returns the reason.
    fn read_handshake(&mut self) -> io::Result<Option<ReadOutcome>> {
        loop {
            let room = (HANDSHAKE_REQUEST_MAX + 1).saturating_sub(self.handshake_bytes);
            let (got, outcome) = self.refill(room)?;
            self.handshake_bytes += got;
            if self.handshake_bytes > HANDSHAKE_REQUEST_MAX {
                let client = matches!(self.state, State::Connecting(_));
                self.state = State::Done;
                if client {
                    return Err(invalid(format!(
                        "WebSocket upgrade response longer than {HANDSHAKE_REQUEST_MAX} bytes"
                    )));
                }
                let answer = http_refusal("431 Request Header Fields Too Large");
                self.pipe.buffers()?.outbound.extend_from_slice(&answer);
                return Err(invalid(format!(
                    "WebSocket upgrade request longer than {HANDSHAKE_REQUEST_MAX} bytes"
                )));
            }
            if got > 0 && self.advance_handshake()? {
                return Ok(None);
            }
            match outcome {
                ReadOutcome::Full => {}
                other => return Ok(Some(other)),
            }
        }
    }

    /// Runs the handshake on what the pipe holds; true once the session is open.
    fn advance_handshake(&mut self) -> io::Result<bool> {
        match mem::replace(&mut self.state, State::Done) {
            State::Accepting(handshake) => match handshake.handshake() {
                Ok(ws) => self.state = State::Open(Box::new(ws)),
                Err(HandshakeError::Interrupted(h)) => self.state = State::Accepting(Box::new(h)),
                Err(HandshakeError::Failure(e)) => return Err(self.handshake_failed(e)),
            },
            State::Connecting(handshake) => match handshake.handshake() {
                Ok((ws, response)) => {
                    check_subprotocol(&response)?;
                    self.state = State::Open(Box::new(ws));
                }
                Err(HandshakeError::Interrupted(h)) => self.state = State::Connecting(Box::new(h)),
                Err(HandshakeError::Failure(e)) => return Err(connect_failed(e)),
            },
            other => self.state = other,
        }
        Ok(!self.handshaking())
    }

    fn handshake_failed(&mut self, e: WsError) -> io::Error {
        match e {
            // The refusal (from the subprotocol check) is already written to the pipe.
            WsError::Http(response) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                invalid(format!(
                    "WebSocket upgrade refused ({}): {body}",
                    response.status()
                ))
            }
            other => {
                if let Ok(mut b) = self.pipe.buffers() {
                    b.outbound
                        .extend_from_slice(&http_refusal("400 Bad Request"));
                }
                invalid(format!("WebSocket handshake failed: {other}"))
            }
        }
    }

    /// Ends the session with a close frame carrying `code`, and returns the error to report.
    fn fail(&mut self, code: CloseCode, reason: &'static str, detail: String) -> io::Error {
        if let State::Open(ws) = &mut self.state {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = ws.close(Some(frame));
        }
        self.state = State::Done;
        invalid(detail)
    }

    /// Hands over message bytes, reading frames as needed, until the budget is used or the
    /// lower layer would block with no whole frame left in the pipe.
    fn read_open(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        let mut budget = max;
        loop {
            let rest = self.message.get(self.message_pos..).unwrap_or_default();
            if !rest.is_empty() {
                let n = rest.len().min(budget);
                buf.extend_from_slice(&rest[..n]);
                self.message_pos += n;
                budget -= n;
            }
            if self.message_pos >= self.message.len() {
                self.message = Bytes::new();
                self.message_pos = 0;
            }
            if budget == 0 {
                return Ok(ReadOutcome::Full);
            }
            let State::Open(ws) = &mut self.state else {
                return Ok(ReadOutcome::Eof);
            };
            let error = match ws.read() {
                Ok(Message::Binary(payload)) => {
                    self.message = payload;
                    continue;
                }
                // Pings are answered by tungstenite on the next flush; pongs need nothing.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(_)) => {
                    // Queue tungstenite's answer before the reactor closes.
                    let _ = ws.flush();
                    self.state = State::Done;
                    return Ok(ReadOutcome::Eof);
                }
                Ok(Message::Text(_)) => {
                    return Err(self.fail(
                        CloseCode::Unsupported,
                        "MQTT needs binary frames",
                        "text frame received: MQTT over WebSocket is binary only".to_owned(),
                    ))
                }
                Err(e) => e,
            };
            match error {
                WsError::Io(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Pongs queued while reading go out with the next flush.
                    let _ = ws.flush();
                    if self.lower_eof {
                        return Ok(ReadOutcome::Eof);
                    }
                    if mem::take(&mut self.lower_blocked) {
                        return Ok(ReadOutcome::WouldBlock);
                    }
                    let (got, outcome) = self.refill(READ_CHUNK)?;
                    if got == 0 && outcome == ReadOutcome::WouldBlock {
                        self.lower_blocked = false;
                        return Ok(ReadOutcome::WouldBlock);
                    }
                }
                WsError::ConnectionClosed | WsError::AlreadyClosed => {
                    self.state = State::Done;
                    return Ok(ReadOutcome::Eof);
                }
                WsError::Io(e) => return Err(e),
                WsError::Capacity(e) => {
                    return Err(self.fail(
                        CloseCode::Size,
                        "message too large",
                        format!("WebSocket frame refused: {e}"),
                    ))
                }
                WsError::Protocol(e) => {
                    return Err(self.fail(
                        CloseCode::Protocol,
                        "protocol error",
                        format!("WebSocket protocol error: {e}"),
                    ))
                }
                other => {
                    return Err(self.fail(
                        CloseCode::Protocol,
                        "protocol error",
                        format!("WebSocket error: {other}"),
                    ))
                }
            }
        }
    }

    /// Writes the pipe's pending frames (or HTTP answer) to the lower layer, then the lower
    /// layer's own pending bytes.
    fn push_out(&mut self) -> io::Result<()> {
        let mut b = self.pipe.buffers()?;
        let mut sent = 0;
        let result = loop {
            if sent == b.outbound.len() {
                break Ok(());
            }
            match self.lower.write(&b.outbound[sent..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) => break Err(e),
            }
        };
        b.outbound.drain(..sent);
        if b.outbound.is_empty() && b.outbound.capacity() > MESSAGE_OUT_MAX {
            b.outbound = Vec::new();
        }
        drop(b);
        result?;
        self.lower.flush()
    }
}

impl<L: Layer> Layer for WsTransport<L> {
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        // Each call may follow a new readiness event: the lower layer must be asked again.
        self.lower_blocked = false;
        if self.handshaking() {
            if let Some(outcome) = self.read_handshake()? {
                return Ok(outcome);
            }
        }
        self.read_open(buf, max)
    }

    /// Frames a prefix of `data` (at most [`MESSAGE_OUT_MAX`] bytes) as one binary message.
    /// `WouldBlock` while earlier output is pending or the upgrade is not done yet.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.push_out()?;
        let ws = match &mut self.state {
            State::Open(ws) if ws.can_write() => ws,
            State::Accepting(_) | State::Connecting(_) => {
                return Err(io::ErrorKind::WouldBlock.into())
            }
            // The session is closing: the peer will not read MQTT bytes any more.
            _ => return Ok(data.len()),
        };
        let n = data.len().min(MESSAGE_OUT_MAX);
        let message = Message::Binary(Bytes::copy_from_slice(&data[..n]));
        if let Err(e) = ws.send(message) {
            return Err(io::Error::other(format!("WebSocket write failed: {e}")));
        }
        match self.push_out() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn wants_write(&self) -> bool {
        let pending = self
            .pipe
            .buffers()
            .map(|b| !b.outbound.is_empty())
            .unwrap_or(false);
        pending || self.lower.wants_write()
    }

    fn flush(&mut self) -> io::Result<()> {
        if let State::Open(ws) = &mut self.state {
            match ws.flush() {
                Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
                Err(e) => return Err(io::Error::other(format!("WebSocket flush failed: {e}"))),
            }
        }
        self.push_out()
    }

    /// Queues a close frame and tries once to send it, then closes the layer below.
    fn close(&mut self) {
        if let State::Open(ws) = &mut self.state {
            let _ = ws.close(None);
        }
        self.state = State::Done;
        let _ = self.push_out();
        self.lower.close();
    }

    fn peer_certificate(&self) -> Option<&[u8]> {
        self.lower.peer_certificate()
    }
}

#[cfg(test)]
#[path = "tests/ws.rs"]
mod tests;
