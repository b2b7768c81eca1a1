//! An AFTR (RFC 6333 §6) built from kernel parts, for the tunnel tests in the
//! kernel lab: an ip6tnl in `ipip6` mode that decapsulates the B4's IPv4,
//! 192.0.0.1/29 on it (RFC 6333 §5.7), and nftables masquerade (the CGN NAT)
//! toward an IPv4-only outside network.
//!
//! Needs a kernel with ip6_tunnel and nf_tables, so only inside the VM (see
//! [`vm`](super::vm)). The kernel's ip6tnl cannot *send* IPv4 with `remote
//! any` (it receives, but every reply fails with a link error: seen on
//! Debian's 6.1), so the AFTR's tunnel points at one B4 address;
//! [`Aftr::set_b4`] re-points it when the B4's WAN address changes.
//!
//! ```ignore
//! let aftr = Aftr::start(&aftr_ns, &AftrConfig {
//!     b4_addr: "2001:db8:1::2".parse().unwrap(),
//!     ..AftrConfig::default()   // eth0 toward the B4, eth1 toward the IPv4 server
//! });
//! ```

use super::Netns;
use std::io::Write as _;
use std::net::Ipv6Addr;
use std::process::{Command, Stdio};

/// Name of the nftables table the AFTR's NAT lives in.
pub const AFTR_NAT_TABLE: &str = "aftr";

/// What [`Aftr::start`] sets up. Defaults: tunnel `aftr0` from
/// `2001:db8:1::1` to the B4 at `2001:db8:1::2`, 192.0.0.1/29 on it,
/// masquerade out of `eth1`, the kernel's tunnel MTU.
#[derive(Debug, Clone, PartialEq)]
pub struct AftrConfig {
    /// The tunnel device's name in the AFTR namespace.
    pub tunnel_dev: String,
    /// The AFTR's IPv6 tunnel endpoint (the address the AFTR name resolves
    /// to). It must be on an interface of the namespace (the caller sets up
    /// the IPv6 side, e.g. with [`Netns::add_addr_nodad`]).
    pub aftr_addr: Ipv6Addr,
    /// The B4's IPv6 tunnel endpoint.
    pub b4_addr: Ipv6Addr,
    /// The AFTR's IPv4 address on the tunnel with prefix (RFC 6333 §5.7:
    /// 192.0.0.1 in 192.0.0.0/29).
    pub tunnel_ipv4: String,
    /// The IPv4 interface toward the outside; the B4's traffic leaves it
    /// masqueraded to that interface's address. The caller gives it an
    /// address and connects the IPv4-only server behind it.
    pub outside_dev: String,
    /// Tunnel MTU (`None`: what the kernel picks, WAN MTU - 40 with
    /// `encaplimit none`).
    pub mtu: Option<u32>,
}

impl Default for AftrConfig {
    fn default() -> Self {
        AftrConfig {
            tunnel_dev: "aftr0".into(),
            aftr_addr: "2001:db8:1::1".parse().expect("addr"),
            b4_addr: "2001:db8:1::2".parse().expect("addr"),
            tunnel_ipv4: "192.0.0.1/29".into(),
            outside_dev: "eth1".into(),
            mtu: None,
        }
    }
}

impl AftrConfig {
    /// The nftables ruleset [`Aftr::start`] loads: masquerade everything
    /// that came out of the tunnel and leaves by the outside interface.
    pub fn nat_ruleset(&self) -> String {
        format!(
            "table ip {AFTR_NAT_TABLE} {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tiifname \"{tun}\" oifname \"{out}\" masquerade\n\
             \t}}\n\
             }}\n",
            tun = self.tunnel_dev,
            out = self.outside_dev,
        )
    }
}

/// A running AFTR in a namespace. Its tunnel and table go away with the
/// namespace; [`stop`](Aftr::stop) removes them earlier.
#[derive(Debug)]
pub struct Aftr {
    ns_name: String,
    config: AftrConfig,
}

impl Aftr {
    /// Creates the tunnel (`ip6tnl mode ipip6 ... encaplimit none`, as a B4
    /// does: RFC 6333 §5.3 wants no encapsulation limit option in the way of
    /// the MTU), its IPv4 address, IPv4 forwarding and the NAT table.
    /// Panics with the failing command's output.
    pub fn start(ns: &Netns, config: &AftrConfig) -> Aftr {
        let tun = config.tunnel_dev.as_str();
        ns.ip(&[
            "link",
            "add",
            tun,
            "type",
            "ip6tnl",
            "mode",
            "ipip6",
            "local",
            &config.aftr_addr.to_string(),
            "remote",
            &config.b4_addr.to_string(),
            "encaplimit",
            "none",
        ]);
        if let Some(mtu) = config.mtu {
            ns.ip(&["link", "set", tun, "mtu", &mtu.to_string()]);
        }
        ns.ip(&["addr", "add", &config.tunnel_ipv4, "dev", tun]);
        ns.link_up(tun);
        ns.sysctl("net.ipv4.ip_forward", "1");
        let mut nft = ns.command("nft");
        nft.args(["-f", "-"]);
        nft_load(&mut nft, &config.nat_ruleset());
        Aftr {
            ns_name: ns.name().to_string(),
            config: config.clone(),
        }
    }

    /// The configuration it was started with (with the current B4 address).
    pub fn config(&self) -> &AftrConfig {
        &self.config
    }

    /// Points the tunnel at a new B4 address (`ip link change ... remote`),
    /// as an AFTR's softwire follows a B4 that was renumbered.
    pub fn set_b4(&mut self, b4_addr: Ipv6Addr) {
        super::netns::ip(&[
            "-n",
            &self.ns_name,
            "link",
            "change",
            &self.config.tunnel_dev,
            "type",
            "ip6tnl",
            "remote",
            &b4_addr.to_string(),
        ]);
        self.config.b4_addr = b4_addr;
    }

    /// `ip -s -d link show` of the tunnel: state, endpoints and counters.
    pub fn tunnel_details(&self) -> String {
        String::from_utf8_lossy(
            &super::netns::ip(&[
                "-n",
                &self.ns_name,
                "-s",
                "-d",
                "link",
                "show",
                &self.config.tunnel_dev,
            ])
            .stdout,
        )
        .into_owned()
    }

    /// The NAT table as `nft list` shows it (with counters if any).
    pub fn nat_table(&self) -> String {
        let out = super::netns::run_checked(super::netns::ns_command(&self.ns_name, "nft").args([
            "list",
            "table",
            "ip",
            AFTR_NAT_TABLE,
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deletes the NAT table and the tunnel.
    pub fn stop(self) {
        super::netns::run_checked(super::netns::ns_command(&self.ns_name, "nft").args([
            "delete",
            "table",
            "ip",
            AFTR_NAT_TABLE,
        ]));
        super::netns::ip(&["-n", &self.ns_name, "link", "del", &self.config.tunnel_dev]);
    }
}

/// Runs `nft -f -` (built by the caller, e.g. inside a namespace) with
/// `ruleset` on stdin; panics with nft's complaint if it is rejected.
pub fn nft_load(nft: &mut Command, ruleset: &str) {
    nft.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = nft
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {nft:?}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(ruleset.as_bytes())
        .expect("write the ruleset to nft");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft rejected the ruleset ({}):\n{ruleset}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
