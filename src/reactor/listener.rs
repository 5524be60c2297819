//! Listening sockets: binding them at start-up and at run time, closing them, and accepting
//! connections into the reactor.
//!
//! Owns the listener table and the per-listener connection count. It must never read from or
//! write to an accepted connection; it only hands the new connection to the engine (or, on an
//! API listener, to the HTTP side of the reactor).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use super::admission::Refusal;
use super::conn::Conn;
use super::http::HttpConn;
use super::{Reactor, FIRST_LISTENER_TOKEN};
use crate::api::{HostError, ListenerInfo};
use crate::config::{ListenerConfig, ListenerProtocol, SocketDomain, TlsConfig};
use crate::engine::event::{Input, ListenerId, Peer};
use crate::transport::{tls_config, x509, TcpTransport, TlsTransport, Transport, WsTransport};

/// Pending connections the kernel queues before we accept them.
const BACKLOG: i32 = 1024;

/// TCP listeners open at once, from the configuration and the API together.
pub(super) const TCP_LISTENERS_MAX: usize = 256;

/// Connections taken from one listener per loop turn (refused ones included); the rest are
/// accepted next turn. A flood of connections then cannot hold the loop (and its one clock
/// reading, from which each new connection's CONNECT deadline counts) for long.
const ACCEPT_BUDGET_PER_TURN: usize = 256;

pub(super) struct Listener {
    pub(super) id: ListenerId,
    pub(super) socket: TcpListener,
    pub(super) max_connections: Option<u32>,
    /// Connections from this listener still in the slab.
    pub(super) active: u32,
    pub(super) stack: Stack,
    /// The address actually bound (the port the system chose for port 0).
    pub(super) local: SocketAddr,
    pub(super) protocol: ListenerProtocol,
    pub(super) mount_point: Option<String>,
    /// The API settings of an HTTP listener.
    pub(super) http: Option<HttpSettings>,
}

/// What every connection of an API listener shares.
#[derive(Clone, Debug)]
pub(super) struct HttpSettings {
    pub(super) token: Option<Rc<str>>,
    pub(super) request_timeout_ms: u64,
}

impl Listener {
    pub(super) fn info(&self) -> ListenerInfo {
        ListenerInfo {
            id: self.id,
            port: self.local.port(),
            address: self.local.ip().to_string(),
            protocol: self.protocol,
            tls: matches!(self.stack, Stack::Tls(_) | Stack::Wss(_)),
            connections: u64::from(self.active),
            max_connections: self.max_connections,
            mount_point: self.mount_point.clone(),
        }
    }
}

/// The transport stack a listener puts on each accepted socket.
pub(super) enum Stack {
    Tcp,
    Tls(Secure),
    Ws,
    Wss(Secure),
}

/// A TLS listener's settings and the rustls configuration built from them.
pub(super) struct Secure {
    /// Kept to rebuild `server` when the certificate files are reloaded.
    settings: TlsConfig,
    websockets: bool,
    server: Arc<rustls::ServerConfig>,
}

/// Which part of a verified client certificate becomes the client's user name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Identity {
    None,
    CommonName,
    Subject,
}

impl Identity {
    fn of(settings: &TlsConfig) -> Self {
        if settings.use_identity_as_username {
            Self::CommonName
        } else if settings.use_subject_as_username {
            Self::Subject
        } else {
            Self::None
        }
    }

    /// The user name the certificate gives, `None` when it has no usable one.
    pub(super) fn user_name(self, cert: &[u8]) -> Option<String> {
        match self {
            Self::None => None,
            Self::CommonName => x509::common_name(cert),
            Self::Subject => x509::subject_rfc2253(cert),
        }
    }
}

impl Secure {
    fn new(settings: &TlsConfig, websockets: bool) -> io::Result<Self> {
        Ok(Self {
            server: tls_config::server_config(settings, websockets)?,
            settings: settings.clone(),
            websockets,
        })
    }

    /// Reads the certificate files again. On failure the previous configuration stays.
    pub(super) fn reload(&mut self) -> io::Result<()> {
        self.server = tls_config::server_config(&self.settings, self.websockets)?;
        Ok(())
    }
}

