//! Follows the LAN device's IPv4 addresses over netlink and publishes the
//! subnet b4d serves (see the module above for which one), or why there is
//! none to serve.

use std::io;

use log::{info, warn};
use tokio::sync::watch;

use super::{followed_subnet, Ipv4Subnet};
use crate::netlink::LinkWatch;

/// The subnet b4d serves on the LAN, or why it serves none yet (the reason
/// the DHCPv4 server and the DNS proxy show as their problem meanwhile).
pub type LanState = Result<Ipv4Subnet, String>;

/// The receiving end, for the DHCPv4 server, the DNS proxy and ubus.
pub type LanSubnet = watch::Receiver<LanState>;

/// What is published before the device was first looked at.
pub fn initial(device: &str, configured: Option<Ipv4Subnet>) -> LanState {
    configured.ok_or_else(|| no_address(device))
}

fn no_address(device: &str) -> String {
    format!("waiting for an IPv4 address on {device}")
}

/// Follows `device` until `shutdown`. Without `configured` (lan.ipaddr
/// unset) the device's address is served and followed. With it, that
/// subnet is served while the device has it (or does not exist yet: the
/// DHCPv4 server waits for the device itself); a device with another
/// address gets nothing, since its clients would be leased a subnet and a
/// router address the router is not on, and the status says why.
pub async fn run(
    device: String,
    configured: Option<Ipv4Subnet>,
    state: watch::Sender<LanState>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut link = LinkWatch::new(&device)?;
    // What the device was last seen with (whether it exists, the subnet it
    // offers), so that each state is said once.
    let mut seen = None;
    loop {
        let addresses = link.snapshot().await?.map(|state| state.ipv4);
        let serving = state.borrow().clone().ok();
        let on_device = followed_subnet(addresses.as_deref().unwrap_or(&[]), serving);
        // The configured address among the device's, with its prefix there.
        let configured_prefix = configured.and_then(|fixed| {
            (addresses.iter().flatten())
                .find(|(ip, _)| *ip == fixed.address())
                .map(|(_, len)| *len)
        });
        if seen != Some((addresses.is_some(), on_device, configured_prefix)) {
            seen = Some((addresses.is_some(), on_device, configured_prefix));
            let now = match (configured, on_device) {
                (Some(fixed), _) if configured_prefix.is_some() => {
                    // The router is on the address; a narrower prefix on
                    // the device leaves part of the pool without a route.
                    if configured_prefix != Some(fixed.prefix_len()) {
                        warn!(
                            "LAN {device} has {}/{}, but lan.netmask says /{}: clients get the \
                             configured mask (unset lan.ipaddr and lan.netmask to follow the device)",
                            fixed.address(),
                            configured_prefix.unwrap_or_default(),
                            fixed.prefix_len()
                        );
                    }
                    Ok(fixed)
                }
                (Some(fixed), _) if addresses.is_none() => Ok(fixed),
                (Some(fixed), _) => {
                    let has = on_device.map_or("no IPv4 address".into(), |s| s.to_string());
                    let why = format!("{device} has {has}, not lan.ipaddr {fixed}");
                    warn!(
                        "LAN {why}: DHCPv4 and the DNS proxy wait for it (unset lan.ipaddr and \
                         lan.netmask to follow the device)"
                    );
                    Err(why)
                }
                (None, Some(now)) => {
                    info!("LAN {device}: serving {now}");
                    Ok(now)
                }
                (None, None) => {
                    // At boot netifd may not have set it yet.
                    info!(
                        "LAN {device} has no IPv4 address: DHCPv4 and the DNS proxy wait for one"
                    );
                    Err(no_address(&device))
                }
            };
            state.send_if_modified(|state| {
                let changed = *state != now;
                *state = now;
                changed
            });
        }
        tokio::select! {
            changed = link.changed() => changed?,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}
