//! The options of an HTTP API listener (`protocol http`): its bearer token file and its
//! request timeout. Pure: the token file is read through the caller's [`ReadFile`].

use super::mqttsn::ReadFile;
use super::{ConfigError, ListenerConfig, SocketDomain};

/// The options only an HTTP listener takes.
pub(super) const OPTIONS: &[&str] = &["http_token_file", "http_request_timeout"];

/// Seconds a request may take to arrive in full, by default.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u32 = 10;

/// Longest request timeout accepted, in seconds.
pub const REQUEST_TIMEOUT_MAX_SECS: u32 = 3600;

/// Connections an API listener accepts at once when its `max_connections` is not set: the
/// API is for a few operators and tools, and an unbounded one would let a flood of idle
/// connections exhaust the broker's file descriptors.
pub const HTTP_MAX_CONNECTIONS: u32 = 64;

/// The settings of an HTTP API listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// The file the bearer token was read from.
    pub token_file: Option<String>,
    /// The bearer token every request must carry; `None`: reads are open, writes refused.
    pub token: Option<String>,
    /// A request not complete after this many seconds is answered 408 and closed.
    pub request_timeout_secs: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            token_file: None,
            token: None,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
        }
    }
}

/// The HTTP options of one listener block, with the place each was set.
#[derive(Clone, Debug, Default)]
pub(super) struct HttpDraft {
    token_file: Option<(String, Place)>,
    timeout: Option<(u32, Place)>,
}

#[derive(Clone, Debug)]
struct Place {
    key: &'static str,
    file: String,
    line: usize,
}

impl HttpDraft {
    pub(super) fn set(
        &mut self,
        key: &str,
        value: &str,
        file: &str,
        line: usize,
    ) -> Result<(), String> {
        let place = |key| Place {
            key,
            file: file.to_owned(),
            line,
        };
        match key {
            "http_token_file" => {
                self.token_file = Some((value.to_owned(), place("http_token_file")));
            }
            "http_request_timeout" => {
                let secs = parse_timeout(value).ok_or_else(|| {
                    format!(
                        "http_request_timeout: expected a number from 1 to \
                         {REQUEST_TIMEOUT_MAX_SECS}, got \"{value}\""
                    )
                })?;
                self.timeout = Some((secs, place("http_request_timeout")));
            }
            _ => return Err(format!("unknown option \"{key}\"")),
        }
        Ok(())
    }

    /// The listener's HTTP settings when it is an HTTP listener (`is_http`), reading the
    /// token file with `read`; an error for HTTP options on any other listener.
    pub(super) fn finish(
        self,
        is_http: bool,
        read: Option<ReadFile<'_>>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<HttpConfig>, ConfigError> {
        if !is_http {
            let first = [
                self.token_file.as_ref().map(|(_, p)| p),
                self.timeout.as_ref().map(|(_, p)| p),
            ];
            return match first.into_iter().flatten().next() {
                Some(p) => Err(ConfigError::new(
                    &p.file,
                    p.line,
                    format!("{}: only for protocol http", p.key),
                )),
                None => Ok(None),
            };
        }
        let mut http = HttpConfig::default();
        if let Some((secs, _)) = self.timeout {
            http.request_timeout_secs = secs;
        }
        if let Some((path, place)) = self.token_file {
            match read {
                Some(read) => {
                    let text = read(&path).map_err(|e| {
                        ConfigError::new(
                            &place.file,
                            place.line,
                            format!("http_token_file: cannot read {path}: {e}"),
                        )
                    })?;
                    let token = token_of(&text).map_err(|e| {
                        ConfigError::new(&place.file, place.line, format!("http_token_file: {e}"))
                    })?;
                    http.token = Some(token);
                }
                None => warnings.push(format!(
                    "{}:{}: http_token_file {path} is only read when the configuration is \
                     loaded from a file",
                    place.file, place.line
                )),
            }
            http.token_file = Some(path);
        }
        Ok(Some(http))
    }
}

