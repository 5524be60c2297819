//! One test per MQTT-SN flow of the gateway, each with the MQTT side observed.

use super::*;

const C: u16 = 5000;

#[test]
fn register_and_publish_at_each_qos_reaches_mqtt() {
    let mut h = Harness::new();
    h.mqtt_subscribe("sn/#", QoS::ExactlyOnce);
    h.connect(C, "sensor", true, 60);
    let id = h.register(C, "sn/temp", 1);
    assert_ne!(id, 0);

    h.send(
        C,
        &Message::Publish {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Normal),
            topic_id: id,
            msg_id: 0,
            data: b"q0",
        },
    );
    h.expect(C, &[]);
    h.send(
        C,
        &Message::Publish {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            topic_id: id,
            msg_id: 2,
            data: b"q1",
        },
    );
    h.expect(
        C,
        &[Message::PubAck {
            topic_id: id,
            msg_id: 2,
            code: ReturnCode::Accepted,
        }],
    );
    h.send(
        C,
        &Message::Publish {
            flags: qos_flags(SnQos::ExactlyOnce, TopicIdType::Normal),
            topic_id: id,
            msg_id: 3,
            data: b"q2",
        },
    );
    h.expect(C, &[Message::PubRec { msg_id: 3 }]);
    h.send(C, &Message::PubRel { msg_id: 3 });
    h.expect(C, &[Message::PubComp { msg_id: 3 }]);
    let got = h.mqtt_received();
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["sn/temp"; 3]);
    let payloads: Vec<&[u8]> = got.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(payloads, [&b"q0"[..], b"q1", b"q2"]);
}

#[test]
fn publish_to_an_unknown_topic_id_is_refused() {
    let mut h = Harness::new();
    h.connect(C, "sensor", true, 60);
    h.send(
        C,
        &Message::Publish {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            topic_id: 77,
            msg_id: 4,
            data: b"x",
        },
    );
    h.expect(
        C,
        &[Message::PubAck {
            topic_id: 77,
            msg_id: 4,
            code: ReturnCode::InvalidTopicId,
        }],
    );
    assert!(h.mqtt_received().is_empty());
}

#[test]
fn subscribe_by_name_gets_the_topic_id_and_messages_use_it() {
    let mut h = Harness::new();
    h.connect(C, "sub", true, 60);
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            msg_id: 1,
            topic: sn::SubTopic::Name(b"room/1"),
        },
    );
    h.expect(
        C,
        &[Message::SubAck {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            topic_id: 1,
            msg_id: 1,
            code: ReturnCode::Accepted,
        }],
    );
    h.mqtt_publish("room/1", b"hello", QoS::AtLeastOnce, false);
    let got = h.take(C);
    assert_eq!(got.len(), 1);
    let Ok(sn::Frame::Message(Message::Publish {
        flags,
        topic_id: 1,
        msg_id,
        data: b"hello",
    })) = sn::decode(&got[0])
    else {
        panic!("no PUBLISH: {:?}", sn::decode(&got[0]));
    };
    assert_eq!(flags.qos, SnQos::AtLeastOnce);
    h.send(
        C,
        &Message::PubAck {
            topic_id: 1,
            msg_id,
            code: ReturnCode::Accepted,
        },
    );
    // Acknowledged: nothing is sent again.
    h.advance(10_000);
    h.expect(C, &[]);
}

