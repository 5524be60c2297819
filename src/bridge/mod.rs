//! Bridges: culex as a client of other brokers, inside the same loop.
//!
//! A bridge is a pipe between two MQTT sessions. On the remote side it is a client of the
//! remote broker over a socket the reactor owns; on the local side it is a client of this
//! broker's engine, a session like any other (persistent, so that what is to go out waits
//! in the engine's bounded queue, and in the store, while the remote is unreachable). Every
//! QoS flow is relayed packet by packet, so a message leaves the local queue only once the
//! remote broker has acknowledged it, and a remote message is acknowledged only once the
//! engine has (and, with persistence, once the store has flushed it).
//!
//! `mqtt` holds the state machine (sans-IO: events in, [`Output`]s out, time passed in);
//! this file holds the topic mapping of `topic` lines.

pub mod link;
pub mod mqtt;
pub mod mqttsn;
pub mod webhook;

pub use mqtt::{Bridge, Output, State};

use crate::codec::mqtt::{
    topic, Connect, Packet, Properties, Props, ProtocolVersion, SubOptions, Subscribe,
};
use crate::config::bridge::{BridgeConfig, Direction, TopicMapping};
use crate::engine::event::{ConnId, Input, Peer};
use crate::engine::session::EXPIRY_NEVER;

/// The topic a message of `topic` has on the other side, by the first mapping that carries
/// it in direction `outgoing` (local to remote) or not (remote to local), with the index of
/// that mapping. `None`: no mapping carries it.
pub fn map_topic(mappings: &[TopicMapping], topic: &str, outgoing: bool) -> Option<String> {
    mappings.iter().find_map(|m| {
        let carries = match m.direction {
            Direction::Both => true,
            Direction::Out => outgoing,
            Direction::In => !outgoing,
        };
        if !carries {
            return None;
        }
        let (from, to) = if outgoing {
            (&m.local_prefix, &m.remote_prefix)
        } else {
            (&m.remote_prefix, &m.local_prefix)
        };
        let filter = format!("{from}{}", m.pattern);
        if !topic::matches(&filter, topic) {
            return None;
        }
        // A filter `p/#` also matches `p` itself, which the prefix `p/` does not start.
        let rest = topic.strip_prefix(from.as_str())?;
        Some(format!("{to}{rest}"))
    })
}

/// The filters a bridge subscribes to: on the local broker for outgoing mappings
/// (`local = true`), on the remote one for incoming mappings; with each mapping's QoS.
pub fn filters(mappings: &[TopicMapping], local: bool) -> Vec<(String, crate::codec::mqtt::QoS)> {
    let mut out: Vec<(String, crate::codec::mqtt::QoS)> = Vec::new();
    for m in mappings {
        let wanted = match m.direction {
            Direction::Both => true,
            Direction::Out => local,
            Direction::In => !local,
        };
        if !wanted {
            continue;
        }
        let prefix = if local {
            &m.local_prefix
        } else {
            &m.remote_prefix
        };
        let filter = format!("{prefix}{}", m.pattern);
        match out.iter_mut().find(|(f, _)| *f == filter) {
            // The same filter twice: one subscription, at the higher QoS.
            Some((_, qos)) => *qos = (*qos).max(m.qos),
            None => out.push((filter, m.qos)),
        }
    }
    out
}

/// The next reconnect (or retry) delay of a bridge after `last` ms: `restart_timeout BASE`
/// alone is constant; with a cap it grows with random jitter between the base and three
/// times the last delay, up to the cap.
pub fn backoff_ms(config: &BridgeConfig, last: u64, rng: &mut crate::rng::Rng) -> u64 {
    let base = u64::from(config.restart_timeout_base_secs.max(1)) * 1000;
    match config.restart_timeout_cap_secs {
        None => base,
        Some(cap) => {
            let cap = (u64::from(cap) * 1000).max(base);
            let high = last.saturating_mul(3).max(base);
            (base + rng.below(high - base + 1)).min(cap)
        }
    }
}

/// How a bridge's local session is opened.
#[derive(Clone, Copy, Debug)]
pub struct LocalSession {
    /// Messages the engine may have in flight towards the bridge.
    pub receive_max: u16,
    /// The largest packet the bridge takes from the engine, if bounded.
    pub max_packet: Option<u32>,
    /// Whether what the session publishes itself is kept from its own subscriptions.
    pub no_local: bool,
    /// Retain Handling of the subscriptions (1: retained messages only when new).
    pub retain_handling: u8,
}

