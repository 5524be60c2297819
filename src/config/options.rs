//! The table of configuration options culex knows: scope, value type, default, whether a
//! SIGHUP reload applies it, and whether it is supported, ignored or not supported yet.
//! The parser dispatches on it and the tests check it against the manual page.

/// Where an option may appear and what it configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Applies to the whole broker, wherever it appears in the file.
    Global,
    /// Applies to the listener block it appears in (before any `listener` line: the
    /// default listener).
    Listener,
    /// Applies to the bridge (`connection` block) it appears in; an error elsewhere.
    Bridge,
}

/// How culex treats an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Parsed, checked and applied.
    Supported,
    /// Accepted with a warning; it only concerns logging or process management.
    Ignored,
    /// Rejected: the feature it configures is not in this version.
    NotYet,
}

/// One configuration option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub scope: Scope,
    /// The value type, as the manual page names it.
    pub value: &'static str,
    /// The default, as the manual page states it.
    pub default: &'static str,
    /// Whether a SIGHUP reload applies a changed value.
    pub reloadable: bool,
    pub support: Support,
    /// A valid value, used by the tests.
    pub example: &'static str,
}

use Scope::{Bridge, Global, Listener};

const fn supported(
    name: &'static str,
    scope: Scope,
    value: &'static str,
    default: &'static str,
    reloadable: bool,
    example: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        scope,
        value,
        default,
        reloadable,
        support: Support::Supported,
        example,
    }
}

const fn ignored(name: &'static str, example: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        scope: Global,
        value: "any",
        default: "-",
        reloadable: false,
        support: Support::Ignored,
        example,
    }
}

const fn not_yet(name: &'static str) -> OptionSpec {
    not_yet_in(name, Global)
}

/// A bridge option of mosquitto whose value culex accepts and ignores.
const fn bridge_ignored(
    name: &'static str,
    value: &'static str,
    example: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        scope: Bridge,
        value,
        default: "-",
        reloadable: false,
        support: Support::Ignored,
        example,
    }
}

const fn not_yet_in(name: &'static str, scope: Scope) -> OptionSpec {
    OptionSpec {
        name,
        scope,
        value: "-",
        default: "-",
        reloadable: false,
        support: Support::NotYet,
        example: "x",
    }
}

