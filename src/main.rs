//! The `culex` executable: parses the command line, sets up logging, loads the configuration
//! and runs the reactor until a clean shutdown; or runs one of the tools (`--dump-store`,
//! `culex replay`).
//!
//! This is the only place that prints or chooses an exit status. It must never hold broker
//! logic: everything past start-up belongs to the reactor and the engine.

use std::process::ExitCode;

use culex::cli::{self, Command, Options};
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp_millis()
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

/// The configuration file (or the local-only defaults) with the `-p` ports applied.
fn load_config(options: &Options) -> Result<Config, String> {
    let mut config = match &options.config {
        Some(path) => config::load(path).map_err(|e| e.to_string())?,
        None => Config::local_only(),
    };
    config::apply_ports(&mut config, &options.ports);
    Ok(config)
}
