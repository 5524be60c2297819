//! The endpoints that change the broker: publish, disconnect a client, end a session, clear
//! a retained message, open and close listeners, change the run-time limits (fault rules are
//! in `faults`). Bodies are JSON (`Content-Type: application/json`); unknown fields are
//! refused.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use super::read::config_view;
use super::view::{ConfigPatch, ListenerKind, ListenerRequest, PayloadEncoding, PublishRequest};
use super::{check_query, no_query, ok_json, ApiError, Command, Host, Origin};
use crate::codec::http::{Request, Response};
use crate::codec::mqtt::{topic, Properties, QoS, ReasonCode, ReasonPacket};
use crate::config::{
    HttpConfig, ListenerConfig, ListenerProtocol, TlsConfig, REQUEST_TIMEOUT_MAX_SECS,
};
use crate::engine::limits::PACKET_SIZE_MAX;
use crate::engine::limits::{Limits, CONNECT_TIMEOUT_SECS_MAX, TOPIC_LEVELS_MAX};
use crate::engine::CLOCK_ADVANCE_MAX_MS;

/// `POST /clock`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockAdvance {
    advance_ms: u64,
}
use crate::engine::message::Message;

pub(super) fn write(
    host: &mut dyn Host,
    origin: Origin<'_>,
    req: &Request,
    method: &str,
    rest: &str,
) -> Result<Response, ApiError> {
    match (method, rest) {
        ("POST", "/publish") => {
            no_query(req)?;
            publish(host, body(req)?)
        }
        ("PUT", "/config") => {
            no_query(req)?;
            update_config(host, body(req)?)
        }
        ("POST", "/clock") => {
            no_query(req)?;
            let step: ClockAdvance = body(req)?;
            if step.advance_ms > CLOCK_ADVANCE_MAX_MS {
                return Err(ApiError::bad(format!(
                    "advance_ms: expected a number from 0 to {CLOCK_ADVANCE_MAX_MS}"
                )));
            }
            ok_json(200, &host.advance_clock(step.advance_ms)?)
        }
        ("POST", "/faults") => {
            no_query(req)?;
            super::faults::add(host, body(req)?)
        }
        ("POST", "/bridges") => {
            no_query(req)?;
            super::bridges::add(host, body(req)?)
        }
        ("POST", "/listeners") => {
            no_query(req)?;
            let l = host.open_listener(listener_config(body(req)?)?)?;
            ok_json(201, &super::read::listener_json(&l))
        }
        ("DELETE", "/retained") => {
            check_query(req, &["topic"])?;
            let Some(t) = req.query_param("topic") else {
                return Err(ApiError::bad("topic: missing query parameter"));
            };
            if !topic::valid_topic_name(t) {
                return Err(ApiError::bad(format!(
                    "topic: not a valid topic name: {t:?}"
                )));
            }
            done(host.command(Command::ClearRetained(t.to_owned())), || {
                format!("no retained message on {t:?}")
            })
        }
        ("DELETE", _) => {
            if let Some(name) = rest.strip_prefix("/bridges/") {
                return super::bridges::delete(host, req, name);
            }
            if let Some(id) = rest.strip_prefix("/faults/") {
                no_query(req)?;
                return super::faults::delete(host, id);
            }
            if let Some(id) = rest.strip_prefix("/clients/") {
                check_query(req, &["reason_code"])?;
                let reason = reason_code(req)?;
                let command = Command::Disconnect {
                    client_id: id.to_owned(),
                    reason,
                };
                return done(host.command(command), || {
                    format!("no connected client {id:?}")
                });
            }
            no_query(req)?;
            if let Some(id) = rest.strip_prefix("/sessions/") {
                let command = Command::EndSession(id.to_owned());
                return done(host.command(command), || format!("no session {id:?}"));
            }
            if let Some(port) = rest.strip_prefix("/listeners/") {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0 && port.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| ApiError::bad(format!("port: not a port number: {port:?}")))?;
                if port == origin.port {
                    return Err(ApiError::new(
                        409,
                        format!("listener {port} serves this request and cannot close itself"),
                    ));
                }
                host.close_listener(port)?;
                return Ok(Response::new(204));
            }
            Err(ApiError::not_found(format!("no such resource: {rest}")))
        }
        _ => Err(ApiError::not_found(format!("no such resource: {rest}"))),
    }
}

