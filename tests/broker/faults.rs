//! Fault injection over the HTTP API (`/api/v1/faults`): each rule is added over HTTP and
//! its effect checked on the bytes a raw MQTT client receives.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;
use crate::hex;
use crate::http_api::{request, ApiBroker, Response};

const FAULTS: &str = "/api/v1/faults";

fn post_fault(api: &ApiBroker, body: &str) -> Response {
    api.exchange(&request("POST", FAULTS, "", Some(body)))
}

/// Adds a rule and returns it as JSON.
fn add_rule(api: &ApiBroker, body: &str) -> Value {
    let r = post_fault(api, body);
    r.expect("HTTP/1.1 201 Created", None);
    json_of(&r)
}

fn json_of(r: &Response) -> Value {
    serde_json::from_str(&r.body_text()).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

fn list(api: &ApiBroker) -> Value {
    let r = api.exchange(&request("GET", FAULTS, "", None));
    r.expect("HTTP/1.1 200 OK", None);
    json_of(&r)
}

/// A 3.1.1 subscriber of `topic` at `qos`.
fn subscriber(api: &ApiBroker, id: &str, topic: &str, qos: u8) -> RawClient {
    let mut c = api.broker.connected_v311(id);
    c.send(&subscribe(1, topic, qos, false));
    c.expect(&packet(0x90, &[0, 1, qos]));
    c
}

#[test]
fn drop_1_loses_the_next_publish_and_delivers_the_following() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let (sub_id, topic) = (uniq("sub"), format!("{}/drop", uniq("t")));
    let mut sub = subscriber(&api, &sub_id, &topic, 0);
    let rule = add_rule(
        &api,
        &format!(r#"{{"kind":"drop","client_id":"{sub_id}"}}"#),
    );
    assert_eq!(
        rule,
        json!({"id": 1, "kind": "drop", "client_id": sub_id, "listener": null, "count": 1,
            "remaining": 1, "delay_ms": null, "reason_code": null})
    );
    let mut publisher = api.broker.connected_v311(&uniq("pub"));
    publisher.send(&publish(&topic, b"one", 0, 0, false, None));
    publisher.send(&publish(&topic, b"two", 0, 0, false, None));
    sub.expect(&publish(&topic, b"two", 0, 0, false, None));
    sub.expect_silence(SILENCE_MS);
    assert_eq!(list(&api)["total"], 0, "a used-up rule is gone");
    api.broker
        .assert_log_contains("PUBLISH dropped (fault rule 1)");
}

#[test]
fn close_after_2_sends_two_packets_then_closes_without_disconnect() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let (sub_id, topic) = (uniq("sub"), format!("{}/close", uniq("t")));
    let (mut sub, _) = api.broker.connected_v5(&sub_id);
    sub.send(&subscribe(1, &topic, 0, true));
    sub.recv_packet();
    add_rule(
        &api,
        &format!(r#"{{"kind":"close_after","client_id":"{sub_id}","count":2}}"#),
    );
    let mut publisher = api.broker.connected_v311(&uniq("pub"));
    for payload in [&b"1"[..], b"2", b"3"] {
        publisher.send(&publish(&topic, payload, 0, 0, false, None));
    }
    for payload in [&b"1"[..], b"2"] {
        sub.expect(&publish(&topic, payload, 0, 0, false, Some(&[])));
    }
    assert!(
        matches!(sub.recv_within(READ_TIMEOUT), Recv::Closed),
        "closed at once, without DISCONNECT"
    );
    api.broker
        .assert_log_contains("closing without DISCONNECT after PUBLISH");
    // The broker saw a lost connection; others are served as before.
    publisher.ping();
}

#[test]
fn refuse_on_a_listener_closes_the_next_two_connections() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let port = api.broker.addr().port();
    let rule = add_rule(
        &api,
        &format!(r#"{{"kind":"refuse","listener":{port},"count":2}}"#),
    );
    assert_eq!(
        (&rule["listener"], &rule["remaining"]),
        (&json!(port), &json!(2))
    );
    for _ in 0..2 {
        let mut c = api.broker.client();
        c.send_lossy(&connect_v311(&uniq("r"), true, 60));
        c.expect_bare_close();
    }
    api.broker.connected_v311(&uniq("ok")).ping();
    assert_eq!(list(&api)["total"], 0);
    api.broker
        .assert_log_contains("closed at once (fault rule 1)");
}

#[test]
fn refuse_of_a_client_id_closes_its_connect_until_removed() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let id = uniq("refused");
    let rule = add_rule(&api, &format!(r#"{{"kind":"refuse","client_id":"{id}"}}"#));
    assert_eq!(
        (&rule["count"], &rule["remaining"]),
        (&Value::Null, &Value::Null)
    );
    for _ in 0..3 {
        let mut c = api.broker.client();
        c.send(&connect_v311(&id, true, 60));
        c.expect_bare_close();
    }
    // Other clients are not refused.
    api.broker.connected_v311(&uniq("other")).ping();
    assert_eq!(list(&api)["total"], 1);
    api.exchange(&request("DELETE", "/api/v1/faults/1", "", None))
        .expect("HTTP/1.1 204 No Content", None);
    api.broker.connected_v311(&id).ping();
}

#[test]
fn reason_0x97_answers_the_next_publish_and_it_is_not_delivered() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let (pub_id, topic) = (uniq("pub"), format!("{}/reason", uniq("t")));
    let mut sub = subscriber(&api, &uniq("sub"), &topic, 1);
    let (mut publisher, _) = api.broker.connected_v5(&pub_id);
    let rule = add_rule(
        &api,
        &format!(r#"{{"kind":"reason","client_id":"{pub_id}","reason_code":151}}"#),
    );
    assert_eq!(rule["reason_code"], 151);
    // QoS 0 is not answered and does not use the rule.
    publisher.send(&publish(&topic, b"q0", 0, 0, false, Some(&[])));
    expect_publish(&mut sub, &topic, b"q0", 0, false);
    publisher.send(&publish(&topic, b"refused", 1, 7, false, Some(&[])));
    publisher.expect(&hex!("40 03 00 07 97"));
    publisher.send(&publish(&topic, b"accepted", 1, 8, false, Some(&[])));
    publisher.expect(&hex!("40 02 00 08"));
    let got = expect_publish(&mut sub, &topic, b"accepted", 1, false);
    sub.send(&puback(got.pid));
    sub.expect_silence(SILENCE_MS);
}

#[test]
fn reason_error_closes_a_311_publisher_and_success_codes_keep_it() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let (pub_id, topic) = (uniq("pub"), format!("{}/r311", uniq("t")));
    let mut publisher = api.broker.connected_v311(&pub_id);
    add_rule(
        &api,
        &format!(r#"{{"kind":"reason","client_id":"{pub_id}","reason_code":16}}"#),
    );
    // 3.1.1 has no reason codes: a success code is a plain PUBACK.
    publisher.send(&publish(&topic, b"a", 1, 1, false, None));
    publisher.expect(&puback(1));
    add_rule(
        &api,
        &format!(r#"{{"kind":"reason","client_id":"{pub_id}","reason_code":128}}"#),
    );
    publisher.send(&publish(&topic, b"b", 1, 2, false, None));
    publisher.expect_bare_close();
}

#[test]
fn duplicate_sends_a_qos1_publish_twice_the_copy_with_dup() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let (sub_id, topic) = (uniq("sub"), format!("{}/dup", uniq("t")));
    let mut sub = subscriber(&api, &sub_id, &topic, 1);
    add_rule(
        &api,
        &format!(r#"{{"kind":"duplicate","client_id":"{sub_id}"}}"#),
    );
    let mut publisher = api.broker.connected_v311(&uniq("pub"));
    publisher.send(&publish(&topic, b"twice", 1, 3, false, None));
    publisher.expect(&puback(3));
    let first = sub.recv_packet();
    let pid = parse_publish(&first, false).pid;
    assert_eq!(
        first,
        publish_raw(topic.as_bytes(), b"twice", 1, pid, false, false, None)
    );
    sub.expect(&publish_raw(
        topic.as_bytes(),
        b"twice",
        1,
        pid,
        false,
        true,
        None,
    ));
    sub.send(&puback(pid));
    sub.expect_silence(SILENCE_MS);
}

#[test]
fn delay_holds_packets_and_keeps_their_order() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let (sub_id, topic) = (uniq("sub"), format!("{}/delay", uniq("t")));
    let mut sub = subscriber(&api, &sub_id, &topic, 0);
    add_rule(
        &api,
        &format!(r#"{{"kind":"delay","client_id":"{sub_id}","delay_ms":400}}"#),
    );
    let mut publisher = api.broker.connected_v311(&uniq("pub"));
    let start = Instant::now();
    publisher.send(&publish(&topic, b"first", 0, 0, false, None));
    publisher.send(&publish(&topic, b"second", 0, 0, false, None));
    // Only the first is delayed, but the second waits behind it. The broker counts the delay
    // from its clock reading of the loop turn that took the PUBLISH, which may precede `start`
    // by that turn's length: a few milliseconds are allowed for it.
    sub.expect(&publish(&topic, b"first", 0, 0, false, None));
    assert!(
        start.elapsed() >= Duration::from_millis(380),
        "arrived after {:?}",
        start.elapsed()
    );
    sub.expect(&publish(&topic, b"second", 0, 0, false, None));
    // Once the rule is used up, packets go at once.
    publisher.send(&publish(&topic, b"third", 0, 0, false, None));
    let start = Instant::now();
    sub.expect(&publish(&topic, b"third", 0, 0, false, None));
    assert!(start.elapsed() < Duration::from_millis(400));
}

#[test]
fn takeover_sends_disconnect_0x8e_and_keeps_the_session() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let id = uniq("taken");
    let mut c = api.broker.client();
    // Session Expiry Interval 300 s.
    c.send(&connect_v5(&id, true, 60, &hex!("11 00 00 01 2c")));
    c.recv_packet();
    let body = format!(r#"{{"kind":"takeover","client_id":"{id}"}}"#);
    post_fault(&api, &body).expect("HTTP/1.1 204 No Content", None);
    c.expect_disconnect(0x8e);
    api.exchange(&request("GET", &format!("/api/v1/sessions/{id}"), "", None))
        .expect("HTTP/1.1 200 OK", None);
    assert_eq!(list(&api)["total"], 0, "a takeover is no rule");
    let mut v311 = api.broker.connected_v311(&id);
    post_fault(&api, &body).expect("HTTP/1.1 204 No Content", None);
    v311.expect_bare_close();
    let r = post_fault(&api, &body);
    r.expect("HTTP/1.1 404 Not Found", Some("not_found"));
    assert!(r.body_text().contains("no connected client"), "{r:?}");
}

#[test]
fn bad_requests_name_the_field_and_unknown_ids_are_404() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let r = post_fault(&api, r#"{"kind":"foo","client_id":"c"}"#);
    r.expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    assert_eq!(
        json_of(&r)["detail"],
        "kind: unknown fault kind \"foo\"; known: drop, delay, duplicate, close_after, \
         refuse, reason, takeover"
    );
    let r = post_fault(&api, r#"{"kind":"reason","client_id":"c","reason_code":4}"#);
    r.expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    assert!(
        r.body_text()
            .contains("reason_code: 4 is not a PUBACK reason code"),
        "{r:?}"
    );
    let r = post_fault(&api, r#"{"kind":"drop","client_id":"c","count":0}"#);
    r.expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    assert!(r.body_text().contains("count: expected a number from 1"));
    let r = post_fault(
        &api,
        r#"{"kind":"delay","client_id":"c","delay_ms":999999}"#,
    );
    r.expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    assert!(r.body_text().contains("delay_ms: "));
    post_fault(&api, r#"{"kind":"drop"}"#).expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    api.exchange(&request("DELETE", "/api/v1/faults/99", "", None))
        .expect("HTTP/1.1 404 Not Found", Some("not_found"));
    assert_eq!(list(&api)["total"], 0);
}

#[test]
fn rules_are_listed_oldest_first_and_removed_by_id() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let port = api.broker.addr().port();
    add_rule(&api, r#"{"kind":"drop","client_id":"a","count":5}"#);
    add_rule(
        &api,
        &format!(r#"{{"kind":"delay","listener":{port},"delay_ms":50,"count":2}}"#),
    );
    add_rule(
        &api,
        r#"{"kind":"reason","client_id":"b","reason_code":135}"#,
    );
    let page = list(&api);
    assert_eq!(
        page,
        json!({"total": 3, "offset": 0, "limit": 100, "items": [
            {"id": 1, "kind": "drop", "client_id": "a", "listener": null, "count": 5,
             "remaining": 5, "delay_ms": null, "reason_code": null},
            {"id": 2, "kind": "delay", "client_id": null, "listener": port, "count": 2,
             "remaining": 2, "delay_ms": 50, "reason_code": null},
            {"id": 3, "kind": "reason", "client_id": "b", "listener": null, "count": 1,
             "remaining": 1, "delay_ms": null, "reason_code": 135}]})
    );
    api.exchange(&request("DELETE", "/api/v1/faults/2", "", None))
        .expect("HTTP/1.1 204 No Content", None);
    let ids: Vec<Value> = list(&api)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(3)]);
    api.exchange(&request("DELETE", "/api/v1/faults/2", "", None))
        .expect("HTTP/1.1 404 Not Found", Some("not_found"));
}
