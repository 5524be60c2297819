//! The subscription trie: one node per topic level, `+` and `#` stored as ordinary children.
//!
//! Matching walks only the branches a topic can reach, so its cost follows the topic's depth
//! and the matching subscriptions, not the number of unrelated ones. Shared subscriptions
//! (`$share/GROUP/FILTER`) live on the node of their filter, one group per name, and each
//! matching message goes to one member chosen round robin, preferring connected members.
//! Children and subscribers are kept in ordered maps so that delivery order never depends on
//! hashing.

use std::collections::BTreeMap;

use crate::codec::mqtt::SubOptions;

/// Index of a session in the engine's session table.
pub type SessionKey = usize;

/// One subscription's options, as stored for each (session, filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub options: SubOptions,
    pub identifier: Option<u32>,
}

/// A subscription that matched a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub session: SessionKey,
    pub sub: Subscription,
    pub shared: bool,
}

#[derive(Default, Debug)]
struct SharedGroup {
    members: Vec<(SessionKey, Subscription)>,
    next: usize,
}

#[derive(Default, Debug)]
struct Node {
    children: BTreeMap<Box<str>, Self>,
    subscribers: BTreeMap<SessionKey, Subscription>,
    shared: BTreeMap<Box<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.shared.is_empty()
    }
}

#[derive(Default, Debug)]
pub struct TopicTree {
    root: Node,
    count: usize,
}

impl TopicTree {
    /// Number of (session, filter) subscriptions, shared ones included.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds or replaces a subscription. Returns true if it did not exist before.
    pub fn insert(
        &mut self,
        filter: &str,
        group: Option<&str>,
        session: SessionKey,
        sub: Subscription,
    ) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let new = match group {
            None => node.subscribers.insert(session, sub).is_none(),
            Some(g) => {
                let grp = node.shared.entry(g.into()).or_default();
                match grp.members.iter_mut().find(|(s, _)| *s == session) {
                    Some(m) => {
                        m.1 = sub;
                        false
                    }
                    None => {
                        grp.members.push((session, sub));
                        true
                    }
                }
            }
        };
        if new {
            self.count += 1;
        }
        new
    }

    /// Removes a subscription. Returns true if it existed.
    pub fn remove(&mut self, filter: &str, group: Option<&str>, session: SessionKey) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_at(&mut self.root, &levels, group, session);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Appends every subscription matching `topic` to `out`. For each shared group one member
    /// is chosen: the next connected one in round-robin order, else the next one.
    pub fn matches(
        &mut self,
        topic: &str,
        is_online: &dyn Fn(SessionKey) -> bool,
        out: &mut Vec<Match>,
    ) {
        // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a `$` topic.
        let dollar = topic.starts_with('$');
        walk(&mut self.root, Some(topic), dollar, is_online, out);
    }
}

fn remove_at(node: &mut Node, levels: &[&str], group: Option<&str>, s: SessionKey) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return match group {
            None => node.subscribers.remove(&s).is_some(),
            Some(g) => {
                let Some(grp) = node.shared.get_mut(g) else {
                    return false;
                };
                let before = grp.members.len();
                grp.members.retain(|(k, _)| *k != s);
                let removed = grp.members.len() != before;
                if grp.members.is_empty() {
                    node.shared.remove(g);
                } else if grp.next >= grp.members.len() {
                    grp.next = 0;
                }
                removed
            }
        };
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_at(child, rest, group, s);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

/// `rest` is the unmatched part of the topic; `None` once every level has been consumed.
fn walk(
    node: &mut Node,
    rest: Option<&str>,
    skip_wild: bool,
    online: &dyn Fn(SessionKey) -> bool,
    out: &mut Vec<Match>,
) {
    let Some(rest) = rest else {
        collect(node, online, out);
        // "sport/#" also matches "sport" [MQTT-4.7.1-2].
        if let Some(hash) = node.children.get_mut("#") {
            collect(hash, online, out);
        }
        return;
    };
    let (level, tail) = match rest.split_once('/') {
        Some((l, t)) => (l, Some(t)),
        None => (rest, None),
    };
    if let Some(child) = node.children.get_mut(level) {
        walk(child, tail, false, online, out);
    }
    if skip_wild {
        return;
    }
    if let Some(plus) = node.children.get_mut("+") {
        walk(plus, tail, false, online, out);
    }
    if let Some(hash) = node.children.get_mut("#") {
        collect(hash, online, out);
    }
}

