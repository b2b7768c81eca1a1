//! Follows the LAN device's IPv4 addresses over netlink and publishes the
//! subnet b4d serves (see the module above for which one).

use std::io;

use log::{info, warn};
use tokio::sync::watch;

use super::{followed_subnet, Ipv4Subnet};
use crate::netlink::wire::AF_INET;
use crate::netlink::{Netlink, Subscription, RTNLGRP_IPV4_IFADDR, RTNLGRP_LINK};

/// The subnet b4d serves on the LAN; `None` while the followed device has
/// no IPv4 address (DHCPv4 and DNS then wait).
pub type LanSubnet = watch::Receiver<Option<Ipv4Subnet>>;

/// Follows `device` until `shutdown`. With `configured` set (lan.ipaddr),
/// `subnet` holds it from the start and keeps it whatever the device has; a
/// device without it is only reported (clients would get leases for a subnet the router is
/// not on); without, the device's address is served and followed.
pub async fn run(
    device: String,
    configured: Option<Ipv4Subnet>,
    subnet: watch::Sender<Option<Ipv4Subnet>>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let netlink = Netlink::open()?;
    let mut notifications = Subscription::open(&[RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR])?;
    let mut followed: Option<Ipv4Subnet> = None;
    let mut reported_mismatch: Option<Option<Ipv4Subnet>> = None;
    let mut first = true;
    loop {
        let addresses = match netlink.link(&device).await? {
            Some(link) => Some((link.index, netlink.addresses(AF_INET, link.index).await?)),
            None => None,
        };
        let on_device = addresses
            .as_ref()
            .and_then(|(index, all)| followed_subnet(all, *index, followed));
        match configured {
            None if on_device != followed || first => {
                match (followed, on_device) {
                    (_, Some(now)) if first => info!("LAN {device}: serving {now}"),
                    (Some(was), Some(now)) => {
                        info!("LAN {device}: its address is now {now} (was {was}); serving it")
                    }
                    (None, Some(now)) => info!("LAN {device}: serving {now}"),
                    // At boot netifd may not have set it yet: only a
                    // lost address is worth a warning.
                    (None, None) => info!(
                        "LAN {device} has no IPv4 address yet: DHCPv4 and the DNS proxy wait \
                         for one"
                    ),
                    (Some(_), None) => warn!(
                        "LAN {device} has no IPv4 address: DHCPv4 and the DNS proxy wait for \
                         one (set it in network.lan, or b4d.lan.ipaddr)"
                    ),
                }
                followed = on_device;
                subnet.send_replace(followed);
            }
            None => {}
            Some(fixed) => {
                // Said once per state the device is seen in.
                let has_it = addresses.as_ref().is_some_and(|(index, all)| {
                    followed_subnet(all, *index, Some(fixed)) == Some(fixed)
                });
                if has_it {
                    reported_mismatch = None;
                } else if addresses.is_some() && reported_mismatch != Some(on_device) {
                    let has = on_device.map_or("no IPv4 address".into(), |s| format!("{s}"));
                    warn!(
                        "LAN {device} has {has}, not lan.ipaddr {fixed}: DHCPv4 clients get \
                         leases for a subnet the router is not on (unset lan.ipaddr and \
                         lan.netmask to follow the device)"
                    );
                    reported_mismatch = Some(on_device);
                }
            }
        }
        first = false;
        tokio::select! {
            changed = notifications.changed() => changed?,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}
