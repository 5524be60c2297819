//! The GET endpoints: broker summary, clients, sessions, subscriptions, retained messages,
//! listeners, limits and metrics. Each reads the engine and the listener table and changes
//! nothing.

use std::fmt::Write as _;

use super::view::{self, ClientDetail, ClientSummary, ConfigView};
use super::{check_query, no_query, ok_json, ApiError, Host, ListenerInfo, Paging, VERSION};
use crate::codec::http::{Request, Response};
use crate::codec::mqtt::topic;
use crate::engine::event::ListenerId;

pub(super) fn get(host: &mut dyn Host, req: &Request, rest: &str) -> Result<Response, ApiError> {
    match rest {
        "/broker" => {
            no_query(req)?;
            ok_json(200, &broker(host))
        }
        "/clients" => {
            check_query(req, &["offset", "limit"])?;
            let paging = Paging::of(req)?;
            let listeners = host.listeners();
            let engine = host.engine();
            let page = paging.page(engine.clients());
            ok_json(
                200,
                &map_page(page, |c| {
                    ClientSummary::new(&c, port_of(&listeners, c.listener))
                }),
            )
        }
        "/sessions" => {
            check_query(req, &["offset", "limit"])?;
            let paging = Paging::of(req)?;
            ok_json(
                200,
                &map_page(paging.page(host.engine().sessions()), view::Session::from),
            )
        }
        "/subscriptions" => {
            check_query(req, &["client_id", "offset", "limit"])?;
            let paging = Paging::of(req)?;
            let client_id = req.query_param("client_id");
            let subs = host.engine().subscriptions(client_id);
            ok_json(200, &map_page(paging.page(subs), view::Subscription::from))
        }
        "/retained" => {
            check_query(req, &["filter", "offset", "limit"])?;
            let paging = Paging::of(req)?;
            let filter = req.query_param("filter").unwrap_or("#");
            if !topic::valid_topic_filter(filter) {
                return Err(ApiError::bad(format!(
                    "filter: not a valid topic filter: {filter:?}"
                )));
            }
            let now = host.now();
            let engine = host.engine();
            let page = paging.page(engine.retained_matching(filter, now));
            ok_json(200, &map_page(page, |m| view::Retained::new(m, now)))
        }
        "/listeners" => {
            check_query(req, &["offset", "limit"])?;
            let paging = Paging::of(req)?;
            let listeners = host.listeners();
            ok_json(200, &map_page(paging.page(listeners.iter()), listener_json))
        }
        "/config" => {
            no_query(req)?;
            ok_json(200, &config_view(host))
        }
        "/bridges" => super::bridges::get(host, req, None),
        "/faults" => super::faults::get(host, req),
        "/clock" => {
            no_query(req)?;
            ok_json(200, &host.clock())
        }
        "/metrics" => {
            no_query(req)?;
            let mut r = Response::new(200);
            r.content_type = Some("text/plain; version=0.0.4; charset=utf-8");
            r.body = metrics(host).into_bytes();
            Ok(r)
        }
        _ => {
            if let Some(name) = rest.strip_prefix("/bridges/") {
                return super::bridges::get(host, req, Some(name));
            }
            no_query(req)?;
            if let Some(id) = rest.strip_prefix("/clients/") {
                return client(host, id);
            }
            if let Some(id) = rest.strip_prefix("/sessions/") {
                return match host.engine().session(id) {
                    Some(s) => ok_json(200, &view::Session::from(s)),
                    None => Err(ApiError::not_found(format!("no session {id:?}"))),
                };
            }
            Err(ApiError::not_found(format!("no such resource: {rest}")))
        }
    }
}

fn client(host: &dyn Host, id: &str) -> Result<Response, ApiError> {
    let engine = host.engine();
    let Some(c) = engine.client(id) else {
        return Err(ApiError::not_found(format!("no connected client {id:?}")));
    };
    let listeners = host.listeners();
    let detail = ClientDetail {
        summary: ClientSummary::new(&c, port_of(&listeners, c.listener)),
        subscriptions: engine
            .subscriptions(Some(id))
            .map(view::Subscription::from)
            .collect(),
        will: engine.will_of(id).map(view::Will::from),
    };
    ok_json(200, &detail)
}

fn map_page<T, U>(page: view::Page<T>, f: impl FnMut(T) -> U) -> view::Page<U> {
    view::Page {
        total: page.total,
        offset: page.offset,
        limit: page.limit,
        items: page.items.into_iter().map(f).collect(),
    }
}

/// The port of a listener, 0 when it has been closed since.
fn port_of(listeners: &[ListenerInfo], id: ListenerId) -> u16 {
    listeners.iter().find(|l| l.id == id).map_or(0, |l| l.port)
}

