//! SUBSCRIBE and UNSUBSCRIBE: filter validation, shared subscriptions, subscription
//! identifiers, and retained messages sent on subscribe per Retain Handling.

use std::rc::Rc;

use super::durable::Change;
use super::event::ConnId;
use super::message::Message;
use super::session::Delivery;
use super::topic_tree::{SessionKey, Subscription};
use super::Engine;
use crate::codec::mqtt::topic::{parse_filter, Filter};
use crate::codec::mqtt::{Packet, Props, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe};

impl Engine {
    pub(super) fn on_subscribe(&mut self, conn: ConnId, key: SessionKey, sub: Subscribe) {
        let v5 = self.conn_version(conn).is_v5();
        let ids = &sub.properties.subscription_identifiers;
        if ids.len() > 1 {
            // Spec 3.8.2.1.2: at most one Subscription Identifier.
            return self.violation(conn, ReasonCode::ProtocolError, "SUBSCRIBE", "MQTT-3.8.2-1");
        }
        let identifier = ids.first().copied();
        let bridge = self.conns.get(&conn).is_some_and(|c| c.bridge);
        let s = &self.sessions[key];
        let mount = s.link.as_ref().and(s.mount()).cloned();
        let mut reasons = Vec::with_capacity(sub.filters.len());
        let mut retained: Vec<(Rc<Message>, Subscription)> = Vec::new();
        // Filters refused for `max_topic_levels` and for `max_subscriptions`.
        let mut refused = (0, 0);
        for (filter, opts) in &sub.filters {
            let stored = match parse_filter(filter) {
                Some(parsed) => mounted_filter(mount.as_deref(), filter, parsed),
                None => {
                    log::debug!("{conn}: invalid topic filter {filter:?}");
                    reasons.push(if v5 {
                        ReasonCode::TopicFilterInvalid
                    } else {
                        ReasonCode::UnspecifiedError
                    });
                    continue;
                }
            };
            if !self.topic_within_bounds(super::split_group(&stored).1) {
                refused.0 += 1;
                reasons.push(if v5 {
                    ReasonCode::TopicFilterInvalid
                } else {
                    ReasonCode::UnspecifiedError
                });
                continue;
            }
            if self.over_subscription_quota(conn, key, &stored) {
                // 3.1.1 encodes it 0x80, MQTT-SN as congestion.
                refused.1 += 1;
                reasons.push(ReasonCode::QuotaExceeded);
                continue;
            }
            let (group, plain) = super::split_group(&stored);
            if group.is_some() && opts.no_local {
                // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
                return self.violation(
                    conn,
                    ReasonCode::ProtocolError,
                    "SUBSCRIBE",
                    "MQTT-3.8.3-4",
                );
            }
            // [ACL] a read rule must cover the filter as the client sent it.
            let wanted = match parse_filter(filter) {
                Some(Filter::Shared { filter, .. }) => filter,
                _ => filter.as_str(),
            };
            if !self.sessions[key].access.can_subscribe(wanted) {
                log::info!("{conn}: subscription to {filter} not authorized");
                reasons.push(ReasonCode::NotAuthorized);
                continue;
            }
            let mut options = *opts;
            options.qos = options.qos.min(self.limits.max_qos);
            if bridge && group.is_none() {
                // Another broker's 3.1.1 bridge: its own messages are not sent back to it,
                // and retained messages keep their flag, as No Local and Retain As
                // Published do in 5.0.
                options.no_local = true;
                options.retain_as_published = true;
            }
            let entry = Subscription {
                options,
                identifier,
            };
            let new = self.tree.insert(plain, group, key, entry);
            self.sessions[key]
                .subscriptions
                .insert(stored.clone(), entry);
            self.record_for(key, |client_id| Change::Subscribed {
                client_id,
                filter: stored.clone(),
                sub: entry,
            });
            reasons.push(ReasonCode::granted(options.qos));
            // [MQTT-3.3.1-9] retained messages on subscribe, per Retain Handling; never for a
            // shared subscription (spec 4.8.2).
            let send_retained = group.is_none()
                && match options.retain_handling {
                    0 => true,
                    1 => new,
                    _ => false,
                };
            if send_retained {
                let mut found = Vec::new();
                self.retained.matching(plain, self.now, &mut found);
                self.record_expired_retained();
                let access = &self.sessions[key].access;
                found.retain(|m| access.can_read(&m.topic));
                retained.extend(found.into_iter().map(|m| (m, entry)));
            }
        }
        if refused != (0, 0) {
            self.log_refused_filters(conn, refused.0, refused.1);
        }
        let internal = self.conns.get(&conn).is_some_and(|c| c.internal);
        if let (Some(notices), false) = (self.notices.as_mut(), internal) {
            let granted = sub
                .filters
                .iter()
                .zip(&reasons)
                .filter(|(_, r)| !r.is_error())
                .map(|((f, _), r)| (f.clone(), *r as u8))
                .collect();
            notices.push(crate::engine::event::Notice::Subscribed {
                client_id: self.sessions[key].client_id.clone(),
                filters: granted,
            });
        }
        let ack = SubAck {
            packet_id: sub.packet_id,
            properties: Props::none(),
            reasons,
        };
        self.send(conn, Packet::SubAck(ack));
        for (msg, entry) in retained {
            let d = Delivery {
                qos: entry.options.qos.min(msg.qos),
                retain: true,
                sub_ids: entry.identifier.into_iter().collect(),
                seq: 0,
                msg,
            };
            self.deliver(key, d);
        }
    }

    pub(super) fn on_unsubscribe(&mut self, conn: ConnId, key: SessionKey, u: Unsubscribe) {
        let mut reasons = Vec::with_capacity(u.filters.len());
        let s = &self.sessions[key];
        let mount = s.link.as_ref().and(s.mount()).cloned();
        for filter in &u.filters {
            let stored = match parse_filter(filter) {
                Some(parsed) => mounted_filter(mount.as_deref(), filter, parsed),
                None => filter.clone(),
            };
            let existed = self.sessions[key].subscriptions.remove(&stored).is_some();
            if existed {
                let (group, plain) = super::split_group(&stored);
                self.tree.remove(plain, group, key);
                self.record_for(key, |client_id| Change::Unsubscribed {
                    client_id,
                    filter: stored,
                });
                reasons.push(ReasonCode::Success);
            } else {
                reasons.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        let ack = UnsubAck {
            packet_id: u.packet_id,
            properties: Props::none(),
            reasons,
        };
        self.send(conn, Packet::UnsubAck(ack));
    }
}

/// The broker-side form of a filter from a client of a listener with `mount_point` `mount`:
/// the mount point goes in front of the topic filter, inside a shared subscription's prefix.
fn mounted_filter(mount: Option<&str>, filter: &str, parsed: Filter<'_>) -> String {
    match (mount, parsed) {
        (None, _) => filter.to_string(),
        (Some(m), Filter::Plain(f)) => format!("{m}{f}"),
        (Some(m), Filter::Shared { group, filter: f }) => format!("$share/{group}/{m}{f}"),
    }
}
