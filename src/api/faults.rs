//! The fault injection endpoints: list, add and remove the rules of [`crate::fault`], and
//! force a session takeover. A rule names its target by client id or by the port of an
//! MQTT listener (TCP or WebSockets).
//!
//! Owns the JSON shape of a rule and the reading of a request into a [`Spec`]; the checks
//! of the values themselves are the rule table's. It must never apply a fault itself: the
//! host adds the rule, and a takeover goes through the operator's disconnect command.

use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{check_query, ok_json, ApiError, Command, Host, Paging};
use crate::codec::http::{Request, Response};
use crate::codec::mqtt::ReasonCode;
use crate::config::ListenerProtocol;
use crate::fault::{FaultId, Kind, Rule, Spec, Target};

/// The fields of `POST /faults`.
const FIELDS: &[&str] = &[
    "kind",
    "client_id",
    "listener",
    "count",
    "delay_ms",
    "reason_code",
];

/// The longest client id MQTT can carry.
const CLIENT_ID_MAX: usize = 65_535;

/// A rule as the API shows it; fields that do not apply to its kind are null.
#[derive(Serialize)]
struct Fault {
    id: u64,
    kind: &'static str,
    client_id: Option<String>,
    listener: Option<u16>,
    count: Option<u32>,
    remaining: Option<u32>,
    delay_ms: Option<u64>,
    reason_code: Option<u8>,
}

fn view(r: &Rule) -> Fault {
    let (client_id, listener) = match &r.target {
        Target::Client(id) => (Some(id.to_string()), None),
        Target::Listener { port, .. } => (None, Some(*port)),
    };
    Fault {
        id: r.id.0,
        kind: r.kind.name(),
        client_id,
        listener,
        count: r.count,
        remaining: r.remaining,
        delay_ms: r.delay_ms,
        reason_code: r.reason.map(|c| c as u8),
    }
}

/// `GET /faults`: the rules, oldest first (paged).
pub(super) fn get(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    check_query(req, &["offset", "limit"])?;
    let paging = Paging::of(req)?;
    ok_json(
        200,
        &paging.page(host.engine().faults().rules().iter().map(view)),
    )
}

/// `POST /faults`: adds a rule (201 with it), or forces a takeover at once (204).
pub(super) fn add(host: &mut dyn Host, body: Map<String, Value>) -> Result<Response, ApiError> {
    if let Some(key) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad(format!(
            "unknown field {key:?}; known: {}",
            FIELDS.join(", ")
        )));
    }
    let kind = match body.get("kind") {
        Some(Value::String(name)) => Kind::parse(name).map_err(ApiError::bad)?,
        None | Some(Value::Null) => return Err(ApiError::bad("kind: missing")),
        Some(_) => return Err(ApiError::bad("kind: expected a string")),
    };
    let client_id = match body.get("client_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.as_str()),
        Some(_) => return Err(ApiError::bad("client_id: expected a string")),
    };
    let target = match (client_id, number(&body, "listener")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "client_id and listener: give one of them, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad(
                "client_id or listener: one of them is required",
            ))
        }
        (Some(id), None) => client_target(id)?,
        (None, Some(port)) => listener_target(host, port)?,
    };
    let spec = Spec::new(
        kind,
        target,
        number(&body, "count")?,
        number(&body, "delay_ms")?,
        number(&body, "reason_code")?,
    )
    .map_err(ApiError::bad)?;
    if let (Kind::Takeover, Target::Client(id)) = (spec.kind, &spec.target) {
        let command = Command::Disconnect {
            client_id: id.to_string(),
            reason: ReasonCode::SessionTakenOver,
        };
        if !host.command(command) {
            return Err(ApiError::not_found(format!("no connected client {id:?}")));
        }
        return Ok(Response::new(204));
    }
    let rule = host.add_fault(spec)?;
    ok_json(201, &view(&rule))
}

/// `DELETE /faults/{id}`.
pub(super) fn delete(host: &mut dyn Host, id: &str) -> Result<Response, ApiError> {
    let n = id
        .parse::<u64>()
        .ok()
        .filter(|_| id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ApiError::bad(format!("id: not a fault rule id: {id:?}")))?;
    if host.remove_fault(FaultId(n)) {
        Ok(Response::new(204))
    } else {
        Err(ApiError::not_found(format!("no fault rule {n}")))
    }
}

/// A field holding a whole number, if present.
fn number(body: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(format!("{key}: expected a whole number, got {v}"))),
    }
}

fn client_target(id: &str) -> Result<Target, ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad("client_id: must not be empty"));
    }
    if id.len() > CLIENT_ID_MAX || id.contains('\0') {
        return Err(ApiError::bad(format!(
            "client_id: not a client identifier MQTT can carry (at most {CLIENT_ID_MAX} bytes, \
             no U+0000)"
        )));
    }
    Ok(Target::Client(Rc::from(id)))
}

/// The MQTT listener (TCP or WebSockets) on `port`.
fn listener_target(host: &dyn Host, port: u64) -> Result<Target, ApiError> {
    let port = u16::try_from(port).ok().filter(|&p| p > 0).ok_or_else(|| {
        ApiError::bad(format!(
            "listener: expected a port number from 1 to 65535, got {port}"
        ))
    })?;
    let listeners = host.listeners();
    let on_port = || listeners.iter().filter(|l| l.port == port);
    if let Some(l) = on_port().find(|l| {
        matches!(
            l.protocol,
            ListenerProtocol::Mqtt | ListenerProtocol::WebSockets
        )
    }) {
        return Ok(Target::Listener { id: l.id, port });
    }
    Err(ApiError::bad(match on_port().next() {
        Some(_) => format!(
            "listener: the listener on port {port} is not an MQTT listener over TCP or \
             WebSockets"
        ),
        None => format!("listener: no listener on port {port}"),
    }))
}
