//! Reading a configuration file, the `*.conf` files of its `include_dir` directories, the
//! predefined-topics files of its MQTT-SN listeners and the token files of its API listeners:
//! the only file-system access of the configuration.

use std::fs;
use std::path::{Path, PathBuf};

use super::parse::Parser;
use super::{Config, ConfigError};

/// Reads and parses the configuration file at `path`. The files of each `include_dir` are
/// parsed after it, directory by directory, each directory's `*.conf` files in byte order of
/// their names, as if appended to the main file. Only the main file may use `include_dir`.
/// Predefined-topics files are read last, relative to the current directory like
/// `include_dir`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let mut parser = Parser::new();
    let includes = parser.parse_into(&read(path, &file)?, &file)?;
    for include in includes {
        let in_main = |message: String| ConfigError::new(&include.file, include.line, message);
        let files = conf_files(Path::new(&include.dir))
            .map_err(|e| in_main(format!("include_dir: cannot read {}: {e}", include.dir)))?;
        for included in files {
            if same_file(&included, path) {
                return Err(in_main(format!(
                    "include_dir: {} contains the main configuration file",
                    include.dir
                )));
            }
            let name = included.display().to_string();
            let nested = parser.parse_into(&read(&included, &name)?, &name)?;
            if let Some(nested) = nested.first() {
                return Err(ConfigError::new(
                    &nested.file,
                    nested.line,
                    "include_dir is only allowed in the main configuration file",
                ));
            }
        }
    }
    parser.finish_reading(&mut |name: &str| fs::read_to_string(name).map_err(|e| e.to_string()))
}

/// Reads the bearer token of an API listener opened at run time (see
/// [`super::token_of`] for the file's format).
pub fn read_token(path: &str) -> Result<String, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    super::token_of(&text)
}

fn read(path: &Path, name: &str) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|e| ConfigError::new(name, 0, format!("cannot read: {e}")))
}

/// The regular files (or links to them) named `*.conf` in `dir`, sorted by name.
fn conf_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_conf = path.extension().is_some_and(|ext| ext == "conf");
        if is_conf && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mqtt::QoS;
    use crate::config::ListenerConfig;

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("culex-load-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn loads_a_file() {
        let dir = scratch("plain");
        let main = dir.join("culex.conf");
        write(&main, "listener 1884\nmax_qos 1\n");
        let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.listeners, vec![ListenerConfig::new(1884, None)]);
        assert_eq!(config.limits.max_qos, QoS::AtLeastOnce);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_file() {
        let dir = scratch("missing");
        let main = dir.join("absent.conf");
        let e = load(&main).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.starts_with(&format!("{}: cannot read: ", main.display())),
            "{e}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn include_dir_reads_conf_files_in_name_order() {
        let dir = scratch("include");
        let conf_d = dir.join("conf.d");
        fs::create_dir_all(&conf_d).unwrap_or_else(|e| panic!("{e}"));
        let main = dir.join("culex.conf");
        write(
            &main,
            &format!(
                "listener 1884\ninclude_dir {}\nmax_qos 0\n",
                conf_d.display()
            ),
        );
        write(&conf_d.join("b.conf"), "max_qos 2\nlistener 1886\n");
        write(&conf_d.join("a.conf"), "max_connections 9\nmax_qos 1\n");
        write(&conf_d.join("B.conf"), "listener 1885\n");
        write(&conf_d.join("notes.txt"), "not a configuration file\n");
        fs::create_dir_all(conf_d.join("dir.conf")).unwrap_or_else(|e| panic!("{e}"));
        let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
        // B.conf sorts before a.conf and opens the block that a.conf's option applies to.
        let mut second = ListenerConfig::new(1885, None);
        second.max_connections = Some(9);
        assert_eq!(
            config.listeners,
            vec![
                ListenerConfig::new(1884, None),
                second,
                ListenerConfig::new(1886, None)
            ]
        );
        // Included files come after the whole main file.
        assert_eq!(config.limits.max_qos, QoS::ExactlyOnce);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_the_included_file() {
        let dir = scratch("include-error");
        let conf_d = dir.join("conf.d");
        fs::create_dir_all(&conf_d).unwrap_or_else(|e| panic!("{e}"));
        let main = dir.join("culex.conf");
        write(&main, &format!("include_dir {}\n", conf_d.display()));
        let bad = conf_d.join("bad.conf");
        write(&bad, "\nmax_keepalive abc\n");
        let e = load(&main).err().map(|e| e.to_string()).unwrap_or_default();
        let expected = format!(
            "{}:2: max_keepalive: expected a number from 0 to 65535, got \"abc\"",
            bad.display()
        );
        assert_eq!(e, expected);

        write(&bad, &format!("include_dir {}\n", dir.display()));
        let e = load(&main).err().map(|e| e.to_string()).unwrap_or_default();
        let expected = format!(
            "{}:1: include_dir is only allowed in the main configuration file",
            bad.display()
        );
        assert_eq!(e, expected);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn include_dir_problems_name_the_main_file() {
        let dir = scratch("include-dir");
        let main = dir.join("culex.conf");
        write(
            &main,
            &format!("\ninclude_dir {}\n", dir.join("nowhere").display()),
        );
        let e = load(&main).err().map(|e| e.to_string()).unwrap_or_default();
        let prefix = format!(
            "{}:2: include_dir: cannot read {}: ",
            main.display(),
            dir.join("nowhere").display()
        );
        assert!(e.starts_with(&prefix), "{e}");

        write(&main, &format!("include_dir {}\n", dir.display()));
        let e = load(&main).err().map(|e| e.to_string()).unwrap_or_default();
        let expected = format!(
            "{}:1: include_dir: {} contains the main configuration file",
            main.display(),
            dir.display()
        );
        assert_eq!(e, expected);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn predefined_topics_files() {
        let dir = scratch("topics");
        let main = dir.join("culex.conf");
        let topics = dir.join("topics");
        write(
            &main,
            &format!(
                "listener 1884\nprotocol mqttsn\n\npredefined_topics {}\n",
                topics.display()
            ),
        );
        let load_err = || load(&main).err().map(|e| e.to_string()).unwrap_or_default();

        write(
            &topics,
            "# id topic\n2 sensors/humidity\n\n1 sensors/temperature\n",
        );
        let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
        let sn = config.listeners[0].mqttsn.clone().unwrap_or_default();
        let expected = vec![
            (1, "sensors/temperature".to_owned()),
            (2, "sensors/humidity".to_owned()),
        ];
        assert_eq!(sn.predefined_topics, expected);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);

        let bad = [
            (
                "1 a\nx b\n",
                2,
                "expected a topic id from 1 to 65534, got \"x\"",
            ),
            ("1 a\n\n1 b\n", 3, "topic id 1 is already defined at line 1"),
            (
                "5 a/+\n",
                1,
                "topic id 5: \"a/+\" must not contain the wildcards + or #",
            ),
        ];
        for (text, line, message) in bad {
            write(&topics, text);
            assert_eq!(
                load_err(),
                format!("{}:{line}: {message}", topics.display())
            );
        }

        fs::remove_file(&topics).unwrap_or_else(|e| panic!("{e}"));
        let prefix = format!(
            "{}:4: predefined_topics: cannot read {}: ",
            main.display(),
            topics.display()
        );
        let e = load_err();
        assert!(e.starts_with(&prefix), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
