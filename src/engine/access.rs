//! Authentication at CONNECT and the access checks of SUBSCRIBE, PUBLISH, wills and
//! delivery, against the password files and ACLs of [`crate::auth`].
//!
//! Each session holds an [`Access`] decided when its client connects: [`Access::Open`] when
//! no ACL applies (the check on every message is then one match on the variant), or the
//! client's compiled rules, which check a topic without allocating. A session restored from
//! the store is [`Access::Pending`] until its client connects again: messages for it are
//! queued unchecked and checked when they leave the queue. ACL topics are what the client
//! sees: a listener's mount point is removed before matching.
//!
//! This file owns those decisions and must never read a file or block on anything but the
//! password hashing of [`crate::auth::password`] (bounded by its iteration limit).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::event::{ConnId, ListenerId};
use super::{ConnState, Engine};
use crate::auth::{ClientAcl, Security, SecurityConfig};
use crate::clock::Millis;
use crate::codec::mqtt::{Connect, ReasonCode};

/// The security settings in force, by listener when `per_listener_settings` is on.
#[derive(Debug, Default)]
pub(super) struct Guards {
    per_listener: bool,
    global: Rc<Security>,
    listeners: BTreeMap<ListenerId, Rc<Security>>,
}

/// What a session's client may do with topics.
#[derive(Debug, Clone, Default)]
pub enum Access {
    /// No ACL applies: every topic is open.
    #[default]
    Open,
    /// The client's rules.
    Rules(Rc<Rules>),
    /// Restored from the store while an ACL is in force, its client not connected since:
    /// deliveries are queued unchecked and checked when sent.
    Pending,
}

/// One client's compiled ACL rules and its listener's mount point.
#[derive(Debug)]
pub struct Rules {
    acl: ClientAcl,
    mount: Option<Rc<str>>,
}

impl Rules {
    /// The topic as the client sees it.
    fn client_view<'a>(&self, topic: &'a str) -> &'a str {
        match &self.mount {
            Some(m) => topic.strip_prefix(&**m).unwrap_or(topic),
            None => topic,
        }
    }
}

impl Access {
    /// Whether a message on the (broker-side) `topic` may be delivered to the client.
    pub fn can_read(&self, topic: &str) -> bool {
        match self {
            Self::Open | Self::Pending => true,
            Self::Rules(r) => r.acl.can_read(r.client_view(topic)),
        }
    }

    /// Whether the client may publish to the (broker-side) `topic`.
    pub fn can_write(&self, topic: &str) -> bool {
        match self {
            Self::Open | Self::Pending => true,
            Self::Rules(r) => r.acl.can_write(r.client_view(topic)),
        }
    }

    /// Whether the client may subscribe to `filter`, as it sent it (no mount point, no
    /// `$share/GROUP/` prefix).
    pub fn can_subscribe(&self, filter: &str) -> bool {
        match self {
            Self::Open | Self::Pending => true,
            Self::Rules(r) => r.acl.can_subscribe(filter),
        }
    }
}

/// Who a session's client is, as far as access goes; kept while the session is offline so
/// that a reload can decide its access again.
#[derive(Debug, Clone)]
pub struct Principal {
    pub listener: ListenerId,
    pub username: Option<Rc<str>>,
    pub mount: Option<Rc<str>>,
    /// The broker's own client (a bridge's local session): never checked.
    pub internal: bool,
}

/// A log line's account of security settings.
fn describe(s: &Security, allow_anonymous: bool) -> String {
    let passwords = match &s.password_file {
        Some((path, users)) => format!("password file {path} ({} users)", users.len()),
        None => "no password file".to_owned(),
    };
    let acl = match &s.acl_file {
        Some((path, _)) => format!("ACL file {path}"),
        None => "no ACL file".to_owned(),
    };
    let anonymous = if allow_anonymous {
        "allowed"
    } else {
        "refused"
    };
    format!("{passwords}, {acl}, anonymous clients {anonymous}")
}

