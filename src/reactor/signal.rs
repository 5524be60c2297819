//! Process signals, delivered through the poller: SIGINT/SIGTERM start a clean shutdown,
//! SIGHUP reloads the configuration file.
//!
//! Owns the signal source and the reload. It must never act inside a signal handler (the
//! handler only wakes the poller) and never apply listener changes on reload: sockets are
//! bound once, at start-up; only certificate, password and ACL files are read again (a
//! configuration that fails to load, a bad password or ACL file included, changes nothing).

use std::io;

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::Reactor;
use crate::config;

/// Installs the handlers and registers their wake-up pipe with the poller.
pub(super) fn register(registry: &Registry, token: Token) -> io::Result<Signals> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    registry.register(&mut signals, token, Interest::READABLE)?;
    Ok(signals)
}

/// What the loop must do after the pending signals were handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterSignals {
    Continue,
    /// A second stop request during shutdown: leave at once.
    ExitNow,
}

impl Reactor {
    pub(super) fn handle_signals(&mut self) -> AfterSignals {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGINT | SIGTERM => {
                    if self.shutdown_deadline.is_some() {
                        log::warn!("second stop signal: exiting without waiting");
                        return AfterSignals::ExitNow;
                    }
                    log::info!("signal {signal} received: shutting down");
                    self.begin_shutdown();
                }
                SIGHUP => self.reload(),
                other => log::debug!("ignoring signal {other}"),
            }
        }
        AfterSignals::Continue
    }

    fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            log::info!("SIGHUP received but no configuration file was given: nothing to reload");
            return;
        };
        match config::load(&path) {
            Ok(new) => {
                for warning in &new.warnings {
                    log::warn!("{warning}");
                }
                self.limits = new.limits.clone();
                self.engine.set_limits(self.now, new.limits);
                self.engine.set_security(self.now, new.security);
                log::info!("configuration reloaded from {}", path.display());
                self.reload_certificates();
                log::info!("listener settings are not changed by a reload; restart to apply them");
            }
            Err(e) => log::error!("configuration not reloaded: {e}"),
        }
    }

    /// Reads every TLS listener's certificate and key files again. New connections use the
    /// new files; established ones keep their session. A listener whose files fail to load
    /// keeps its previous certificates.
    fn reload_certificates(&mut self) {
        for (_, listener) in self.listeners.iter_mut() {
            let Some(secure) = listener.stack.secure_mut() else {
                continue;
            };
            match secure.reload() {
                Ok(()) => log::info!("listener {}: certificates reloaded", listener.id.0),
                Err(e) => log::error!(
                    "listener {}: certificates not reloaded, keeping the previous ones: {e}",
                    listener.id.0
                ),
            }
        }
    }
}
