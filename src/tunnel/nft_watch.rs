//! Notices when b4d's nftables table (the MSS clamp, [`super::nft`]) goes
//! away behind its back: another program's `nft flush ruleset`, or a user's
//! `nft delete table inet b4`. Without the table every TCP connection
//! through the tunnel is left to path MTU discovery, and b4d would only
//! load it again at its next change of the clamp.
//!
//! nf_tables announces every table it adds or deletes on the
//! NFNLGRP_NFTABLES netlink group, so b4d listens there (no polling, and no
//! `nft` run to check). No crate reads nfnetlink's table events, and the
//! few fields needed are a small parser here.
//!
//! b4d's own reload deletes and recreates the table in one transaction: the
//! kernel queues that transaction's announcements together, so the last one
//! for the table in a drained burst says whether it is there.

use std::io;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::netlink::wire;

/// <linux/netfilter/nfnetlink.h>: the nf_tables event group.
const NFNLGRP_NFTABLES: u32 = 7;
/// <linux/netfilter/nfnetlink.h>: nf_tables' subsystem in the message type.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// <linux/netfilter/nf_tables.h>.
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFTA_TABLE_NAME: u16 = 1;
/// <linux/netfilter.h>: the `inet` family.
pub const NFPROTO_INET: u8 = 1;
/// struct nfgenmsg: family, version, resource id.
const NFGENMSG: usize = 4;

/// One table announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEvent {
    pub family: u8,
    pub name: String,
    /// Added (`true`) or deleted.
    pub added: bool,
}

/// The table announcements in one netlink datagram, in order; anything
/// else (chains, rules, sets) is skipped, and a malformed message ends it.
pub fn table_events(datagram: &[u8]) -> Vec<TableEvent> {
    let mut events = Vec::new();
    for (header, payload) in wire::messages(datagram).map_while(Result::ok) {
        let (subsystem, message) = (header.kind >> 8, header.kind & 0xff);
        let added = match (subsystem, message) {
            (NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWTABLE) => true,
            (NFNL_SUBSYS_NFTABLES, NFT_MSG_DELTABLE) => false,
            _ => continue,
        };
        let (Some(&family), Some(attributes)) = (payload.first(), payload.get(NFGENMSG..)) else {
            continue;
        };
        if let Some((_, name)) =
            wire::attributes(attributes).find(|(kind, _)| *kind == NFTA_TABLE_NAME)
        {
            events.push(TableEvent {
                family,
                name: wire::attr_string(name),
                added,
            });
        }
    }
    events
}

/// A netlink socket on the nf_tables event group.
pub struct TableWatch {
    socket: AsyncFd<Socket>,
}

impl TableWatch {
    pub fn open() -> io::Result<TableWatch> {
        let socket = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_NETFILTER)),
        )?;
        socket.set_nonblocking(true)?;
        // SAFETY: sockaddr_nl is plain data; all-zero is valid.
        let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        address.nl_groups = 1 << (NFNLGRP_NFTABLES - 1);
        // SAFETY: `address` is a valid sockaddr_nl of the length given.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&address as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the AsyncFd owns the socket until it is dropped with it.
        let socket = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(TableWatch { socket })
    }

    /// Waits until table `name` of `family` is gone: a burst of
    /// announcements (drained at once) whose last word on it is a
    /// deletion. A lost burst (the socket's buffer overflowed) counts as
    /// gone: reloading an existing table costs one `nft` run.
    pub async fn deleted(&self, family: u8, name: &str, buf: &mut [u8]) -> io::Result<()> {
        loop {
            let mut guard = self.socket.readable().await?;
            let mut present: Option<bool> = None;
            loop {
                match guard.get_inner().recv(as_uninit(buf)) {
                    Ok(len) => {
                        for event in table_events(&buf[..len]) {
                            if event.family == family && event.name == name {
                                present = Some(event.added);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => present = Some(false),
                    Err(e) => return Err(e),
                }
            }
            if present == Some(false) {
                return Ok(());
            }
        }
    }
}

fn as_uninit(buf: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: initialised bytes are valid MaybeUninit bytes, and recv only
    // writes into them.
    unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A netlink message of nf_tables `message` for table `name`.
    fn message(message: u16, family: u8, name: &str) -> Vec<u8> {
        let mut attribute = Vec::new();
        let value_len = name.len() + 1;
        attribute.extend_from_slice(&((4 + value_len) as u16).to_ne_bytes());
        attribute.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
        attribute.extend_from_slice(name.as_bytes());
        attribute.push(0);
        while attribute.len() % 4 != 0 {
            attribute.push(0);
        }
        let len = 16 + NFGENMSG + attribute.len();
        let mut out = Vec::new();
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | message).to_ne_bytes());
        out.extend_from_slice(&[0; 10]); // flags, sequence, port id
        out.extend_from_slice(&[family, 0, 0, 0]);
        out.extend_from_slice(&attribute);
        out
    }

    #[test]
    fn table_announcements_are_read_in_order() {
        let mut burst = message(NFT_MSG_DELTABLE, NFPROTO_INET, "b4");
        burst.extend(message(NFT_MSG_NEWTABLE, NFPROTO_INET, "b4"));
        // A chain announcement (NFT_MSG_NEWCHAIN, 3) is not a table's.
        burst.extend(message(3, NFPROTO_INET, "b4"));
        burst.extend(message(NFT_MSG_DELTABLE, 2, "fw4"));
        let events = table_events(&burst);
        let said = |family: u8, name: &str, added: bool| TableEvent {
            family,
            name: name.into(),
            added,
        };
        assert_eq!(
            events,
            vec![
                said(NFPROTO_INET, "b4", false),
                said(NFPROTO_INET, "b4", true),
                said(2, "fw4", false),
            ]
        );
    }

    #[test]
    fn truncated_messages_give_what_came_before_them() {
        let mut burst = message(NFT_MSG_DELTABLE, NFPROTO_INET, "b4");
        let second = message(NFT_MSG_NEWTABLE, NFPROTO_INET, "b4");
        burst.extend_from_slice(&second[..second.len() - 5]);
        assert_eq!(table_events(&burst).len(), 1);
        assert!(table_events(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = table_events(&bytes);
        }
    }
}
