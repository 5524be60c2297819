//! The options of the broker-wide bounds against abuse: `global_max_connections`,
//! `connect_timeout`, `max_topic_levels`, `max_subscriptions`, `max_queued_memory` and
//! `max_connection_rate`. Pure: each value is checked and stored in [`Limits`]; what the
//! bounds do is the engine's and the reactor's business, never this file's.

use super::parse::{number, range_error};
use crate::engine::limits::{Limits, CONNECT_TIMEOUT_SECS_MAX, TOPIC_LEVELS_MAX};

/// Sets one of the options above; any other key is an unknown option.
pub(super) fn option(limits: &mut Limits, key: &str, value: &str) -> Result<(), String> {
    let u32_max = u64::from(u32::MAX);
    let in_range = |min: u64, max: u64| {
        number(value, min, max).ok_or_else(|| range_error(key, value, min, max))
    };
    match key {
        "global_max_connections" => {
            limits.global_max_connections = if value == "-1" {
                None
            } else {
                let n = number(value, 0, u32_max).ok_or_else(|| {
                    format!("{key}: expected -1 or a number from 0 to {u32_max}, got \"{value}\"")
                })?;
                Some(narrow(n))
            };
        }
        "connect_timeout" => {
            limits.connect_timeout = narrow(in_range(1, u64::from(CONNECT_TIMEOUT_SECS_MAX))?);
        }
        "max_topic_levels" => {
            limits.max_topic_levels = narrow(in_range(0, u64::from(TOPIC_LEVELS_MAX))?)
        }
        "max_subscriptions" => limits.max_subscriptions = narrow(in_range(0, u32_max)?),
        "max_queued_memory" => limits.max_queued_memory = in_range(0, u64::MAX)?,
        "max_connection_rate" => limits.max_connection_rate = narrow(in_range(0, u32_max)?),
        _ => return Err(format!("unknown option \"{key}\"")),
    }
    Ok(())
}

/// Converts a number already checked against the target's range.
fn narrow<T: TryFrom<u64> + Default>(n: u64) -> T {
    T::try_from(n).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::config::options::{lookup, Scope};
    use crate::config::{parse, Config, ListenerProtocol, Parser};

    /// The options this file parses.
    const OPTIONS: &[&str] = &[
        "global_max_connections",
        "connect_timeout",
        "max_topic_levels",
        "max_subscriptions",
        "max_queued_memory",
        "max_connection_rate",
    ];

    fn ok(text: &str) -> Config {
        parse(text, "t.conf").unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> String {
        match parse(text, "t.conf") {
            Ok(config) => panic!("{text:?} parsed: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_those_of_the_table() {
        let l = ok("").limits;
        assert_eq!(l.global_max_connections, None);
        assert_eq!(l.connect_timeout, 10);
        assert_eq!(l.max_topic_levels, 128);
        assert_eq!(l.max_subscriptions, 10_000);
        assert_eq!(l.max_queued_memory, 256 * 1024 * 1024);
        assert_eq!(l.max_connection_rate, 0);
        for name in OPTIONS {
            let spec = lookup(name).unwrap_or_else(|| panic!("{name} not in the table"));
            assert_eq!(spec.scope, Scope::Global, "{name}");
            assert!(spec.reloadable, "{name}");
        }
        assert_eq!(
            lookup("max_queued_memory").map(|s| s.default),
            Some("268435456")
        );
    }

    #[test]
    fn values_are_stored() {
        let l = ok(
            "global_max_connections 5000\nconnect_timeout 2\nmax_topic_levels 8\n\
                    max_subscriptions 3\nmax_queued_memory 1048576\nmax_connection_rate 50\n",
        )
        .limits;
        assert_eq!(l.global_max_connections, Some(5000));
        assert_eq!(l.connect_timeout, 2);
        assert_eq!(l.max_topic_levels, 8);
        assert_eq!(l.max_subscriptions, 3);
        assert_eq!(l.max_queued_memory, 1_048_576);
        assert_eq!(l.max_connection_rate, 50);
        let off = ok(
            "global_max_connections 5\nglobal_max_connections -1\nmax_topic_levels 0\n\
                      max_subscriptions 0\nmax_queued_memory 0\n",
        )
        .limits;
        assert_eq!(off.global_max_connections, None);
        assert_eq!((off.max_topic_levels, off.max_subscriptions), (0, 0));
        assert_eq!(off.max_queued_memory, 0);
    }

    #[test]
    fn values_at_their_bounds() {
        let l = ok("connect_timeout 3600\nmax_topic_levels 65536\n\
                    max_queued_memory 18446744073709551615\nglobal_max_connections 0\n\
                    max_subscriptions 4294967295\nmax_connection_rate 4294967295\n")
        .limits;
        assert_eq!(l.connect_timeout, 3600);
        assert_eq!(l.max_topic_levels, 65_536);
        assert_eq!(l.max_queued_memory, u64::MAX);
        assert_eq!(l.global_max_connections, Some(0));
        assert_eq!(
            (l.max_subscriptions, l.max_connection_rate),
            (u32::MAX, u32::MAX)
        );
    }

    #[test]
    fn bad_values_name_the_line_and_the_range() {
        let cases = [
            (
                "connect_timeout 0\n",
                "t.conf:1: connect_timeout: expected a number from 1 to 3600",
            ),
            (
                "\nconnect_timeout 3601\n",
                "t.conf:2: connect_timeout: expected a number from 1",
            ),
            (
                "max_topic_levels 65537\n",
                "max_topic_levels: expected a number from 0 to 65536",
            ),
            (
                "max_subscriptions -1\n",
                "max_subscriptions: expected a number from 0 to",
            ),
            (
                "max_queued_memory 1M\n",
                "max_queued_memory: expected a number from 0 to",
            ),
            (
                "max_connection_rate x\n",
                "max_connection_rate: expected a number from 0 to",
            ),
            (
                "global_max_connections -2\n",
                "global_max_connections: expected -1 or a number",
            ),
            (
                "global_max_connections\n",
                "global_max_connections: missing value",
            ),
            (
                "connect_timeout 5 6\n",
                "connect_timeout: unexpected extra value \"6\"",
            ),
        ];
        for (text, message) in cases {
            let e = err(text);
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn options_are_global_even_inside_a_listener_block() {
        let l = ok("listener 1884\nmax_subscriptions 7\nlistener 1885\n").limits;
        assert_eq!(l.max_subscriptions, 7);
    }

    #[test]
    fn api_listeners_get_a_connection_bound_unless_one_is_set() {
        let text = "listener 8080\nprotocol http\nlistener 8081\nprotocol http\n\
                    max_connections -1\nlistener 8082\nprotocol http\nmax_connections 3\n\
                    listener 1883\n";
        let mut parser = Parser::new();
        parser.parse_into(text, "t.conf").expect("parses");
        let config = parser.finish().expect("valid");
        let bounds: Vec<_> = config
            .listeners
            .iter()
            .map(|l| (l.protocol, l.max_connections))
            .collect();
        assert_eq!(
            bounds,
            vec![
                (
                    ListenerProtocol::Http,
                    Some(crate::config::HTTP_MAX_CONNECTIONS)
                ),
                (ListenerProtocol::Http, None),
                (ListenerProtocol::Http, Some(3)),
                (ListenerProtocol::Mqtt, None),
            ]
        );
    }
}
