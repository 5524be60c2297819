//! The command line: turns the arguments into what to do (run, print help, print the
//! version). Printing and exit codes belong to the caller.

use std::path::PathBuf;

/// How to run the broker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-c FILE`: the configuration file; `None` runs with the local-only defaults.
    pub config: Option<PathBuf>,
    /// `-p PORT`, in order: each adds a listener on 127.0.0.1:PORT (see
    /// [`crate::config::apply_ports`]).
    pub ports: Vec<u16>,
    /// `-v`: log at debug level.
    pub verbose: bool,
    /// `-t`: check the configuration and exit.
    pub test_config: bool,
    /// `--deterministic SEED`: a virtual clock and this seed (wins over the configuration's
    /// `deterministic`).
    pub deterministic: Option<u64>,
    /// `--trace FILE`: write a trace of the run (wins over the configuration's `trace_file`).
    pub trace: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    /// `-h`: the text to print.
    Help(String),
    /// `-V`: the text to print.
    Version(String),
    /// `--dump-store FILE`: print what a store holds.
    DumpStore(PathBuf),
}

const SYNOPSIS: &str = "Usage: culex [-c FILE] [-p PORT]... [-v] [-t] [--deterministic SEED]\n\
                        \x20            [--trace FILE]\n\
                        \x20      culex --dump-store FILE";

fn spec() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt("c", "config", "read the configuration from FILE", "FILE");
    opts.optmulti(
        "p",
        "port",
        "also listen on 127.0.0.1:PORT (repeatable; replaces the default 127.0.0.1:1883 \
         listener when the configuration defines none)",
        "PORT",
    );
    opts.optflag("v", "verbose", "log at debug level (RUST_LOG overrides)");
    opts.optflag("t", "test-config", "check the configuration, then exit");
    opts.optopt(
        "",
        "trace",
        "write a trace of the run to FILE: one JSON line per connection and packet",
        "FILE",
    );
    opts.optopt(
        "",
        "deterministic",
        "run on a virtual clock that moves only when told, with every generated value from \
         SEED (for reproducible tests)",
        "SEED",
    );
    opts.optopt(
        "",
        "dump-store",
        "print the sessions, queues and retained messages of a store FILE, then exit",
        "FILE",
    );
    opts.optflag("h", "help", "print this help, then exit");
    opts.optflag("V", "version", "print the version, then exit");
    opts
}

/// The help text.
pub fn usage() -> String {
    let brief = format!(
        "{SYNOPSIS}\n\n\
         culex is a single-threaded MQTT 3.1.1 and 5.0 broker.\n\
         Without -c it listens on 127.0.0.1:1883 and accepts anonymous clients."
    );
    spec().usage(&brief)
}

/// The version text.
pub fn version() -> String {
    format!("culex {}", env!("CARGO_PKG_VERSION"))
}

