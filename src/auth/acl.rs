//! Access control lists in mosquitto's `acl_file` syntax, and the rules one client gets from
//! them.
//!
//! ```text
//! # comment
//! topic [read|write|readwrite|deny] TOPIC     anonymous clients (before any `user` line)
//! user NAME                                   starts the block of one user name
//! topic [read|write|readwrite|deny] TOPIC     that user (readwrite when no access is given)
//! pattern [read|write|readwrite|deny] TOPIC   every client; %c is its client id, %u its
//!                                             user name (a client without one skips it)
//! ```
//!
//! The decision follows mosquitto 2.0: the `topic` rules of the client's block are looked at
//! first, then the patterns; within each, deny rules come first. The first rule that matches
//! decides when it denies or grants the access asked for; when none does, access is denied.
//! Publishing needs `write`, receiving a message needs `read`, both matched as MQTT filters
//! against the topic. A subscription needs a `read` rule whose filter covers it: every topic
//! the subscription can match must be matched by the rule (`a/#` covers `a/b/+` and `a`,
//! `a/+` covers `a/b` but not `a/#`, `#` does not cover `$SYS/#`); a deny rule refuses a
//! subscription it covers, and one it only overlaps leaves those topics to the read check
//! on delivery. A client id or user name holding `+` or `#` gets no access from patterns.
//!
//! Owns parsing (pure, over text, every error naming its line) and matching. It must never
//! read files, log, or allocate when a rule is checked.

use std::collections::BTreeMap;

use crate::codec::mqtt::topic::{matches, valid_topic_filter};
use crate::config::parse::content_lines;
use crate::config::ConfigError;

/// What a rule grants: nothing (deny), reading, writing or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Deny,
    Read,
    Write,
    ReadWrite,
}

impl Grant {
    fn allows(self, want: Want) -> bool {
        matches!(
            (self, want),
            (Self::Read | Self::ReadWrite, Want::Read)
                | (Self::Write | Self::ReadWrite, Want::Write)
        )
    }
}

/// The access a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Read,
    Write,
}

/// One line of the file: its filter (patterns with `%c`/`%u` still in it) and grant.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Line {
    filter: String,
    grant: Grant,
}

/// A parsed ACL file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclFile {
    /// `topic` lines before any `user` line.
    anonymous: Vec<Line>,
    /// `topic` lines of each `user` block (blocks of one name are merged).
    users: BTreeMap<String, Vec<Line>>,
    /// `pattern` lines, wherever they appear.
    patterns: Vec<Line>,
}

impl AclFile {
    /// Parses an ACL file's text, named `file` in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut acl = Self::default();
        let mut user: Option<String> = None;
        for (number, line) in content_lines(text) {
            let at = |message: String| ConfigError::new(file, number, message);
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(at("user: missing user name".to_owned()));
                    }
                    user = Some(rest.to_owned());
                    acl.users.entry(rest.to_owned()).or_default();
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(keyword, rest).map_err(at)?;
                    match (keyword, &user) {
                        ("pattern", _) => acl.patterns.push(rule),
                        (_, Some(u)) => acl.users.entry(u.clone()).or_default().push(rule),
                        (_, None) => acl.anonymous.push(rule),
                    }
                }
                other => {
                    return Err(at(format!(
                        "unknown keyword \"{}\" (expected topic, pattern or user)",
                        other.escape_debug()
                    )))
                }
            }
        }
        Ok(acl)
    }

    /// The rules of the client `client_id` with `username` (`None`: anonymous), in the
    /// order they are checked. Called once per CONNECT (and on reload), so that checking a
    /// message substitutes and allocates nothing.
    pub fn rules_for(&self, client_id: &str, username: Option<&str>) -> ClientAcl {
        let block = match username {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or_default(),
            None => &self.anonymous,
        };
        let mut rules = Vec::new();
        let denies = |l: &&Line| l.grant == Grant::Deny;
        let grants = |l: &&Line| l.grant != Grant::Deny;
        rules.extend(block.iter().filter(denies).cloned());
        rules.extend(block.iter().filter(grants).cloned());
        let dangerous = |s: &str| s.contains(['+', '#']);
        if !dangerous(client_id) && !username.is_some_and(dangerous) {
            let usable = |l: &&Line| !(l.filter.contains("%u") && username.is_none());
            let fill = |l: &Line| Line {
                filter: substitute(&l.filter, client_id, username),
                grant: l.grant,
            };
            rules.extend(self.patterns.iter().filter(denies).filter(usable).map(fill));
            rules.extend(self.patterns.iter().filter(grants).filter(usable).map(fill));
        }
        ClientAcl { rules }
    }
}

