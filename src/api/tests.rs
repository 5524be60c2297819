//! The API's routing, checks and answers against an engine with no reactor behind it.

use super::*;
use crate::codec::http::{parse_request, ParseLimits, Parsed};
use crate::config::ListenerProtocol;
use crate::rng::Rng;

struct FakeHost {
    engine: Engine,
    listeners: Vec<ListenerInfo>,
    commands: Vec<String>,
}

impl FakeHost {
    fn new() -> Self {
        Self {
            engine: Engine::new(Limits::default(), Rng::new(1)),
            listeners: vec![ListenerInfo {
                id: ListenerId(0),
                port: 1883,
                address: "127.0.0.1".into(),
                protocol: ListenerProtocol::Mqtt,
                tls: false,
                connections: 0,
                max_connections: None,
                mount_point: None,
            }],
            commands: Vec::new(),
        }
    }
}

impl Host for FakeHost {
    fn engine(&self) -> &Engine {
        &self.engine
    }
    fn now(&self) -> Millis {
        Millis(5_000)
    }
    fn pending_traffic(&self) -> (u64, u64) {
        (0, 0)
    }
    fn listeners(&self) -> Vec<ListenerInfo> {
        self.listeners.clone()
    }
    fn open_listener(&mut self, config: ListenerConfig) -> Result<ListenerInfo, HostError> {
        if self.listeners.iter().any(|l| l.port == config.port) {
            return Err(HostError::Conflict("port in use".into()));
        }
        let info = ListenerInfo {
            id: ListenerId(self.listeners.len() as u32),
            port: config.port,
            address: config.bind_address.unwrap_or_default(),
            protocol: config.protocol,
            tls: config.tls.is_some(),
            connections: 0,
            max_connections: config.max_connections,
            mount_point: config.mount_point,
        };
        self.listeners.push(info.clone());
        Ok(info)
    }
    fn close_listener(&mut self, port: u16) -> Result<(), HostError> {
        let before = self.listeners.len();
        self.listeners.retain(|l| l.port != port);
        if before == self.listeners.len() {
            return Err(HostError::NotFound("none".into()));
        }
        Ok(())
    }
    fn set_limits(&mut self, limits: Limits) {
        self.engine.set_limits(Millis(5_000), limits);
    }
    fn clock(&self) -> ClockInfo {
        ClockInfo {
            deterministic: false,
            now_ms: 5_000,
            wall_ms: 5_000,
        }
    }
    fn advance_clock(&mut self, _ms: u64) -> Result<ClockInfo, HostError> {
        Err(HostError::Conflict("system clock".into()))
    }
    fn bridges(&self) -> Vec<BridgeInfo> {
        Vec::new()
    }
    fn add_bridge(
        &mut self,
        config: crate::config::bridge::BridgeConfig,
    ) -> Result<BridgeInfo, HostError> {
        Err(HostError::Conflict(format!(
            "no bridges here: {}",
            config.name
        )))
    }
    fn remove_bridge(&mut self, name: &str, _keep_queue: bool) -> Result<(), HostError> {
        Err(HostError::NotFound(format!("no bridge {name}")))
    }
    fn add_fault(&mut self, spec: crate::fault::Spec) -> Result<crate::fault::Rule, HostError> {
        self.engine
            .add_fault(spec)
            .map_err(|full| HostError::Conflict(full.to_string()))
    }
    fn remove_fault(&mut self, id: crate::fault::FaultId) -> bool {
        self.engine.remove_fault(id).is_some()
    }
    fn command(&mut self, command: Command) -> bool {
        self.commands.push(format!("{command:?}"));
        match command {
            Command::Publish(m) => {
                self.engine.admin_publish(Millis(5_000), *m);
                true
            }
            Command::ClearRetained(t) => self.engine.admin_clear_retained(Millis(5_000), &t),
            Command::Disconnect { client_id, reason } => {
                self.engine
                    .admin_disconnect(Millis(5_000), &client_id, reason)
            }
            Command::EndSession(id) => self.engine.admin_end_session(Millis(5_000), &id),
        }
    }
}