/// An API listener binds the loopback address unless told otherwise, and has no topics.
pub(super) fn check_listener(
    listener: &mut ListenerConfig,
    file: &str,
    line: usize,
) -> Result<(), ConfigError> {
    if listener.mount_point.is_some() {
        let message = "mount_point: not for protocol http";
        return Err(ConfigError::new(file, line, message));
    }
    if listener.bind_address.is_none() {
        listener.bind_address = Some(match listener.socket_domain {
            Some(SocketDomain::Ipv6) => "::1".to_owned(),
            _ => super::LOCAL_ADDRESS.to_owned(),
        });
    }
    Ok(())
}

fn parse_timeout(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|s| (1..=REQUEST_TIMEOUT_MAX_SECS).contains(s))
}

/// The token in a token file's text: its first line, without surrounding white space. It
/// must be non-empty printable ASCII without spaces (the characters a bearer token may use).
pub fn token_of(text: &str) -> Result<String, String> {
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err("the file holds no token on its first line".to_owned());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token must be printable ASCII without spaces".to_owned());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Parser};

    #[test]
    fn api_listener_binds_loopback_and_reads_its_token() {
        let text = "listener 8080\nprotocol http\nhttp_token_file t.txt\nhttp_request_timeout 3\n";
        let mut parser = Parser::new();
        parser.parse_into(text, "c.conf").expect("parses");
        let mut read = |name: &str| match name {
            "t.txt" => Ok("abc\n".to_owned()),
            _ => Err("missing".to_owned()),
        };
        let config = parser.finish_reading(&mut read).expect("valid");
        let l = &config.listeners[0];
        assert_eq!(l.bind_address.as_deref(), Some("127.0.0.1"));
        let http = l.http.as_ref().expect("http settings");
        assert_eq!(http.token.as_deref(), Some("abc"));
        assert_eq!(http.request_timeout_secs, 3);
        let v6 = parse(
            "listener 8080\nprotocol http\nsocket_domain ipv6\n",
            "c.conf",
        );
        let v6 = v6.expect("valid");
        assert_eq!(v6.listeners[0].bind_address.as_deref(), Some("::1"));
        let given = parse("listener 8080 0.0.0.0\nprotocol http\n", "c.conf").expect("valid");
        assert_eq!(given.listeners[0].bind_address.as_deref(), Some("0.0.0.0"));
    }

    #[test]
    fn api_options_are_checked_where_they_are_set() {
        let cases = [
            (
                "listener 1\nhttp_request_timeout 5\n",
                2,
                "only for protocol http",
            ),
            (
                "listener 1\nprotocol http\nhttp_request_timeout 0\n",
                3,
                "from 1 to 3600",
            ),
            (
                "listener 1\nprotocol http\nmount_point a/\n",
                1,
                "not for protocol http",
            ),
        ];
        for (text, line, message) in cases {
            let e = parse(text, "c.conf").expect_err(text);
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(message), "{text}: {}", e.message);
        }
        let mut parser = Parser::new();
        let text = "listener 1\nprotocol http\nhttp_token_file gone\n";
        parser.parse_into(text, "c.conf").expect("parses");
        let e = parser
            .finish_reading(&mut |_: &str| Err("no such file".to_owned()))
            .expect_err("unreadable token");
        assert_eq!((e.line, e.message.contains("gone")), (3, true));
    }

    #[test]
    fn token_is_the_trimmed_first_line() {
        assert_eq!(token_of("  s3cret \nmore\n"), Ok("s3cret".to_owned()));
        assert!(token_of("\n").is_err());
        assert!(token_of("a b\n").is_err());
        assert!(token_of("caf\u{e9}\n").is_err());
    }

    #[test]
    fn timeout_bounds() {
        assert_eq!(parse_timeout("1"), Some(1));
        assert_eq!(parse_timeout("3600"), Some(3600));
        for bad in ["0", "3601", "-1", "+5", "", "1.5", "99999999999"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }
}
