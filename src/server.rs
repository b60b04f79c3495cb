//! Sockets and the serving loop: [`bind`] and [`run`].
//!
//! The server is a function of its sockets and a shutdown future
//! ([`run`]), so tests bind `127.0.0.1:0` in process and the binary binds
//! the configured addresses (assembled by `service`, above it).
//!
//! UDP: one socket per core on each address, all bound to the same port with
//! `SO_REUSEPORT`, so the kernel spreads datagrams over the sockets and each
//! receive loop (`dns::udp`) keeps one core busy (one socket serves one
//! core). TCP: one listener per address (RFC 7766: every resolver must serve
//! TCP), its connections bounded by `dns::tcp` (the allow check at accept,
//! caps in total and per client, the idle timeout).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

use socket2::{Domain, Protocol, Socket, Type};
use tracing::info;

use crate::dns::Handler;
use crate::dns::proxy::Proxies;
use crate::dns::tcp::{Connections, TcpLimits};
use crate::tls::Certificates;

/// Bound sockets, ready to serve.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets (several per address with SO_REUSEPORT).
    pub udp: Vec<UdpSocket>,
    /// TCP listeners, one per address.
    pub tcp: Vec<TcpListener>,
    /// DNS over TLS listeners, one per address ([`Listeners::bind_tls`]).
    pub tls: Vec<TcpListener>,
    /// DNS over HTTPS listeners, one per address ([`Listeners::bind_tls`]).
    pub https: Vec<TcpListener>,
}

/// A socket that cannot be bound: names the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {proto} {addr}: {source}")]
pub struct BindError {
    /// `udp`, `tcp`, `tls` or `https`.
    pub proto: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    pub source: io::Error,
}

impl Listeners {
    /// The addresses actually bound (one per configured address; with port
    /// 0, the port chosen by the system, the same for UDP and TCP).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }

    /// Bind a DNS over TLS listener on every address of `tls`, and a DNS
    /// over HTTPS one on every address of `https`.
    pub fn bind_tls(&mut self, tls: &[SocketAddr], https: &[SocketAddr]) -> Result<(), BindError> {
        for (proto, addrs, out) in [
            ("tls", tls, &mut self.tls),
            ("https", https, &mut self.https),
        ] {
            for &addr in addrs {
                let listener = bind_tcp(addr).map_err(|source| BindError {
                    proto,
                    addr,
                    source,
                })?;
                out.push(listener);
            }
        }
        Ok(())
    }

    /// The DNS over HTTPS addresses bound.
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        self.https
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }

    /// The DNS over TLS addresses bound.
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.tls
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }
}

/// How the stream doors serve: their bounds, whose PROXY headers they
/// believe, the certificate of the TLS ones.
#[derive(Debug)]
pub struct Doors {
    /// Bounds of TCP and DoT connections, counted together.
    pub tcp: TcpLimits,
    /// PROXY v2 senders (UDP and TCP; never DoT: a proxy in front of DoT
    /// terminates TLS and speaks plain DNS to us).
    pub proxies: Proxies,
    /// The certificate of the DoT and DoH listeners, when there are any.
    pub certificates: Option<Arc<Certificates>>,
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // Each configured address is served as written: [::] is IPv6 only,
        // list 0.0.0.0 as well for IPv4.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    #[cfg(unix)]
    s.set_reuse_port(reuse_port)?;
    // Room for bursts: the kernel default (~200 KiB) drops under load.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Bind UDP and TCP on every address; `udp_sockets` per address (0 = one per
/// core). With port 0 the system picks one port, used for UDP and TCP alike.
pub fn bind(addrs: &[SocketAddr], udp_sockets: usize) -> Result<Listeners, BindError> {
    let per_addr = if udp_sockets == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        udp_sockets
    };
    let reuse_port = per_addr > 1;
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in addrs {
        let mut attempts = 0;
        let (first_udp, listener) = loop {
            let first = bind_udp(addr, reuse_port).map_err(|source| BindError {
                proto: "udp",
                addr,
                source,
            })?;
            let actual = first.local_addr().map_err(|source| BindError {
                proto: "udp",
                addr,
                source,
            })?;
            match bind_tcp(actual) {
                Ok(l) => break (first, l),
                // Port 0: the port free for UDP may be taken for TCP; try another.
                Err(_) if addr.port() == 0 && attempts < 20 => attempts += 1,
                Err(source) => {
                    return Err(BindError {
                        proto: "tcp",
                        addr: actual,
                        source,
                    });
                }
            }
        };
        let actual = first_udp.local_addr().map_err(|source| BindError {
            proto: "udp",
            addr,
            source,
        })?;
        udp.push(first_udp);
        for _ in 1..per_addr {
            udp.push(bind_udp(actual, true).map_err(|source| BindError {
                proto: "udp",
                addr: actual,
                source,
            })?);
        }
        tcp.push(listener);
    }
    Ok(Listeners {
        udp,
        tcp,
        tls: Vec::new(),
        https: Vec::new(),
    })
}