/// The engine inputs that open a bridge's local session as `local`: a persistent v5 session
/// (so what is to go out waits in the engine's bounded queue, and in the store, while the
/// remote end is away), named `peer` in logs, with the subscriptions of the outgoing
/// mappings. The broker's own client: the identity stands for a user name.
pub fn open_local_session(
    config: &BridgeConfig,
    local: ConnId,
    peer: &str,
    spec: LocalSession,
) -> Vec<Input> {
    let connect = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: false,
        keep_alive: 0,
        properties: Properties {
            session_expiry_interval: Some(EXPIRY_NEVER),
            receive_maximum: Some(spec.receive_max.max(1)),
            maximum_packet_size: spec.max_packet,
            ..Properties::default()
        }
        .into(),
        client_id: config.local_clientid.clone(),
        will: None,
        username: None,
        password: None,
        bridge: false,
    };
    let mut inputs = vec![
        Input::Opened {
            conn: local,
            listener: mqtt::BRIDGE_LISTENER,
            peer: Peer::name(peer),
        },
        Input::PeerIdentity {
            conn: local,
            username: config.local_clientid.as_str().into(),
        },
        Input::Packet {
            conn: local,
            packet: Packet::Connect(Box::new(connect)),
        },
    ];
    let local_filters = filters(&config.topics, true);
    if !local_filters.is_empty() {
        let opts = |qos| SubOptions {
            qos,
            no_local: spec.no_local,
            retain_as_published: true,
            retain_handling: spec.retain_handling,
        };
        let s = Subscribe {
            packet_id: 1,
            properties: Props::none(),
            filters: local_filters
                .into_iter()
                .map(|(f, q)| (f, opts(q)))
                .collect(),
        };
        inputs.push(Input::Packet {
            conn: local,
            packet: Packet::Subscribe(s),
        });
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mqtt::QoS;

    fn mapping(pattern: &str, direction: Direction, local: &str, remote: &str) -> TopicMapping {
        TopicMapping {
            pattern: pattern.to_owned(),
            direction,
            qos: QoS::AtLeastOnce,
            local_prefix: local.to_owned(),
            remote_prefix: remote.to_owned(),
        }
    }

    #[test]
    fn prefixes_are_swapped() {
        let m = [
            mapping("sensors/#", Direction::Out, "site/", "gw1/"),
            mapping("cmd/#", Direction::In, "site/", "gw1/"),
        ];
        assert_eq!(
            map_topic(&m, "site/sensors/t", true).as_deref(),
            Some("gw1/sensors/t")
        );
        assert_eq!(map_topic(&m, "site/cmd/x", true), None);
        assert_eq!(
            map_topic(&m, "gw1/cmd/x", false).as_deref(),
            Some("site/cmd/x")
        );
        assert_eq!(map_topic(&m, "gw1/sensors/t", false), None);
    }

    #[test]
    fn empty_pattern_maps_the_prefix_itself() {
        let m = [mapping("", Direction::Both, "a/b", "c")];
        assert_eq!(map_topic(&m, "a/b", true).as_deref(), Some("c"));
        assert_eq!(map_topic(&m, "c", false).as_deref(), Some("a/b"));
        assert_eq!(map_topic(&m, "a/b/c", true), None);
    }

    #[test]
    fn first_mapping_wins_and_parent_of_a_prefix_is_not_mapped() {
        let m = [
            mapping("#", Direction::Both, "x/", "y/"),
            mapping("#", Direction::Both, "", ""),
        ];
        assert_eq!(map_topic(&m, "x/1", true).as_deref(), Some("y/1"));
        assert_eq!(map_topic(&m, "z", true).as_deref(), Some("z"));
        // `x/#` matches `x`, which lacks the prefix `x/`: the next mapping takes it.
        assert_eq!(map_topic(&m, "x", true).as_deref(), Some("x"));
    }

    #[test]
    fn filters_by_side_merge_duplicates() {
        let mut m = vec![
            mapping("a/#", Direction::Out, "", "r/"),
            mapping("b/#", Direction::In, "l/", ""),
            mapping("c", Direction::Both, "", ""),
            mapping("a/#", Direction::Out, "", ""),
        ];
        m[3].qos = QoS::ExactlyOnce;
        assert_eq!(
            filters(&m, true),
            vec![
                ("a/#".to_owned(), QoS::ExactlyOnce),
                ("c".to_owned(), QoS::AtLeastOnce)
            ]
        );
        assert_eq!(
            filters(&m, false),
            vec![
                ("b/#".to_owned(), QoS::AtLeastOnce),
                ("c".to_owned(), QoS::AtLeastOnce)
            ]
        );
    }
}