#[test]
fn wildcard_subscription_leads_to_gateway_register() {
    let mut h = Harness::new();
    h.connect(C, "wild", true, 60);
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Normal),
            msg_id: 1,
            topic: sn::SubTopic::Name(b"a/+"),
        },
    );
    h.expect(
        C,
        &[Message::SubAck {
            flags: Flags::default(),
            topic_id: 0,
            msg_id: 1,
            code: ReturnCode::Accepted,
        }],
    );
    h.mqtt_publish("a/b", b"one", QoS::AtMostOnce, false);
    let got = h.take(C);
    let Ok(sn::Frame::Message(Message::Register {
        topic_id,
        msg_id,
        topic_name: b"a/b",
    })) = sn::decode(&got[0])
    else {
        panic!("no REGISTER: {got:02x?}");
    };
    assert_eq!(got.len(), 1, "the PUBLISH waits for the REGACK");
    h.send(
        C,
        &Message::RegAck {
            topic_id,
            msg_id,
            code: ReturnCode::Accepted,
        },
    );
    h.expect(
        C,
        &[Message::Publish {
            flags: Flags::default(),
            topic_id,
            msg_id: 0,
            data: b"one",
        }],
    );
    // The next message on the topic needs no REGISTER.
    h.mqtt_publish("a/b", b"two", QoS::AtMostOnce, false);
    h.expect(
        C,
        &[Message::Publish {
            flags: Flags::default(),
            topic_id,
            msg_id: 0,
            data: b"two",
        }],
    );
}

#[test]
fn retained_message_is_delivered_on_subscribe() {
    let mut h = Harness::new();
    h.mqtt_publish("state/door", b"open", QoS::AtMostOnce, true);
    h.connect(C, "late", true, 60);
    h.send(
        C,
        &Message::Subscribe {
            flags: Flags::default(),
            msg_id: 3,
            topic: sn::SubTopic::Name(b"state/door"),
        },
    );
    let retained = Flags {
        retain: true,
        ..Flags::default()
    };
    h.expect(
        C,
        &[
            Message::SubAck {
                flags: Flags::default(),
                topic_id: 1,
                msg_id: 3,
                code: ReturnCode::Accepted,
            },
            Message::Publish {
                flags: retained,
                topic_id: 1,
                msg_id: 0,
                data: b"open",
            },
        ],
    );
}

#[test]
fn predefined_and_short_topics_both_ways() {
    let mut h = Harness::new();
    h.mqtt_subscribe("#", QoS::AtMostOnce);
    h.connect(C, "pre", true, 60);
    h.send(
        C,
        &Message::Publish {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Predefined),
            topic_id: 5,
            msg_id: 0,
            data: b"p",
        },
    );
    h.send(
        C,
        &Message::Publish {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Short),
            topic_id: u16::from_be_bytes(*b"ab"),
            msg_id: 0,
            data: b"s",
        },
    );
    let got = h.mqtt_received();
    assert_eq!(
        got,
        vec![
            ("pre/defined".to_owned(), owned(b"p")),
            ("ab".to_owned(), owned(b"s"))
        ]
    );
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Predefined),
            msg_id: 4,
            topic: sn::SubTopic::Predefined(5),
        },
    );
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Short),
            msg_id: 5,
            topic: sn::SubTopic::Short(*b"ab"),
        },
    );
    h.take(C);
    h.mqtt_publish("pre/defined", b"to pre", QoS::AtMostOnce, false);
    h.mqtt_publish("ab", b"to short", QoS::AtMostOnce, false);
    h.expect(
        C,
        &[
            Message::Publish {
                flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Predefined),
                topic_id: 5,
                msg_id: 0,
                data: b"to pre",
            },
            Message::Publish {
                flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Short),
                topic_id: u16::from_be_bytes(*b"ab"),
                msg_id: 0,
                data: b"to short",
            },
        ],
    );
    // An unknown predefined id is refused.
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtMostOnce, TopicIdType::Predefined),
            msg_id: 6,
            topic: sn::SubTopic::Predefined(99),
        },
    );
    h.expect(
        C,
        &[Message::SubAck {
            flags: Flags::default(),
            topic_id: 0,
            msg_id: 6,
            code: ReturnCode::InvalidTopicId,
        }],
    );
}