/// Every option culex recognises, in the order of the manual page.
#[rustfmt::skip]
pub const OPTIONS: &[OptionSpec] = &[
    supported("listener", Global, "port [address]", "none", false, "1884 127.0.0.1"),
    supported("port", Global, "port", "1883", false, "1884"),
    supported("bind_address", Global, "address", "all interfaces", false, "127.0.0.1"),
    supported("protocol", Listener, "mqtt | websockets | mqttsn | http", "mqtt", false, "http"),
    supported("max_connections", Listener, "integer", "-1", false, "100"),
    supported("socket_domain", Listener, "ipv4 | ipv6", "unset", false, "ipv4"),
    supported("mount_point", Listener, "prefix", "none", false, "site1/"),
    supported("certfile", Listener, "file", "none", true, "/etc/culex/server.crt"),
    supported("keyfile", Listener, "file", "none", true, "/etc/culex/server.key"),
    supported("cafile", Listener, "file", "none", true, "/etc/culex/ca.crt"),
    supported("capath", Listener, "directory", "none", true, "/etc/culex/ca.d"),
    supported("require_certificate", Listener, "boolean", "false", false, "false"),
    supported("use_identity_as_username", Listener, "boolean", "false", false, "false"),
    supported("use_subject_as_username", Listener, "boolean", "false", false, "false"),
    supported("tls_version", Listener, "tlsv1.2 | tlsv1.3", "tlsv1.2", false, "tlsv1.2"),
    supported("ciphers", Listener, "list", "all", false, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    supported("ciphers_tls1.3", Listener, "list", "all", false, "TLS_AES_128_GCM_SHA256"),
    supported("gateway_id", Listener, "integer", "1", false, "2"),
    supported("advertise_interval", Listener, "seconds", "900", false, "60"),
    supported("multicast_group", Listener, "address:port", "none", false, "225.1.1.1:1883"),
    supported("multicast_interface", Listener, "address | name", "none", false, "192.168.1.10"),
    supported("multicast_ttl", Listener, "integer", "1", false, "4"),
    supported("predefined_topics", Listener, "file", "none", false, "/etc/culex/topics"),
    supported("max_clients", Listener, "integer", "-1", false, "100"),
    supported("retry_interval", Listener, "seconds", "10", false, "15"),
    supported("retry_count", Listener, "integer", "5", false, "3"),
    supported("sleep_buffer", Listener, "integer", "100", false, "50"),
    supported("psk_file", Listener, "file", "none", false, "/etc/culex/psk"),
    supported("psk_hint", Listener, "text", "none", false, "culex"),
    supported("http_token_file", Listener, "file", "none", false, "/etc/culex/api-token"),
    supported("http_request_timeout", Listener, "seconds", "10", false, "30"),
    supported("deterministic", Global, "seed", "off", false, "42"),
    supported("trace_file", Global, "file", "none", false, "/tmp/culex-trace.jsonl"),
    supported("allow_anonymous", Global, "boolean", "false", true, "true"),
    supported("connection_messages", Global, "boolean", "true", true, "false"),
    supported("password_file", Global, "file", "none", true, "/etc/culex/passwd"),
    supported("acl_file", Global, "file", "none", true, "/etc/culex/acl"),
    supported("per_listener_settings", Global, "boolean", "false", true, "true"),
    supported("max_inflight_messages", Global, "integer", "20", true, "10"),
    supported("max_queued_messages", Global, "integer", "1000", true, "500"),
    supported("max_queued_bytes", Global, "integer", "0", true, "1048576"),
    supported("message_size_limit", Global, "integer", "0", true, "65536"),
    supported("max_packet_size", Global, "integer", "0", true, "131072"),
    supported("max_keepalive", Global, "integer", "65535", true, "600"),
    supported("persistent_client_expiration", Global, "duration", "never", true, "2d"),
    supported("sys_interval", Global, "integer", "10", true, "30"),
    supported("retain_available", Global, "boolean", "true", true, "false"),
    supported("max_topic_alias", Global, "integer", "10", true, "20"),
    supported("max_qos", Global, "integer", "2", true, "1"),
    supported("global_max_connections", Global, "integer", "-1", true, "5000"),
    supported("connect_timeout", Global, "seconds", "10", true, "5"),
    supported("max_topic_levels", Global, "integer", "128", true, "32"),
    supported("max_subscriptions", Global, "integer", "10000", true, "500"),
    supported("max_queued_memory", Global, "bytes", "268435456", true, "67108864"),
    supported("max_connection_rate", Global, "integer", "0", true, "20"),
    supported("persistence", Global, "boolean", "false", false, "true"),
    supported("persistence_location", Global, "directory", "current directory", false, "/tmp"),
    supported("persistence_file", Global, "file name", "culex.redb", false, "broker.redb"),
    supported(
        "persistence_sync",
        Global,
        "every-turn | interval ms",
        "every-turn",
        false,
        "interval 9",
    ),
    supported("include_dir", Global, "directory", "none", true, "/etc/culex/conf.d"),
    supported("connection", Global, "name", "none", false, "b2"),
    supported("address", Bridge, "host[:port] ...", "none", false, "10.0.0.1 [::1]:1884"),
    supported("addresses", Bridge, "host[:port] ...", "none", false, "broker.example.com"),
    supported("round_robin", Bridge, "boolean", "false", false, "true"),
    supported("topic", Bridge, "pattern [direction [qos [prefixes]]]", "none", false,
              "sensors/# both 1 \"\" site1/"),
    supported("bridge_protocol_version", Bridge, "mqttv311 | mqttv50", "mqttv311", false,
              "mqttv50"),
    supported("remote_clientid", Bridge, "id", "culex.NAME", false, "site1"),
    supported("clientid", Bridge, "id", "culex.NAME", false, "site1"),
    supported("local_clientid", Bridge, "id", "local.REMOTE_CLIENTID", false, "site1.local"),
    supported("remote_username", Bridge, "name", "none", false, "site1"),
    supported("username", Bridge, "name", "none", false, "site1"),
    supported("remote_password", Bridge, "password", "none", false, "secret"),
    supported("password", Bridge, "password", "none", false, "secret"),
    supported("cleansession", Bridge, "boolean", "false", false, "true"),
    supported("keepalive_interval", Bridge, "seconds", "60", false, "30"),
    supported("try_private", Bridge, "boolean", "true", false, "false"),
    supported("notifications", Bridge, "boolean", "true", false, "false"),
    supported("notification_topic", Bridge, "topic",
              "$SYS/broker/connection/REMOTE_CLIENTID/state", false, "bridges/site1"),
    supported("notifications_local_only", Bridge, "boolean", "false", false, "true"),
    supported("restart_timeout", Bridge, "base [cap]", "5 30", false, "10 120"),
    supported("bridge_cafile", Bridge, "file", "none", false, "/etc/culex/remote-ca.crt"),
    supported("bridge_capath", Bridge, "directory", "none", false, "/etc/ssl/certs"),
    supported("bridge_certfile", Bridge, "file", "none", false, "/etc/culex/bridge.crt"),
    supported("bridge_keyfile", Bridge, "file", "none", false, "/etc/culex/bridge.key"),
    supported("bridge_insecure", Bridge, "boolean", "false", false, "true"),
    supported("bridge_alpn", Bridge, "protocol", "none", false, "mqtt"),
    supported("bridge_max_queued_messages", Bridge, "integer", "0", false, "5000"),
    supported("bridge_transport", Bridge, "tcp | websockets [path]", "tcp", false,
              "websockets /ws"),
    supported("bridge_type", Bridge, "mqtt | http | mqttsn", "mqtt", false, "mqtt"),
    supported("bridge_url", Bridge, "http[s]://host[:port][/path]", "none", false,
              "https://hooks.example.com:8443/culex"),
    supported("bridge_events", Bridge, "kind[,kind...]", "message", false,
              "message,connected"),
    supported("bridge_hmac_secret", Bridge, "secret", "none", false, "s3cret"),
    supported("bridge_batch", Bridge, "integer", "1", false, "50"),
    supported("bridge_timeout", Bridge, "seconds", "10", false, "30"),
    supported("bridge_multicast_group", Bridge, "address:port", "none", false,
              "225.1.1.1:1883"),
    supported("bridge_search_radius", Bridge, "integer", "1", false, "2"),
    supported("bridge_gateway_id", Bridge, "integer", "any", false, "3"),
    supported("bridge_identity", Bridge, "identity", "none", false, "site1"),
    supported("bridge_psk", Bridge, "hex key", "none", false, "a1b2c3"),
    supported("bridge_predefined_topic", Bridge, "id topic", "none", false, "1 sensors/temp"),
    bridge_ignored("start_type", "automatic", "automatic"),
    bridge_ignored("bridge_attempt_unsubscribe", "boolean", "true"),
    ignored("log_dest", "stderr"),
    ignored("log_type", "all"),
    ignored("log_timestamp", "true"),
    ignored("log_timestamp_format", "%Y-%m-%dT%H:%M:%S"),
    ignored("pid_file", "/run/culex.pid"),
    ignored("user", "culex"),
    ignored("autosave_interval", "1800"),
    ignored("autosave_on_changes", "false"),
    not_yet("plugin"),
    not_yet("auth_plugin"),
    not_yet("crlfile"),
    not_yet("dhparamfile"),
    not_yet_in("bridge_bind_address", Bridge),
    not_yet_in("bridge_tls_version", Bridge),
    not_yet_in("bridge_require_ocsp", Bridge),
    not_yet_in("bridge_outgoing_retain", Bridge),
    not_yet_in("bridge_reload_type", Bridge),
    not_yet_in("bridge_receive_maximum", Bridge),
    not_yet_in("bridge_session_expiry_interval", Bridge),
    not_yet_in("bridge_max_packet_size", Bridge),
    not_yet_in("bridge_max_topic_alias", Bridge),
    not_yet_in("idle_timeout", Bridge),
    not_yet_in("threshold", Bridge),
    not_yet_in("local_username", Bridge),
    not_yet_in("local_password", Bridge),
];

/// Option name prefixes that belong to features not in this version.
pub const NOT_YET_PREFIXES: &[&str] = &["plugin_opt_", "auth_opt_"];

/// The option called `name`, if culex knows it.
pub fn lookup(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|spec| spec.name == name)
}

