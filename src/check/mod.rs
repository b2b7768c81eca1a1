//! The diagnostics a support desk runs (`ubus call b4 check`): is the AFTR
//! reachable over IPv6, does a full-size IPv4 packet cross the tunnel, does
//! the LAN DNS proxy answer. Each check says what it did and, when it fails,
//! why, in words.
//!
//! What to check comes from the status model ([`Targets::from_status`], pure);
//! the probes themselves are raw ICMP sockets and a DNS query, run on the
//! blocking pool with short timeouts so the whole check stays well inside
//! ubus's call timeout.

pub(crate) mod icmp;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use crate::status::Status;
use crate::tunnel::aftr_query::{build_query, parse_name, parse_reply, Reply};

/// How long each probe waits for its answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What there is to check, from the status model and the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub wan_address: Option<Ipv6Addr>,
    pub aftr: Option<Ipv6Addr>,
    /// Tunnel device, its MTU, and the AFTR's IPv4 address on it.
    pub tunnel: Option<(String, u32, Ipv4Addr)>,
    pub dns_proxy: ProxyTarget,
    /// Why the tunnel checks cannot run, when they cannot.
    pub tunnel_down: Option<String>,
}

/// The LAN DNS proxy as the check sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxyTarget {
    /// `lan.dns_proxy '0'`.
    #[default]
    Disabled,
    /// On, but not serving, and why: its port held by another program
    /// (whose answers would pass for the proxy's), or no LAN address yet.
    NotServing(String),
    /// Its address and port, and a name to ask it.
    At(Ipv4Addr, u16, String),
}

