//! Fault injection rules: the table of faults an operator asked for (over the HTTP API) to
//! test how MQTT clients cope with a misbehaving broker, and the decisions each rule makes
//! as packets and connections meet it.
//!
//! Owns the rule kinds, their validation, matching a connection (by client id or listener),
//! counting down, listing and removal. It is pure: it must never touch a socket, a file or
//! the clock (time comes in as [`Millis`]), and never decide anything about MQTT beyond
//! what a rule names. The engine holds the table; the reactor applies what it answers.
//!
//! Matching: for each kind, only the oldest rule that matches a packet or connection counts
//! it, so two `drop` rules of count 1 drop two packets; rules of different kinds combine
//! (a packet may be both duplicated and delayed). A rule whose count is used up is removed.

use std::fmt;
use std::rc::Rc;

use crate::clock::Millis;
use crate::codec::mqtt::{ReasonCode, ReasonPacket};
use crate::engine::event::ListenerId;

/// Rules that may exist at once; adding one more is refused.
pub const RULES_MAX: usize = 1024;

/// The largest `count` of a rule.
pub const COUNT_MAX: u32 = 1_000_000;

/// The longest delay a `delay` rule may ask for: ten minutes.
pub const DELAY_MS_MAX: u64 = 600_000;

/// A rule's identity: a counter, never reused while the broker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FaultId(pub u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault rule {}", self.0)
    }
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The next `count` outgoing packets are not sent.
    Drop,
    /// The next `count` outgoing packets are sent `delay_ms` later; what follows waits
    /// behind them.
    Delay,
    /// The next `count` outgoing packets are sent twice (a QoS 1 or 2 PUBLISH copy with DUP).
    Duplicate,
    /// The connection is closed, without DISCONNECT, after `count` more outgoing packets.
    CloseAfter,
    /// New connections (listener) or CONNECTs (client id) are closed at once, `count` times
    /// or until the rule is removed.
    Refuse,
    /// The client's next `count` QoS 1 and 2 PUBLISHes are answered with `reason_code`.
    Reason,
    /// The client is disconnected at once as if its session were taken over (not a rule).
    Takeover,
}

impl Kind {
    pub const ALL: [Self; 7] = [
        Self::Drop,
        Self::Delay,
        Self::Duplicate,
        Self::CloseAfter,
        Self::Refuse,
        Self::Reason,
        Self::Takeover,
    ];

    /// The name used in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Delay => "delay",
            Self::Duplicate => "duplicate",
            Self::CloseAfter => "close_after",
            Self::Refuse => "refuse",
            Self::Reason => "reason",
            Self::Takeover => "takeover",
        }
    }

    /// The kind of an API name, or an error listing the known ones.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "kind: unknown fault kind {name:?}; known: {}",
                    known.join(", ")
                )
            })
    }
}

/// What a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The connection of the client with this identifier, whichever connection it is.
    Client(Rc<str>),
    /// Every connection accepted by this listener (`port` is how the API names it).
    Listener { id: ListenerId, port: u16 },
}

impl Target {
    /// Whether the rule applies to a connection of `client_id` (if it has sent CONNECT)
    /// accepted by `listener` (if known).
    fn matches(&self, client_id: Option<&str>, listener: Option<ListenerId>) -> bool {
        match self {
            Self::Client(id) => client_id == Some(&**id),
            Self::Listener { id, .. } => listener == Some(*id),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(id) => write!(f, "client {id:?}"),
            Self::Listener { port, .. } => write!(f, "listener {port}"),
        }
    }
}

/// A rule as asked for, checked by [`Spec::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub target: Target,
    /// `None`: until removed (`refuse` only).
    pub count: Option<u32>,
    pub delay_ms: Option<u64>,
    pub reason: Option<ReasonCode>,
}

