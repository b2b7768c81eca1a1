//! OpenWrt mode: hands the WAN's DHCPv6 results to netifd, so that odhcpd
//! serves the LAN from the delegated prefix (`ip6assign` on `lan`), the
//! firewall's wan zone and LuCI's interface status see the address and prefix,
//! exactly as they do with odhcp6c.
//!
//! Why a protocol handler (`proto 'b4'` on the `wan6` interface,
//! files/lib/netifd/proto/b4.sh) and not a dynamic interface
//! (`ubus call network add_dynamic`): only a protocol handler's updates
//! (`notify_proto`) carry lifetimes. netifd's static protocol, which dynamic
//! interfaces use, takes `ip6addr`/`ip6prefix` without lifetimes, so
//! renumbering could not deprecate the old prefix; with `notify_proto` the
//! old prefix is announced with preferred 0 until it expires (RFC 7084 L-13),
//! exactly what odhcp6c's handler does. A handler also keeps the interface
//! where users configure it (`wan6` in /etc/config/network, in the wan
//! firewall zone by default), and `ifup`/`ifdown wan6` keep working.
//!
//! Why b4d is not the handler's process (`proto_run_command`, as odhcp6c is):
//! b4d is one procd service that also runs the tunnel, the LAN DNS proxy and
//! the DHCPv4 server; netifd restarting `wan6` must not restart all of that.
//! So the handler declares `no_proto_task`: its setup only asks b4d (`ubus
//! call b4 netifd_setup`) to report again, its teardown tells b4d to report
//! nothing until then (`netifd_teardown`), and b4d calls
//! `network.interface notify_proto` on every change: lease acquired or
//! renewed, prefix changed, lease lost (`link-up` false).
//!
//! - [`report`]: the sans-I/O core deciding what to send and when.
//! - [`driver`]: the tokio task making the calls over b4d's ubus connection.

pub mod driver;
pub mod report;

pub use report::{notify_message, NetifdStatus, Reporter, Snapshot};