impl Targets {
    /// `dns_proxy`: `None` when it is disabled, else where it listens or
    /// why the LAN has no address for it.
    pub fn from_status(
        status: &Status,
        dns_proxy: Option<Result<(Ipv4Addr, u16), String>>,
    ) -> Targets {
        let tunnel = status.tunnel.as_ref();
        let spec = tunnel.and_then(|t| t.spec.as_ref());
        let aftr_name = tunnel.and_then(|t| t.aftr.name.clone()).or_else(|| {
            status
                .dhcpv6
                .as_ref()
                .and_then(|d| d.info.aftr_name.clone())
        });
        Targets {
            wan_address: spec.map(|s| s.local),
            aftr: spec
                .map(|s| s.remote)
                .or_else(|| tunnel.and_then(|t| t.aftr.selected)),
            tunnel: spec.map(|s| (s.name.clone(), s.mtu, s.peer)),
            dns_proxy: match (
                dns_proxy,
                status.dns.as_ref().and_then(|d| d.problem.clone()),
            ) {
                (None, _) => ProxyTarget::Disabled,
                (Some(Err(why)), _) | (Some(Ok(_)), Some(why)) => ProxyTarget::NotServing(why),
                (Some(Ok((addr, port))), None) => {
                    ProxyTarget::At(addr, port, aftr_name.unwrap_or_else(|| "localhost".into()))
                }
            },
            tunnel_down: match tunnel {
                None => Some("tunnel disabled".into()),
                Some(t) if t.spec.is_none() => {
                    Some(t.reason.clone().unwrap_or_else(|| "tunnel down".into()))
                }
                Some(_) => None,
            },
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: &'static str,
    /// `None`: skipped (nothing to check), with `detail` saying why.
    pub ok: Option<bool>,
    pub detail: String,
}

fn skipped(name: &'static str, why: impl Into<String>) -> Outcome {
    Outcome {
        name,
        ok: None,
        detail: why.into(),
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", crate::fixed::Fixed::of_duration(d, 1000, 1))
}

fn aftr_reachable(t: &Targets) -> Outcome {
    const NAME: &str = "aftr_reachable";
    let (Some(aftr), Some(from)) = (t.aftr, t.wan_address) else {
        return skipped(
            NAME,
            t.tunnel_down
                .clone()
                .unwrap_or_else(|| "no AFTR address".into()),
        );
    };
    match icmp::echo_v6(from, aftr, PROBE_TIMEOUT) {
        Ok(rtt) => Outcome {
            name: NAME,
            ok: Some(true),
            detail: format!(
                "AFTR {aftr} answered an ICMPv6 echo from {from} in {}",
                ms(rtt)
            ),
        },
        Err(e) => Outcome {
            name: NAME,
            ok: Some(false),
            detail: format!("AFTR {aftr} did not answer an ICMPv6 echo from {from}: {e}"),
        },
    }
}

fn tunnel_full_size(t: &Targets) -> Outcome {
    const NAME: &str = "tunnel_full_size";
    let Some((device, mtu, peer)) = &t.tunnel else {
        return skipped(
            NAME,
            t.tunnel_down
                .clone()
                .unwrap_or_else(|| "tunnel down".into()),
        );
    };
    match icmp::echo_v4_full_size(device, *peer, *mtu as usize, PROBE_TIMEOUT) {
        Ok(rtt) => Outcome {
            name: NAME,
            ok: Some(true),
            detail: format!(
                "a {mtu}-byte IPv4 packet (DF) crossed {device} to {peer} and back in {}",
                ms(rtt)
            ),
        },
        Err(e) => Outcome {
            name: NAME,
            ok: Some(false),
            detail: format!(
                "no answer to a {mtu}-byte IPv4 ping (DF) through {device} to {peer}: {e} \
                 (some AFTRs do not answer pings on {peer})"
            ),
        },
    }
}

fn dns_proxy_answers(t: &Targets) -> Outcome {
    const NAME: &str = "dns_proxy";
    let (addr, port, name) = match &t.dns_proxy {
        ProxyTarget::At(addr, port, name) => (addr, port, name),
        ProxyTarget::Disabled => return skipped(NAME, "DNS proxy disabled (lan.dns_proxy '0')"),
        ProxyTarget::NotServing(why) => {
            return Outcome {
                name: NAME,
                ok: Some(false),
                detail: format!("the DNS proxy is not serving: {why}"),
            }
        }
    };
    let started = Instant::now();
    match ask(*addr, *port, name) {
        Ok(what) => Outcome {
            name: NAME,
            ok: Some(true),
            detail: format!(
                "{addr}:{port} answered AAAA {name}: {what} in {}",
                ms(started.elapsed())
            ),
        },
        Err(e) => Outcome {
            name: NAME,
            ok: Some(false),
            detail: format!("{addr}:{port} gave no usable answer to AAAA {name}: {e}"),
        },
    }
}

/// One AAAA query to the proxy; any well-formed answer (even NXDOMAIN)
/// proves it works, SERVFAIL or silence does not.
fn ask(addr: Ipv4Addr, port: u16, name: &str) -> std::io::Result<String> {
    let qname = parse_name(name).map_err(std::io::Error::other)?;
    let socket = UdpSocket::bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))?;
    socket.connect(SocketAddr::V4(SocketAddrV4::new(addr, port)))?;
    socket.set_read_timeout(Some(PROBE_TIMEOUT))?;
    let id: u16 = rand::random();
    socket.send(&build_query(id, &qname))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.recv(&mut buf)?;
        match parse_reply(id, &qname, &buf[..n]) {
            Reply::NotOurs => continue,
            Reply::Addresses { addresses, .. } => {
                return Ok(addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "))
            }
            Reply::NoSuchName => return Ok("NXDOMAIN".into()),
            Reply::NoAddresses => return Ok("no AAAA".into()),
            Reply::Truncated => return Ok("truncated".into()),
            Reply::Failed(rcode) => return Err(std::io::Error::other(rcode)),
            Reply::Malformed(e) => return Err(std::io::Error::other(e)),
        }
    }
}

/// Runs every check (blocking: call from the blocking pool).
pub fn run(targets: &Targets) -> Vec<Outcome> {
    vec![
        aftr_reachable(targets),
        tunnel_full_size(targets),
        dns_proxy_answers(targets),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::driver::TunnelStatus;
    use crate::tunnel::plan::TunnelSpec;
    use std::time::Instant;

    #[test]
    fn targets_come_from_the_tunnel_in_use() {
        let mut status = Status::new(Instant::now());
        let mut tunnel = TunnelStatus {
            state: "up",
            spec: Some(TunnelSpec::example()),
            ..TunnelStatus::default()
        };
        tunnel.aftr.name = Some("aftr.example.net".into());
        status.tunnel = Some(tunnel);
        let t = Targets::from_status(&status, Some(Ok(("192.168.1.1".parse().unwrap(), 53))));
        assert_eq!(t.aftr, Some("2001:db8:af::1".parse().unwrap()));
        assert_eq!(
            t.tunnel,
            Some(("ds-b4".into(), 1460, "192.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            t.dns_proxy,
            ProxyTarget::At(
                "192.168.1.1".parse().unwrap(),
                53,
                "aftr.example.net".into()
            )
        );
        assert_eq!(t.tunnel_down, None);
    }

    #[test]
    fn tunnel_checks_are_skipped_with_the_reason_when_it_is_down() {
        let mut status = Status::new(Instant::now());
        status.tunnel = Some(TunnelStatus {
            state: "down",
            reason: Some("AFTR name x has no AAAA record".into()),
            ..TunnelStatus::default()
        });
        let t = Targets::from_status(&status, None);
        let results = run(&t);
        assert!(results.iter().all(|r| r.ok.is_none()), "{results:?}");
        assert!(results[0].detail.contains("no AAAA record"));
        assert!(results[2].detail.contains("lan.dns_proxy"));
    }

    /// Another program on port 53 (dnsmasq not stopped) answers the probe
    /// as well as the proxy would: the proxy's own problem decides; and a
    /// LAN without an address is not "disabled".
    #[test]
    fn a_dns_proxy_kept_off_its_port_or_without_a_lan_address_fails_the_check() {
        let mut status = Status::new(Instant::now());
        let held = "cannot listen on 192.168.1.1:53: Address in use";
        status.dns = Some(crate::dns::ProxyStatus {
            problem: Some(held.into()),
            ..Default::default()
        });
        let t = Targets::from_status(&status, Some(Ok(("192.168.1.1".parse().unwrap(), 53))));
        let outcome = dns_proxy_answers(&t);
        assert_eq!(outcome.ok, Some(false), "{outcome:?}");
        assert!(outcome.detail.contains(held), "{outcome:?}");

        status.dns = Some(crate::dns::ProxyStatus::default());
        let no_address = "br-lan has no IPv4 address".to_string();
        let t = Targets::from_status(&status, Some(Err(no_address.clone())));
        let outcome = dns_proxy_answers(&t);
        assert_eq!(outcome.ok, Some(false), "{outcome:?}");
        assert!(outcome.detail.contains(&no_address), "{outcome:?}");
    }
}