/// Serve on `listeners` (PROXY v2 headers believed from `proxies`) until
/// `shutdown` completes, then stop accepting and
/// wait for the serving tasks to end. `serving` says `true` from the moment
/// the sockets serve until the shutdown begins (readiness for `/readyz` and
/// systemd: a receiver waits for it, nobody polls).
pub async fn run(
    handler: Handler,
    listeners: Listeners,
    doors: Doors,
    serving: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let addrs = listeners.local_addrs();
    let tls_addrs = listeners.tls_addrs();
    let https_addrs = listeners.https_addrs();
    // UDP: our own receive threads (the fast path for redirects and
    // ready-to-send answers, see dns::udp); TCP: our bounded accept loop
    // (dns::tcp).
    let proxies = Arc::new(doors.proxies);
    let stop_udp = Arc::new(AtomicBool::new(false));
    let mut udp = Vec::new();
    for s in listeners.udp {
        udp.push(crate::dns::udp::spawn(
            handler.engine(),
            s,
            Arc::clone(&proxies),
            Arc::clone(&stop_udp),
        )?);
    }
    let (stop_tcp, tcp_stopped) = watch::channel(false);
    let connections = Connections::new(doors.tcp);
    let mut tcp = tokio::task::JoinSet::new();
    for l in listeners.tcp {
        tcp.spawn(crate::dns::tcp::serve(
            Arc::clone(handler.engine()),
            tokio::net::TcpListener::from_std(l)?,
            Arc::clone(&connections),
            Arc::clone(&proxies),
            None,
            tcp_stopped.clone(),
        ));
    }
    if let Some(certificates) = doors.certificates {
        // RFC 8484 section 5.2: HTTP/2 is the minimum recommended; HTTP/1.1
        // for the clients that have nothing else.
        let config = crate::tls::server_config(certificates.clone(), &[b"h2", b"http/1.1"])
            .map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        for l in listeners.https {
            tcp.spawn(crate::dns::https::serve(
                Arc::clone(handler.engine()),
                tokio::net::TcpListener::from_std(l)?,
                Arc::clone(&connections),
                acceptor.clone(),
                tcp_stopped.clone(),
            ));
        }
        let config =
            crate::tls::server_config(certificates, &[b"dot"]).map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        for l in listeners.tls {
            tcp.spawn(crate::dns::tcp::serve(
                Arc::clone(handler.engine()),
                tokio::net::TcpListener::from_std(l)?,
                Arc::clone(&connections),
                // Nobody speaks for others inside TLS.
                Arc::new(Proxies::default()),
                Some(acceptor.clone()),
                tcp_stopped.clone(),
            ));
        }
    }
    info!(addrs = ?addrs, tls = ?tls_addrs, https = ?https_addrs, "serving DNS");
    serving.send_replace(true);
    shutdown.await;
    serving.send_replace(false);
    info!("shutting down");
    stop_udp.store(true, Ordering::Release);
    stop_tcp.send_replace(true);
    let drain_udp = async {
        let _ = tokio::task::spawn_blocking(move || {
            for t in udp {
                let _ = t.join();
            }
        })
        .await;
    };
    let drain_tcp = async { while tcp.join_next().await.is_some() {} };
    tokio::join!(drain_udp, drain_tcp);
    Ok(())
}