impl Engine {
    /// Replaces the password files and ACLs (start-up and SIGHUP). The access of every
    /// session is decided again, and connected clients without a user name are closed where
    /// anonymous access is no longer allowed. Their passwords are not asked again.
    pub fn set_security(&mut self, now: Millis, config: SecurityConfig) {
        self.now = self.now.max(now);
        let listeners = config
            .listeners
            .into_iter()
            .enumerate()
            .map(|(i, s)| (ListenerId(u32::try_from(i).unwrap_or(u32::MAX)), Rc::new(s)))
            .collect();
        self.guards = Guards {
            per_listener: config.per_listener_settings,
            global: Rc::new(config.global),
            listeners,
        };
        if self.guards.per_listener {
            for (id, s) in &self.guards.listeners {
                log::info!("listener {}: {}", id.0, describe(s, s.allow_anonymous));
            }
        } else if self.guards.global.password_file.is_some()
            || self.guards.global.acl_file.is_some()
        {
            log::info!(
                "{}",
                describe(&self.guards.global, self.limits.allow_anonymous)
            );
        }
        let keys: Vec<usize> = self.sessions.iter().map(|(k, _)| k).collect();
        for key in keys {
            let s = &self.sessions[key];
            let access = match &s.principal {
                Some(p) => self.access_for(p, &s.client_id),
                None => self.pending_access(),
            };
            self.sessions[key].access = access;
        }
        let mut conns: Vec<(ConnId, ListenerId)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.internal && c.identity().is_none())
            .filter_map(|(id, c)| match c.state {
                ConnState::Active(key) => self.sessions.get(key.key()).map(|s| (s, id, c)),
                _ => None,
            })
            .filter(|(s, _, _)| s.link.is_some() && s.username().is_none())
            .map(|(_, id, c)| (id, c.listener))
            .collect();
        conns.sort_unstable();
        for (conn, listener) in conns {
            if !self.security_of(listener).1 {
                log::info!(
                    "{conn} ({}): anonymous access no longer allowed; closing",
                    self.peer(conn)
                );
                self.close(
                    conn,
                    "anonymous access no longer allowed",
                    Some(ReasonCode::NotAuthorized),
                );
            }
        }
    }

    /// The settings of `listener` and whether it allows anonymous clients.
    fn security_of(&self, listener: ListenerId) -> (&Security, bool) {
        if self.guards.per_listener {
            if let Some(s) = self.guards.listeners.get(&listener) {
                return (s, s.allow_anonymous);
            }
        }
        (&self.guards.global, self.limits.allow_anonymous)
    }

    /// Checks a CONNECT's credentials. Returns the user name in force: the transport's
    /// identity (a client certificate, or the broker's own client), which needs no password,
    /// else the CONNECT user name, which must match the password file when there is one
    /// (v5 0x86, 3.1.1 4 when it does not). Without a user name, or with one but no password
    /// file to check it against, the client is anonymous and needs `allow_anonymous` (v5
    /// 0x87, 3.1.1 5).
    pub(super) fn authenticate(
        &self,
        conn: ConnId,
        c: &Connect,
    ) -> Result<Option<Rc<str>>, (ReasonCode, &'static str)> {
        let Some(cs) = self.conns.get(&conn) else {
            return Err((ReasonCode::NotAuthorized, "connection gone"));
        };
        if cs.identity().is_some() || cs.internal {
            return Ok(cs.identity().cloned());
        }
        let (security, allow_anonymous) = self.security_of(cs.listener);
        match (c.username.as_deref(), &security.password_file) {
            (Some(user), Some((_, file))) => match &c.password {
                Some(password) if file.verify(user, password) => Ok(Some(Rc::from(user))),
                _ => Err((
                    ReasonCode::BadUserNameOrPassword,
                    "bad user name or password",
                )),
            },
            (user, _) if allow_anonymous => Ok(user.map(Rc::from)),
            (None, _) => Err((ReasonCode::NotAuthorized, "anonymous not allowed")),
            (Some(_), None) => Err((
                ReasonCode::NotAuthorized,
                "anonymous not allowed (no password file to check the user name)",
            )),
        }
    }

    /// The access of a client with this principal and client id, under the settings now in
    /// force.
    pub(super) fn access_for(&self, p: &Principal, client_id: &str) -> Access {
        if p.internal {
            return Access::Open;
        }
        match &self.security_of(p.listener).0.acl_file {
            None => Access::Open,
            Some((_, acl)) => Access::Rules(Rc::new(Rules {
                acl: acl.rules_for(client_id, p.username.as_deref()),
                mount: p.mount.clone(),
            })),
        }
    }

    /// The access of a session restored from the store: pending while any ACL is in force.
    pub(super) fn pending_access(&self) -> Access {
        let any = self.guards.global.acl_file.is_some()
            || self.guards.listeners.values().any(|s| s.acl_file.is_some());
        if any {
            Access::Pending
        } else {
            Access::Open
        }
    }

    /// Whether a message on `topic` may go to the session's client.
    pub(super) fn may_read(&self, key: usize, topic: &str) -> bool {
        self.sessions
            .get(key)
            .is_none_or(|s| s.access.can_read(topic))
    }
}
