//! The engine's side of fault injection: it holds the rule table ([`crate::fault`]) and
//! makes the two faults that are MQTT decisions, refusing a client's CONNECT and choosing
//! the reason code that answers a PUBLISH (see `connect` and `publish`).
//!
//! It never touches bytes or connections' transports: dropping, delaying, duplicating and
//! closing after a count are the reactor's, which asks [`Engine::fault_outgoing`] what to do
//! with each packet while a rule exists. A forced takeover is no rule: it goes through
//! [`Engine::admin_disconnect`] with Session taken over.

use super::topic_tree::SessionKey;
use super::{ConnState, Engine};
use crate::clock::Millis;
use crate::codec::mqtt::ReasonCode;
use crate::engine::event::{ConnId, ListenerId};
use crate::fault::{FaultId, FaultTable, Outgoing, Rule, Spec, TableFull};

impl Engine {
    /// The fault rules, oldest first.
    pub fn faults(&self) -> &FaultTable {
        &self.faults
    }

    /// Adds a fault rule.
    pub fn add_fault(&mut self, spec: Spec) -> Result<Rule, TableFull> {
        let rule = self.faults.add(spec)?;
        log::info!(
            "{} added: {} for {}",
            rule.id,
            rule.kind.name(),
            rule.target
        );
        Ok(rule)
    }

    /// Removes a fault rule; `None` when there is none with this id.
    pub fn remove_fault(&mut self, id: FaultId) -> Option<Rule> {
        let rule = self.faults.remove(id)?;
        log::info!("{id} removed");
        Some(rule)
    }

    /// What the fault rules do to the next packet for `conn`. Client-id rules see a
    /// connection from its CONNACK on, until the broker starts to close it.
    pub fn fault_outgoing(&mut self, now: Millis, conn: ConnId) -> Outgoing {
        let Some(c) = self.conns.get(&conn) else {
            return Outgoing::default();
        };
        let client_id = match c.state {
            ConnState::Active(key) => self.sessions.get(key.key()).map(|s| &*s.client_id),
            ConnState::AwaitConnect | ConnState::Closing => None,
        };
        self.faults.outgoing(now, client_id, c.listener)
    }

    /// Whether a `refuse` rule of `listener` closes a connection it has just accepted.
    pub fn fault_refuses_accept(&mut self, listener: ListenerId) -> Option<FaultId> {
        self.faults.refuse_accept(listener)
    }

    /// Whether a `refuse` rule naming `client_id` closes this CONNECT, without CONNACK.
    pub(super) fn fault_refuses_connect(&mut self, conn: ConnId, client_id: &str) -> bool {
        let Some(id) = self.faults.refuse_connect(client_id) else {
            return false;
        };
        log::info!(
            "{conn} ({}): CONNECT of {client_id} refused: closing ({id})",
            self.peer(conn)
        );
        true
    }

    /// The reason code a `reason` rule answers this QoS 1 or 2 PUBLISH with, if any.
    pub(super) fn fault_reason(&mut self, conn: ConnId, key: SessionKey) -> Option<ReasonCode> {
        let listener = self.conns.get(&conn)?.listener;
        let client_id = &*self.sessions.get(key)?.client_id;
        let (id, reason) = self.faults.publish_reason(client_id, listener)?;
        log::info!(
            "{conn} ({}): {id} answers the PUBLISH of {client_id} with {:#04x} ({})",
            self.peer(conn),
            reason as u8,
            reason.text()
        );
        Some(reason)
    }
}
