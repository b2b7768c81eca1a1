//! Local names: A and PTR for the LAN's hosts (DHCPv4 leases and static
//! `config host` entries), answered by b4d itself as dnsmasq does, so they
//! never leak to the ISP's resolvers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{
    self, QuestionRef, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_DNSKEY, TYPE_DS, TYPE_NS, TYPE_PTR,
    TYPE_SOA,
};

/// The LAN's names, fed by whoever knows them (the DHCPv4 server, the
/// static hosts of the config). `hosts` are host names ("laptop"), or full
/// names ("laptop.lan"); a name that is not a valid host name is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalHosts {
    pub domain: String,
    pub hosts: Vec<(String, Ipv4Addr)>,
}

/// What b4d answers for a local question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAnswer {
    Address(IpAddr),
    /// PTR target, wire form.
    Name(Vec<u8>),
    /// The name exists, not with this type.
    NoData,
    NxDomain,
}

#[derive(Debug, Default)]
pub struct LocalNames {
    /// The local domain's labels (wire form without the root), may be empty.
    domain: Vec<u8>,
    by_name: HashMap<Vec<u8>, Ipv4Addr>,
    by_addr: HashMap<Ipv4Addr, Vec<u8>>,
}

impl LocalNames {
    pub fn new(hosts: &LocalHosts) -> LocalNames {
        let domain = wire::name_to_wire(&hosts.domain)
            .map(|mut d| {
                d.pop();
                d
            })
            .unwrap_or_default();
        let mut names = LocalNames {
            domain,
            ..LocalNames::default()
        };
        for (name, addr) in &hosts.hosts {
            let full = if name.contains('.') || hosts.domain.is_empty() {
                name.clone()
            } else {
                format!("{name}.{}", hosts.domain)
            };
            let Some(full) = wire::name_to_wire(&full) else {
                continue;
            };
            if let Some(bare) = wire::name_to_wire(name) {
                names.by_name.insert(bare, *addr);
            }
            names.by_name.insert(full.clone(), *addr);
            names.by_addr.entry(*addr).or_insert(full);
        }
        names
    }

    pub fn lookup(&self, question: QuestionRef<'_>) -> Option<LocalAnswer> {
        if question.qclass != CLASS_IN {
            return None;
        }
        if let Some(addr) = reverse_v4(question.name) {
            return match self.by_addr.get(&addr) {
                Some(name) if question.qtype == TYPE_PTR => Some(LocalAnswer::Name(name.clone())),
                Some(_) => Some(LocalAnswer::NoData),
                // Reverse zones of addresses that are nobody's on the
                // Internet are answered here, never sent out: private
                // (RFC 6303 §4.1), shared (100.64/10, RFC 7793), this
                // network, loopback, link-local (RFC 6303 §4.2).
                None if is_local_use(addr) => Some(LocalAnswer::NxDomain),
                None => None,
            };
        }
        // RFC 6761 §6.3: localhost and every name below it is the
        // loopback, answered here for address queries, never looked up.
        if is_localhost(question.name) {
            return Some(match question.qtype {
                TYPE_A => LocalAnswer::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                TYPE_AAAA => LocalAnswer::Address(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                _ => LocalAnswer::NoData,
            });
        }
        let plain = is_plain_name(question.name);
        if let Some(addr) = self.by_name.get(question.name) {
            return match question.qtype {
                TYPE_A => Some(LocalAnswer::Address(IpAddr::V4(*addr))),
                // A plain host name may be a top-level domain's too ("dev",
                // "app"): the types that describe a zone (its SOA, NS and
                // DNSSEC keys) stay the DNS's, or a validating LAN resolver
                // gets an unsigned denial for the whole TLD. Every other
                // type (HTTPS, MX, TXT...) is the host's: no data.
                TYPE_SOA | TYPE_NS | TYPE_DS | TYPE_DNSKEY if plain => None,
                _ => Some(LocalAnswer::NoData),
            };
        }
        if self.is_local_domain(question.name) {
            let apex = question.name.len() == self.domain.len() + 1;
            return Some(if apex {
                LocalAnswer::NoData
            } else {
                LocalAnswer::NxDomain
            });
        }
        // dnsmasq's domain-needed (OpenWrt's default): an address query
        // for a plain name no LAN host has is not forwarded. It would tell
        // the ISP the LAN's names, and a resolver that rewrites NXDOMAIN
        // could answer `wpad` (a browser's proxy auto-detection, CERT
        // VU#598349).
        if plain && matches!(question.qtype, TYPE_A | TYPE_AAAA) {
            return Some(LocalAnswer::NxDomain);
        }
        None
    }

    /// `name` is the local domain or below it.
    fn is_local_domain(&self, name: &[u8]) -> bool {
        if self.domain.is_empty() {
            return false;
        }
        // Asked for every query: compare in place at each label boundary
        // rather than collecting labels (`domain` is the wire form without
        // the root; names are lower-cased).
        let mut at = 0;
        while let Some(&len) = name.get(at) {
            if name.get(at..name.len() - 1) == Some(&self.domain[..]) {
                return true;
            }
            if len == 0 {
                break;
            }
            at += 1 + usize::from(len);
        }
        false
    }
}

/// `localhost` or a name below it, in wire form (lower case).
fn is_localhost(name: &[u8]) -> bool {
    const LOCALHOST: &[u8] = b"\x09localhost\x00";
    // Asked for every query: most names fail this at once; the walk below
    // only checks the match starts at a label ("notlocalhost" does not).
    if !name.ends_with(LOCALHOST) {
        return false;
    }
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if &name[at..] == LOCALHOST {
            return true;
        }
        if len == 0 {
            break;
        }
        at += 1 + usize::from(len);
    }
    false
}

/// Addresses whose reverse names no one on the Internet answers for.
fn is_local_use(addr: Ipv4Addr) -> bool {
    let [first, second, ..] = addr.octets();
    addr.is_private()
        || (first == 100 && (64..128).contains(&second))
        || first == 0
        || addr.is_loopback()
        || addr.is_link_local()
}

/// A name of one label ("printer"), in wire form.
fn is_plain_name(name: &[u8]) -> bool {
    match name.first() {
        Some(&len) if len > 0 => name.get(1 + usize::from(len)) == Some(&0),
        _ => false,
    }
}

/// `d.c.b.a.in-addr.arpa` → a.b.c.d (RFC 1035 §3.5).
fn reverse_v4(name: &[u8]) -> Option<Ipv4Addr> {
    // Most names are not reverse names: skip collecting their labels.
    if !name.ends_with(b"\x07in-addr\x04arpa\x00") {
        return None;
    }
    let labels = wire::labels(name);
    if labels.len() != 6 || labels[4] != b"in-addr" || labels[5] != b"arpa" {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, label) in labels[..4].iter().enumerate() {
        let text = std::str::from_utf8(label).ok()?;
        if text.len() > 1 && text.starts_with('0') {
            return None;
        }
        octets[3 - i] = text.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}
