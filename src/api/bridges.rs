//! The bridge endpoints: list, show, add and delete bridges while the broker runs. A bridge
//! added here takes the options of a `connection` block of the configuration file, as JSON,
//! and goes through the same parser, so it behaves exactly like one from the file.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{check_query, no_query, ok_json, ApiError, BridgeInfo, Host, Paging};
use crate::codec::http::{Request, Response};
use crate::config::bridge::{
    bridge_from_options, BridgeKind, BridgeProtocol, BridgeTransport, Direction, TopicMapping,
};

#[derive(Serialize)]
struct Bridge {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    state: &'static str,
    address: Option<String>,
    addresses: Vec<String>,
    protocol: &'static str,
    transport: &'static str,
    tls: bool,
    remote_clientid: String,
    local_clientid: String,
    topics: Vec<Topic>,
    connects: u64,
    messages_out: u64,
    messages_in: u64,
    /// Outgoing messages waiting in the bridge's local session.
    queued: usize,
    failures: u64,
    last_status: Option<u16>,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct Topic {
    pattern: String,
    direction: &'static str,
    qos: u8,
    local_prefix: String,
    remote_prefix: String,
}

fn topic(t: &TopicMapping) -> Topic {
    Topic {
        pattern: t.pattern.clone(),
        direction: match t.direction {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        },
        qos: t.qos as u8,
        local_prefix: t.local_prefix.clone(),
        remote_prefix: t.remote_prefix.clone(),
    }
}

fn view(host: &dyn Host, b: &BridgeInfo) -> Bridge {
    let c = &b.config;
    let queued = host
        .engine()
        .session(&c.local_clientid)
        .map_or(0, |s| s.queued + s.inflight);
    Bridge {
        name: c.name.clone(),
        kind: match c.kind {
            BridgeKind::Mqtt => "mqtt",
            BridgeKind::Http(_) => "http",
            BridgeKind::MqttSn(_) => "mqttsn",
        },
        state: b.state,
        address: b.address.clone(),
        addresses: c
            .addresses
            .iter()
            .map(|a| format!("{}:{}", a.host, a.port))
            .collect(),
        protocol: match c.protocol {
            BridgeProtocol::V311 => "mqttv311",
            BridgeProtocol::V5 => "mqttv50",
        },
        transport: match c.transport {
            BridgeTransport::Tcp => "tcp",
            BridgeTransport::WebSockets { .. } => "websockets",
        },
        tls: c.tls.is_some(),
        remote_clientid: c.remote_clientid.clone(),
        local_clientid: c.local_clientid.clone(),
        topics: c.topics.iter().map(topic).collect(),
        connects: b.connects,
        messages_out: b.messages_out,
        messages_in: b.messages_in,
        queued,
        failures: b.failures,
        last_status: b.last_status,
        last_error: b.last_error.clone(),
    }
}

/// `GET /bridges` and `GET /bridges/{name}`.
pub(super) fn get(
    host: &dyn Host,
    req: &Request,
    name: Option<&str>,
) -> Result<Response, ApiError> {
    let all = host.bridges();
    match name {
        None => {
            check_query(req, &["offset", "limit"])?;
            let paging = Paging::of(req)?;
            let page = paging.page(all.iter());
            let items = page.items.iter().map(|b| view(host, b)).collect();
            ok_json(
                200,
                &super::view::Page {
                    total: page.total,
                    offset: page.offset,
                    limit: page.limit,
                    items,
                },
            )
        }
        Some(name) => {
            no_query(req)?;
            match all.iter().find(|b| b.config.name == name) {
                Some(b) => ok_json(200, &view(host, b)),
                None => Err(ApiError::not_found(format!("no bridge {name:?}"))),
            }
        }
    }
}

/// `POST /bridges`: a JSON object with `name` and the options of a `connection` block.
pub(super) fn add(host: &mut dyn Host, body: Map<String, Value>) -> Result<Response, ApiError> {
    let mut name = None;
    let mut options: Vec<(String, String)> = Vec::new();
    for (key, value) in body {
        if key == "name" {
            match value {
                Value::String(s) => name = Some(s),
                _ => return Err(ApiError::bad("name: expected a string")),
            }
            continue;
        }
        let values: Vec<String> = match value {
            Value::String(s) => vec![s],
            Value::Bool(b) => vec![b.to_string()],
            Value::Number(n) => vec![n.to_string()],
            // `address` takes its addresses on one line; other repeated options (`topic`)
            // take one line each.
            Value::Array(items) if key == "address" || key == "addresses" => {
                vec![strings(&key, items)?.join(" ")]
            }
            Value::Array(items) => strings(&key, items)?,
            _ => {
                return Err(ApiError::bad(format!(
                    "{key}: expected a string, a number, a boolean or a list of strings"
                )))
            }
        };
        options.extend(values.into_iter().map(|v| (key.clone(), v)));
    }
    let Some(name) = name else {
        return Err(ApiError::bad("name: missing"));
    };
    let config = bridge_from_options(&name, &options).map_err(ApiError::bad)?;
    let info = host.add_bridge(config)?;
    ok_json(201, &view(host, &info))
}

fn strings(key: &str, items: Vec<Value>) -> Result<Vec<String>, ApiError> {
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(ApiError::bad(format!("{key}: expected a list of strings"))),
        })
        .collect()
}

/// `DELETE /bridges/{name}[?keep_queue=true]`.
pub(super) fn delete(host: &mut dyn Host, req: &Request, name: &str) -> Result<Response, ApiError> {
    check_query(req, &["keep_queue"])?;
    let keep_queue = match req.query_param("keep_queue") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "keep_queue: expected true or false, got {other:?}"
            )))
        }
    };
    host.remove_bridge(name, keep_queue)?;
    Ok(Response::new(204))
}
