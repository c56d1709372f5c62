//! TCP relays between network namespaces, run by the playground process itself.
//!
//! A socket keeps the namespace it was created in, whichever thread later uses it. So the playground binds a
//! listener inside a node namespace (a short-lived thread enters it with `setns`), accepts there from its own
//! runtime, and connects onward from a socket created in the host namespace (to a simulator on loopback) or in a
//! node namespace (to an agent's probe port). Bytes are copied both ways until either side closes. No route,
//! forwarding or NAT exists anywhere for this: the relay is an ordinary user-space proxy, and it only ever connects
//! to the one fixed target it was given.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Where a socket is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// The playground process's own (host) namespace.
    Host,
    /// A named network namespace under `/run/netns`.
    Netns(String),
    /// The host namespace, from this source address (a loopback pod's own address, so the agent sees the pod).
    HostFrom(std::net::IpAddr),
}

/// Binds a listener on `addr` in `side`.
pub async fn bind_in(side: &Side, addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std_listener = match side {
        Side::Host | Side::HostFrom(_) => std::net::TcpListener::bind(addr)?,
        Side::Netns(name) => {
            let name = name.clone();
            tokio::task::spawn_blocking(move || {
                podid_net::testbed::run_in_netns(&name, || std::net::TcpListener::bind(addr))
            })
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)??
        }
    };
    std_listener.set_nonblocking(true)?;
    TcpListener::from_std(std_listener)
}

/// Connects to `addr` from a socket created in `side`.
pub async fn connect_in(side: &Side, addr: SocketAddr) -> std::io::Result<TcpStream> {
    match side {
        Side::Host => TcpStream::connect(addr).await,
        Side::HostFrom(src) => {
            let socket = if src.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(*src, 0))?;
            socket.connect(addr).await
        }
        Side::Netns(name) => {
            let name = name.clone();
            let fd = tokio::task::spawn_blocking(move || {
                podid_net::testbed::run_in_netns(&name, || {
                    rustix::net::socket_with(
                        if addr.is_ipv4() {
                            rustix::net::AddressFamily::INET
                        } else {
                            rustix::net::AddressFamily::INET6
                        },
                        rustix::net::SocketType::STREAM,
                        rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
                        None,
                    )
                })
            })
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)??;
            let stream = std::net::TcpStream::from(fd);
            tokio::net::TcpSocket::from_std_stream(stream)
                .connect(addr)
                .await
        }
    }
}

/// Accepts on `listener` until `stop` flips, relaying each connection to `target` connected from `target_side`.
pub fn spawn(
    listener: TcpListener,
    target_side: Side,
    target: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => return,
            };
            let Ok((mut inbound, _)) = accepted else {
                continue;
            };
            let side = target_side.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = connect_in(&side, target).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = stop.changed() => {}
                }
            });
        }
    })
}