fn request(text: &str) -> Request {
    match parse_request(text.as_bytes(), ParseLimits::default()) {
        Ok(Parsed::Complete { request, .. }) => request,
        other => panic!("not a whole request: {other:?}"),
    }
}

fn call(host: &mut FakeHost, token: Option<&str>, text: &str) -> (u16, serde_json::Value) {
    let origin = Origin { token, port: 8080 };
    let r = handle(host, origin, &request(text));
    let json = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, json)
}

fn get(host: &mut FakeHost, path: &str) -> (u16, serde_json::Value) {
    call(
        host,
        None,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
    )
}

fn post(host: &mut FakeHost, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    call(host, Some("t0k"), &text)
}

#[test]
fn openapi_is_valid_json_and_names_every_route() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, ops) in paths {
        let concrete = path.replace("{client_id}", "c1").replace("{port}", "1884");
        let methods = allowed(&concrete).unwrap_or_else(|| panic!("{path} is not routed"));
        let methods_only = ops.as_object().expect("operations").keys().filter(|k| {
            ["get", "put", "post", "delete", "head", "patch", "options"].contains(&k.as_str())
        });
        for method in methods_only {
            let m = method.to_ascii_uppercase();
            assert!(methods.contains(&m.as_str()), "{m} {path} is not routed");
        }
    }
    for route in [
        "/api/v1/broker",
        "/api/v1/clients",
        "/api/v1/sessions",
        "/api/v1/subscriptions",
        "/api/v1/retained",
        "/api/v1/listeners",
        "/api/v1/config",
        "/api/v1/metrics",
        "/api/v1/publish",
        "/api/v1/faults",
        "/api/v1/faults/{id}",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
}

#[test]
fn broker_summary_and_counters() {
    let mut h = FakeHost::new();
    let (status, body) = get(&mut h, "/api/v1/broker");
    assert_eq!(status, 200);
    assert_eq!(body["version"], VERSION);
    assert_eq!(body["uptime_secs"], 5);
    assert_eq!(body["listeners"][0]["port"], 1883);
    assert_eq!(body["counters"]["clients_connected"], 0);
}

#[test]
fn unknown_path_method_and_query() {
    let mut h = FakeHost::new();
    assert_eq!(get(&mut h, "/nope").0, 404);
    assert_eq!(get(&mut h, "/api/v1/clients/").0, 404);
    let (status, body) = get(&mut h, "/api/v1/broker?x=1");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    let r = handle(
        &mut h,
        Origin {
            token: None,
            port: 8080,
        },
        &request("POST /api/v1/broker HTTP/1.1\r\n\r\n"),
    );
    assert_eq!(r.status, 405);
    assert!(r.headers.contains(&("Allow", "GET, HEAD".to_owned())));
    assert_eq!(get(&mut h, "/api/v1/clients?limit=0").0, 400);
    assert_eq!(get(&mut h, "/api/v1/clients?limit=1001").0, 400);
    assert_eq!(get(&mut h, "/api/v1/clients?offset=-1").0, 400);
    assert_eq!(get(&mut h, "/api/v1/clients?limit=5&limit=6").0, 400);
    assert_eq!(get(&mut h, "/api/v1/retained?filter=a/%23/b").0, 400);
}

#[test]
fn token_rules() {
    let mut h = FakeHost::new();
    let plain = "GET /api/v1/broker HTTP/1.1\r\n\r\n";
    let origin = |token| Origin { token, port: 8080 };
    let r = handle(&mut h, origin(Some("s3")), &request(plain));
    assert_eq!(r.status, 401);
    assert!(r
        .headers
        .contains(&("WWW-Authenticate", "Bearer realm=\"culex\"".to_owned())));
    let wrong = "GET /api/v1/broker HTTP/1.1\r\nAuthorization: Bearer s4\r\n\r\n";
    let r = handle(&mut h, origin(Some("s3")), &request(wrong));
    assert_eq!(r.status, 401);
    let right = "GET /api/v1/broker HTTP/1.1\r\nAuthorization: bearer s3\r\n\r\n";
    assert_eq!(
        handle(&mut h, origin(Some("s3")), &request(right)).status,
        200
    );
    let doc = "GET /api/v1/openapi.json HTTP/1.1\r\n\r\n";
    assert_eq!(
        handle(&mut h, origin(Some("s3")), &request(doc)).status,
        200
    );
    // Without a token the API is read-only.
    let del = "DELETE /api/v1/retained?topic=a HTTP/1.1\r\n\r\n";
    assert_eq!(handle(&mut h, origin(None), &request(del)).status, 403);
    assert!(same(b"abc", b"abc"));
    assert!(!same(b"abc", b"abd"));
    assert!(!same(b"abc", b"abcd"));
    assert!(!same(b"", b"a"));
}

