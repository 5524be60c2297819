//! The command line: turns the arguments into what to do (run, print help, print the
//! version, dump a store, replay a trace, edit a password file). Printing, file access and
//! exit codes belong to the caller.
//!
//! `culex replay ...` is a subcommand with its own options ([`ReplayOptions`]); its usage
//! errors are told apart by [`is_replay`], since replay exits with 2 on them.

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
    /// `replay TRACE --target HOST:PORT ...`: replay a trace against a broker.
    Replay(ReplayOptions),
    /// `passwd ...`: edit a password file.
    Passwd(Passwd),
}

/// How long `culex replay` waits for each packet it expects, unless `--timeout` says.
pub const REPLAY_TIMEOUT_MS_DEFAULT: u64 = 2000;
/// The longest `--timeout` accepted: ten minutes.
pub const REPLAY_TIMEOUT_MS_MAX: u64 = 600_000;

/// `culex replay TRACE --target HOST:PORT [--sn-target HOST:PORT] [--timeout MS]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The trace file.
    pub trace: PathBuf,
    /// `--target HOST:PORT`: the broker the MQTT connections are replayed against.
    pub target: String,
    /// `--sn-target HOST:PORT`: the MQTT-SN gateway the UDP peers are replayed against.
    pub sn_target: Option<String>,
    /// `--timeout MS`: how long to wait for each expected packet or close.
    pub timeout_ms: u64,
}

/// `culex passwd [-c] [-b] [-D] FILE USER [PASSWORD]`: a change to a password file, as
/// `mosquitto_passwd` makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    pub file: PathBuf,
    pub user: String,
    pub action: PasswdAction,
}

/// What `culex passwd` does to the user's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswdAction {
    /// `-D`: remove it.
    Delete,
    /// Add or replace it; with `create` (`-c`) the file is created or emptied first. The
    /// password is the one given with `-b`, or `None`: ask for it.
    Set {
        create: bool,
        password: Option<String>,
    },
}

/// The usage line of `culex passwd`.
pub const PASSWD_SYNOPSIS: &str = "Usage: culex passwd [-c | -D] FILE USER\n\
                                   \x20      culex passwd [-c] -b FILE USER PASSWORD";

const SYNOPSIS: &str = "Usage: culex [-c FILE] [-p PORT]... [-v] [-t] [--deterministic SEED]\n\
                        \x20            [--trace FILE]\n\
                        \x20      culex --dump-store FILE\n\
                        \x20      culex replay TRACE --target HOST:PORT [--sn-target HOST:PORT]\n\
                        \x20                   [--timeout MS]\n\
                        \x20      culex passwd [-c | -D] [-b] FILE USER [PASSWORD]";

const REPLAY_SYNOPSIS: &str =
    "Usage: culex replay TRACE --target HOST:PORT [--sn-target HOST:PORT] [--timeout MS]";

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

fn replay_spec() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "",
        "target",
        "replay the trace's MQTT connections against the broker at HOST:PORT",
        "HOST:PORT",
    );
    opts.optopt(
        "",
        "sn-target",
        "replay the trace's MQTT-SN peers against the gateway at HOST:PORT (UDP)",
        "HOST:PORT",
    );
    opts.optopt(
        "",
        "timeout",
        "wait at most MS milliseconds for each packet or close the trace expects \
         (default 2000)",
        "MS",
    );
    opts.optflag("h", "help", "print this help, then exit");
    opts
}

/// The help text of `culex replay`.
pub fn replay_usage() -> String {
    let brief = format!(
        "{REPLAY_SYNOPSIS}\n\n\
         Drives the client side of a culex trace against a broker and compares what comes\n\
         back with what the trace recorded. Exit status: 0 no difference, 1 differences,\n\
         2 a bad trace or command line."
    );
    replay_spec().usage(&brief)
}

/// Whether the arguments (without the program name) are a `culex replay` command line.
pub fn is_replay(args: &[String]) -> bool {
    args.first().is_some_and(|a| a == "replay")
}

/// A `HOST:PORT` argument: a non-empty host and a port from 1 to 65535.
fn host_port(option: &str, text: &str) -> Result<String, String> {
    let ok = text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!("{option}: expected HOST:PORT, got \"{text}\""))
    }
}