/// `topic|pattern [ACCESS] TOPIC`, after the keyword. A single word is the topic, granted
/// read and write; with more words the first is the access and the rest the topic.
fn parse_rule(keyword: &str, rest: &str) -> Result<Line, String> {
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let after = after.trim();
    let access = match first {
        "read" => Some(Grant::Read),
        "write" => Some(Grant::Write),
        "readwrite" => Some(Grant::ReadWrite),
        "deny" => Some(Grant::Deny),
        _ => None,
    };
    let (grant, filter) = match (access, after.is_empty()) {
        (_, true) if first.is_empty() || access.is_some() => {
            return Err(format!("{keyword}: missing topic"))
        }
        (_, true) => (Grant::ReadWrite, first),
        (Some(grant), false) => (grant, after),
        (None, false) => {
            return Err(format!(
                "{keyword}: unknown access \"{}\" (expected read, write, readwrite or deny)",
                first.escape_debug()
            ))
        }
    };
    if !valid_topic_filter(filter) {
        return Err(format!(
            "{keyword}: \"{}\" is not a valid topic filter",
            filter.escape_debug()
        ));
    }
    Ok(Line {
        filter: filter.to_owned(),
        grant,
    })
}

/// `filter` with each `%c` replaced by the client id and each `%u` by the user name.
fn substitute(filter: &str, client_id: &str, username: Option<&str>) -> String {
    let mut out = String::with_capacity(filter.len() + client_id.len());
    let mut rest = filter;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match (after.as_bytes().first(), username) {
            (Some(b'c'), _) => out.push_str(client_id),
            (Some(b'u'), Some(u)) => out.push_str(u),
            _ => {
                out.push('%');
                rest = after;
                continue;
            }
        }
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

/// The rules of one client, ready to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAcl {
    rules: Vec<Line>,
}

impl ClientAcl {
    /// Whether the client may publish to `topic`.
    pub fn can_write(&self, topic: &str) -> bool {
        self.check(|f| matches(f, topic), Want::Write)
    }

    /// Whether the client may receive a message published to `topic`.
    pub fn can_read(&self, topic: &str) -> bool {
        self.check(|f| matches(f, topic), Want::Read)
    }

    /// Whether the client may subscribe to `filter` (without any `$share/GROUP/` prefix).
    pub fn can_subscribe(&self, filter: &str) -> bool {
        self.check(|f| covers(f, filter), Want::Read)
    }

    fn check(&self, applies: impl Fn(&str) -> bool, want: Want) -> bool {
        for rule in &self.rules {
            if applies(&rule.filter) {
                if rule.grant == Grant::Deny {
                    return false;
                }
                if rule.grant.allows(want) {
                    return true;
                }
            }
        }
        false
    }
}