#[test]
fn qos_minus_one_from_an_unconnected_address() {
    let mut h = Harness::new();
    h.mqtt_subscribe("#", QoS::AtMostOnce);
    h.send(
        9999,
        &Message::Publish {
            flags: qos_flags(SnQos::MinusOne, TopicIdType::Predefined),
            topic_id: 5,
            msg_id: 0,
            data: b"fire and forget",
        },
    );
    // A normal topic id means nothing without a connection: ignored.
    h.send(
        9999,
        &Message::Publish {
            flags: qos_flags(SnQos::MinusOne, TopicIdType::Normal),
            topic_id: 1,
            msg_id: 0,
            data: b"lost",
        },
    );
    h.expect(9999, &[]);
    assert_eq!(
        h.mqtt_received(),
        vec![("pre/defined".to_owned(), owned(b"fire and forget"))]
    );
    assert_eq!(h.gateway.client_count(), 0, "no client state for QoS -1");
}

#[test]
fn will_dialogue_and_will_on_keep_alive_expiry() {
    let mut h = Harness::new();
    h.mqtt_subscribe("wills/#", QoS::AtMostOnce);
    let flags = Flags {
        will: true,
        clean_session: true,
        ..Flags::default()
    };
    h.send(
        C,
        &Message::Connect {
            flags,
            protocol_id: 1,
            duration: 10,
            client_id: b"dying",
        },
    );
    h.expect(C, &[Message::WillTopicReq]);
    h.send(
        C,
        &Message::WillTopic {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            topic: b"wills/dying",
        },
    );
    h.expect(C, &[Message::WillMsgReq]);
    h.send(C, &Message::WillMsg { msg: b"gone" });
    h.expect(
        C,
        &[Message::ConnAck {
            code: ReturnCode::Accepted,
        }],
    );
    // WILLMSGUPD changes the message.
    h.send(
        C,
        &Message::WillMsgUpd {
            msg: b"gone for good",
        },
    );
    h.expect(
        C,
        &[Message::WillMsgResp {
            code: ReturnCode::Accepted,
        }],
    );
    // Silence past 1.5 times the keep alive: the will goes out.
    h.advance(14_000);
    assert!(h.mqtt_received().is_empty());
    h.advance(2_000);
    assert_eq!(
        h.mqtt_received(),
        vec![("wills/dying".to_owned(), owned(b"gone for good"))]
    );
    assert_eq!(h.gateway.client_count(), 0);
}

#[test]
fn a_client_gone_during_the_will_dialogue_gives_its_connection_id_back() {
    let mut h = Harness::new();
    let flags = Flags {
        will: true,
        clean_session: true,
        ..Flags::default()
    };
    let connect = Message::Connect {
        flags,
        protocol_id: 1,
        duration: 10,
        client_id: b"hesitant",
    };
    h.send(C, &connect);
    h.expect(C, &[Message::WillTopicReq]);
    assert!(h.released.is_empty());
    // Silent through the handshake's span: dropped before the engine ever saw it.
    h.advance(61_000);
    assert_eq!(h.released.len(), 1);
    assert!(h.mqtt_received().is_empty());
}

#[test]
fn will_topic_update_and_clean_disconnect_drops_the_will() {
    let mut h = Harness::new();
    h.mqtt_subscribe("#", QoS::AtMostOnce);
    let flags = Flags {
        will: true,
        clean_session: true,
        ..Flags::default()
    };
    h.send(
        C,
        &Message::Connect {
            flags,
            protocol_id: 1,
            duration: 10,
            client_id: b"polite",
        },
    );
    h.send(
        C,
        &Message::WillTopic {
            flags: Flags::default(),
            topic: b"w/1",
        },
    );
    h.send(C, &Message::WillMsg { msg: b"bye" });
    h.take(C);
    h.send(
        C,
        &Message::WillTopicUpd {
            flags: Flags::default(),
            topic: b"w/2",
        },
    );
    h.expect(
        C,
        &[Message::WillTopicResp {
            code: ReturnCode::Accepted,
        }],
    );
    h.send(C, &Message::Disconnect { duration: None });
    h.expect(C, &[Message::Disconnect { duration: None }]);
    h.advance(60_000);
    assert!(
        h.mqtt_received().is_empty(),
        "a clean DISCONNECT drops the will"
    );
    assert_eq!(h.gateway.client_count(), 0);
}