/// Parses the arguments after `replay`.
fn parse_replay(args: &[String]) -> Result<Command, String> {
    let bad = |message: String| {
        format!(
            "culex replay: {message}\n{REPLAY_SYNOPSIS}\n\
             Try 'culex replay --help' for more information."
        )
    };
    let matches = replay_spec().parse(args).map_err(|e| bad(e.to_string()))?;
    if matches.opt_present("h") {
        return Ok(Command::Help(replay_usage()));
    }
    let trace = match matches.free.as_slice() {
        [] => return Err(bad("no trace file given".to_owned())),
        [path] if path.is_empty() => return Err(bad("empty trace file name".to_owned())),
        [path] => PathBuf::from(path),
        [_, extra, ..] => return Err(bad(format!("unexpected argument \"{extra}\""))),
    };
    let target = match matches.opt_str("target") {
        Some(text) => host_port("--target", &text).map_err(bad)?,
        None => return Err(bad("--target HOST:PORT is required".to_owned())),
    };
    let sn_target = match matches.opt_str("sn-target") {
        Some(text) => Some(host_port("--sn-target", &text).map_err(bad)?),
        None => None,
    };
    let timeout_ms = match matches.opt_str("timeout") {
        None => REPLAY_TIMEOUT_MS_DEFAULT,
        Some(text) => match text.parse::<u64>() {
            Ok(ms)
                if text.bytes().all(|b| b.is_ascii_digit())
                    && (1..=REPLAY_TIMEOUT_MS_MAX).contains(&ms) =>
            {
                ms
            }
            _ => {
                return Err(bad(format!(
                    "--timeout: expected milliseconds from 1 to {REPLAY_TIMEOUT_MS_MAX}, \
                     got \"{text}\""
                )))
            }
        },
    };
    Ok(Command::Replay(ReplayOptions {
        trace,
        target,
        sn_target,
        timeout_ms,
    }))
}

