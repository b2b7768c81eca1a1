//! Configuration (UCI `/etc/config/b4d`), parsed and validated once into typed values.
//!
//! [`Config::load`] / [`Config::parse`] either return a [`Config`] in which every value has
//! been checked (ranges, address families, cross-option consistency), or every problem in
//! the file at once, each naming file, line, section, option and why. The rest of the
//! daemon never re-validates. A section that is absent means all its defaults;
//! [`Config::default`] is the configuration of an empty file.
//!
//! As in libuci, an option set to the empty string `''` counts as not set.
//!
//! | section / option | type | default |
//! |---|---|---|
//! | `globals` `log_level` | error\|warn\|info\|debug\|trace | info |
//! | `globals` `state_dir` | absolute path | /etc/b4d |
//! | `globals` `ubus` | bool | 1 |
//! | `globals` `ubus_socket` | absolute file path | /var/run/ubus/ubus.sock |
//! | `globals` `ipv6_handoff` | auto\|standalone\|netifd\|off | auto |
//! | `wan` `device` | interface name | wan |
//! | `wan` `dhcpv6` | stateful\|stateless\|off | stateful |
//! | `wan` `request_address` | bool | 1 |
//! | `wan` `request_prefix` | bool | 1 |
//! | `wan` `prefix_hint` | 0..=128 (0 = no hint) | 56 |
//! | `wan` `request_option` | list of 1..=65535 | empty |
//! | `wan` `aftr` | IPv6 address or FQDN | unset (DHCPv6 option 64) |
//! | `wan` `release_on_stop` | bool | 1 |
//! | `wan` `rapid_commit` | bool | 1 |
//! | `wan` `duid` | hex, 3..=130 octets | unset (generated) |
//! | `wan` `reconfigure` | bool | 0 |
//! | `wan` `solicit_max_rt` | duration 60s..=86400s | 3600 |
//! | `wan` `netifd_interface` | interface name | wan6 |
//! | `wan` `lease_file` | absolute file path | /tmp/b4d.dhcpv6 |
//! | `tunnel` `enabled` | bool | 1 |
//! | `tunnel` `name` | interface name | ds-b4 |
//! | `tunnel` `mtu` | 1232..=1500 | unset (WAN MTU - 40) |
//! | `tunnel` `source` | auto\|ia_na\|slaac\|prefix | auto |
//! | `tunnel` `ipv4_address` | IPv4 in 192.0.0.0/29 | 192.0.0.2 |
//! | `tunnel` `peer` | IPv4 in 192.0.0.0/29 | 192.0.0.1 |
//! | `tunnel` `default_route` | bool | 1 |
//! | `tunnel` `metric` | 0..=4294967295 | 0 |
//! | `tunnel` `mss_clamp` | bool | 1 |
//! | `tunnel` `encaplimit` | none\|0..=255 | none |
//! | `tunnel` `disable_on_native_ipv4` | bool | 1 |
//! | `lan` `device` | interface name | br-lan |
//! | `lan` `ipaddr` | IPv4 | unset: the LAN device's own address, followed |
//! | `lan` `netmask` | contiguous dotted mask, only with `ipaddr` | 255.255.255.0 |
//! | `lan` `dns_proxy` | bool | 1 |
//! | `lan` `dns_port` | 1..=65535 | 53 |
//! | `lan` `dns_cache_size` | 0..=1000000 | 1000 |
//! | `lan` `dns_server` | list of IPv6 | empty |
//! | `lan` `dhcp` | bool | 1 |
//! | `lan` `dhcp_start` | >= 1 (offset from network) | 100 |
//! | `lan` `dhcp_limit` | >= 1 | 150 |
//! | `lan` `lease_time` | duration >= 120s | 12h |
//! | `lan` `lease_file` | absolute file path | /tmp/b4d.leases |
//! | `lan` `domain` | DNS labels | lan |
//! | `lan` `dhcp_mtu` | 576..=9000 | unset (DHCPv4 option 26 not sent) |
//! | `lan` `ip6assign` | 0 or 48..=64 (0 = no LAN prefix) | 64 |
//! | `lan` `ip6hint` | hex subnet id 0..=ffffffff | 0 |
//! | `lan` `ip6ifaceid` | IPv6 interface id (upper 64 bits zero) | ::1 |
//! | `host` `mac` | xx:xx:xx:xx:xx:xx | required |
//! | `host` `ip` | IPv4 in the LAN subnet | required |
//! | `host` `name` | host name label | unset |
//! | `host` `client_id` | hex, 2..=255 octets | unset (match by MAC only) |