/// Parses the arguments (without the program name). `Err` holds the problem and a usage
/// reminder, to print as is.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let bad = |message: String| {
        format!("culex: {message}\n{SYNOPSIS}\nTry 'culex --help' for more information.")
    };
    let matches = spec().parse(args).map_err(|e| bad(e.to_string()))?;
    if matches.opt_present("h") {
        return Ok(Command::Help(usage()));
    }
    if matches.opt_present("V") {
        return Ok(Command::Version(version()));
    }
    if let Some(extra) = matches.free.first() {
        return Err(bad(format!("unexpected argument \"{extra}\"")));
    }
    if let Some(path) = matches.opt_str("dump-store") {
        if path.is_empty() {
            return Err(bad("--dump-store: empty file name".to_owned()));
        }
        return Ok(Command::DumpStore(PathBuf::from(path)));
    }
    let config = match matches.opt_str("c") {
        Some(path) if path.is_empty() => return Err(bad("-c: empty file name".to_owned())),
        path => path.map(PathBuf::from),
    };
    let ports = matches
        .opt_strs("p")
        .iter()
        .map(|text| match text.parse::<u16>() {
            Ok(port) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
            _ => Err(bad(format!(
                "-p: expected a port from 0 to 65535, got \"{text}\""
            ))),
        })
        .collect::<Result<Vec<u16>, String>>()?;
    let deterministic = match matches.opt_str("deterministic") {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(seed) if text.bytes().all(|b| b.is_ascii_digit()) => Some(seed),
            _ => {
                return Err(bad(format!(
                    "--deterministic: expected a number from 0 to {}, got \"{text}\"",
                    u64::MAX
                )))
            }
        },
    };
    let trace = match matches.opt_str("trace") {
        Some(path) if path.is_empty() => return Err(bad("--trace: empty file name".to_owned())),
        path => path.map(PathBuf::from),
    };
    Ok(Command::Run(Options {
        config,
        ports,
        deterministic,
        trace,
        verbose: matches.opt_present("v"),
        test_config: matches.opt_present("t"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        parse(&args)
    }

    fn options(args: &[&str]) -> Options {
        match run(args) {
            Ok(Command::Run(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match run(args) {
            Err(text) => text.lines().next().unwrap_or_default().to_owned(),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn no_arguments_run_with_defaults() {
        assert_eq!(options(&[]), Options::default());
    }

    #[test]
    fn every_flag() {
        let expected = Options {
            config: Some(PathBuf::from("conf/culex.conf")),
            ports: vec![1884, 0, 1885],
            verbose: true,
            test_config: true,
            deterministic: Some(7),
            trace: None,
        };
        let short = [
            "--deterministic",
            "7",
            "-c",
            "conf/culex.conf",
            "-p",
            "1884",
            "-p0",
            "-v",
            "-t",
            "-p",
            "1885",
        ];
        assert_eq!(options(&short), expected);
        let long = [
            "--deterministic=7",
            "--config=conf/culex.conf",
            "--port",
            "1884",
            "--port=0",
            "--verbose",
            "--test-config",
            "--port",
            "1885",
        ];
        assert_eq!(options(&long), expected);
        assert_eq!(
            options(&["-vt"]),
            Options {
                verbose: true,
                test_config: true,
                ..Options::default()
            }
        );
    }

    #[test]
    fn deterministic_needs_a_number() {
        for bad in ["x", "-1", "+1", "18446744073709551616", ""] {
            assert!(run(&["--deterministic", bad]).is_err(), "{bad}");
        }
        assert_eq!(options(&["--deterministic", "0"]).deterministic, Some(0));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(run(&["-h"]), Ok(Command::Help(usage())));
        assert_eq!(run(&["--help", "-p", "x"]), Ok(Command::Help(usage())));
        let version = format!("culex {}", env!("CARGO_PKG_VERSION"));
        assert_eq!(run(&["-V"]), Ok(Command::Version(version.clone())));
        assert_eq!(run(&["--version"]), Ok(Command::Version(version)));
        let text = usage();
        for flag in [
            "--config",
            "--port",
            "--verbose",
            "--test-config",
            "--help",
            "--version",
        ] {
            assert!(text.contains(flag), "{flag}");
        }
        assert!(text.lines().all(|l| l.len() <= 100));
    }

    #[test]
    fn dump_store_names_a_file() {
        assert_eq!(
            run(&["--dump-store", "/var/lib/culex/culex.redb"]),
            Ok(Command::DumpStore("/var/lib/culex/culex.redb".into()))
        );
        assert!(error(&["--dump-store", ""]).contains("empty file name"));
        assert!(error(&["--dump-store"]).contains("dump-store"));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(
            error(&["-p", "65536"]),
            "culex: -p: expected a port from 0 to 65535, got \"65536\""
        );
        assert_eq!(
            error(&["-p", "+1"]),
            "culex: -p: expected a port from 0 to 65535, got \"+1\""
        );
        assert_eq!(
            error(&["-p", "abc"]),
            "culex: -p: expected a port from 0 to 65535, got \"abc\""
        );
        assert_eq!(error(&["-c", ""]), "culex: -c: empty file name");
        assert_eq!(error(&["extra"]), "culex: unexpected argument \"extra\"");
        assert!(error(&["-x"]).starts_with("culex: "));
        assert!(error(&["-c"]).starts_with("culex: "));
        assert!(error(&["-c", "a", "-c", "b"]).starts_with("culex: "));
        let full = run(&["-x"]).err().unwrap_or_default();
        assert!(
            full.ends_with("\nTry 'culex --help' for more information."),
            "{full}"
        );
    }
}
