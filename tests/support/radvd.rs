//! radvd, the Router Advertisement daemon from Debian, in a namespace: the
//! ISP's router on the CPE's WAN link, or an RA daemon on br-lan.

use super::{Netns, Process, TestDir};

/// Starts radvd in `ns` with `config` (radvd.conf syntax), logging to the
/// test dir as `name`. radvd wants IPv6 forwarding on where it runs.
pub fn start(ns: &Netns, dir: &TestDir, name: &str, config: &str) -> Process {
    let conf = dir.write(&format!("{name}.conf"), config);
    let pid = dir.file(&format!("{name}.pid"));
    ns.spawn(
        dir,
        name,
        "radvd",
        &[
            "--nodaemon",
            "--config",
            &conf.display().to_string(),
            "--pidfile",
            &pid.display().to_string(),
            "--logmethod",
            "stderr",
            "--debug",
            "1",
        ],
    )
}

/// The ISP's Router Advertisement on `iface`, as a BNG sends it to a CPE:
/// the default route (30 min), addresses and everything else from DHCPv6
/// (M and O flags, no prefix). Unsolicited RAs are rare (10–30 min after
/// radvd's first few), so a route that appears promptly came from a
/// solicited one.
pub fn isp_config(iface: &str) -> String {
    format!(
        "interface {iface} {{\n\
         \tAdvSendAdvert on;\n\
         \tAdvManagedFlag on;\n\
         \tAdvOtherConfigFlag on;\n\
         \tMinRtrAdvInterval 600;\n\
         \tMaxRtrAdvInterval 1800;\n\
         \tAdvDefaultLifetime 1800;\n\
         }};\n"
    )
}