/// Whether the ACL filter `acl` matches every topic the subscription filter `sub` can
/// match. Level by level: `#` covers whatever is left (the parent level included), `+`
/// covers one level that is not `#`, any other level covers only itself. A subscription
/// starting with `$` is covered only by a filter starting with `$`. [MQTT-4.7.2-1]
pub fn covers(acl: &str, sub: &str) -> bool {
    if sub.starts_with('$') && !acl.starts_with('$') {
        return false;
    }
    let mut a = acl.split('/');
    let mut s = sub.split('/');
    loop {
        match (a.next(), s.next()) {
            (Some("#"), _) => return a.next().is_none(),
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(al), Some(sl)) if al == sl && al != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AclFile {
        AclFile::parse(text, "acl").unwrap_or_else(|e| panic!("{e}"))
    }

    const EXAMPLE: &str = "\
# anonymous clients
topic read public/#
topic deny public/private

user alice
topic alice/#
topic deny alice/secret
topic read $SYS/broker/#

user bob
topic write bob/out

pattern readwrite clients/%c/#
pattern read users/%u/inbox
pattern deny clients/%c/locked
";

    #[test]
    fn anonymous_clients_get_the_block_before_any_user() {
        let acl = parse(EXAMPLE).rules_for("anon1", None);
        assert!(acl.can_read("public/news"));
        assert!(!acl.can_write("public/news"));
        assert!(!acl.can_read("public/private"), "deny wins over the grant");
        assert!(acl.can_read("clients/anon1/x") && acl.can_write("clients/anon1/x"));
        assert!(!acl.can_read("clients/anon2/x"));
        assert!(
            !acl.can_read("users//inbox"),
            "%u never matches without a user name"
        );
        assert!(!acl.can_read("alice/a"));
    }

    #[test]
    fn users_get_their_block_and_patterns() {
        let file = parse(EXAMPLE);
        let alice = file.rules_for("phone", Some("alice"));
        assert!(alice.can_read("alice/a") && alice.can_write("alice/a/b"));
        assert!(alice.can_read("alice"), "alice/# matches its parent level");
        assert!(!alice.can_read("alice/secret") && !alice.can_write("alice/secret"));
        assert!(
            alice.can_read("alice/secret/more"),
            "deny is a filter: only that topic"
        );
        assert!(
            !alice.can_read("public/news"),
            "the anonymous block is not hers"
        );
        assert!(alice.can_read("users/alice/inbox") && !alice.can_write("users/alice/inbox"));
        assert!(!alice.can_read("users/bob/inbox"));
        assert!(alice.can_write("clients/phone/x"));
        assert!(
            !alice.can_write("clients/phone/locked"),
            "pattern deny comes first"
        );
        let bob = file.rules_for("b1", Some("bob"));
        assert!(bob.can_write("bob/out") && !bob.can_read("bob/out"));
        let carol = file.rules_for("c1", Some("carol"));
        assert!(
            carol.can_read("users/carol/inbox"),
            "no block: patterns only"
        );
        assert!(!carol.can_read("public/news"));
    }

    #[test]
    fn user_grants_are_checked_before_pattern_denies() {
        // As mosquitto 2.0: the client's own topic rules decide before any pattern.
        let file = parse("user u\ntopic clients/#\npattern deny clients/%c/locked\n");
        let acl = file.rules_for("c", Some("u"));
        assert!(acl.can_write("clients/c/locked"));
        let anon = file.rules_for("c", None);
        assert!(!anon.can_write("clients/c/locked"));
    }

    #[test]
    fn dollar_topics_need_rules_of_their_own() {
        let file = parse("topic read #\ntopic read +/x\nuser alice\ntopic read $SYS/broker/#\n");
        let anon = file.rules_for("a", None);
        assert!(anon.can_read("any/topic"));
        assert!(!anon.can_read("$SYS/broker/uptime"));
        assert!(!anon.can_read("$x/x"));
        assert!(!anon.can_subscribe("$SYS/#"));
        let alice = file.rules_for("a", Some("alice"));
        assert!(alice.can_read("$SYS/broker/uptime"));
        assert!(alice.can_subscribe("$SYS/broker/#") && alice.can_subscribe("$SYS/broker/+"));
        assert!(!alice.can_subscribe("$SYS/#"));
    }

    #[test]
    fn subscriptions_must_be_covered() {
        let cases = [
            ("a/#", "a/#", true),
            ("a/#", "a", true),
            ("a/#", "a/b/+", true),
            ("a/#", "a/+/c/#", true),
            ("a/#", "+/b", false),
            ("a/#", "#", false),
            ("a/+", "a/b", true),
            ("a/+", "a/+", true),
            ("a/+", "a/#", false),
            ("a/+", "a", false),
            ("a/+", "a/b/c", false),
            ("a/b", "a/b", true),
            ("a/b", "a/+", false),
            ("+/b", "x/b", true),
            ("+/b", "+/b", true),
            ("#", "#", true),
            ("#", "a/+/#", true),
            ("#", "$SYS/#", false),
            ("+", "$SYS", false),
            ("$SYS/#", "$SYS/broker/+", true),
            ("a/+/#", "a/b", true),
            ("a//b", "a//b", true),
            ("a//b", "a/+/b", false),
        ];
        for (acl, sub, want) in cases {
            assert_eq!(covers(acl, sub), want, "{acl} covers {sub}");
        }
    }

    #[test]
    fn deny_rules_refuse_subscriptions_they_cover() {
        let file = parse("topic read a/#\ntopic deny a/secret/#\ntopic write w/#\n");
        let acl = file.rules_for("c", None);
        assert!(
            acl.can_subscribe("a/#"),
            "overlapping deny: checked on delivery"
        );
        assert!(!acl.can_read("a/secret/x"));
        assert!(!acl.can_subscribe("a/secret/+"));
        assert!(!acl.can_subscribe("a/secret"));
        assert!(acl.can_subscribe("a/public/+"));
        assert!(!acl.can_subscribe("w/#"), "write does not grant subscribe");
        assert!(!acl.can_subscribe("b"));
    }

    #[test]
    fn patterns_substitute_anywhere_and_skip_dangerous_names() {
        let file = parse("pattern devices/dev-%c/%u/+\npattern 100%/x\n");
        let acl = file.rules_for("7", Some("u"));
        assert!(acl.can_write("devices/dev-7/u/t"));
        assert!(acl.can_subscribe("devices/dev-7/u/+"));
        assert!(!acl.can_subscribe("devices/dev-7/+/+"));
        assert!(acl.can_write("100%/x"), "a lone % is kept");
        assert!(!file.rules_for("a+", Some("u")).can_write("100%/x"));
        assert!(!file.rules_for("a", Some("u#")).can_write("100%/x"));
        // A client id with '/' spans levels, as in mosquitto 2.0.
        let slash = file.rules_for("a/b", Some("u"));
        assert!(slash.can_write("devices/dev-a/b/u/t"));
        assert_eq!(substitute("%c%u%%c%", "C", None), "C%u%C%");
    }

    #[test]
    fn without_rules_nothing_is_allowed() {
        let acl = parse("# nothing\n").rules_for("c", Some("u"));
        assert!(!acl.can_read("a") && !acl.can_write("a") && !acl.can_subscribe("a"));
    }

    #[test]
    fn user_blocks_of_one_name_merge_and_spaces_are_kept() {
        let file = parse("user a b\ntopic x\nuser c\ntopic y\nuser a b\ntopic   read   z w\n");
        let acl = file.rules_for("id", Some("a b"));
        assert!(acl.can_write("x") && acl.can_read("z w") && !acl.can_write("z w"));
        assert!(!acl.can_read("y"));
    }

    #[test]
    fn every_malformed_line_names_file_and_line() {
        let cases = [
            ("user", "user: missing user name"),
            ("user   ", "user: missing user name"),
            ("topic", "topic: missing topic"),
            ("topic read", "topic: missing topic"),
            ("pattern deny   ", "pattern: missing topic"),
            (
                "topic a/#/b",
                "topic: \"a/#/b\" is not a valid topic filter",
            ),
            ("topic read a+", "topic: \"a+\" is not a valid topic filter"),
            (
                "pattern write x/%c#",
                "pattern: \"x/%c#\" is not a valid topic filter",
            ),
            (
                "topic readonly a",
                "topic: unknown access \"readonly\" (expected read, write, readwrite or deny)",
            ),
            (
                "topics read a",
                "unknown keyword \"topics\" (expected topic, pattern or user)",
            ),
            (
                "User alice",
                "unknown keyword \"User\" (expected topic, pattern or user)",
            ),
        ];
        for (line, message) in cases {
            let text = format!("# header\n\ntopic ok\n{line}\n");
            let e = AclFile::parse(&text, "acl.conf")
                .err()
                .map(|e| e.to_string());
            assert_eq!(e, Some(format!("acl.conf:4: {message}")), "{line}");
        }
    }
}