/// The help text.
pub fn usage() -> String {
    let brief = format!(
        "{SYNOPSIS}\n\n\
         culex is a single-threaded MQTT 3.1.1 and 5.0 broker.\n\
         Without -c it listens on 127.0.0.1:1883 and accepts anonymous clients.\n\
         'culex replay --help' describes the replay of a trace against a broker."
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
    if is_replay(args) {
        return parse_replay(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "passwd") {
        return parse_passwd(&args[1..]);
    }
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

fn passwd_spec() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optflag(
        "c",
        "",
        "create FILE, or empty it if it exists, before adding USER",
    );
    opts.optflag(
        "b",
        "",
        "take the password from the command line (batch mode)",
    );
    opts.optflag("D", "", "delete USER from FILE");
    opts.optflag("h", "help", "print this help, then exit");
    opts
}

/// The help text of `culex passwd`.
pub fn passwd_usage() -> String {
    let brief = format!(
        "{PASSWD_SYNOPSIS}\n\n\
         Adds, changes or deletes USER in the password file FILE (the format of\n\
         mosquitto_passwd: PBKDF2-SHA512, 101 iterations, a random 12-byte salt), keeping\n\
         every other line. Without -b the password is asked for twice on the terminal,\n\
         without echo (through stty); when standard input is not a terminal the two\n\
         lines are read from it."
    );
    passwd_spec().usage(&brief)
}

/// Parses the arguments after `passwd`.
fn parse_passwd(args: &[String]) -> Result<Command, String> {
    let bad = |message: String| {
        format!(
            "culex passwd: {message}\n{PASSWD_SYNOPSIS}\n\
             Try 'culex passwd --help' for more information."
        )
    };
    let matches = passwd_spec().parse(args).map_err(|e| bad(e.to_string()))?;
    if matches.opt_present("h") {
        return Ok(Command::Help(passwd_usage()));
    }
    let (create, batch, delete) = (
        matches.opt_present("c"),
        matches.opt_present("b"),
        matches.opt_present("D"),
    );
    if delete && (create || batch) {
        return Err(bad("-D cannot be combined with -c or -b".to_owned()));
    }
    let (file, user, password) = match (matches.free.as_slice(), batch) {
        ([file, user], false) => (file, user, None),
        ([file, user, password], true) => (file, user, Some(password.clone())),
        ([_, _], true) => return Err(bad("-b needs a PASSWORD".to_owned())),
        ([_, _, _], false) => {
            return Err(bad("a PASSWORD on the command line needs -b".to_owned()))
        }
        _ => return Err(bad("expected FILE and USER".to_owned())),
    };
    if file.is_empty() {
        return Err(bad("empty file name".to_owned()));
    }
    crate::auth::password::check_user(user).map_err(bad)?;
    if password.as_deref() == Some("") {
        return Err(bad("empty password".to_owned()));
    }
    let action = if delete {
        PasswdAction::Delete
    } else {
        PasswdAction::Set { create, password }
    };
    Ok(Command::Passwd(Passwd {
        file: PathBuf::from(file),
        user: user.clone(),
        action,
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
    fn passwd_subcommand() {
        let passwd = |file: &str, user: &str, action| {
            Ok(Command::Passwd(Passwd {
                file: PathBuf::from(file),
                user: user.to_owned(),
                action,
            }))
        };
        let set = |create, password: Option<&str>| PasswdAction::Set {
            create,
            password: password.map(str::to_owned),
        };
        assert_eq!(
            run(&["passwd", "f", "u"]),
            passwd("f", "u", set(false, None))
        );
        assert_eq!(
            run(&["passwd", "-c", "-b", "f", "u", "p w"]),
            passwd("f", "u", set(true, Some("p w")))
        );
        assert_eq!(
            run(&["passwd", "-cb", "f", "u", "p"]),
            passwd("f", "u", set(true, Some("p")))
        );
        assert_eq!(
            run(&["passwd", "-D", "f", "u"]),
            passwd("f", "u", PasswdAction::Delete)
        );
        assert_eq!(run(&["passwd", "-h"]), Ok(Command::Help(passwd_usage())));
        let first = |args: &[&str]| error(args);
        assert_eq!(
            first(&["passwd", "-D", "-c", "f", "u"]),
            "culex passwd: -D cannot be combined with -c or -b"
        );
        assert_eq!(
            first(&["passwd", "-b", "f", "u"]),
            "culex passwd: -b needs a PASSWORD"
        );
        assert_eq!(
            first(&["passwd", "f", "u", "p"]),
            "culex passwd: a PASSWORD on the command line needs -b"
        );
        assert_eq!(
            first(&["passwd", "f"]),
            "culex passwd: expected FILE and USER"
        );
        assert_eq!(
            first(&["passwd", "-b", "f", "a:b", "p"]),
            "culex passwd: the user name must not contain ':'"
        );
        assert_eq!(
            first(&["passwd", "-b", "f", "u", ""]),
            "culex passwd: empty password"
        );
        assert!(first(&["passwd", "-x", "f", "u"]).starts_with("culex passwd: "));
        assert!(passwd_usage().lines().all(|l| l.len() <= 100));
        assert!(usage().contains("culex passwd"));
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

    #[test]
    fn replay_takes_a_trace_and_a_target() {
        assert_eq!(
            run(&["replay", "t.jsonl", "--target", "127.0.0.1:1883"]),
            Ok(Command::Replay(ReplayOptions {
                trace: "t.jsonl".into(),
                target: "127.0.0.1:1883".into(),
                sn_target: None,
                timeout_ms: REPLAY_TIMEOUT_MS_DEFAULT,
            }))
        );
        assert_eq!(
            run(&[
                "replay",
                "--timeout=500",
                "--sn-target",
                "localhost:1884",
                "t.jsonl",
                "--target=[::1]:1883",
            ]),
            Ok(Command::Replay(ReplayOptions {
                trace: "t.jsonl".into(),
                target: "[::1]:1883".into(),
                sn_target: Some("localhost:1884".into()),
                timeout_ms: 500,
            }))
        );
        assert_eq!(run(&["replay", "-h"]), Ok(Command::Help(replay_usage())));
        assert!(replay_usage().contains("--sn-target"));
        assert!(usage().contains("culex replay TRACE --target HOST:PORT"));
        let args: Vec<String> = vec!["replay".into()];
        assert!(is_replay(&args));
        assert!(!is_replay(&[]));
    }

    #[test]
    fn replay_usage_errors() {
        let cases: [(&[&str], &str); 7] = [
            (&["replay"], "culex replay: no trace file given"),
            (
                &["replay", "t"],
                "culex replay: --target HOST:PORT is required",
            ),
            (
                &["replay", "t", "--target", "1883"],
                "culex replay: --target: expected HOST:PORT, got \"1883\"",
            ),
            (
                &["replay", "t", "--target", "h:0"],
                "culex replay: --target: expected HOST:PORT, got \"h:0\"",
            ),
            (
                &["replay", "t", "u", "--target", "h:1"],
                "culex replay: unexpected argument \"u\"",
            ),
            (
                &["replay", "t", "--target", "h:1", "--timeout", "0"],
                "culex replay: --timeout: expected milliseconds from 1 to 600000, got \"0\"",
            ),
            (
                &["replay", "t", "--target", "h:1", "--sn-target", "x"],
                "culex replay: --sn-target: expected HOST:PORT, got \"x\"",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(error(args), want, "{args:?}");
        }
        let full = run(&["replay"]).err().unwrap_or_default();
        assert!(full.ends_with("Try 'culex replay --help' for more information."));
    }
}