pub(super) fn listener_json(l: &ListenerInfo) -> view::Listener {
    view::Listener {
        port: l.port,
        address: l.address.clone(),
        protocol: l.protocol.name(),
        tls: l.tls,
        connections: l.connections,
        max_connections: l.max_connections,
        mount_point: l.mount_point.clone(),
    }
}

pub(super) fn config_view(host: &dyn Host) -> ConfigView {
    let l = host.engine().limits();
    ConfigView {
        allow_anonymous: l.allow_anonymous,
        max_inflight_messages: l.max_inflight_messages,
        max_queued_messages: l.max_queued_messages as u64,
        max_queued_bytes: l.max_queued_bytes,
        message_size_limit: l.message_size_limit,
        max_packet_size: l.max_packet_size,
        max_keepalive: l.max_keepalive,
        persistent_client_expiration: l.persistent_client_expiration,
        sys_interval: l.sys_interval,
        retain_available: l.retain_available,
        max_topic_alias: l.max_topic_alias,
        max_qos: l.max_qos as u8,
        global_max_connections: l.global_max_connections,
        connect_timeout: l.connect_timeout,
        max_topic_levels: l.max_topic_levels,
        max_subscriptions: l.max_subscriptions,
        max_queued_memory: l.max_queued_memory,
        max_connection_rate: l.max_connection_rate,
    }
}

fn counters(host: &dyn Host) -> view::Counters {
    let engine = host.engine();
    let counts = engine.counts();
    let stats = engine.stats();
    let (received, sent) = host.pending_traffic();
    view::Counters {
        clients_connected: counts.clients_connected,
        sessions: counts.sessions,
        sessions_offline: counts.sessions_offline,
        subscriptions: counts.subscriptions,
        retained_messages: counts.retained,
        messages_received: stats.messages_received,
        messages_sent: stats.messages_sent,
        publish_received: stats.publish_received,
        publish_sent: stats.publish_sent,
        publish_dropped: stats.publish_dropped,
        bytes_received: stats.traffic.bytes_received + received,
        bytes_sent: stats.traffic.bytes_sent + sent,
    }
}

fn broker(host: &dyn Host) -> view::Broker {
    view::Broker {
        version: VERSION,
        uptime_secs: host.now().0 / 1000,
        listeners: host.listeners().iter().map(listener_json).collect(),
        counters: counters(host),
    }
}

/// The Prometheus text exposition (format 0.0.4).
fn metrics(host: &dyn Host) -> String {
    let c = counters(host);
    let gauges: [(&str, &str, u64); 6] = [
        (
            "clients_connected",
            "Clients connected now.",
            c.clients_connected as u64,
        ),
        ("sessions", "Sessions, connected or not.", c.sessions as u64),
        (
            "sessions_offline",
            "Sessions without a connection.",
            c.sessions_offline as u64,
        ),
        (
            "subscriptions",
            "Subscriptions of every session.",
            c.subscriptions as u64,
        ),
        (
            "retained_messages",
            "Retained messages.",
            c.retained_messages as u64,
        ),
        (
            "uptime_seconds",
            "Seconds since the broker started.",
            host.now().0 / 1000,
        ),
    ];
    let counters: [(&str, &str, u64); 7] = [
        (
            "messages_received_total",
            "MQTT packets received.",
            c.messages_received,
        ),
        ("messages_sent_total", "MQTT packets sent.", c.messages_sent),
        (
            "publish_received_total",
            "PUBLISH packets received.",
            c.publish_received,
        ),
        (
            "publish_sent_total",
            "PUBLISH packets sent.",
            c.publish_sent,
        ),
        (
            "publish_dropped_total",
            "Messages dropped (queue full).",
            c.publish_dropped,
        ),
        ("bytes_received_total", "Bytes received.", c.bytes_received),
        ("bytes_sent_total", "Bytes sent.", c.bytes_sent),
    ];
    let mut out = String::new();
    for (kind, list) in [("gauge", &gauges[..]), ("counter", &counters[..])] {
        for (name, help, value) in list {
            let _ = writeln!(out, "# HELP culex_{name} {help}");
            let _ = writeln!(out, "# TYPE culex_{name} {kind}");
            let _ = writeln!(out, "culex_{name} {value}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP culex_listener_connections Connections open per listener."
    );
    let _ = writeln!(out, "# TYPE culex_listener_connections gauge");
    for l in host.listeners() {
        let _ = writeln!(
            out,
            "culex_listener_connections{{address=\"{}\",port=\"{}\",protocol=\"{}\"}} {}",
            l.address,
            l.port,
            l.protocol.name(),
            l.connections
        );
    }
    out
}
