//! Listening sockets: binding them at start-up and accepting connections into the reactor.
//!
//! Owns the listener list and the per-listener connection count. It must never read from or
//! write to an accepted connection; it only hands the new connection to the engine.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};

use super::conn::Conn;
use super::Reactor;
use crate::config::{ListenerConfig, ListenerProtocol, SocketDomain, TlsConfig};
use crate::engine::event::{ConnId, Input, ListenerId};
use crate::transport::{tls_config, x509, TcpTransport, TlsTransport, Transport, WsTransport};

/// Pending connections the kernel queues before we accept them.
const BACKLOG: i32 = 1024;

pub(super) struct Listener {
    pub(super) id: ListenerId,
    pub(super) socket: TcpListener,
    pub(super) max_connections: Option<u32>,
    /// Connections from this listener still in the slab.
    pub(super) active: u32,
    pub(super) stack: Stack,
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
        Ok(match (&config.tls, websockets) {
            (None, false) => Self::Tcp,
            (None, true) => Self::Ws,
            (Some(tls), false) => Self::Tls(Secure::new(tls, false)?),
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

/// Binds every configured listener and registers it under `first_token + index`.
pub(super) fn bind_all(
    configs: &[ListenerConfig],
    registry: &Registry,
    first_token: usize,
) -> io::Result<Vec<Listener>> {
    let mut listeners = Vec::with_capacity(configs.len());
    for (index, config) in configs.iter().enumerate() {
        if config.is_datagram() {
            continue;
        }
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
        let token = Token(first_token + listeners.len());
        registry.register(&mut socket, token, Interest::READABLE)?;
        log::info!("listening on {local} ({})", stack.name());
        let id = ListenerId(u32::try_from(index).unwrap_or(u32::MAX));
        listeners.push(Listener {
            id,
            socket,
            max_connections: config.max_connections,
            active: 0,
            stack,
        });
    }
    Ok(listeners)
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
        loop {
            let Some(listener) = self.listeners.get_mut(index) else {
                return true;
            };
            let (stream, peer) = match listener.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed on listener {}: {e}", listener.id.0);
                    return false;
                }
            };
            if let Some(max) = listener.max_connections {
                if listener.active >= max {
                    // Dropping the stream closes it: the peer sees the refusal at once.
                    log::info!(
                        "refused connection from {peer}: listener {} is at max_connections {max}",
                        listener.id.0
                    );
                    continue;
                }
            }
            let listener_id = listener.id;
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
            self.open_conn(index, listener_id, transport, identity, peer);
        }
    }

    fn open_conn(
        &mut self,
        index: usize,
        listener: ListenerId,
        mut t: Transport,
        identity: Identity,
        peer: SocketAddr,
    ) {
        let id = ConnId(self.next_conn_id);
        self.next_conn_id += 1;
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
        // An IPv4 client of a dual-stack listener is named by its IPv4 address.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let peer: Rc<str> = Rc::from(peer.to_string());
        log::debug!(
            "{id} {peer}: accepted on listener {} ({})",
            listener.0,
            t.kind()
        );
        let mut conn = Conn::new(id, listener, Rc::clone(&peer), t);
        conn.identity = identity;
        entry.insert(conn);
        self.by_id.insert(id, key);
        if let Some(l) = self.listeners.get_mut(index) {
            l.active += 1;
        }
        self.feed(Input::Opened {
            conn: id,
            listener,
            peer,
        });
    }
}
