//! The persistence options: whether culex keeps a store, where, and when its writes reach
//! the disk.

use std::path::{Path, PathBuf};

use super::parse::{boolean, number, single};

/// When the store's writes reach the disk (`persistence_sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every loop turn's changes are flushed to disk before its packets leave: nothing
    /// acknowledged is lost, even on power loss.
    EveryTurn,
    /// Changes are written every turn and flushed at most this many milliseconds apart: a
    /// power loss may lose what was acknowledged in between.
    IntervalMs(u64),
}

/// The persistence options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persistence {
    pub enabled: bool,
    /// `persistence_location`: the directory of the store (empty: the current directory).
    pub location: String,
    /// `persistence_file`.
    pub file: String,
    pub sync: SyncPolicy,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            enabled: false,
            location: String::new(),
            file: "culex.redb".to_owned(),
            sync: SyncPolicy::EveryTurn,
        }
    }
}

impl Persistence {
    /// The store file's path.
    pub fn path(&self) -> PathBuf {
        Path::new(&self.location).join(&self.file)
    }
}

/// Applies one of the `persistence*` options.
pub(super) fn option(p: &mut Persistence, key: &str, values: &[&str]) -> Result<(), String> {
    match key {
        "persistence" => p.enabled = boolean(key, single(key, values)?)?,
        "persistence_location" => p.location = single(key, values)?.to_owned(),
        "persistence_file" => {
            let name = single(key, values)?;
            if name.contains('/') {
                return Err(format!(
                    "{key}: a file name without a directory (see persistence_location), got \
                     \"{name}\""
                ));
            }
            p.file = name.to_owned();
        }
        _ => {
            p.sync = match values {
                ["every-turn"] => SyncPolicy::EveryTurn,
                ["interval", ms] => match number(ms, 1, 3_600_000) {
                    Some(ms) => SyncPolicy::IntervalMs(ms),
                    None => {
                        return Err(format!(
                            "{key}: interval: expected milliseconds from 1 to 3600000, got \
                             \"{ms}\""
                        ))
                    }
                },
                _ => {
                    return Err(format!(
                        "{key}: expected every-turn or interval MS, got \"{}\"",
                        values.join(" ")
                    ))
                }
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse;

    fn ok(text: &str) -> super::super::Config {
        parse(text, "t.conf").unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn persistence_options() {
        let p = ok("").persistence;
        assert_eq!(p, Persistence::default());
        assert!(!p.enabled);
        assert_eq!(p.path(), PathBuf::from("culex.redb"));
        let p = ok("persistence true\npersistence_location /var/lib/culex/\n\
                    persistence_file b.redb\npersistence_sync interval 250\n")
        .persistence;
        assert!(p.enabled);
        assert_eq!(p.path(), PathBuf::from("/var/lib/culex/b.redb"));
        assert_eq!(p.sync, SyncPolicy::IntervalMs(250));
        let p = ok("persistence_sync interval 5\npersistence_sync every-turn\n").persistence;
        assert_eq!(p.sync, SyncPolicy::EveryTurn);
    }
}
