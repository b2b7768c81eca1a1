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

/// radvd sends its first MAX_INITIAL_RTR_ADVERTISEMENTS (3) RAs at most
/// 16 s apart after it starts, and while it does, it moves an answer to a
/// solicitation from :: that its rate limit (MinDelayBetweenRAs, 3 s, RFC
/// 4861 §6.2.6) holds back to the next of those, up to 16 s later. A BNG
/// has been up for months; a drill that times how fast a CPE gets its RA
/// after a link flap waits for this start-up phase to end first, so that
/// it measures the CPE, not radvd's first half minute. It also waits out
/// the rate limit after the last of them (a router's periodic RAs are
/// 10-30 min apart here, so no other RA comes close to a drill).
pub fn wait_past_initial_advertisements(radvd: &Process, timeout: std::time::Duration) {
    const MIN_DELAY_BETWEEN_RAS: std::time::Duration = std::time::Duration::from_secs(3);
    const MAX_INITIAL_RTR_ADVERTISEMENTS: usize = 3;
    let deadline = std::time::Instant::now() + timeout;
    while radvd.lines_matching("timer_handler called").len() < MAX_INITIAL_RTR_ADVERTISEMENTS {
        assert!(
            std::time::Instant::now() < deadline,
            "radvd sent fewer than {MAX_INITIAL_RTR_ADVERTISEMENTS} RAs in {timeout:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(MIN_DELAY_BETWEEN_RAS);
}
