//! The HTTP API: one request in, one response out, against the broker's live state.
//!
//! Sans-IO like the engine: [`handle`] takes a parsed request and a [`Host`] (the reactor)
//! that lends the engine for reading and carries out commands, and returns the response to
//! queue. It never touches a socket, a file or the clock. The routes are those of
//! `openapi.json` (served at `/api/v1/openapi.json`); `read` holds the GET endpoints,
//! `write` the others, `view` the JSON shapes.
//!
//! Order of checks for every request: the OpenAPI document is always served; then the bearer
//! token when the listener has one (401); then the route (404, 405 with `Allow`); then, for a
//! write on a listener without a token, 403; then the endpoint's own checks (400, 409, 415).

mod bridges;
mod faults;
mod read;
mod view;
mod write;

use serde::Serialize;

use crate::clock::Millis;
use crate::codec::http::{Request, Response};
use crate::config::ListenerConfig;
use crate::engine::event::ListenerId;
use crate::engine::limits::Limits;
use crate::engine::message::Message;
use crate::engine::Engine;
use view::ErrorBody;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The broker's version as reported by the API.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The API's path prefix.
const PREFIX: &str = "/api/v1";

/// Largest page.
const LIMIT_MAX: usize = 1000;
const LIMIT_DEFAULT: usize = 100;

/// A listener as the API shows it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub id: ListenerId,
    pub port: u16,
    pub address: String,
    pub protocol: crate::config::ListenerProtocol,
    pub tls: bool,
    pub connections: u64,
    pub max_connections: Option<u32>,
    pub mount_point: Option<String>,
}

/// A bridge as the API shows it.
#[derive(Debug, Clone)]
pub struct BridgeInfo {
    pub config: crate::config::bridge::BridgeConfig,
    /// `connected`, `connecting`, `waiting` or `stopped`.
    pub state: &'static str,
    /// The address in use or last tried, `host:port`.
    pub address: Option<String>,
    pub connects: u64,
    pub messages_out: u64,
    pub messages_in: u64,
    /// Failed attempts (connections, or a webhook's posts).
    pub failures: u64,
    /// A webhook's last HTTP status.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// The broker's clock, as `GET /clock` shows it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ClockInfo {
    /// True in deterministic mode: the clock is virtual and moves only when told.
    pub deterministic: bool,
    /// Milliseconds since start.
    pub now_ms: u64,
    /// Unix time in milliseconds.
    pub wall_ms: u64,
}

/// Why the host could not carry out a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The state of the broker forbids it (port in use, too many listeners): 409.
    Conflict(String),
    /// The request itself is wrong (unreadable file, bad certificate): 400.
    Invalid(String),
    /// Nothing of that name: 404.
    NotFound(String),
}

/// An operator's command on the engine.
#[derive(Debug)]
pub enum Command {
    Publish(Box<Message>),
    Disconnect {
        client_id: String,
        reason: crate::codec::mqtt::ReasonCode,
    },
    EndSession(String),
    ClearRetained(String),
}

/// What the API needs from the reactor.
pub trait Host {
    /// The engine, for reading.
    fn engine(&self) -> &Engine;
    /// The time of this loop turn.
    fn now(&self) -> Millis;
    /// Bytes received and sent since start, counted by the reactor and not yet reported.
    fn pending_traffic(&self) -> (u64, u64);
    /// Every open listener, in the order they were opened.
    fn listeners(&self) -> Vec<ListenerInfo>;
    /// Opens a TCP listener now.
    fn open_listener(&mut self, config: ListenerConfig) -> Result<ListenerInfo, HostError>;
    /// Closes the TCP listeners on `port`; their accepted connections stay open.
    fn close_listener(&mut self, port: u16) -> Result<(), HostError>;
    /// Replaces the run-time limits.
    fn set_limits(&mut self, limits: Limits);
    /// Carries out a command on the engine, applying what the engine asks in return.
    /// False when the client, session or retained message named does not exist.
    fn command(&mut self, command: Command) -> bool;
    /// The clock of this turn.
    fn clock(&self) -> ClockInfo;
    /// Moves a virtual clock forward; a conflict outside deterministic mode.
    fn advance_clock(&mut self, ms: u64) -> Result<ClockInfo, HostError>;
    /// Every bridge, in the order they were added.
    fn bridges(&self) -> Vec<BridgeInfo>;
    /// Adds a bridge, which connects at once.
    fn add_bridge(
        &mut self,
        config: crate::config::bridge::BridgeConfig,
    ) -> Result<BridgeInfo, HostError>;
    /// Stops and removes a bridge; its queue of outgoing messages is dropped unless
    /// `keep_queue`.
    fn remove_bridge(&mut self, name: &str, keep_queue: bool) -> Result<(), HostError>;
    /// Adds a fault rule (see [`crate::fault`]); a conflict when the table is full.
    fn add_fault(&mut self, spec: crate::fault::Spec) -> Result<crate::fault::Rule, HostError>;
    /// Removes a fault rule; false when there is none with this id.
    fn remove_fault(&mut self, id: crate::fault::FaultId) -> bool;
}

/// What the API knows of the listener a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The listener's bearer token.
    pub token: Option<&'a str>,
    /// The listener's port (it cannot close itself).
    pub port: u16,
}

/// Answers one request. HEAD is answered as GET; the caller leaves the body out.
pub fn handle(host: &mut dyn Host, origin: Origin<'_>, req: &Request) -> Response {
    match route(host, origin, req) {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

/// An answer other than success, as `{error, detail}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    detail: String,
    /// Extra header (`Allow`, `WWW-Authenticate`).
    header: Option<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            header: None,
        }
    }

    fn bad(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    pub(crate) fn response(&self) -> Response {
        error_response(self.status, &self.detail, self.header.clone())
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Conflict(d) => Self::new(409, d),
            HostError::Invalid(d) => Self::bad(d),
            HostError::NotFound(d) => Self::not_found(d),
        }
    }
}