impl Spec {
    /// Checks the fields a kind needs and refuses those it does not take. Errors start with
    /// the name of the field at fault.
    pub fn new(
        kind: Kind,
        target: Target,
        count: Option<u64>,
        delay_ms: Option<u64>,
        reason_code: Option<u64>,
    ) -> Result<Self, String> {
        if kind == Kind::Takeover {
            if let Target::Listener { .. } = target {
                return Err("listener: kind takeover names a client_id".to_owned());
            }
            if count.is_some() {
                return Err("count: not for kind takeover, which acts at once".to_owned());
            }
        }
        let count = match count {
            Some(n) => Some(
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=COUNT_MAX).contains(n))
                    .ok_or_else(|| {
                        format!("count: expected a number from 1 to {COUNT_MAX}, got {n}")
                    })?,
            ),
            None if kind == Kind::Refuse => None,
            None => Some(1),
        };
        let delay_ms = match (kind, delay_ms) {
            (Kind::Delay, None) => return Err("delay_ms: required for kind delay".to_owned()),
            (Kind::Delay, Some(ms)) if !(1..=DELAY_MS_MAX).contains(&ms) => {
                return Err(format!(
                    "delay_ms: expected a number from 1 to {DELAY_MS_MAX}, got {ms}"
                ))
            }
            (Kind::Delay, Some(ms)) => Some(ms),
            (_, Some(_)) => return Err("delay_ms: only for kind delay".to_owned()),
            (_, None) => None,
        };
        let reason = match (kind, reason_code) {
            (Kind::Reason, None) => {
                return Err("reason_code: required for kind reason".to_owned());
            }
            (Kind::Reason, Some(code)) => Some(puback_reason(code)?),
            (_, Some(_)) => return Err("reason_code: only for kind reason".to_owned()),
            (_, None) => None,
        };
        Ok(Self {
            kind,
            target,
            count: if kind == Kind::Takeover { None } else { count },
            delay_ms,
            reason,
        })
    }
}

/// A reason code a PUBACK (and PUBREC) may carry, or an error listing them.
fn puback_reason(code: u64) -> Result<ReasonCode, String> {
    u8::try_from(code)
        .ok()
        .and_then(ReasonCode::from_u8)
        .filter(|r| r.allowed_in(ReasonPacket::PubAck))
        .ok_or_else(|| {
            let valid: Vec<String> = ReasonCode::ALL
                .iter()
                .filter(|r| r.allowed_in(ReasonPacket::PubAck))
                .map(|r| (*r as u8).to_string())
                .collect();
            format!(
                "reason_code: {code} is not a PUBACK reason code; valid: {}",
                valid.join(", ")
            )
        })
}

/// One rule in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: FaultId,
    pub kind: Kind,
    pub target: Target,
    /// As asked for; `None`: until removed.
    pub count: Option<u32>,
    /// What is left of `count`; the rule goes when it reaches 0.
    pub remaining: Option<u32>,
    pub delay_ms: Option<u64>,
    pub reason: Option<ReasonCode>,
}

impl Rule {
    /// Counts one use; true when the rule is used up.
    fn use_once(&mut self) -> bool {
        match self.remaining.as_mut() {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        }
    }
}

/// The table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{RULES_MAX} fault rules exist already: remove one first")
    }
}

/// What the rules do to one outgoing packet, each effect with the rule that asked for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// Not sent at all.
    pub drop: Option<FaultId>,
    /// Sent at this time, not before.
    pub delay: Option<(FaultId, Millis)>,
    /// Sent twice.
    pub duplicate: Option<FaultId>,
    /// The connection is closed once this packet has been written.
    pub close: Option<FaultId>,
}

/// Every rule, oldest first.
#[derive(Debug, Default)]
pub struct FaultTable {
    rules: Vec<Rule>,
    next_id: u64,
}

impl FaultTable {
    /// True when no rule exists: the one check the hot paths make.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every rule, oldest first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Adds a rule (a `takeover` is no rule and is not kept: it gets an id all the same).
    pub fn add(&mut self, spec: Spec) -> Result<Rule, TableFull> {
        if self.rules.len() >= RULES_MAX {
            return Err(TableFull);
        }
        self.next_id += 1;
        let rule = Rule {
            id: FaultId(self.next_id),
            kind: spec.kind,
            target: spec.target,
            count: spec.count,
            remaining: spec.count,
            delay_ms: spec.delay_ms,
            reason: spec.reason,
        };
        if rule.kind != Kind::Takeover {
            self.rules.push(rule.clone());
        }
        Ok(rule)
    }

    /// Removes a rule; `None` when there is none with this id.
    pub fn remove(&mut self, id: FaultId) -> Option<Rule> {
        let index = self.rules.iter().position(|r| r.id == id)?;
        Some(self.rules.remove(index))
    }

