//! Runs one AFTR lookup the resolver core asked for: AAAA over UDP to each
//! DNS server in turn (TCP when the answer is truncated), from a fresh
//! random port with a random ID (RFC 5452), accepting only a reply from the
//! server's address and port 53 (the socket is connected) that matches the
//! question. Bounded: [`TRIES`] × [`TRY_TIMEOUT`] per server. A link-local
//! server is asked through the WAN (see [`server_address`]).

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

use super::aftr::{Lookup, LookupResult};
use super::aftr_query::{build_query, parse_name, parse_reply, Name, Reply};
use crate::dns::server_address;

pub const TRY_TIMEOUT: Duration = Duration::from_secs(2);
pub const TRIES: usize = 2;

/// `wan_index`: the WAN's interface index, the zone of link-local servers.
pub async fn run(lookup: &Lookup, wan_index: u32) -> LookupResult {
    let name = match parse_name(&lookup.name) {
        Ok(name) => name,
        Err(e) => return LookupResult::AllServersFailed { detail: e },
    };
    let mut failures = Vec::new();
    for &server in &lookup.servers {
        match ask(server_address(server, wan_index), &name).await {
            Ok(Reply::Addresses { addresses, ttl }) => {
                return LookupResult::Addresses {
                    addresses,
                    ttl,
                    server,
                }
            }
            Ok(Reply::NoSuchName) => return LookupResult::NoSuchName { server },
            Ok(Reply::NoAddresses) => return LookupResult::NoAddresses { server },
            Ok(Reply::Failed(rcode)) => failures.push(format!("{server}: {rcode}")),
            Ok(other) => failures.push(format!("{server}: {other:?}")),
            Err(e) => failures.push(format!("{server}: {e}")),
        }
    }
    LookupResult::AllServersFailed {
        detail: failures.join("; "),
    }
}

async fn ask(server: SocketAddr, name: &Name) -> io::Result<Reply> {
    let socket = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        0,
        0,
        0,
    )))
    .await?;
    socket.connect(server).await?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..TRIES {
        let id: u16 = rand::random();
        socket.send(&build_query(id, name)).await?;
        let deadline = Instant::now() + TRY_TIMEOUT;
        loop {
            let received = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable arrives as ECONNREFUSED on a
                // connected socket: this server is down, try the next.
                Ok(Err(e)) => return Err(e),
                Ok(Ok(n)) => n,
            };
            match parse_reply(id, name, &buf[..received]) {
                Reply::NotOurs | Reply::Malformed(_) => continue,
                Reply::Truncated => return ask_tcp(server, name).await,
                reply => return Ok(reply),
            }
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"))
}

/// RFC 7766: the same question over TCP, two-byte length prefix.
async fn ask_tcp(server: SocketAddr, name: &Name) -> io::Result<Reply> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let id: u16 = rand::random();
        let query = build_query(id, name);
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await? as usize;
        let mut reply = vec![0u8; len];
        stream.read_exact(&mut reply).await?;
        match parse_reply(id, name, &reply) {
            Reply::NotOurs | Reply::Truncated => Err(io::Error::other("TCP reply does not match")),
            Reply::Malformed(e) => Err(io::Error::other(format!("malformed TCP reply: {e}"))),
            reply => Ok(reply),
        }
    };
    timeout(TRY_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP timeout"))?
}