/// Whether `name` is a prefixed option family of a feature not in this version.
pub fn is_not_yet_prefix(name: &str) -> bool {
    NOT_YET_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAN: &str = include_str!("../../man/culex.conf.5");

    #[test]
    fn names_are_unique() {
        for (i, a) in OPTIONS.iter().enumerate() {
            assert!(
                OPTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    #[test]
    fn lookup_finds_every_option() {
        for spec in OPTIONS {
            assert_eq!(lookup(spec.name), Some(spec));
        }
        assert_eq!(lookup("no_such_option"), None);
        assert!(is_not_yet_prefix("plugin_opt_db"));
        assert!(!is_not_yet_prefix("plugin"));
    }

    /// The option names of each `.B` line of the manual page, with the text that follows
    /// the line up to the next paragraph macro.
    fn entries() -> Vec<(Vec<&'static str>, String)> {
        let lines: Vec<&str> = MAN.lines().collect();
        let mut entries = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix(".B ") else {
                continue;
            };
            // `\%` only keeps roff from hyphenating a name.
            let names = rest
                .split_whitespace()
                .map(|w| w.trim_start_matches("\\%"))
                .take_while(|w| !w.starts_with('\\'))
                .map(|w| w.trim_matches('"').trim_end_matches(','))
                .collect();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with(".TP") && !l.starts_with(".SH"))
                .copied()
                .collect();
            // roff writes a minus sign as `\-`.
            entries.push((names, body.join("\n").replace("\\-", "-")));
        }
        entries
    }

    /// The manual page names every option in a `.B` line, so none goes undocumented.
    #[test]
    fn manual_page_documents_every_option() {
        let entries = entries();
        let documented = |name: &str| entries.iter().any(|(names, _)| names.contains(&name));
        for spec in OPTIONS {
            assert!(
                documented(spec.name),
                "{} missing from culex.conf.5",
                spec.name
            );
        }
        for prefix in NOT_YET_PREFIXES {
            let family = format!("{prefix}*");
            assert!(documented(&family), "{family} missing from culex.conf.5");
        }
    }

    /// Each supported option has its own entry stating its scope, default and reloading.
    #[test]
    fn manual_page_states_scope_default_and_reload() {
        let entries = entries();
        for spec in OPTIONS.iter().filter(|s| s.support == Support::Supported) {
            let entry = entries
                .iter()
                .find(|(names, body)| names.first() == Some(&spec.name) && body.contains("Scope:"));
            let Some((_, body)) = entry else {
                panic!("no entry for {}", spec.name);
            };
            let scope = match spec.scope {
                Global => "Scope: global.",
                Listener => "Scope: listener.",
                Bridge => "Scope: bridge.",
            };
            let reload = if spec.reloadable {
                "Reloaded on SIGHUP."
            } else {
                "Not reloaded."
            };
            let default = format!("Default: {}.", spec.default);
            for part in [scope, reload, default.as_str()] {
                assert!(body.contains(part), "{}: \"{part}\" missing", spec.name);
            }
        }
    }
}