impl Stack {
    fn new(config: &ListenerConfig) -> io::Result<Self> {
        let websockets = config.protocol == ListenerProtocol::WebSockets;
        // HTTPS offers the same ALPN name as secure WebSockets: http/1.1.
        let http = websockets || config.protocol == ListenerProtocol::Http;
        Ok(match (&config.tls, websockets) {
            (None, false) => Self::Tcp,
            (None, true) => Self::Ws,
            (Some(tls), false) => Self::Tls(Secure::new(tls, http)?),
            (Some(tls), true) => Self::Wss(Secure::new(tls, true)?),
        })
    }

    pub(super) fn secure_mut(&mut self) -> Option<&mut Secure> {
        match self {
            Self::Tls(s) | Self::Wss(s) => Some(s),
            Self::Tcp | Self::Ws => None,
        }
    }

    fn identity(&self) -> Identity {
        match self {
            Self::Tls(s) | Self::Wss(s) => Identity::of(&s.settings),
            Self::Tcp | Self::Ws => Identity::None,
        }
    }

    /// Puts the stack on an accepted socket. `packet_size_max` bounds WebSocket frames.
    fn wrap(&self, tcp: TcpTransport, packet_size_max: u32) -> io::Result<Transport> {
        Ok(match self {
            Self::Tcp => Transport::Tcp(tcp),
            Self::Tls(s) => {
                Transport::Tls(Box::new(TlsTransport::new(tcp, Arc::clone(&s.server))?))
            }
            Self::Ws => Transport::Ws(Box::new(WsTransport::new(tcp, packet_size_max))),
            Self::Wss(s) => {
                let tls = TlsTransport::new(tcp, Arc::clone(&s.server))?;
                Transport::Wss(Box::new(WsTransport::new(tls, packet_size_max)))
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Tcp => "mqtt",
            Self::Tls(_) => "mqtt over TLS",
            Self::Ws => "websockets",
            Self::Wss(_) => "websockets over TLS",
        }
    }
}

/// Binds every configured TCP listener; listener `i` of the configuration gets
/// `ListenerId(i)`. `token_of` gives the poll token of each slab key.
pub(super) fn bind_all(
    configs: &[ListenerConfig],
    registry: &Registry,
    token_of: impl Fn(usize) -> Token,
) -> io::Result<Slab<Listener>> {
    let mut listeners = Slab::new();
    for (index, config) in configs.iter().enumerate() {
        if config.is_datagram() {
            continue;
        }
        if listeners.len() >= TCP_LISTENERS_MAX {
            return Err(io::Error::other(format!(
                "listener {}: more than {TCP_LISTENERS_MAX} TCP listeners",
                config.port
            )));
        }
        let id = ListenerId(u32::try_from(index).unwrap_or(u32::MAX));
        let entry = listeners.vacant_entry();
        let token = token_of(entry.key());
        entry.insert(open(config, id, registry, token, None)?);
    }
    Ok(listeners)
}

/// Binds one TCP listener and registers it under `token`. `token_text` is the API token of
/// an HTTP listener, already read (`None`: taken from the configuration).
fn open(
    config: &ListenerConfig,
    id: ListenerId,
    registry: &Registry,
    token: Token,
    token_text: Option<String>,
) -> io::Result<Listener> {
    let addr = resolve(config)?;
    let stack = Stack::new(config)
        .map_err(|e| io::Error::new(e.kind(), format!("listener {}: {e}", config.port)))?;
    // No address and no family: both families, or IPv4 alone where IPv6 is unavailable.
    let dual = config.bind_address.is_none() && config.socket_domain.is_none();
    let bound = match bind(addr, dual) {
        Err(_) if dual => bind(
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port()),
            false,
        ),
        other => other,
    };
    let mut socket =
        bound.map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let local = socket.local_addr()?;
    registry.register(&mut socket, token, Interest::READABLE)?;
    let http = config.http.as_ref().map(|h| HttpSettings {
        token: token_text.or_else(|| h.token.clone()).map(Rc::from),
        request_timeout_ms: u64::from(h.request_timeout_secs) * 1000,
    });
    let name = match (&http, &stack) {
        (Some(_), Stack::Tls(_)) => "http over TLS",
        (Some(_), _) => "http",
        _ => stack.name(),
    };
    log::info!("listening on {local} ({name})");
    Ok(Listener {
        id,
        socket,
        max_connections: config.max_connections,
        active: 0,
        stack,
        local,
        protocol: config.protocol,
        mount_point: config.mount_point.clone(),
        http,
    })
}

/// The address a listener binds: its `bind_address`, or every interface of the configured
/// family. With neither set, `[::]` in dual-stack mode takes IPv4 and IPv6 clients on one
/// socket, as mosquitto listens on both. A host name binds its first address of the family,
/// so one configured listener is always exactly one socket and one `listening on` line.
pub(super) fn resolve(config: &ListenerConfig) -> io::Result<SocketAddr> {
    let family_ok = |addr: &SocketAddr| match config.socket_domain {
        None => true,
        Some(SocketDomain::Ipv4) => addr.is_ipv4(),
        Some(SocketDomain::Ipv6) => addr.is_ipv6(),
    };
    let Some(host) = config.bind_address.as_deref() else {
        let ip = match config.socket_domain {
            Some(SocketDomain::Ipv4) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        return Ok(SocketAddr::new(ip, config.port));
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, config.port));
    }
    let not_found = || {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("cannot listen on {host}:{}: no usable address", config.port),
        )
    };
    let mut addrs = (host, config.port).to_socket_addrs().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {host}:{}: {e}", config.port),
        )
    })?;
    addrs.find(family_ok).ok_or_else(not_found)
}