    /// Counts one outgoing packet of a connection of `client_id` (known once its CONNECT
    /// was accepted) on `listener`, at `now`, and says what to do with it.
    pub fn outgoing(
        &mut self,
        now: Millis,
        client_id: Option<&str>,
        listener: ListenerId,
    ) -> Outgoing {
        let mut out = Outgoing::default();
        let mut used_up = false;
        for rule in &mut self.rules {
            let taken = match rule.kind {
                Kind::Drop => out.drop.is_some(),
                Kind::Delay => out.delay.is_some(),
                Kind::Duplicate => out.duplicate.is_some(),
                Kind::CloseAfter => out.close.is_some(),
                Kind::Refuse | Kind::Reason | Kind::Takeover => continue,
            };
            if taken || !rule.target.matches(client_id, Some(listener)) {
                continue;
            }
            let last = rule.use_once();
            used_up |= last;
            match rule.kind {
                Kind::Drop => out.drop = Some(rule.id),
                Kind::Delay => {
                    let until = now.saturating_add_ms(rule.delay_ms.unwrap_or(0));
                    out.delay = Some((rule.id, until));
                }
                Kind::Duplicate => out.duplicate = Some(rule.id),
                // The rule counts packets until the close; only the last one closes.
                Kind::CloseAfter if last => out.close = Some(rule.id),
                _ => {}
            }
        }
        if used_up {
            self.rules.retain(|r| r.remaining != Some(0));
        }
        out
    }

    /// A connection accepted by `listener`: whether a `refuse` rule closes it at once.
    pub fn refuse_accept(&mut self, listener: ListenerId) -> Option<FaultId> {
        self.take(Kind::Refuse, None, Some(listener))
            .map(|(id, _)| id)
    }

    /// A CONNECT of `client_id`: whether a `refuse` rule naming the client closes it.
    pub fn refuse_connect(&mut self, client_id: &str) -> Option<FaultId> {
        self.take(Kind::Refuse, Some(client_id), None)
            .map(|(id, _)| id)
    }

    /// A QoS 1 or 2 PUBLISH of `client_id` on `listener`: the reason code a `reason` rule
    /// answers it with.
    pub fn publish_reason(
        &mut self,
        client_id: &str,
        listener: ListenerId,
    ) -> Option<(FaultId, ReasonCode)> {
        let (id, reason) = self.take(Kind::Reason, Some(client_id), Some(listener))?;
        Some((id, reason?))
    }

