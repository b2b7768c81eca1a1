//! What the DHCPv6 client tells the rest of b4d. The tunnel, the DNS proxy
//! and the status report subscribe to these; each line of Display is also
//! what the log shows after `event: `.

use std::fmt;
use std::net::Ipv6Addr;

use super::lease::{DelegatedPrefix, LeasedAddress};

/// Why a binding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// Every valid lifetime ran out without a Reply (RFC 8415 §18.2.5).
    Expired,
    /// We released it (shutdown).
    Released,
    /// The server said the addresses are not on this link (RFC 8415 §18.2.10).
    NotOnLink,
    /// The WAN link went down and the binding did not survive.
    LinkDown,
    /// The server had lost our binding (NoBinding) and granted nothing
    /// when asked for it again (RFC 8415 §18.2.10.1).
    Refused,
    /// Its only address was declined (DAD found it in use, RFC 8415
    /// §18.2.8) and nothing else was held.
    Declined,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Expired => "expired",
            LossReason::Released => "released",
            LossReason::NotOnLink => "not-on-link",
            LossReason::LinkDown => "link-down",
            LossReason::Refused => "refused",
            LossReason::Declined => "declined",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    LeaseAcquired {
        server: Ipv6Addr,
    },
    LeaseRenewed {
        server: Ipv6Addr,
    },
    LeaseLost {
        reason: LossReason,
    },
    /// Stateless mode: a Reply to Information-Request arrived.
    InformationReceived {
        server: Ipv6Addr,
    },
    AddressesChanged(Vec<LeasedAddress>),
    PrefixesChanged(Vec<DelegatedPrefix>),
    DnsServersChanged(Vec<Ipv6Addr>),
    DomainsChanged(Vec<String>),
    AftrNameChanged(Option<String>),
}

fn write_list<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    let mut any = false;
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
        any = true;
    }
    if !any {
        f.write_str("none")?;
    }
    Ok(())
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::LeaseAcquired { server } => write!(f, "lease-acquired server={server}"),
            Event::LeaseRenewed { server } => write!(f, "lease-renewed server={server}"),
            Event::LeaseLost { reason } => write!(f, "lease-lost reason={reason}"),
            Event::InformationReceived { server } => {
                write!(f, "information-received server={server}")
            }
            Event::AddressesChanged(a) => {
                f.write_str("addresses-changed ")?;
                write_list(f, a.iter().map(|a| a.addr))
            }
            Event::PrefixesChanged(p) => {
                f.write_str("prefixes-changed ")?;
                write_list(f, p.iter().map(|p| format!("{}/{}", p.prefix, p.len)))
            }
            Event::DnsServersChanged(d) => {
                f.write_str("dns-servers-changed ")?;
                write_list(f, d.iter())
            }
            Event::DomainsChanged(d) => {
                f.write_str("domains-changed ")?;
                write_list(f, d.iter())
            }
            Event::AftrNameChanged(n) => {
                write!(f, "aftr-name-changed {}", n.as_deref().unwrap_or("none"))
            }
        }
    }
}