fn done(found: bool, missing: impl FnOnce() -> String) -> Result<Response, ApiError> {
    if found {
        Ok(Response::new(204))
    } else {
        Err(ApiError::not_found(missing()))
    }
}

/// The JSON body of a request, typed.
fn body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    match req.media_type().as_deref() {
        Some("application/json") => {}
        Some(other) => {
            return Err(ApiError::new(
                415,
                format!("expected Content-Type application/json, got {other}"),
            ))
        }
        None => return Err(ApiError::new(415, "expected Content-Type application/json")),
    }
    serde_json::from_slice(&req.body).map_err(|e| ApiError::bad(format!("request body: {e}")))
}

/// The `reason_code` of a disconnection: one a server may send in DISCONNECT, by default
/// Administrative action.
fn reason_code(req: &Request) -> Result<ReasonCode, ApiError> {
    let Some(text) = req.query_param("reason_code") else {
        return Ok(ReasonCode::AdministrativeAction);
    };
    text.parse::<u8>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(ReasonCode::from_u8)
        .filter(|&r| {
            // 0x04 is the client's alone (v5 table 3.14.2.1).
            r.allowed_in(ReasonPacket::Disconnect) && r != ReasonCode::DisconnectWithWill
        })
        .ok_or_else(|| {
            ApiError::bad(format!(
                "reason_code: {text:?} is not a DISCONNECT reason code a server may send"
            ))
        })
}

fn publish(host: &mut dyn Host, p: PublishRequest) -> Result<Response, ApiError> {
    if !topic::valid_topic_name(&p.topic) {
        return Err(ApiError::bad(format!(
            "topic: not a valid topic name: {:?}",
            p.topic
        )));
    }
    let limits = host.engine().limits().clone();
    let qos = QoS::from_u8(p.qos)
        .ok_or_else(|| ApiError::bad(format!("qos: expected 0, 1 or 2, got {}", p.qos)))?;
    if qos > limits.max_qos {
        return Err(ApiError::bad(format!(
            "qos: the broker's max_qos is {}",
            limits.max_qos as u8
        )));
    }
    if p.retain && !limits.retain_available {
        return Err(ApiError::bad("retain: retained messages are not available"));
    }
    let payload = match p.payload_encoding {
        PayloadEncoding::Text => p.payload.into_bytes(),
        PayloadEncoding::Base64 => BASE64
            .decode(p.payload.as_bytes())
            .map_err(|e| ApiError::bad(format!("payload: not base64: {e}")))?,
    };
    let size_limit = limits.message_size_limit;
    if size_limit > 0 && payload.len() > size_limit as usize {
        return Err(ApiError::bad(format!(
            "payload: {} bytes exceed message_size_limit {size_limit}",
            payload.len()
        )));
    }
    let props = p.properties;
    if props.payload_format_indicator.is_some_and(|f| f > 1) {
        return Err(ApiError::bad(
            "properties.payload_format_indicator: expected 0 or 1",
        ));
    }
    if props.payload_format_indicator == Some(1) && std::str::from_utf8(&payload).is_err() {
        return Err(ApiError::bad(
            "properties.payload_format_indicator: 1 but the payload is not UTF-8",
        ));
    }
    if let Some(t) = &props.response_topic {
        if !topic::valid_topic_name(t) {
            return Err(ApiError::bad(
                "properties.response_topic: not a valid topic name",
            ));
        }
    }
    let nul = |s: &str| s.contains('\0');
    if props.content_type.as_deref().is_some_and(nul)
        || props
            .user_properties
            .iter()
            .any(|u| nul(&u.name) || nul(&u.value))
    {
        return Err(ApiError::bad("properties: strings must not contain U+0000"));
    }
    let correlation_data =
        match &props.correlation_data {
            None => None,
            Some(text) => Some(BASE64.decode(text.as_bytes()).map_err(|e| {
                ApiError::bad(format!("properties.correlation_data: not base64: {e}"))
            })?),
        };
    let now = host.now();
    let properties = Properties {
        payload_format_indicator: props.payload_format_indicator,
        content_type: props.content_type,
        response_topic: props.response_topic,
        correlation_data,
        user_properties: props
            .user_properties
            .into_iter()
            .map(|u| (u.name, u.value))
            .collect(),
        ..Properties::default()
    };
    let result = super::view::PublishResult {
        topic: p.topic.clone(),
        qos: qos as u8,
        retain: p.retain,
        payload_size: payload.len(),
    };
    let msg = Message {
        topic: p.topic.as_str().into(),
        payload: payload.into(),
        qos,
        retain: p.retain,
        properties: properties.into(),
        expires_at: props
            .message_expiry_interval
            .map(|secs| now.saturating_add_secs(u64::from(secs))),
        origin: None,
    };
    host.command(Command::Publish(Box::new(msg)));
    ok_json(200, &result)
}