mod error;
mod render;
pub mod uci;
mod validate;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors, Reason};
pub use validate::host_address_problem;
pub use value::{ClientId, Duid, InterfaceName, MacAddr};

use crate::lan4::Ipv4Subnet;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub globals: Globals,
    pub wan: Wan,
    pub tunnel: Tunnel,
    pub lan: Lan,
    /// Static DHCPv4 leases, in file order; MACs and IPs are unique.
    pub hosts: Vec<StaticHost>,
}

impl Config {
    /// Reads and validates a UCI file. A file that cannot be read is an error (the package
    /// ships `/etc/config/b4d`; a missing file means a broken install, not "use defaults").
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let whole_file = |reason| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: None,
                section: None,
                option: None,
                reason,
            }])
        };
        let bytes = std::fs::read(path).map_err(|e| whole_file(Reason::Io(e.to_string())))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let bad = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..bad].iter().filter(|&&b| b == b'\n').count() + 1;
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: Some(line),
                section: None,
                option: None,
                reason: Reason::NotUtf8,
            }])
        })?;
        Config::parse(&text, &file)
    }

    /// Validates UCI text; `file_name` only labels the error messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
        validate::config_from_text(text, file_name)
    }

    /// The effective configuration (every option, defaults filled in) in UCI syntax.
    /// `Config::parse(&c.render_uci(), _)` gives back `c`.
    pub fn render_uci(&self) -> String {
        render::render(self)
    }

    /// The effective value of `key` ("section.option" of the globals,
    /// wan, tunnel or lan section), as `uci get` prints one: list items
    /// space-separated, an unset option empty. Read from
    /// [`Config::render_uci`], so it is what b4d runs with, defaults filled
    /// in, whatever the section's name in the file (`config tunnel` and
    /// `config tunnel 'x'` alike): the package's shell scripts ask this
    /// instead of `uci get b4d.tunnel.name`, which finds only a section
    /// named `tunnel`, and repeating the defaults. `None` for no such
    /// option.
    pub fn effective_value(&self, key: &str) -> Option<String> {
        let (kind, option) = key.split_once('.')?;
        let rendered = uci::parse(&self.render_uci()).ok()?;
        // The rendering names each section after its type.
        let section = (rendered.sections.iter())
            .find(|s| s.section_type == kind && s.name.as_deref() == Some(kind))?;
        let values: Vec<&str> = (section.options.iter())
            .filter(|o| o.name == option)
            .map(|o| o.value.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(" "))
    }

    /// What a reload to `new` must take down before b4d restarts in place.
    /// The new process adopts the tunnel and the LAN addresses it finds
    /// under the names and settings it is configured with; whatever the
    /// old configuration put elsewhere (another tunnel name, another LAN
    /// device, another LAN interface id) or that the new one no longer
    /// wants (tunnel off, LAN IPv6 handed to netifd) would be left behind,
    /// still routing. So: any change of the tunnel's options or of what
    /// LAN IPv6 is built from tears that part down first; a reload that
    /// changes anything else (DHCPv4, DNS, logging ...) keeps both.
    /// `duid_in_use` is the DUID the running client stored (generated from
    /// the MAC, `wan.duid` unset): pinning it in `wan.duid` is no change.
    pub fn reload_teardown(
        &self,
        new: &Config,
        netifd_present: bool,
        duid_in_use: Option<&[u8]>,
    ) -> ReloadTeardown {
        let handoff =
            self.ipv6_handoff_mode(netifd_present) != new.ipv6_handoff_mode(netifd_present);
        let lan6_of = |c: &Config| {
            (
                c.lan.device.clone(),
                c.lan.ip6assign,
                c.lan.ip6hint,
                c.lan.ip6ifaceid,
            )
        };
        // What the restarted client would not take the binding over with
        // (another identity, device or lease file; no longer asking for
        // what is held): it would Solicit afresh while the server kept the
        // old binding until it expires, and an ISP with one prefix per line
        // answered NoPrefixAvail. Released first, as a restart would.
        let (old, fresh) = (&self.wan, &new.wan);
        let duid_of = |wan: &Wan| -> Option<Vec<u8>> {
            (wan.duid.as_ref().map(Duid::as_bytes))
                .or(duid_in_use)
                .map(<[u8]>::to_vec)
        };
        let dhcpv6 = duid_of(old) != duid_of(fresh)
            || old.device != fresh.device
            || old.lease_file != fresh.lease_file
            || old.dhcpv6 != fresh.dhcpv6
            || (old.request_address && !fresh.request_address)
            || (old.request_prefix && !fresh.request_prefix);
        ReloadTeardown {
            tunnel: handoff || self.tunnel != new.tunnel || self.wan.device != new.wan.device,
            lan6: handoff || lan6_of(self) != lan6_of(new),
            dhcpv6,
        }
    }

    /// Who takes the DHCPv6 results to the rest of the system. `auto` means
    /// netifd when it is present (OpenWrt), else b4d itself.
    pub fn ipv6_handoff_mode(&self, netifd_present: bool) -> HandoffMode {
        match self.globals.ipv6_handoff {
            Ipv6Handoff::Auto if netifd_present => HandoffMode::Netifd,
            Ipv6Handoff::Auto | Ipv6Handoff::Standalone => HandoffMode::Standalone,
            Ipv6Handoff::Netifd => HandoffMode::Netifd,
            Ipv6Handoff::Off => HandoffMode::Off,
        }
    }
}