#[test]
fn sleeping_client_gets_its_messages_on_pingreq() {
    let mut h = Harness::new();
    h.connect(C, "sleepy", false, 30);
    h.send(
        C,
        &Message::Subscribe {
            flags: Flags::default(),
            msg_id: 1,
            topic: sn::SubTopic::Name(b"cmd"),
        },
    );
    h.take(C);
    h.send(
        C,
        &Message::Disconnect {
            duration: Some(120),
        },
    );
    h.expect(C, &[Message::Disconnect { duration: None }]);
    for i in 0..6u8 {
        h.mqtt_publish("cmd", &[b'0' + i], QoS::AtMostOnce, false);
    }
    h.expect(C, &[]);
    // Past the keep alive, within the sleep duration: still there.
    h.advance(100_000);
    h.send(
        C,
        &Message::PingReq {
            client_id: Some(b"sleepy"),
        },
    );
    // At most sleep_buffer (4) messages were kept, then PINGRESP.
    let publish = |d: &'static [u8]| Message::Publish {
        flags: Flags::default(),
        topic_id: 1,
        msg_id: 0,
        data: d,
    };
    h.expect(
        C,
        &[
            publish(b"0"),
            publish(b"1"),
            publish(b"2"),
            publish(b"3"),
            Message::PingResp,
        ],
    );
    // Asleep again: nothing is sent until the next PINGREQ.
    h.mqtt_publish("cmd", b"later", QoS::AtMostOnce, false);
    h.expect(C, &[]);
}

#[test]
fn sleeping_client_lost_after_its_sleep_duration() {
    let mut h = Harness::new();
    h.mqtt_subscribe("#", QoS::AtMostOnce);
    let flags = Flags {
        will: true,
        ..Flags::default()
    };
    h.send(
        C,
        &Message::Connect {
            flags,
            protocol_id: 1,
            duration: 10,
            client_id: b"napper",
        },
    );
    h.send(
        C,
        &Message::WillTopic {
            flags: Flags::default(),
            topic: b"lost/napper",
        },
    );
    h.send(C, &Message::WillMsg { msg: b"lost" });
    h.send(C, &Message::Disconnect { duration: Some(20) });
    h.take(C);
    h.advance(29_000);
    assert!(h.mqtt_received().is_empty());
    h.advance(2_000);
    assert_eq!(
        h.mqtt_received(),
        vec![("lost/napper".to_owned(), owned(b"lost"))]
    );
}

#[test]
fn unacknowledged_publish_is_sent_again_then_the_client_is_lost() {
    let mut h = Harness::new();
    h.connect(C, "deaf", true, 0);
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            msg_id: 1,
            topic: sn::SubTopic::Name(b"t"),
        },
    );
    h.take(C);
    h.mqtt_publish("t", b"m", QoS::AtLeastOnce, false);
    let first = h.take(C);
    assert_eq!(first.len(), 1);
    h.advance(1_000);
    let again = h.take(C);
    assert_eq!(again.len(), 1);
    let Ok(sn::Frame::Message(Message::Publish { flags, .. })) = sn::decode(&again[0]) else {
        panic!("not a PUBLISH");
    };
    assert!(flags.dup, "a repeated PUBLISH has DUP set");
    h.advance(1_000);
    assert_eq!(h.take(C).len(), 1);
    // retry_count (2) repeats, then the client is given up.
    h.advance(1_000);
    assert_eq!(h.gateway.client_count(), 0);
}

#[test]
fn clients_are_bounded() {
    let mut h = Harness::new();
    for port in 1..=3 {
        h.connect(port, &format!("c{port}"), true, 60);
    }
    h.send(
        4,
        &Message::Connect {
            flags: Flags::default(),
            protocol_id: 1,
            duration: 60,
            client_id: b"c4",
        },
    );
    h.expect(
        4,
        &[Message::ConnAck {
            code: ReturnCode::Congestion,
        }],
    );
    assert_eq!(h.gateway.client_count(), 3);
}

