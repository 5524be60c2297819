//! The store's tables and format version. One table per kind of state; keys start with the
//! client identifier so that a session's rows sit together, and numeric key parts are
//! ordered integers, so a queue reads back in its order.
//!
//! Changing a table or a record's byte form means a new [`FORMAT_VERSION`]: a culex that
//! finds another version refuses the file rather than guess.

use redb::TableDefinition;

/// The version of the tables and records this culex reads and writes.
pub(super) const FORMAT_VERSION: u64 = 1;

/// `"format"` → [`FORMAT_VERSION`].
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const FORMAT_KEY: &str = "format";

/// client id → session record.
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// (client id, filter as subscribed) → subscription record.
pub(super) const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("subscriptions");

/// (client id, queue position) → delivery record.
pub(super) const QUEUE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queue");

/// (client id, packet identifier) → in-flight record (outbound QoS 1/2).
pub(super) const INFLIGHT: TableDefinition<(&str, u16), &[u8]> = TableDefinition::new("inflight");

/// (client id, packet identifier) of an inbound QoS 2 message awaiting PUBREL.
pub(super) const INCOMING: TableDefinition<(&str, u16), ()> = TableDefinition::new("incoming_qos2");

/// topic → message record.
pub(super) const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