/// See [`Config::reload_teardown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadTeardown {
    pub tunnel: bool,
    pub lan6: bool,
    /// The DHCPv6 client ends (releasing its binding, if
    /// `wan.release_on_stop`).
    pub dhcpv6: bool,
}

/// Where OpenWrt's netifd lives; its presence makes `ipv6_handoff 'auto'`
/// choose netifd.
pub const NETIFD_PATH: &str = "/sbin/netifd";

/// The `globals.ipv6_handoff` option as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6Handoff {
    Auto,
    Standalone,
    Netifd,
    Off,
}

impl fmt::Display for Ipv6Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ipv6Handoff::Auto => "auto",
            Ipv6Handoff::Standalone => "standalone",
            Ipv6Handoff::Netifd => "netifd",
            Ipv6Handoff::Off => "off",
        })
    }
}

/// The hand-off in effect, `auto` resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandoffMode {
    /// b4d puts the WAN address, the LAN prefix and the unreachable route
    /// into the kernel itself (src/lan6).
    Standalone,
    /// netifd owns addresses and prefixes; b4d reports to it over ubus.
    Netifd,
    /// The DHCPv6 results stay inside b4d (the tunnel still installs its
    /// WAN address).
    Off,
}

impl fmt::Display for HandoffMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandoffMode::Standalone => "standalone",
            HandoffMode::Netifd => "netifd",
            HandoffMode::Off => "off",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    pub log_level: LogLevel,
    /// Where the DUID is persisted: on flash, so it survives reboots (RFC 8415 §11 wants
    /// a DUID stable across restarts).
    pub state_dir: PathBuf,
    /// Publish the `b4` ubus object (status for LuCI and scripts). Without a
    /// ubusd (plain Linux) b4d keeps looking for it quietly.
    pub ubus: bool,
    /// ubusd's socket.
    pub ubus_socket: PathBuf,
    pub ipv6_handoff: Ipv6Handoff,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            log_level: LogLevel::Info,
            state_dir: PathBuf::from("/etc/b4d"),
            ubus: true,
            ubus_socket: PathBuf::from(crate::ubus::DEFAULT_SOCKET),
            ipv6_handoff: Ipv6Handoff::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wan {
    pub device: InterfaceName,
    pub dhcpv6: DhcpV6Mode,
    /// Ask for IA_NA in stateful mode.
    pub request_address: bool,
    /// Ask for IA_PD in stateful mode.
    pub request_prefix: bool,
    /// Prefix length hint for IA_PD, 1..=128; `None` sends no hint (UCI value 0).
    pub prefix_hint: Option<u8>,
    /// Extra option codes for the ORO, as configured (see [`Wan::oro`]).
    pub request_option: Vec<u16>,
    /// Manual AFTR; `None` means learn it from DHCPv6 option 64.
    pub aftr: Option<AftrOverride>,
    /// Send a Release on shutdown.
    pub release_on_stop: bool,
    /// Offer the two-message exchange (RFC 8415 §18.2.1, §21.14): a server
    /// that allows it answers the Solicit with a Reply at once.
    pub rapid_commit: bool,
    /// DUID override; `None` means generate one and persist it in `state_dir`.
    pub duid: Option<Duid>,
    /// Accept Reconfigure messages (authenticated with RKAP, RFC 8415 §20.4); when false
    /// every Reconfigure is ignored.
    pub reconfigure: bool,
    /// Upper bound for the Solicit retransmission timeout, 60 s..=86400 s (RFC 8415 §7.6).
    pub solicit_max_rt: Duration,
    /// The netifd interface (a section of /etc/config/network) b4d reports
    /// addresses and prefixes to in netifd mode.
    pub netifd_interface: InterfaceName,
    /// Where the DHCPv6 binding is kept across a restart (kill -9, crash);
    /// RAM (tmpfs) like `lan.lease_file`, so no flash wear.
    pub lease_file: PathBuf,
}

