//! Follows the LAN device's IPv4 addresses over netlink and publishes the
//! subnet b4d serves (see the module above for which one).

use std::io;

use log::{info, warn};
use tokio::sync::watch;

use super::{followed_subnet, Ipv4Subnet};
use crate::netlink::LinkWatch;

/// The subnet b4d serves on the LAN; `None` while the followed device has
/// no IPv4 address (DHCPv4 and DNS then wait).
pub type LanSubnet = watch::Receiver<Option<Ipv4Subnet>>;

/// Follows `device` until `shutdown`. With `configured` set (lan.ipaddr),
/// `subnet` holds it from the start and keeps it whatever the device has; a
/// device without it is only reported (clients would get leases for a
/// subnet the router is not on); without, the device's address is served
/// and followed.
pub async fn run(
    device: String,
    configured: Option<Ipv4Subnet>,
    subnet: watch::Sender<Option<Ipv4Subnet>>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut link = LinkWatch::new(&device)?;
    // What the device was last seen with (whether it exists, the subnet it
    // offers), so that each state is said once.
    let mut seen = None;
    loop {
        let addresses = link.snapshot().await?.map(|state| state.ipv4);
        let on_device = followed_subnet(addresses.as_deref().unwrap_or(&[]), *subnet.borrow());
        if seen != Some((addresses.is_some(), on_device)) {
            match (configured, on_device) {
                (Some(fixed), _) if on_device == Some(fixed) => {}
                // Not there (yet): only a device that exists is reported.
                (Some(fixed), _) if addresses.is_some() => warn!(
                    "LAN {device} has {}, not lan.ipaddr {fixed}: DHCPv4 clients get leases for \
                     a subnet the router is not on (unset lan.ipaddr and lan.netmask to follow \
                     the device)",
                    on_device.map_or("no IPv4 address".into(), |s| s.to_string())
                ),
                (Some(_), _) => {}
                (None, Some(now)) => info!("LAN {device}: serving {now}"),
                // At boot netifd may not have set it yet.
                (None, None) => {
                    info!("LAN {device} has no IPv4 address: DHCPv4 and the DNS proxy wait for one")
                }
            }
            seen = Some((addresses.is_some(), on_device));
            if configured.is_none() {
                subnet.send_replace(on_device);
            }
        }
        tokio::select! {
            changed = link.changed() => changed?,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}