    /// Counts one use of the oldest rule of `kind` that matches; returns its id and reason.
    fn take(
        &mut self,
        kind: Kind,
        client_id: Option<&str>,
        listener: Option<ListenerId>,
    ) -> Option<(FaultId, Option<ReasonCode>)> {
        let index = self
            .rules
            .iter()
            .position(|r| r.kind == kind && r.target.matches(client_id, listener))?;
        let rule = &mut self.rules[index];
        let found = (rule.id, rule.reason);
        if rule.use_once() {
            self.rules.remove(index);
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L1: ListenerId = ListenerId(1);
    const L2: ListenerId = ListenerId(2);

    fn client(id: &str) -> Target {
        Target::Client(Rc::from(id))
    }

    fn listener(id: ListenerId) -> Target {
        Target::Listener {
            id,
            port: 1880 + id.0 as u16,
        }
    }

    fn spec(kind: Kind, target: Target, count: Option<u64>) -> Spec {
        let delay = (kind == Kind::Delay).then_some(250);
        let reason = (kind == Kind::Reason).then_some(0x97);
        Spec::new(kind, target, count, delay, reason).expect("valid spec")
    }

    fn table_with(specs: &[Spec]) -> FaultTable {
        let mut t = FaultTable::default();
        for s in specs {
            t.add(s.clone()).expect("room");
        }
        t
    }

    #[test]
    fn kinds_parse_by_name_and_unknown_names_list_the_known_ones() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Ok(k));
        }
        assert_eq!(
            Kind::parse("foo"),
            Err(
                "kind: unknown fault kind \"foo\"; known: drop, delay, duplicate, \
                 close_after, refuse, reason, takeover"
                    .to_owned()
            )
        );
        assert!(Kind::parse("Drop").is_err());
    }

    #[test]
    fn spec_defaults_count_to_one_and_refuse_to_until_removed() {
        assert_eq!(spec(Kind::Drop, client("a"), None).count, Some(1));
        assert_eq!(spec(Kind::Refuse, client("a"), None).count, None);
        assert_eq!(spec(Kind::Refuse, client("a"), Some(3)).count, Some(3));
        let d = spec(Kind::Delay, client("a"), Some(2));
        assert_eq!((d.count, d.delay_ms), (Some(2), Some(250)));
        let r = spec(Kind::Reason, client("a"), None);
        assert_eq!(r.reason, Some(ReasonCode::QuotaExceeded));
    }

    #[test]
    fn spec_refuses_bad_values_naming_the_field() {
        let new = |kind, count, delay, reason| Spec::new(kind, client("a"), count, delay, reason);
        let err = |r: Result<Spec, String>| r.expect_err("refused");
        assert_eq!(
            err(new(Kind::Drop, Some(0), None, None)),
            "count: expected a number from 1 to 1000000, got 0"
        );
        assert!(err(new(Kind::Drop, Some(1_000_001), None, None)).starts_with("count: "));
        assert!(err(new(Kind::Drop, Some(u64::MAX), None, None)).starts_with("count: "));
        assert_eq!(
            err(new(Kind::Delay, None, None, None)),
            "delay_ms: required for kind delay"
        );
        assert_eq!(
            err(new(Kind::Delay, None, Some(600_001), None)),
            "delay_ms: expected a number from 1 to 600000, got 600001"
        );
        assert!(err(new(Kind::Delay, None, Some(0), None)).starts_with("delay_ms: "));
        assert_eq!(
            err(new(Kind::Drop, None, Some(5), None)),
            "delay_ms: only for kind delay"
        );
        assert_eq!(
            err(new(Kind::Reason, None, None, None)),
            "reason_code: required for kind reason"
        );
        assert_eq!(
            err(new(Kind::Reason, None, None, Some(0x8E))),
            "reason_code: 142 is not a PUBACK reason code; valid: 0, 16, 128, 131, 135, \
             144, 145, 151, 153"
        );
        assert!(err(new(Kind::Reason, None, None, Some(300))).starts_with("reason_code: 300"));
        assert_eq!(
            err(new(Kind::Duplicate, None, None, Some(0))),
            "reason_code: only for kind reason"
        );
        assert_eq!(
            err(new(Kind::Takeover, Some(1), None, None)),
            "count: not for kind takeover, which acts at once"
        );
        assert_eq!(
            err(Spec::new(Kind::Takeover, listener(L1), None, None, None)),
            "listener: kind takeover names a client_id"
        );
        for ok in [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99] {
            assert!(new(Kind::Reason, None, None, Some(ok)).is_ok(), "{ok:#x}");
        }
    }

    #[test]
    fn rules_are_listed_oldest_first_and_removed_by_id() {
        let mut t = table_with(&[
            spec(Kind::Drop, client("a"), Some(2)),
            spec(Kind::Refuse, listener(L1), None),
        ]);
        let ids: Vec<u64> = t.rules().iter().map(|r| r.id.0).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(t.rules()[0].remaining, Some(2));
        assert_eq!(t.remove(FaultId(1)).map(|r| r.kind), Some(Kind::Drop));
        assert_eq!(t.remove(FaultId(1)), None);
        assert_eq!(t.remove(FaultId(9)), None);
        assert_eq!(t.rules().len(), 1);
        // Ids are never reused.
        let r = t.add(spec(Kind::Drop, client("a"), None)).expect("room");
        assert_eq!(r.id, FaultId(3));
    }

    #[test]
    fn a_takeover_gets_an_id_but_is_not_kept() {
        let mut t = FaultTable::default();
        let s = Spec::new(Kind::Takeover, client("a"), None, None, None).expect("valid");
        let r = t.add(s).expect("room");
        assert_eq!((r.id, r.count), (FaultId(1), None));
        assert!(t.is_empty());
    }

    #[test]
    fn the_table_holds_at_most_rules_max() {
        let mut t = FaultTable::default();
        for _ in 0..RULES_MAX {
            t.add(spec(Kind::Refuse, listener(L1), None)).expect("room");
        }
        assert_eq!(t.add(spec(Kind::Drop, client("a"), None)), Err(TableFull));
        assert_eq!(
            TableFull.to_string(),
            "1024 fault rules exist already: remove one first"
        );
        t.remove(FaultId(5));
        assert!(t.add(spec(Kind::Drop, client("a"), None)).is_ok());
    }

    #[test]
    fn drop_counts_down_then_disappears() {
        let mut t = table_with(&[spec(Kind::Drop, client("a"), Some(2))]);
        let now = Millis(100);
        assert_eq!(t.outgoing(now, Some("b"), L1), Outgoing::default());
        assert_eq!(t.outgoing(now, None, L1), Outgoing::default());
        assert_eq!(t.outgoing(now, Some("a"), L1).drop, Some(FaultId(1)));
        assert_eq!(t.rules()[0].remaining, Some(1));
        assert_eq!(t.outgoing(now, Some("a"), L2).drop, Some(FaultId(1)));
        assert!(t.is_empty());
        assert_eq!(t.outgoing(now, Some("a"), L1), Outgoing::default());
    }

    #[test]
    fn only_the_oldest_rule_of_a_kind_counts_a_packet() {
        let mut t = table_with(&[
            spec(Kind::Drop, listener(L1), Some(1)),
            spec(Kind::Drop, client("a"), Some(1)),
        ]);
        assert_eq!(t.outgoing(Millis(0), Some("a"), L1).drop, Some(FaultId(1)));
        assert_eq!(t.outgoing(Millis(0), Some("a"), L1).drop, Some(FaultId(2)));
        assert!(t.is_empty());
    }

    #[test]
    fn kinds_combine_on_one_packet() {
        let mut t = table_with(&[
            spec(Kind::Delay, client("a"), Some(1)),
            spec(Kind::Duplicate, listener(L1), Some(1)),
            spec(Kind::CloseAfter, client("a"), Some(2)),
        ]);
        let first = t.outgoing(Millis(1_000), Some("a"), L1);
        assert_eq!(
            first,
            Outgoing {
                drop: None,
                delay: Some((FaultId(1), Millis(1_250))),
                duplicate: Some(FaultId(2)),
                close: None,
            }
        );
        assert_eq!(t.rules().len(), 1);
        assert_eq!(t.rules()[0].remaining, Some(1));
        let second = t.outgoing(Millis(1_001), Some("a"), L2);
        assert_eq!(second.close, Some(FaultId(3)));
        assert!(t.is_empty());
    }

    #[test]
    fn outgoing_ignores_refuse_and_reason_rules() {
        let mut t = table_with(&[
            spec(Kind::Refuse, listener(L1), None),
            spec(Kind::Reason, client("a"), None),
        ]);
        assert_eq!(t.outgoing(Millis(0), Some("a"), L1), Outgoing::default());
        assert_eq!(t.rules().len(), 2);
    }

    #[test]
    fn refuse_counts_or_lasts_until_removed() {
        let mut t = table_with(&[
            spec(Kind::Refuse, listener(L1), Some(2)),
            spec(Kind::Refuse, client("a"), None),
        ]);
        assert_eq!(t.refuse_accept(L2), None);
        assert_eq!(t.refuse_accept(L1), Some(FaultId(1)));
        assert_eq!(t.refuse_accept(L1), Some(FaultId(1)));
        assert_eq!(t.refuse_accept(L1), None);
        // A client rule is for CONNECT, never for the accept.
        assert_eq!(t.rules().len(), 1);
        for _ in 0..5 {
            assert_eq!(t.refuse_connect("a"), Some(FaultId(2)));
        }
        assert_eq!(t.refuse_connect("b"), None);
        assert_eq!(t.rules()[0].remaining, None);
        t.remove(FaultId(2));
        assert_eq!(t.refuse_connect("a"), None);
    }

    #[test]
    fn reason_matches_the_client_or_its_listener() {
        let by_listener = Spec::new(Kind::Reason, listener(L2), Some(1), None, Some(0x10));
        let mut t = table_with(&[
            spec(Kind::Reason, client("a"), Some(2)),
            by_listener.expect("valid"),
        ]);
        assert_eq!(t.publish_reason("b", L1), None);
        let quota = ReasonCode::QuotaExceeded;
        assert_eq!(t.publish_reason("a", L1), Some((FaultId(1), quota)));
        assert_eq!(
            t.publish_reason("b", L2),
            Some((FaultId(2), ReasonCode::NoMatchingSubscribers))
        );
        assert_eq!(t.publish_reason("a", L2), Some((FaultId(1), quota)));
        assert!(t.is_empty());
    }
}