#[test]
fn register_flood_is_bounded() {
    let mut h = Harness::new();
    h.connect(C, "flood", true, 60);
    for i in 0..super::super::MAX_TOPICS_PER_CLIENT {
        h.send(
            C,
            &Message::Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: format!("t/{i}").as_bytes(),
            },
        );
    }
    h.take(C);
    h.send(
        C,
        &Message::Register {
            topic_id: 0,
            msg_id: 2,
            topic_name: b"one/too/many",
        },
    );
    h.expect(
        C,
        &[Message::RegAck {
            topic_id: 0,
            msg_id: 2,
            code: ReturnCode::Congestion,
        }],
    );
}

#[test]
fn forwarder_encapsulation_is_answered_through_the_forwarder() {
    let mut h = Harness::new();
    let node = [0xAA, 0xBB];
    let connect = Message::Connect {
        flags: Flags {
            clean_session: true,
            ..Flags::default()
        },
        protocol_id: 1,
        duration: 60,
        client_id: b"behind",
    };
    let mut bytes = Vec::new();
    sn::encode_encapsulated(0, &node, &connect, &mut bytes);
    h.datagram(C, &bytes);
    let got = h.take(C);
    assert_eq!(got.len(), 1);
    match sn::decode(&got[0]) {
        Ok(sn::Frame::Encapsulated(e)) => {
            assert_eq!(e.node_id, node);
            assert_eq!(
                sn::decode_message(e.inner),
                Ok(Message::ConnAck {
                    code: ReturnCode::Accepted
                })
            );
        }
        other => panic!("not encapsulated: {other:?}"),
    }
    assert_eq!(h.gateway.client_count(), 1);
}

#[test]
fn searchgw_is_answered_with_gwinfo_and_garbage_is_dropped() {
    let mut h = Harness::new();
    h.send(C, &Message::SearchGw { radius: 1 });
    // A second search before the answer does not queue a second answer.
    h.send(C, &Message::SearchGw { radius: 1 });
    h.expect(C, &[]);
    h.advance(super::super::GWINFO_DELAY_MAX_MS);
    h.expect(
        C,
        &[Message::GwInfo {
            gw_id: 7,
            gw_add: &[],
        }],
    );
    // Other gateways are remembered.
    h.send(
        6000,
        &Message::Advertise {
            gw_id: 9,
            duration: 900,
        },
    );
    let known = h.gateway.known_gateways();
    let nine = known.get(&9).map(|g| (g.addr, g.duration));
    assert_eq!(nine, Some((addr(6000), Some(900))));
    h.datagram(C, &[0x05, 0x99, 0, 0, 0]);
    h.datagram(C, &[]);
    h.datagram(C, &[0x10, 0x0C]);
    assert_eq!(h.gateway.dropped, 3);
    h.expect(C, &[]);
}

#[test]
fn sleeping_client_may_wake_from_a_new_address() {
    let mut h = Harness::new();
    h.connect(C, "mover", false, 30);
    h.send(
        C,
        &Message::Subscribe {
            flags: Flags::default(),
            msg_id: 1,
            topic: sn::SubTopic::Name(b"m"),
        },
    );
    h.send(C, &Message::Disconnect { duration: Some(60) });
    h.take(C);
    h.mqtt_publish("m", b"kept", QoS::AtMostOnce, false);
    h.send(
        C + 1,
        &Message::PingReq {
            client_id: Some(b"mover"),
        },
    );
    h.expect(
        C + 1,
        &[
            Message::Publish {
                flags: Flags::default(),
                topic_id: 1,
                msg_id: 0,
                data: b"kept",
            },
            Message::PingResp,
        ],
    );
}

#[test]
fn advertise_goes_to_the_group_at_the_interval() {
    let mut h = Harness::with(GatewayConfig {
        advertise_interval: 60,
        ..config()
    });
    h.advance(0);
    h.gateway.tick(h.now);
    h.drain();
    h.advance(60_000);
    h.advance(60_000);
    let mut expected = Vec::new();
    sn::encode(
        &Message::Advertise {
            gw_id: 7,
            duration: 60,
        },
        &mut expected,
    );
    assert_eq!(
        h.multicast,
        vec![expected.clone(), expected.clone(), expected]
    );
}