impl Default for Wan {
    fn default() -> Self {
        Wan {
            device: InterfaceName::from_static("wan"),
            dhcpv6: DhcpV6Mode::Stateful,
            request_address: true,
            request_prefix: true,
            prefix_hint: Some(56),
            request_option: Vec::new(),
            aftr: None,
            release_on_stop: true,
            rapid_commit: true,
            duid: None,
            reconfigure: false,
            solicit_max_rt: Duration::from_secs(3600),
            netifd_interface: InterfaceName::from_static("wan6"),
            lease_file: PathBuf::from("/tmp/b4d.dhcpv6"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhcpV6Mode {
    /// Solicit for IA_NA and/or IA_PD.
    Stateful,
    /// Information-Request only (RFC 8415 §18.2.6).
    Stateless,
    /// No DHCPv6 at all; `aftr` is then guaranteed to be set.
    Off,
}

impl fmt::Display for DhcpV6Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DhcpV6Mode::Stateful => "stateful",
            DhcpV6Mode::Stateless => "stateless",
            DhcpV6Mode::Off => "off",
        })
    }
}

/// A manually configured AFTR (RFC 6333 §5.4 allows manual configuration).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AftrOverride {
    /// A global-scope IPv6 address (not ::, loopback, link-local, multicast, v4-mapped).
    Address(Ipv6Addr),
    /// A domain name with at least two labels, resolved for AAAA; may end in '.'.
    Name(String),
}

impl fmt::Display for AftrOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AftrOverride::Address(a) => write!(f, "{a}"),
            AftrOverride::Name(n) => f.write_str(n),
        }
    }
}

/// 192.0.0.0/29, reserved for the B4-AFTR softwire (RFC 6333 §5.7).
pub const SOFTWIRE_NETWORK: Ipv4Addr = Ipv4Addr::new(192, 0, 0, 0);
pub const SOFTWIRE_PREFIX_LEN: u8 = 29;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub enabled: bool,
    pub name: InterfaceName,
    /// 1232..=1500 (a 1280 WAN less the IPv6 header and the encapsulation
    /// limit option); `None` means WAN MTU - 40 (the IPv6 header, RFC 6333 §5.3).
    pub mtu: Option<u16>,
    pub source: TunnelSource,
    /// Inside 192.0.0.0/29, not .0, not .7, not `peer`.
    pub ipv4_address: Ipv4Addr,
    /// Inside 192.0.0.0/29.
    pub peer: Ipv4Addr,
    pub default_route: bool,
    pub metric: u32,
    pub mss_clamp: bool,
    pub encaplimit: EncapLimit,
    /// Stand down while the WAN has native IPv4 (RFC 7084 DLW-3).
    pub disable_on_native_ipv4: bool,
}

