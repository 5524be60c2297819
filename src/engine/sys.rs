//! `$SYS/broker/...`: the broker's own state, published as retained messages every
//! `sys_interval` seconds under the names mosquitto uses.

use std::rc::Rc;

use super::message::Message;
use super::timers::TimerKey;
use super::Engine;
use crate::codec::mqtt::{Props, QoS};

const VERSION: &str = concat!("culex ", env!("CARGO_PKG_VERSION"));

impl Engine {
    /// Called once at construction: the version is retained from the start.
    pub(super) fn sys_start(&mut self) {
        let msg = self.sys_message("$SYS/broker/version", VERSION.to_string());
        self.retained.set(&msg);
        self.arm_sys();
    }

    pub(super) fn arm_sys(&mut self) {
        if self.limits.sys_interval > 0 {
            let at = self
                .now
                .saturating_add_secs(u64::from(self.limits.sys_interval));
            self.timers.arm(at, TimerKey::Sys);
        }
    }

    pub(super) fn sys_tick(&mut self) {
        self.retained.purge_expired(self.now);
        self.record_expired_retained();
        if self.limits.sys_interval == 0 {
            return;
        }
        let connected = self.counts().clients_connected;
        let total = self.sessions.len();
        let st = self.stats.clone();
        let values: [(&str, String); 15] = [
            ("$SYS/broker/version", VERSION.to_string()),
            (
                "$SYS/broker/uptime",
                format!("{} seconds", self.now.0 / 1000),
            ),
            ("$SYS/broker/clients/connected", connected.to_string()),
            (
                "$SYS/broker/clients/disconnected",
                (total - connected.min(total)).to_string(),
            ),
            ("$SYS/broker/clients/total", total.to_string()),
            (
                "$SYS/broker/clients/maximum",
                st.connections_max.to_string(),
            ),
            (
                "$SYS/broker/messages/received",
                st.messages_received.to_string(),
            ),
            ("$SYS/broker/messages/sent", st.messages_sent.to_string()),
            (
                "$SYS/broker/publish/messages/received",
                st.publish_received.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/sent",
                st.publish_sent.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/dropped",
                st.publish_dropped.to_string(),
            ),
            (
                "$SYS/broker/bytes/received",
                st.traffic.bytes_received.to_string(),
            ),
            ("$SYS/broker/bytes/sent", st.traffic.bytes_sent.to_string()),
            (
                "$SYS/broker/subscriptions/count",
                self.tree.len().to_string(),
            ),
            (
                "$SYS/broker/retained messages/count",
                self.retained.len().to_string(),
            ),
        ];
        for (topic, value) in values {
            let msg = self.sys_message(topic, value);
            self.accept_message(msg);
        }
        self.arm_sys();
    }

    fn sys_message(&self, topic: &str, value: String) -> Rc<Message> {
        Rc::new(Message {
            topic: topic.into(),
            payload: value.into_bytes().into(),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Props::none(),
            expires_at: None,
            origin: None,
        })
    }
}
