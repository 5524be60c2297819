//! The `culex` executable: parses the command line, sets up logging, loads the configuration
//! and runs the reactor until a clean shutdown; or runs one of the tools (`--dump-store`,
//! `culex replay`, `culex passwd`).
//!
//! This is the only place that prints or chooses an exit status. It must never hold broker
//! logic: everything past start-up belongs to the reactor and the engine.

use std::process::ExitCode;

use culex::auth::password;
use culex::cli::{self, Command, Options, Passwd, PasswdAction};
use culex::clock::{self, Clock};
use culex::config::{self, Config};
use culex::engine::Engine;
use culex::reactor::Reactor;
use culex::rng::Rng;
use culex::store::{self, Counts, Store};
use culex::transport::dtls::{dtls_config, DtlsConfig};
use culex::transport::tls_config;

/// Exit status for a usage or configuration error.
const EXIT_USAGE: u8 = 1;
/// Exit status when the broker cannot start (a listener cannot be bound) or its loop fails.
const EXIT_START: u8 = 2;
/// Exit status of `culex replay` when the target's answers differ from the trace.
const EXIT_REPLAY_DIFFERENCES: u8 = 1;
/// Exit status of `culex replay` for a bad trace, target or command line.
const EXIT_REPLAY_BAD: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match cli::parse(&args) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help(text) | Command::Version(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::DumpStore(path)) => {
            return match store::dump(&path) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("culex: {e}");
                    ExitCode::from(EXIT_START)
                }
            };
        }
        Ok(Command::Replay(options)) => return replay(&options),
        Ok(Command::Passwd(p)) => {
            return match passwd(&p) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("culex passwd: {message}");
                    ExitCode::from(EXIT_USAGE)
                }
            };
        }
        Err(message) => {
            eprintln!("{message}");
            if cli::is_replay(&args) {
                return ExitCode::from(EXIT_REPLAY_BAD);
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(options.verbose);
    let config = match load_config(&options) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    // DTLS credentials of the MQTT-SN listeners, read here where files may be read.
    let dtls = match dtls_configs(&config) {
        Ok(d) => d,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if options.test_config {
        // The certificate files are part of what start-up needs: check them too.
        for listener in &config.listeners {
            let websockets = listener.protocol == config::ListenerProtocol::WebSockets;
            if listener.is_datagram() {
                continue;
            }
            if let Some(tls) = &listener.tls {
                if let Err(e) = tls_config::server_config(tls, websockets) {
                    eprintln!("listener {}: {e}", listener.port);
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let deterministic = options.deterministic.or(config.deterministic);
    let trace_file = config.trace_file.clone();
    let seed = deterministic.unwrap_or_else(clock::entropy_seed);
    let mut engine = Engine::new(config.limits.clone(), Rng::new(seed));
    if deterministic.is_some() {
        engine.enable_controls();
    }
    engine.set_security(clock::Millis::ZERO, config.security.clone());
    engine.set_mount_points(
        config
            .listeners
            .iter()
            .map(|l| l.mount_point.clone())
            .collect(),
    );
    engine.set_gateway_listeners(config.listeners.iter().map(|l| l.is_datagram()).collect());
    let clock = match deterministic {
        Some(seed) => {
            log::info!("deterministic mode: seed {seed}, virtual clock");
            Clock::virtual_at(clock::VIRTUAL_WALL_START_MS)
        }
        None => Clock::system(),
    };
    let store = if config.persistence.enabled {
        let path = config.persistence.path();
        let (sync, wall_start) = (config.persistence.sync, clock.wall_start_ms());
        match Store::open(&path, sync, wall_start, clock.now()) {
            Ok((store, snapshot)) => {
                let c = Counts::of(&snapshot);
                engine.enable_journal();
                engine.restore(clock.now(), snapshot);
                log::info!(
                    "store {}: {} sessions, {} subscriptions, {} queued and {} in-flight \
                     messages, {} retained messages",
                    path.display(),
                    c.sessions,
                    c.subscriptions,
                    c.queued,
                    c.inflight,
                    c.retained
                );
                Some(store)
            }
            Err(e) => {
                eprintln!("culex: {e}");
                return ExitCode::from(EXIT_START);
            }
        }
    } else {
        None
    };
    let mut reactor = match Reactor::new(
        config,
        options.config.clone(),
        engine,
        store,
        clock,
        seed.rotate_left(17),
        dtls,
    ) {
        Ok(reactor) => reactor,
        Err(e) => {
            eprintln!("culex: {e}");
            return ExitCode::from(EXIT_START);
        }
    };
    let trace_path = options
        .trace
        .clone()
        .or_else(|| trace_file.map(std::path::PathBuf::from));
    if let Some(path) = trace_path {
        match culex::trace::writer::TraceWriter::create(&path) {
            Ok(writer) => reactor.set_trace(writer, deterministic),
            Err(e) => {
                eprintln!("culex: trace file {}: {e}", path.display());
                return ExitCode::from(EXIT_START);
            }
        }
    }
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("culex: event loop failed: {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

/// `culex replay`: the replay prints its own report; the exit status says whether the
/// target answered as the trace recorded.
fn replay(options: &cli::ReplayOptions) -> ExitCode {
    match culex::trace::replay::run(options) {
        Ok(summary) if summary.differences == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_REPLAY_DIFFERENCES),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_REPLAY_BAD)
        }
    }
}

/// INFO by default (start-up and connection notices, as mosquitto prints), DEBUG with `-v`;
/// `RUST_LOG`, when set, wins over both. Lines go to stderr with a timestamp.
fn init_logging(verbose: bool) {
    // The DTLS library warns about every ClientHello extension it does not know, which a
    // peer controls: only its errors are shown unless RUST_LOG asks for more.
    let default = if verbose {
        "debug,rtc_dtls=error"
    } else {
        "info,rtc_dtls=error"
    };
    // The line env_logger writes by default, formatted in one pass (its own formatter
    // scans every character for line breaks to indent, a cost paid on every connection).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format(|buf, record| {
            use std::io::Write as _;
            writeln!(
                buf,
                "[{} {:<5} {}] {}",
                buf.timestamp_millis(),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .init();
}

/// The DTLS configuration of each listener (by index), `None` where it has none. Errors
/// name the listener and the file at fault.
fn dtls_configs(config: &Config) -> Result<Vec<Option<DtlsConfig>>, String> {
    let mut read = |path: &std::path::Path| std::fs::read_to_string(path);
    config
        .listeners
        .iter()
        .map(|l| {
            let Some(sn) = l.mqttsn.as_ref().filter(|_| l.is_dtls()) else {
                return Ok(None);
            };
            dtls_config(
                l.tls.as_ref(),
                sn.psk_file.as_deref(),
                sn.psk_hint.as_deref(),
                &mut read,
            )
            .map(Some)
            .map_err(|e| format!("listener {}: {e}", l.port))
        })
        .collect()
}

/// `culex passwd`: adds, changes or deletes one user of a password file, keeping every
/// other line. The new file replaces the old one by a rename, with its permissions (a new
/// file is readable by its owner only).
fn passwd(p: &Passwd) -> Result<(), String> {
    let name = p.file.display();
    let create = matches!(p.action, PasswdAction::Set { create: true, .. });
    let existing = if create {
        String::new()
    } else {
        std::fs::read_to_string(&p.file).map_err(|e| format!("cannot read {name}: {e}"))?
    };
    let text = match &p.action {
        PasswdAction::Delete => password::remove_user(&existing, &p.user)
            .ok_or_else(|| format!("user {} not found in {name}", p.user))?,
        PasswdAction::Set { password, .. } => {
            let password = match password {
                Some(pw) => pw.clone(),
                None => ask_password()?,
            };
            let random = ring::rand::SystemRandom::new();
            let line = password::hash_line(&p.user, password.as_bytes(), &random)?;
            password::set_user(&existing, &p.user, &line)
        }
    };
    write_replacing(&p.file, &text).map_err(|e| format!("cannot write {name}: {e}"))
}

/// Writes `text` to a new file beside `path`, then renames it over `path`.
fn write_replacing(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp_name);
    let old = std::fs::metadata(path).ok().map(|m| m.permissions());
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Some(permissions) = old {
            std::fs::set_permissions(&tmp, permissions)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Asks for the password twice. On a terminal the typed characters are not echoed (`stty
/// -echo` on the terminal for the time of each line); otherwise two lines are read from
/// standard input.
fn ask_password() -> Result<String, String> {
    use std::io::IsTerminal as _;
    let tty = std::io::stdin().is_terminal();
    let first = read_secret("Password: ", tty)?;
    let second = read_secret("Reenter password: ", tty)?;
    if first != second {
        return Err("passwords do not match".to_owned());
    }
    if first.is_empty() {
        return Err("empty password".to_owned());
    }
    Ok(first)
}

fn read_secret(prompt: &str, tty: bool) -> Result<String, String> {
    use std::io::{BufRead as _, Write as _};
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        echo(false);
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if tty {
        echo(true);
        eprintln!();
    }
    match read {
        Ok(0) => Err("no password given".to_owned()),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_owned()),
        Err(e) => Err(format!("cannot read the password: {e}")),
    }
}

/// The configuration file (or the local-only defaults) with the `-p` ports applied.
fn load_config(options: &Options) -> Result<Config, String> {
    let mut config = match &options.config {
        Some(path) => config::load(path).map_err(|e| e.to_string())?,
        None => Config::local_only(),
    };
    config::apply_ports(&mut config, &options.ports);
    Ok(config)
}