impl Default for Tunnel {
    fn default() -> Self {
        Tunnel {
            enabled: true,
            name: InterfaceName::from_static("ds-b4"),
            mtu: None,
            source: TunnelSource::Auto,
            ipv4_address: Ipv4Addr::new(192, 0, 0, 2),
            peer: Ipv4Addr::new(192, 0, 0, 1),
            default_route: true,
            metric: 0,
            mss_clamp: true,
            encaplimit: EncapLimit::Disabled,
            disable_on_native_ipv4: true,
        }
    }
}

/// Which WAN IPv6 address is the tunnel's local end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelSource {
    /// The best available of the others.
    Auto,
    /// The DHCPv6 IA_NA address.
    IaNa,
    /// A SLAAC address on the WAN.
    Slaac,
    /// An address from the delegated prefix.
    Prefix,
}

impl fmt::Display for TunnelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelSource::Auto => "auto",
            TunnelSource::IaNa => "ia_na",
            TunnelSource::Slaac => "slaac",
            TunnelSource::Prefix => "prefix",
        })
    }
}

/// The Tunnel Encapsulation Limit option (RFC 2473 §4.1.1) on encapsulated packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncapLimit {
    /// UCI 'none': send no such option (what AFTRs expect; `ip -6 tunnel ... encaplimit none`).
    Disabled,
    Limit(u8),
}

impl fmt::Display for EncapLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncapLimit::Disabled => f.write_str("none"),
            EncapLimit::Limit(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lan {
    pub device: InterfaceName,
    /// The router's address and subnet (`ipaddr`, `netmask`); `None` (both
    /// unset) serves whatever address the LAN device has, followed live
    /// (see [`crate::lan4`]).
    pub address: Option<Ipv4Subnet>,
    pub dns_proxy: bool,
    pub dns_port: u16,
    pub dns_cache_size: u32,
    /// Static upstream servers; empty means use those learned over DHCPv6.
    pub dns_server: Vec<Ipv6Addr>,
    pub dhcp: bool,
    /// Pool start, as an offset from the network address (OpenWrt semantics).
    pub dhcp_start: u32,
    /// Pool size; the pool always ends below the broadcast address.
    pub dhcp_limit: u32,
    pub lease_time: Duration,
    pub lease_file: PathBuf,
    pub domain: String,
    /// Interface MTU for DHCPv4 clients (option 26); `None` sends none.
    pub dhcp_mtu: Option<u16>,
    /// Length of the LAN prefix carved from the delegated prefix (OpenWrt's
    /// `ip6assign`); `None` assigns nothing (UCI value 0).
    pub ip6assign: Option<u8>,
    /// Which subnet of that length (OpenWrt's `ip6hint`, hex in UCI).
    pub ip6hint: u32,
    /// The lower 64 bits of the LAN bridge's address (OpenWrt's `ip6ifaceid`).
    pub ip6ifaceid: u64,
}

impl Default for Lan {
    fn default() -> Self {
        Lan {
            device: InterfaceName::from_static("br-lan"),
            address: None,
            dns_proxy: true,
            dns_port: 53,
            dns_cache_size: 1000,
            dns_server: Vec::new(),
            dhcp: true,
            dhcp_start: 100,
            dhcp_limit: 150,
            lease_time: Duration::from_secs(12 * 3600),
            lease_file: PathBuf::from("/tmp/b4d.leases"),
            domain: "lan".to_string(),
            dhcp_mtu: None,
            ip6assign: Some(64),
            ip6hint: 0,
            ip6ifaceid: 1,
        }
    }
}

/// A static DHCPv4 lease (`config host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticHost {
    pub mac: MacAddr,
    /// Inside the LAN subnet; not its network, broadcast or router address.
    pub ip: Ipv4Addr,
    pub name: Option<String>,
    /// A client sending this identifier gets the lease whatever its MAC.
    pub client_id: Option<ClientId>,
}