fn update_config(host: &mut dyn Host, patch: ConfigPatch) -> Result<Response, ApiError> {
    let mut l = host.engine().limits().clone();
    if let Some(v) = patch.max_packet_size {
        if v != 0 && !(20..=PACKET_SIZE_MAX).contains(&v) {
            return Err(ApiError::bad(format!(
                "max_packet_size: expected 0 or a number from 20 to {PACKET_SIZE_MAX}"
            )));
        }
        l.max_packet_size = v;
    }
    if let Some(v) = patch.message_size_limit {
        if v > PACKET_SIZE_MAX {
            return Err(ApiError::bad(format!(
                "message_size_limit: expected a number from 0 to {PACKET_SIZE_MAX}"
            )));
        }
        l.message_size_limit = v;
    }
    if let Some(v) = patch.max_qos {
        l.max_qos = QoS::from_u8(v).ok_or_else(|| ApiError::bad("max_qos: expected 0, 1 or 2"))?;
    }
    if let Some(v) = patch.max_queued_messages {
        l.max_queued_messages = v as usize;
    }
    l.allow_anonymous = patch.allow_anonymous.unwrap_or(l.allow_anonymous);
    l.max_inflight_messages = patch
        .max_inflight_messages
        .unwrap_or(l.max_inflight_messages);
    l.max_queued_bytes = patch.max_queued_bytes.unwrap_or(l.max_queued_bytes);
    l.max_keepalive = patch.max_keepalive.unwrap_or(l.max_keepalive);
    if let Some(v) = patch.persistent_client_expiration {
        l.persistent_client_expiration = v;
    }
    l.sys_interval = patch.sys_interval.unwrap_or(l.sys_interval);
    l.retain_available = patch.retain_available.unwrap_or(l.retain_available);
    l.max_topic_alias = patch.max_topic_alias.unwrap_or(l.max_topic_alias);
    bounds_patch(&mut l, &patch)?;
    host.set_limits(l);
    ok_json(200, &config_view(host))
}