fn bind(addr: SocketAddr, dual: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restart must not wait for the old connections' TIME_WAIT to expire.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // An explicit IPv6 listener takes IPv6 only, so an IPv4 listener on the same port can
        // coexist; the default listener takes both.
        socket.set_only_v6(!dual)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

impl Reactor {
    /// Accepts until the listener would block. Returns false when accepting failed for a
    /// reason that may pass (e.g. out of file descriptors), so the caller retries later.
    pub(super) fn accept_all(&mut self, index: usize) -> bool {
        let mut budget = ACCEPT_BUDGET_PER_TURN;
        loop {
            let Some(listener) = self.listeners.get_mut(index) else {
                return true;
            };
            if budget == 0 {
                // More may wait and mio will not say so again: next turn.
                self.accept_again.push(index);
                return true;
            }
            let (stream, peer) = match listener.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let id = listener.id;
                    self.admission.log_accept_error(self.now, id, &e);
                    return false;
                }
            };
            budget -= 1;
            if let Some(max) = listener.max_connections {
                if listener.active >= max {
                    // Dropping the stream closes it: the peer sees the refusal at once.
                    let refusal = Refusal::Listener {
                        id: listener.id,
                        max,
                    };
                    self.admission.log_refusal(self.now, peer, refusal);
                    continue;
                }
            }
            // API connections are bounded by their listener alone (see `admission`).
            if listener.http.is_none() {
                if let Err(refusal) = self.admission.admit(self.now, peer.ip(), &self.limits) {
                    self.admission.log_refusal(self.now, peer, refusal);
                    continue;
                }
            }
            let listener_id = listener.id;
            let http = listener.http.clone();
            let port = listener.local.port();
            let identity = listener.stack.identity();
            let packet_size_max = self.limits.packet_size_max();
            let transport = match listener
                .stack
                .wrap(TcpTransport::new(stream), packet_size_max)
            {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("{peer}: cannot start the connection: {e}");
                    continue;
                }
            };
            if self.refused_by_fault(listener_id, port, peer) {
                continue;
            }
            let http = http.map(|h| Box::new(HttpConn::new(h, port, self.now)));
            self.open_conn(index, listener_id, transport, identity, peer, http);
        }
    }

    fn open_conn(
        &mut self,
        index: usize,
        listener: ListenerId,
        mut t: Transport,
        identity: Identity,
        peer: SocketAddr,
        http: Option<Box<HttpConn>>,
    ) {
        let id = self.conn_ids.alloc();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let token = Token(self.conn_base + key);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut t, token, Interest::READABLE)
        {
            log::warn!("{id} {peer}: cannot register connection: {e}");
            return;
        }
        let peer = peer_of(peer);
        log::debug!(
            "{id} {peer}: accepted on listener {} ({})",
            listener.0,
            t.kind()
        );
        let mut conn = Conn::new(id, listener, peer.clone(), t);
        conn.identity = identity;
        let is_http = http.is_some();
        if !is_http {
            conn.admitted = true;
            self.admission.opened();
        }
        conn.http = http;
        entry.insert(conn);
        self.by_id
            .insert(id, u32::try_from(key).unwrap_or(u32::MAX));
        if let Some(l) = self.listeners.get_mut(index) {
            l.active += 1;
        }
        if is_http {
            // The engine never hears of API connections.
            self.http_keys.insert(key);
            return;
        }
        if let Some(t) = self.trace.as_mut() {
            let event = crate::trace::Event::Opened {
                conn: id,
                listener: listener.0,
            };
            t.record(self.now, &event);
        }
        self.feed(Input::Opened {
            conn: id,
            listener,
            peer,
        });
    }
}