#[test]
fn publish_retain_list_and_clear() {
    let mut h = FakeHost::new();
    let body = r#"{"topic":"a/b","payload":"aGk=","payload_encoding":"base64","qos":1,
        "retain":true,"properties":{"content_type":"text/plain",
        "user_properties":[{"name":"k","value":"v"}]}}"#;
    let (status, result) = post(&mut h, "POST", "/api/v1/publish", body);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["payload_size"], 2);
    let (status, page) = get(&mut h, "/api/v1/retained?filter=a/%2B");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1);
    let item = &page["items"][0];
    assert_eq!(item["payload"], "hi");
    assert_eq!(item["payload_encoding"], "text");
    assert_eq!(item["properties"]["content_type"], "text/plain");
    assert_eq!(item["properties"]["user_properties"][0]["value"], "v");
    assert_eq!(get(&mut h, "/api/v1/retained?filter=x/%23").1["total"], 0);
    let del = "/api/v1/retained?topic=a/b";
    assert_eq!(post(&mut h, "DELETE", del, "").0, 204);
    assert_eq!(post(&mut h, "DELETE", del, "").0, 404);
    assert_eq!(
        post(&mut h, "DELETE", "/api/v1/retained?topic=a/%23", "").0,
        400
    );
}

#[test]
fn bodies_are_checked() {
    let mut h = FakeHost::new();
    let text = "POST /api/v1/publish HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\
                Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(call(&mut h, Some("t0k"), text).0, 415);
    assert_eq!(post(&mut h, "POST", "/api/v1/publish", "{").0, 400);
    assert_eq!(
        post(&mut h, "POST", "/api/v1/publish", r#"{"topic":"a","x":1}"#).0,
        400
    );
    assert_eq!(
        post(&mut h, "POST", "/api/v1/publish", r#"{"topic":"a/+"}"#).0,
        400
    );
    assert_eq!(
        post(
            &mut h,
            "POST",
            "/api/v1/publish",
            r#"{"topic":"a","qos":3}"#
        )
        .0,
        400
    );
    let bad64 = r#"{"topic":"a","payload":"!","payload_encoding":"base64"}"#;
    assert_eq!(post(&mut h, "POST", "/api/v1/publish", bad64).0, 400);
    assert_eq!(
        post(&mut h, "PUT", "/api/v1/config", r#"{"nope":1}"#).0,
        400
    );
    assert_eq!(
        post(&mut h, "PUT", "/api/v1/config", r#"{"max_packet_size":5}"#).0,
        400
    );
    assert_eq!(
        post(
            &mut h,
            "PUT",
            "/api/v1/config",
            r#"{"max_keepalive":70000}"#
        )
        .0,
        400
    );
}

#[test]
fn config_patch_changes_only_what_is_given() {
    let mut h = FakeHost::new();
    let (status, c) = post(
        &mut h,
        "PUT",
        "/api/v1/config",
        r#"{"max_inflight_messages":2,"persistent_client_expiration":60}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(c["max_inflight_messages"], 2);
    assert_eq!(c["persistent_client_expiration"], 60);
    assert_eq!(c["max_queued_messages"], 1000);
    assert_eq!(h.engine.limits().max_inflight_messages, 2);
    let (_, c) = post(
        &mut h,
        "PUT",
        "/api/v1/config",
        r#"{"persistent_client_expiration":null}"#,
    );
    assert_eq!(c["persistent_client_expiration"], serde_json::Value::Null);
    assert_eq!(c["max_inflight_messages"], 2);
}

#[test]
fn config_patch_sets_the_broker_wide_bounds() {
    let mut h = FakeHost::new();
    let (status, c) = get(&mut h, "/api/v1/config");
    assert_eq!(status, 200);
    assert_eq!(c["global_max_connections"], serde_json::Value::Null);
    assert_eq!(c["connect_timeout"], 10);
    assert_eq!(c["max_topic_levels"], 128);
    assert_eq!(c["max_subscriptions"], 10_000);
    assert_eq!(c["max_queued_memory"], 268_435_456);
    assert_eq!(c["max_connection_rate"], 0);
    let body = r#"{"global_max_connections":100,"connect_timeout":2,"max_topic_levels":8,
        "max_subscriptions":5,"max_queued_memory":0,"max_connection_rate":50}"#;
    let (status, c) = post(&mut h, "PUT", "/api/v1/config", body);
    assert_eq!(status, 200, "{c}");
    let l = h.engine.limits().clone();
    assert_eq!(l.global_max_connections, Some(100));
    assert_eq!(
        (l.connect_timeout, l.max_topic_levels, l.max_subscriptions),
        (2, 8, 5)
    );
    assert_eq!((l.max_queued_memory, l.max_connection_rate), (0, 50));
    let (_, c) = post(
        &mut h,
        "PUT",
        "/api/v1/config",
        r#"{"global_max_connections":null}"#,
    );
    assert_eq!(c["global_max_connections"], serde_json::Value::Null);
    assert_eq!(c["connect_timeout"], 2);
    for bad in [
        r#"{"connect_timeout":0}"#,
        r#"{"connect_timeout":3601}"#,
        r#"{"max_topic_levels":65537}"#,
        r#"{"max_subscriptions":-1}"#,
    ] {
        assert_eq!(post(&mut h, "PUT", "/api/v1/config", bad).0, 400, "{bad}");
    }
    assert_eq!(h.engine.limits().connect_timeout, 2);
}

#[test]
fn api_listeners_opened_at_run_time_are_bounded_by_default() {
    let mut h = FakeHost::new();
    let body = r#"{"port":1991,"protocol":"http"}"#;
    let (status, l) = post(&mut h, "POST", "/api/v1/listeners", body);
    assert_eq!(status, 201, "{l}");
    assert_eq!(l["max_connections"], 64);
    let body = r#"{"port":1992,"protocol":"http","max_connections":3}"#;
    assert_eq!(
        post(&mut h, "POST", "/api/v1/listeners", body).1["max_connections"],
        3
    );
    let mqtt = post(&mut h, "POST", "/api/v1/listeners", r#"{"port":1993}"#).1;
    assert_eq!(mqtt["max_connections"], serde_json::Value::Null);
}

#[test]
fn listeners_open_and_close() {
    let mut h = FakeHost::new();
    let (status, l) = post(&mut h, "POST", "/api/v1/listeners", r#"{"port":1990}"#);
    assert_eq!(status, 201, "{l}");
    assert_eq!(
        (l["address"].as_str(), l["protocol"].as_str()),
        (Some("127.0.0.1"), Some("mqtt"))
    );
    assert_eq!(
        post(&mut h, "POST", "/api/v1/listeners", r#"{"port":1990}"#).0,
        409
    );
    let bad = [
        r#"{"port":1991,"protocol":"mqttsn"}"#,
        r#"{"port":1991,"certfile":"c"}"#,
        r#"{"port":1991,"protocol":"http","mount_point":"x/"}"#,
        r#"{"port":1991,"http_token_file":"t"}"#,
        r#"{"port":70000}"#,
    ];
    for body in bad {
        assert_eq!(
            post(&mut h, "POST", "/api/v1/listeners", body).0,
            400,
            "{body}"
        );
    }
    assert_eq!(get(&mut h, "/api/v1/listeners").1["total"], 2);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/listeners/8080", "").0, 409);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/listeners/1990", "").0, 204);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/listeners/1990", "").0, 404);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/listeners/x", "").0, 400);
}

#[test]
fn disconnect_reason_codes() {
    let mut h = FakeHost::new();
    assert_eq!(post(&mut h, "DELETE", "/api/v1/clients/c1", "").0, 404);
    assert_eq!(
        post(&mut h, "DELETE", "/api/v1/clients/c1?reason_code=4", "").0,
        400
    );
    assert_eq!(
        post(&mut h, "DELETE", "/api/v1/clients/c1?reason_code=2", "").0,
        400
    );
    assert_eq!(
        post(&mut h, "DELETE", "/api/v1/clients/c1?reason_code=137", "").0,
        404
    );
    assert_eq!(post(&mut h, "DELETE", "/api/v1/sessions/c1", "").0, 404);
}

#[test]
fn metrics_are_prometheus_text() {
    let mut h = FakeHost::new();
    let r = handle(
        &mut h,
        Origin {
            token: None,
            port: 8080,
        },
        &request("GET /api/v1/metrics HTTP/1.1\r\n\r\n"),
    );
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("utf-8");
    assert!(text.contains("# TYPE culex_clients_connected gauge\nculex_clients_connected 0\n"));
    assert!(text.contains("culex_uptime_seconds 5\n"));
    assert!(text.contains(
        "culex_listener_connections{address=\"127.0.0.1\",port=\"1883\",protocol=\"mqtt\"} 0\n"
    ));
}

#[test]
fn faults_are_added_listed_and_removed() {
    let mut h = FakeHost::new();
    let (status, empty) = get(&mut h, "/api/v1/faults");
    assert_eq!((status, &empty["total"]), (200, &serde_json::json!(0)));
    let (status, rule) = post(
        &mut h,
        "POST",
        "/api/v1/faults",
        r#"{"kind":"drop","client_id":"c1","count":2}"#,
    );
    assert_eq!(status, 201, "{rule}");
    assert_eq!(
        rule,
        serde_json::json!({"id": 1, "kind": "drop", "client_id": "c1", "listener": null,
            "count": 2, "remaining": 2, "delay_ms": null, "reason_code": null})
    );
    let (status, rule) = post(
        &mut h,
        "POST",
        "/api/v1/faults",
        r#"{"kind":"refuse","listener":1883}"#,
    );
    assert_eq!(status, 201, "{rule}");
    assert_eq!(
        (&rule["listener"], &rule["count"], &rule["remaining"]),
        (
            &serde_json::json!(1883),
            &serde_json::Value::Null,
            &serde_json::Value::Null
        )
    );
    let body = r#"{"kind":"reason","client_id":"c1","reason_code":151}"#;
    assert_eq!(
        post(&mut h, "POST", "/api/v1/faults", body).1["reason_code"],
        151
    );
    let body = r#"{"kind":"delay","client_id":"c1","delay_ms":250,"count":3}"#;
    assert_eq!(
        post(&mut h, "POST", "/api/v1/faults", body).1["delay_ms"],
        250
    );
    let (_, page) = get(&mut h, "/api/v1/faults?limit=2&offset=1");
    assert_eq!(
        (&page["total"], &page["items"][0]["id"]),
        (&4.into(), &2.into())
    );
    assert_eq!(page["items"][1]["kind"], "reason");
    assert_eq!(post(&mut h, "DELETE", "/api/v1/faults/2", "").0, 204);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/faults/2", "").0, 404);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/faults/x", "").0, 400);
    assert_eq!(post(&mut h, "DELETE", "/api/v1/faults/1?a=b", "").0, 400);
    assert_eq!(get(&mut h, "/api/v1/faults").1["total"], 3);
    assert_eq!(get(&mut h, "/api/v1/faults/1").0, 405);
    assert_eq!(h.engine.faults().rules().len(), 3);
}

#[test]
fn fault_requests_name_the_field_at_fault() {
    let mut h = FakeHost::new();
    let cases = [
        (
            r#"{"kind":"foo","client_id":"c1"}"#,
            "kind: unknown fault kind \"foo\"; known: drop, delay, duplicate, close_after, \
             refuse, reason, takeover",
        ),
        (r#"{"client_id":"c1"}"#, "kind: missing"),
        (r#"{"kind":1,"client_id":"c1"}"#, "kind: expected a string"),
        (
            r#"{"kind":"drop"}"#,
            "client_id or listener: one of them is required",
        ),
        (
            r#"{"kind":"drop","client_id":"c1","listener":1883}"#,
            "client_id and listener: give one of them, not both",
        ),
        (
            r#"{"kind":"drop","client_id":""}"#,
            "client_id: must not be empty",
        ),
        (
            r#"{"kind":"drop","client_id":"c1","count":0}"#,
            "count: expected a number from 1 to 1000000, got 0",
        ),
        (
            r#"{"kind":"drop","client_id":"c1","count":-1}"#,
            "count: expected a whole number, got -1",
        ),
        (
            r#"{"kind":"delay","client_id":"c1","delay_ms":600001}"#,
            "delay_ms: expected a number from 1 to 600000, got 600001",
        ),
        (
            r#"{"kind":"reason","client_id":"c1","reason_code":2}"#,
            "reason_code: 2 is not a PUBACK reason code; valid: 0, 16, 128, 131, 135, 144, \
             145, 151, 153",
        ),
        (
            r#"{"kind":"drop","listener":1884}"#,
            "listener: no listener on port 1884",
        ),
        (
            r#"{"kind":"drop","listener":70000}"#,
            "listener: expected a port number from 1 to 65535, got 70000",
        ),
        (
            r#"{"kind":"drop","client_id":"c1","x":1}"#,
            "unknown field \"x\"; known: kind, client_id, listener, count, delay_ms, \
             reason_code",
        ),
    ];
    for (body, detail) in cases {
        let (status, error) = post(&mut h, "POST", "/api/v1/faults", body);
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"], "bad_request");
        assert_eq!(error["detail"], detail, "{body}");
    }
    assert_eq!(post(&mut h, "POST", "/api/v1/faults", "[1]").0, 400);
    assert!(h.engine.faults().is_empty());
    for _ in 0..crate::fault::RULES_MAX {
        let body = r#"{"kind":"refuse","client_id":"c1"}"#;
        assert_eq!(post(&mut h, "POST", "/api/v1/faults", body).0, 201);
    }
    let (status, error) = post(
        &mut h,
        "POST",
        "/api/v1/faults",
        r#"{"kind":"drop","client_id":"c2"}"#,
    );
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        error["detail"],
        "1024 fault rules exist already: remove one first"
    );
}

#[test]
fn takeover_disconnects_a_connected_client_at_once() {
    use crate::codec::mqtt::{Connect, Packet, ProtocolVersion};
    use crate::engine::event::{ConnId, Input};
    let mut h = FakeHost::new();
    let body = r#"{"kind":"takeover","client_id":"c1"}"#;
    let (status, error) = post(&mut h, "POST", "/api/v1/faults", body);
    assert_eq!(
        (status, error["detail"].as_str()),
        (404, Some("no connected client \"c1\""))
    );
    let conn = ConnId(1);
    h.engine.handle(
        Millis(5_000),
        Input::Opened {
            conn,
            listener: ListenerId(0),
            peer: "127.0.0.1:5".into(),
        },
    );
    let connect = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 0,
        properties: crate::codec::mqtt::Props::none(),
        client_id: "c1".to_owned(),
        will: None,
        username: None,
        password: None,
        bridge: false,
    };
    let packet = Packet::Connect(Box::new(connect));
    h.engine
        .handle(Millis(5_000), Input::Packet { conn, packet });
    while h.engine.poll_action().is_some() {}
    let (status, _) = post(&mut h, "POST", "/api/v1/faults", body);
    assert_eq!(status, 204);
    assert!(
        h.commands.iter().any(|c| c.contains("SessionTakenOver")),
        "{:?}",
        h.commands
    );
    assert!(h.engine.client("c1").is_none());
    assert!(h.engine.faults().is_empty(), "a takeover is no rule");
    let bad = r#"{"kind":"takeover","listener":1883}"#;
    assert_eq!(post(&mut h, "POST", "/api/v1/faults", bad).0, 400);
}
