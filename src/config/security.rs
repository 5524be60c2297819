//! The authentication options: `allow_anonymous`, `password_file`, `acl_file` and
//! `per_listener_settings`. Without `per_listener_settings` (the default) the last value of
//! each anywhere in the configuration applies to the whole broker; with it, each listener
//! block holds its own (options before any `listener` line belong to the default listener),
//! and a listener without `allow_anonymous true` refuses clients without a user name, as in
//! mosquitto 2.0.
//!
//! Pure: password and ACL files are read through the caller's [`ReadFile`] and parsed by
//! [`crate::auth`]; errors in them name the file and line. This module never opens a file.

use super::mqttsn::ReadFile;
use super::parse::boolean;
use super::ConfigError;
use crate::auth::{AclFile, PasswordFile, Security, SecurityConfig};

/// The options this module handles.
pub(super) const OPTIONS: &[&str] = &[
    "allow_anonymous",
    "password_file",
    "acl_file",
    "per_listener_settings",
];

/// Where an option line stood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Block {
    /// Before any `listener` line, or in a `connection` block.
    Outside,
    /// In the block of the `listener` line with this index (counting `listener` lines).
    Listener(usize),
}

#[derive(Clone, Debug)]
struct Setting {
    key: &'static str,
    value: String,
    block: Block,
    file: String,
    line: usize,
}

/// The authentication options met so far, with where each stood.
#[derive(Clone, Debug, Default)]
pub(super) struct SecurityDraft {
    per_listener: bool,
    settings: Vec<Setting>,
}

impl SecurityDraft {
    pub(super) fn set(
        &mut self,
        key: &str,
        value: &str,
        block: Block,
        file: &str,
        line: usize,
    ) -> Result<(), String> {
        let key = match key {
            "per_listener_settings" => {
                self.per_listener = boolean(key, value)?;
                return Ok(());
            }
            "allow_anonymous" => {
                boolean(key, value)?;
                "allow_anonymous"
            }
            "password_file" => "password_file",
            "acl_file" => "acl_file",
            _ => return Err(format!("unknown option \"{key}\"")),
        };
        self.settings.push(Setting {
            key,
            value: value.to_owned(),
            block,
            file: file.to_owned(),
            line,
        });
        Ok(())
    }