/// The broker-wide bounds of a `PUT /config`, checked as the configuration file checks them.
fn bounds_patch(l: &mut Limits, patch: &ConfigPatch) -> Result<(), ApiError> {
    if let Some(v) = patch.connect_timeout {
        if !(1..=CONNECT_TIMEOUT_SECS_MAX).contains(&v) {
            return Err(ApiError::bad(format!(
                "connect_timeout: expected a number from 1 to {CONNECT_TIMEOUT_SECS_MAX}"
            )));
        }
        l.connect_timeout = v;
    }
    if let Some(v) = patch.max_topic_levels {
        if v > TOPIC_LEVELS_MAX {
            return Err(ApiError::bad(format!(
                "max_topic_levels: expected a number from 0 to {TOPIC_LEVELS_MAX}"
            )));
        }
        l.max_topic_levels = v;
    }
    if let Some(v) = patch.global_max_connections {
        l.global_max_connections = v;
    }
    l.max_subscriptions = patch.max_subscriptions.unwrap_or(l.max_subscriptions);
    l.max_queued_memory = patch.max_queued_memory.unwrap_or(l.max_queued_memory);
    l.max_connection_rate = patch.max_connection_rate.unwrap_or(l.max_connection_rate);
    Ok(())
}

/// The configuration of a listener asked for over the API.
fn listener_config(r: ListenerRequest) -> Result<ListenerConfig, ApiError> {
    let protocol = match r.protocol {
        ListenerKind::Mqtt => ListenerProtocol::Mqtt,
        ListenerKind::Websockets => ListenerProtocol::WebSockets,
        ListenerKind::Http => ListenerProtocol::Http,
        ListenerKind::Mqttsn => {
            return Err(ApiError::bad(
                "protocol: MQTT-SN listeners are opened from the configuration file only",
            ))
        }
    };
    // The host takes IP addresses only, so opening a listener never waits for a lookup.
    let address = r
        .address
        .unwrap_or_else(|| crate::config::LOCAL_ADDRESS.to_owned());
    let mut config = ListenerConfig::new(r.port, Some(address));
    config.protocol = protocol;
    config.max_connections = r.max_connections;
    if protocol == ListenerProtocol::Http {
        // As in the configuration file: an API listener is bounded by default.
        config.max_connections = config
            .max_connections
            .or(Some(crate::config::HTTP_MAX_CONNECTIONS));
    }
    if let Some(m) = r.mount_point {
        if protocol == ListenerProtocol::Http {
            return Err(ApiError::bad("mount_point: not for protocol http"));
        }
        if m.contains(['+', '#', '\0']) {
            return Err(ApiError::bad(
                "mount_point: must not contain +, # or U+0000",
            ));
        }
        config.mount_point = Some(m);
    }
    config.tls = match (r.certfile, r.keyfile) {
        (Some(certfile), Some(keyfile)) => Some(TlsConfig {
            certfile: PathBuf::from(certfile),
            keyfile: PathBuf::from(keyfile),
            cafile: r.cafile.map(PathBuf::from),
            capath: None,
            require_certificate: r.require_certificate,
            use_identity_as_username: false,
            use_subject_as_username: false,
            tls_version: None,
            ciphers: None,
            ciphers_tls13: None,
        }),
        (None, None) => {
            if r.cafile.is_some() || r.require_certificate {
                return Err(ApiError::bad(
                    "cafile and require_certificate need certfile and keyfile",
                ));
            }
            None
        }
        _ => return Err(ApiError::bad("certfile and keyfile go together")),
    };
    if let Some(TlsConfig {
        require_certificate: true,
        cafile: None,
        ..
    }) = &config.tls
    {
        return Err(ApiError::bad("require_certificate needs cafile"));
    }
    if protocol == ListenerProtocol::Http {
        let mut http = HttpConfig {
            token_file: r.http_token_file,
            ..HttpConfig::default()
        };
        if let Some(secs) = r.http_request_timeout {
            if !(1..=REQUEST_TIMEOUT_MAX_SECS).contains(&secs) {
                return Err(ApiError::bad(format!(
                    "http_request_timeout: expected a number from 1 to {REQUEST_TIMEOUT_MAX_SECS}"
                )));
            }
            http.request_timeout_secs = secs;
        }
        config.http = Some(http);
    } else if r.http_token_file.is_some() || r.http_request_timeout.is_some() {
        return Err(ApiError::bad(
            "http_token_file and http_request_timeout are only for protocol http",
        ));
    }
    Ok(config)
}
