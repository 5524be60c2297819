//! Topic names and topic filters (spec 4.7): validity, shared-subscription syntax and
//! matching.
//!
//! Pure string functions for the engine and the decoder. This module must never allocate
//! on the matching path, never keep state, and never panic on any input.

/// Topic names and filters are UTF-8 strings, so at most 65,535 bytes (spec 1.5.4).
const MAX_LEN: usize = u16::MAX as usize;

/// The prefix of a shared subscription (v5 4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// A valid topic name: non-empty [MQTT-4.7.3-1], no wildcard characters [MQTT-3.3.2-2],
/// no U+0000 [MQTT-4.7.3-2], at most 65,535 bytes [MQTT-4.7.3-3].
pub fn valid_topic_name(t: &str) -> bool {
    !t.is_empty() && t.len() <= MAX_LEN && !t.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// A valid topic filter: non-empty [MQTT-4.7.3-1], at most 65,535 bytes, '#' only as the
/// whole last level [MQTT-4.7.1-1], '+' only as a whole level [MQTT-4.7.1-2].
pub fn valid_topic_filter(f: &str) -> bool {
    if f.is_empty() || f.len() > MAX_LEN || f.contains('\0') {
        return false;
    }
    let mut levels = f.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "#" if last => {}
            "+" => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// A subscription filter, split into its shared-subscription parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter<'a> {
    /// An ordinary filter.
    Plain(&'a str),
    /// `$share/GROUP/FILTER` (v5 4.8.2).
    Shared { group: &'a str, filter: &'a str },
}

/// Parses a subscription filter. `$share/GROUP/FILTER` is shared when GROUP is non-empty
/// and holds no '/', '+' or '#' and FILTER is a valid filter [MQTT-4.8.2-1]
/// [MQTT-4.8.2-2]; any other valid filter is plain. `None` when invalid.
pub fn parse_filter(f: &str) -> Option<Filter<'_>> {
    if let Some(rest) = f.strip_prefix(SHARE_PREFIX) {
        let (group, filter) = rest.split_once('/')?;
        if group.is_empty() || group.contains(['+', '#']) || !valid_topic_filter(filter) {
            return None;
        }
        return Some(Filter::Shared { group, filter });
    }
    valid_topic_filter(f).then_some(Filter::Plain(f))
}

/// Whether `topic` matches `filter` (spec 4.7). '+' matches exactly one level (possibly
/// empty), '#' matches the rest including the parent level ("a/#" matches "a"). A filter
/// starting with a wildcard does not match a topic starting with '$'. [MQTT-4.7.2-1]
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    if topic.starts_with('$') {
        // [MQTT-4.7.2-1]
        let first = filter.split('/').next().unwrap_or("");
        if first == "+" || first == "#" {
            return false;
        }
    }
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return f.next().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_validity() {
        for ok in [
            "a",
            "/",
            "a/b",
            "sport/tennis/player1",
            "$SYS/x",
            " ",
            "é/ü",
        ] {
            assert!(valid_topic_name(ok), "{ok}");
        }
        for bad in ["", "a/+", "#", "a/b#", "+", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(valid_topic_name(&"x".repeat(65_535)));
        assert!(!valid_topic_name(&"x".repeat(65_536)));
    }

    #[test]
    fn topic_filter_validity() {
        for ok in [
            "#", "+", "a/#", "a/+/b", "+/+", "/+", "+/", "//", "a", "$SYS/#", "+/#",
        ] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "#/", "a/b+", "+a", "a/++", "##", "a\0"] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        assert!(!valid_topic_filter(&"x".repeat(65_536)));
    }

    #[test]
    fn shared_filter_parsing() {
        assert_eq!(parse_filter("a/b"), Some(Filter::Plain("a/b")));
        assert_eq!(parse_filter("$share"), Some(Filter::Plain("$share")));
        assert_eq!(
            parse_filter("$sharex/g/a"),
            Some(Filter::Plain("$sharex/g/a"))
        );
        assert_eq!(
            parse_filter("$share/g1/sport/#"),
            Some(Filter::Shared {
                group: "g1",
                filter: "sport/#"
            })
        );
        assert_eq!(
            parse_filter("$share/g/+"),
            Some(Filter::Shared {
                group: "g",
                filter: "+"
            })
        );
        assert_eq!(
            parse_filter("$share/g//a"),
            Some(Filter::Shared {
                group: "g",
                filter: "/a"
            })
        );
        for bad in [
            "$share/",
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(parse_filter(bad), None, "{bad}");
        }
        assert_eq!(parse_filter("$share/g/a#"), None);
        assert_eq!(parse_filter("a/#/b"), None);
        assert_eq!(parse_filter(""), None);
    }

    #[test]
    fn matching_exact_and_single_level() {
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/c"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(matches("sport/+", "sport/"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("+", "a"));
        assert!(matches("a//b", "a//b"));
        assert!(matches("a/+/b", "a//b"));
    }

    #[test]
    fn matching_multi_level() {
        assert!(matches("#", "a"));
        assert!(matches("#", "a/b/c"));
        assert!(matches("#", "/"));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/#", "sport/"));
        assert!(matches("sport/#", "sport/tennis/player1"));
        assert!(!matches("sport/#", "sports"));
        assert!(matches("sport/tennis/#", "sport/tennis"));
        assert!(matches("+/#", "a"));
        assert!(matches("+/tennis/#", "sport/tennis/x"));
        assert!(!matches("a/#/b", "a/x/b"));
    }

    #[test]
    fn wildcards_do_not_match_dollar_topics_mqtt_4_7_2_1() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(!matches("+", "$SYS"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS"));
        assert!(matches("a/#", "a/$x"));
        assert!(matches("+/$x", "a/$x"));
    }
}