fn collect(node: &mut Node, online: &dyn Fn(SessionKey) -> bool, out: &mut Vec<Match>) {
    out.extend(node.subscribers.iter().map(|(s, sub)| Match {
        session: *s,
        sub: *sub,
        shared: false,
    }));
    for grp in node.shared.values_mut() {
        let n = grp.members.len();
        if n == 0 {
            continue;
        }
        let start = grp.next % n;
        let pick = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| online(grp.members[i].0))
            .unwrap_or(start);
        grp.next = (pick + 1) % n;
        let (session, sub) = grp.members[pick];
        out.push(Match {
            session,
            sub,
            shared: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mqtt::QoS;

    fn sub(q: QoS) -> Subscription {
        Subscription {
            options: SubOptions {
                qos: q,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
            },
            identifier: None,
        }
    }

    fn hits(t: &mut TopicTree, topic: &str) -> Vec<SessionKey> {
        let mut out = Vec::new();
        t.matches(topic, &|_| true, &mut out);
        let mut v: Vec<_> = out.iter().map(|m| m.session).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn wildcards_match_as_the_spec_says() {
        let mut t = TopicTree::default();
        t.insert("sport/tennis/+", None, 1, sub(QoS::AtMostOnce));
        t.insert("sport/#", None, 2, sub(QoS::AtMostOnce));
        t.insert("+/+", None, 3, sub(QoS::AtMostOnce));
        t.insert("#", None, 4, sub(QoS::AtMostOnce));
        t.insert("+", None, 5, sub(QoS::AtMostOnce));
        assert_eq!(hits(&mut t, "sport/tennis/player1"), vec![1, 2, 4]);
        assert_eq!(hits(&mut t, "sport"), vec![2, 4, 5]);
        assert_eq!(hits(&mut t, "/finance"), vec![3, 4]);
        assert_eq!(hits(&mut t, "sport/tennis"), vec![2, 3, 4]);
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn dollar_topics_skip_leading_wildcards() {
        let mut t = TopicTree::default();
        t.insert("#", None, 1, sub(QoS::AtMostOnce));
        t.insert("+/monitor/Clients", None, 2, sub(QoS::AtMostOnce));
        t.insert("$SYS/#", None, 3, sub(QoS::AtMostOnce));
        t.insert("$SYS/monitor/+", None, 4, sub(QoS::AtMostOnce));
        assert_eq!(hits(&mut t, "$SYS/monitor/Clients"), vec![3, 4]);
    }

    #[test]
    fn removal_prunes_and_counts() {
        let mut t = TopicTree::default();
        assert!(t.insert("a/b", None, 1, sub(QoS::AtMostOnce)));
        assert!(!t.insert("a/b", None, 1, sub(QoS::AtLeastOnce)));
        assert!(t.remove("a/b", None, 1));
        assert!(!t.remove("a/b", None, 1));
        assert!(t.root.is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn shared_group_round_robin_prefers_online_members() {
        let mut t = TopicTree::default();
        t.insert("t", Some("g"), 1, sub(QoS::AtMostOnce));
        t.insert("t", Some("g"), 2, sub(QoS::AtMostOnce));
        let mut picks = Vec::new();
        for _ in 0..4 {
            let mut out = Vec::new();
            t.matches("t", &|_| true, &mut out);
            assert_eq!(out.len(), 1);
            picks.push(out[0].session);
        }
        assert_eq!(picks, vec![1, 2, 1, 2]);
        let mut out = Vec::new();
        t.matches("t", &|s| s == 2, &mut out);
        t.matches("t", &|s| s == 2, &mut out);
        assert!(out.iter().all(|m| m.session == 2 && m.shared));
        assert!(t.remove("t", Some("g"), 1));
        assert!(t.remove("t", Some("g"), 2));
        assert!(t.root.is_empty());
    }
}