    /// The settings of the broker and, with `per_listener_settings`, of each of the
    /// `listeners` final listeners (`has_default`: the first of them is the default
    /// listener; `implicit`: it is the one standing in for a configuration without any).
    /// `allow_anonymous` is the broker-wide value. Files are read with `read`; without it
    /// each named file leaves a warning and is not used.
    pub(super) fn finish(
        self,
        allow_anonymous: bool,
        has_default: bool,
        listeners: usize,
        implicit: bool,
        mut read: Option<ReadFile<'_>>,
        warnings: &mut Vec<String>,
    ) -> Result<SecurityConfig, ConfigError> {
        let mut config = SecurityConfig {
            per_listener_settings: self.per_listener,
            global: Security {
                allow_anonymous,
                ..Security::default()
            },
            listeners: Vec::new(),
        };
        if self.per_listener {
            config.listeners = vec![Security::default(); listeners];
        }
        for s in self.settings {
            let target = if !self.per_listener {
                &mut config.global
            } else {
                let index = match s.block {
                    Block::Listener(i) => Some(i + usize::from(has_default)),
                    Block::Outside if has_default || implicit => Some(0),
                    Block::Outside => None,
                };
                match index.and_then(|i| config.listeners.get_mut(i)) {
                    Some(target) => target,
                    None => {
                        warnings.push(format!(
                            "{}:{}: {} applies to no listener (with per_listener_settings \
                             true it belongs in a listener block)",
                            s.file, s.line, s.key
                        ));
                        continue;
                    }
                }
            };
            let at = |message: String| ConfigError::new(&s.file, s.line, message);
            match s.key {
                "allow_anonymous" => target.allow_anonymous = s.value == "true",
                key => {
                    let Some(read) = read.as_mut() else {
                        warnings.push(format!(
                            "{}:{}: {key} {} is only read when the configuration is loaded \
                             from a file",
                            s.file, s.line, s.value
                        ));
                        continue;
                    };
                    let text = read(&s.value)
                        .map_err(|e| at(format!("{key}: cannot read {}: {e}", s.value)))?;
                    if key == "password_file" {
                        let users = PasswordFile::parse(&text, &s.value)?;
                        target.password_file = Some((s.value, users));
                    } else {
                        let rules = AclFile::parse(&text, &s.value)?;
                        target.acl_file = Some((s.value, rules));
                    }
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Parser};

    /// A password file with one user, `u`, whose password nobody knows.
    fn passwd() -> String {
        format!("u:$6${}${}==\n", "A".repeat(16), "A".repeat(86))
    }

    /// Parses `text` with `passwd` and `acl` readable, as loading from a file does.
    fn load(text: &str) -> Result<Config, String> {
        let mut parser = Parser::new();
        parser
            .parse_into(text, "c.conf")
            .map_err(|e| e.to_string())?;
        let mut read = |name: &str| match name {
            "passwd" => Ok(passwd()),
            "acl" => Ok("topic read a/#\n".to_owned()),
            "bad-acl" => Ok("\ntopic\n".to_owned()),
            _ => Err("No such file or directory".to_owned()),
        };
        parser.finish_reading(&mut read).map_err(|e| e.to_string())
    }

    fn ok(text: &str) -> Config {
        load(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn global_by_default_wherever_the_lines_stand() {
        let c = ok("listener 1\npassword_file passwd\nlistener 2\nacl_file acl\n");
        let s = &c.security;
        assert!(!s.per_listener_settings && s.listeners.is_empty());
        assert_eq!(
            s.global
                .password_file
                .as_ref()
                .map(|(p, f)| (p.as_str(), f.len())),
            Some(("passwd", 1))
        );
        assert!(s.global.acl_file.is_some());
        assert!(!s.global.allow_anonymous && !c.limits.allow_anonymous);
        let c = ok("password_file passwd\nallow_anonymous true\n");
        assert!(c.security.global.allow_anonymous && c.limits.allow_anonymous);
    }

    #[test]
    fn per_listener_settings_give_each_listener_its_own() {
        let c = ok(
            "per_listener_settings true\nport 1883\npassword_file passwd\n\
                    listener 1884\nallow_anonymous true\nacl_file acl\nlistener 1885\n",
        );
        let s = &c.security;
        assert!(s.per_listener_settings);
        assert_eq!(s.listeners.len(), 3);
        assert!(s.listeners[0].password_file.is_some() && !s.listeners[0].allow_anonymous);
        assert!(s.listeners[1].allow_anonymous && s.listeners[1].acl_file.is_some());
        assert!(s.listeners[1].password_file.is_none());
        assert_eq!(s.listeners[2], crate::auth::Security::default());
        // Without a default listener, lines outside a block apply to none.
        let c = ok("per_listener_settings true\nallow_anonymous true\nlistener 1\n");
        assert!(!c.security.listeners[0].allow_anonymous);
        assert_eq!(
            c.warnings,
            [
                "c.conf:2: allow_anonymous applies to no listener (with per_listener_settings \
              true it belongs in a listener block)"
            ]
        );
        // With no listener at all they apply to the implicit one.
        let c = ok("per_listener_settings true\nallow_anonymous true\n");
        assert!(c.security.listeners[0].allow_anonymous);
    }

    #[test]
    fn file_errors_name_their_file_and_line() {
        assert_eq!(
            load("\nacl_file nowhere\n").err().as_deref(),
            Some("c.conf:2: acl_file: cannot read nowhere: No such file or directory")
        );
        assert_eq!(
            load("acl_file bad-acl\n").err().as_deref(),
            Some("bad-acl:2: topic: missing topic")
        );
        assert_eq!(
            load("per_listener_settings maybe\n").err().as_deref(),
            Some("c.conf:1: per_listener_settings: expected true or false, got \"maybe\"")
        );
    }

    #[test]
    fn parsing_without_files_warns() {
        let c = crate::config::parse("password_file /etc/culex/passwd\n", "t.conf")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.security.global.password_file, None);
        assert_eq!(
            c.warnings,
            [
                "t.conf:1: password_file /etc/culex/passwd is only read when the configuration \
              is loaded from a file"
            ]
        );
    }
}
