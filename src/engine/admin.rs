//! Commands from the broker's operator (the HTTP API): publish a message, disconnect a
//! client, end a session, clear a retained message. Each acts through the same paths as the
//! protocol flows, so wills, queues, the store journal and `$SYS` counters stay consistent.
//! The caller drains [`Engine::poll_action`] afterwards, as after any input.

use std::rc::Rc;

use super::durable::Change;
use super::message::Message;
use super::Engine;
use crate::clock::Millis;
use crate::codec::mqtt::ReasonCode;

impl Engine {
    /// Publishes `msg` as if a client had sent it (the operator is no session, so No Local
    /// does not apply): retained if asked, routed to every matching subscription.
    pub fn admin_publish(&mut self, now: Millis, msg: Message) {
        self.now = self.now.max(now);
        self.stats.publish_received += 1;
        self.stats.messages_received += 1;
        log::info!("operator published on {}", msg.topic);
        self.accept_message(Rc::new(msg));
    }

    /// Publishes a message of the broker's own (a bridge's connection state), which, unlike
    /// a client's, may be on a `$SYS` topic.
    pub fn broker_publish(&mut self, now: Millis, msg: Message) {
        self.now = self.now.max(now);
        self.accept_message(Rc::new(msg));
    }

    /// Disconnects the client with this identifier: a v5 client is sent DISCONNECT with
    /// `reason`, and its session is handled as for any server-side close (the will is
    /// published, the session stays per its expiry). False when no such client is connected.
    pub fn admin_disconnect(&mut self, now: Millis, client_id: &str, reason: ReasonCode) -> bool {
        self.now = self.now.max(now);
        let Some(conn) = self.client(client_id).map(|c| c.conn) else {
            return false;
        };
        log::info!("{conn}: client {client_id} disconnected by the operator");
        self.close(conn, "disconnected by the operator", Some(reason));
        true
    }

    /// Ends the session with this identifier: a connected client is disconnected first (with
    /// Administrative action in v5), a pending will is published, and the session with its
    /// subscriptions and queue is forgotten. False when there is no such session.
    pub fn admin_end_session(&mut self, now: Millis, client_id: &str) -> bool {
        self.now = self.now.max(now);
        if !self.by_client_id.contains_key(client_id) {
            return false;
        }
        self.admin_disconnect(now, client_id, ReasonCode::AdministrativeAction);
        // Disconnecting may already have ended a session that expires with its connection.
        if let Some(&key) = self.by_client_id.get(client_id) {
            log::info!("session {client_id} ended by the operator");
            self.end_session(key);
        }
        true
    }

    /// Removes the retained message of `topic`. False when the topic retains nothing.
    pub fn admin_clear_retained(&mut self, now: Millis, topic: &str) -> bool {
        self.now = self.now.max(now);
        let Some(msg) = self.retained.remove(topic) else {
            return false;
        };
        if !msg.topic.starts_with("$SYS") {
            let topic = msg.topic.clone();
            self.journal.record(|| Change::RetainCleared { topic });
        }
        true
    }
}