/// The error code of a status, as the `error` field names it.
pub fn error_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        431 => "request_header_fields_too_large",
        501 => "not_implemented",
        505 => "http_version_not_supported",
        _ => "internal_error",
    }
}

/// A JSON error answer; also used by the reactor for errors found before routing.
pub fn error_response(
    status: u16,
    detail: &str,
    header: Option<(&'static str, String)>,
) -> Response {
    let body = ErrorBody {
        error: error_code(status),
        detail,
    };
    let mut r = Response::json(status, to_json(&body));
    if let Some((name, value)) = header {
        r = r.with_header(name, value);
    }
    r
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(mut v) => {
            v.push(b'\n');
            v
        }
        // Serialising plain structs of strings and numbers cannot fail.
        Err(_) => b"{}\n".to_vec(),
    }
}

fn ok_json<T: Serialize>(status: u16, value: &T) -> Result<Response, ApiError> {
    Ok(Response::json(status, to_json(value)))
}

/// The methods a path accepts, `None` for an unknown path.
fn allowed(path: &str) -> Option<&'static [&'static str]> {
    const READ: &[&str] = &["GET", "HEAD"];
    const READ_DELETE: &[&str] = &["GET", "HEAD", "DELETE"];
    let rest = path.strip_prefix(PREFIX)?;
    Some(match rest {
        "/broker" | "/clients" | "/sessions" | "/subscriptions" | "/metrics" | "/openapi.json" => {
            READ
        }
        "/retained" => READ_DELETE,
        "/listeners" | "/bridges" | "/clock" | "/faults" => &["GET", "HEAD", "POST"],
        "/config" => &["GET", "HEAD", "PUT"],
        "/publish" => &["POST"],
        _ => {
            let id = rest
                .strip_prefix("/clients/")
                .or_else(|| rest.strip_prefix("/sessions/"))
                .or_else(|| rest.strip_prefix("/bridges/"));
            match id {
                Some(id) if !id.is_empty() => READ_DELETE,
                _ => match rest
                    .strip_prefix("/listeners/")
                    .or_else(|| rest.strip_prefix("/faults/"))
                {
                    Some(key) if !key.is_empty() => &["DELETE"],
                    _ => return None,
                },
            }
        }
    })
}

fn route(host: &mut dyn Host, origin: Origin<'_>, req: &Request) -> Result<Response, ApiError> {
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    let path = req.path.as_str();
    if path == "/api/v1/openapi.json" && method == "GET" {
        no_query(req)?;
        return Ok(Response::json(200, OPENAPI.as_bytes().to_vec()));
    }
    if let Some(token) = origin.token {
        authorize(req, token)?;
    }
    let Some(methods) = allowed(path) else {
        return Err(ApiError::not_found(format!("no such resource: {path}")));
    };
    if !methods.contains(&req.method.as_str()) {
        let mut e = ApiError::new(405, format!("{} is not allowed on {path}", req.method));
        e.header = Some(("Allow", methods.join(", ")));
        return Err(e);
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    if method == "GET" {
        return read::get(host, req, rest);
    }
    if origin.token.is_none() {
        return Err(ApiError::new(
            403,
            "this listener has no http_token_file: its API is read-only",
        ));
    }
    write::write(host, origin, req, method, rest)
}

/// Checks the `Authorization: Bearer` header against `token`.
fn authorize(req: &Request, token: &str) -> Result<(), ApiError> {
    let challenge = "Bearer realm=\"culex\"";
    let given = req.header_str("authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let (detail, header) = match given {
        None => ("a bearer token is required", challenge.to_owned()),
        Some(t) if same(t.as_bytes(), token.as_bytes()) => return Ok(()),
        Some(_) => (
            "the bearer token is not valid",
            format!("{challenge}, error=\"invalid_token\""),
        ),
    };
    let mut e = ApiError::new(401, detail);
    e.header = Some(("WWW-Authenticate", header));
    Err(e)
}

/// Compares two byte strings in time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Refuses query parameters other than `known`, and repeated ones.
fn check_query(req: &Request, known: &[&str]) -> Result<(), ApiError> {
    for (i, (name, _)) in req.query.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            return Err(ApiError::bad(format!("unknown query parameter \"{name}\"")));
        }
        if req.query[..i].iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad(format!(
                "query parameter \"{name}\" given twice"
            )));
        }
    }
    Ok(())
}

fn no_query(req: &Request) -> Result<(), ApiError> {
    check_query(req, &[])
}

/// `offset` and `limit` of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paging {
    offset: usize,
    limit: usize,
}

impl Paging {
    fn of(req: &Request) -> Result<Self, ApiError> {
        let number = |name: &str, default: usize, min: usize, max: usize| {
            let Some(text) = req.query_param(name) else {
                return Ok(default);
            };
            text.parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n) && text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "{name}: expected a number from {min} to {max}, got \"{text}\""
                    ))
                })
        };
        Ok(Self {
            offset: number("offset", 0, 0, usize::MAX >> 1)?,
            limit: number("limit", LIMIT_DEFAULT, 1, LIMIT_MAX)?,
        })
    }

    /// One page of `items`, counting them all.
    fn page<T>(self, items: impl Iterator<Item = T>) -> view::Page<T> {
        let mut total = 0;
        let mut page = Vec::new();
        for item in items {
            if total >= self.offset && page.len() < self.limit {
                page.push(item);
            }
            total += 1;
        }
        view::Page {
            total,
            offset: self.offset,
            limit: self.limit,
            items: page,
        }
    }
}

#[cfg(test)]
mod tests;