impl Reactor {
    /// Opens a TCP listener at run time (`POST /api/v1/listeners`). The address must be an
    /// IP literal: a name lookup would block the loop.
    pub(super) fn open_listener(
        &mut self,
        config: &ListenerConfig,
    ) -> Result<ListenerInfo, HostError> {
        if self.shutdown_deadline.is_some() {
            return Err(HostError::Conflict(
                "the broker is shutting down".to_owned(),
            ));
        }
        if self.listeners.len() >= TCP_LISTENERS_MAX {
            return Err(HostError::Conflict(format!(
                "{TCP_LISTENERS_MAX} TCP listeners are open already"
            )));
        }
        let address = config.bind_address.as_deref().unwrap_or_default();
        if address.parse::<IpAddr>().is_err() {
            return Err(HostError::Invalid(format!(
                "address: not an IP address: {address:?}"
            )));
        }
        let token_text = match config.http.as_ref().and_then(|h| h.token_file.as_deref()) {
            Some(path) => Some(
                crate::config::load::read_token(path)
                    .map_err(|e| HostError::Invalid(format!("http_token_file: {e}")))?,
            ),
            None => None,
        };
        let id = ListenerId(self.next_listener_id);
        let entry = self.listeners.vacant_entry();
        let token = Token(FIRST_LISTENER_TOKEN + entry.key());
        let listener = open(config, id, self.poll.registry(), token, token_text).map_err(|e| {
            match e.kind() {
                io::ErrorKind::AddrInUse => HostError::Conflict(e.to_string()),
                _ => HostError::Invalid(e.to_string()),
            }
        })?;
        self.next_listener_id += 1;
        let info = listener.info();
        entry.insert(listener);
        self.engine.add_listener(id, config.mount_point.as_deref());
        log::info!("listener {} opened over the API", info.port);
        Ok(info)
    }

    /// Closes every TCP listener on `port` (`DELETE /api/v1/listeners/{port}`). Their
    /// accepted connections stay open.
    pub(super) fn close_listener(&mut self, port: u16) -> Result<(), HostError> {
        let keys: Vec<usize> = self
            .listeners
            .iter()
            .filter(|(_, l)| l.local.port() == port)
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            if self.sn_ports().contains(&port) {
                return Err(HostError::Conflict(format!(
                    "listener {port} is an MQTT-SN listener: it cannot be closed at run time"
                )));
            }
            return Err(HostError::NotFound(format!(
                "no TCP listener on port {port}"
            )));
        }
        for key in keys {
            let mut listener = self.listeners.remove(key);
            if let Err(e) = self.poll.registry().deregister(&mut listener.socket) {
                log::debug!("deregistering listener {} failed: {e}", listener.id.0);
            }
            self.accept_retry.retain(|&k| k != key);
            self.accept_again.retain(|&k| k != key);
            self.engine.remove_listener(listener.id);
            log::info!("listener {} closed over the API", listener.local);
        }
        Ok(())
    }

    /// The listener a connection came from, by its identity (slab keys are reused).
    pub(super) fn listener_of(&mut self, id: ListenerId) -> Option<&mut Listener> {
        self.listeners
            .iter_mut()
            .find(|(_, l)| l.id == id)
            .map(|(_, l)| l)
    }
}

/// How logs and the API name the peer at `addr`; an IPv4 client of a dual-stack listener is
/// named by its IPv4 address.
pub(super) fn peer_of(addr: SocketAddr) -> Peer {
    match SocketAddr::new(addr.ip().to_canonical(), addr.port()) {
        SocketAddr::V4(a) => Peer::V4 {
            ip: a.ip().octets(),
            port: a.port(),
        },
        other => Peer::name(&other.to_string()),
    }
}
