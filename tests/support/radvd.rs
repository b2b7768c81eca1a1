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

/// [`isp_config`] with an MTU option (RFC 4861 §4.6.4) announcing `mtu`.
pub fn isp_config_announcing_mtu(iface: &str, mtu: u32) -> String {
    isp_config(iface).replace(
        "\tAdvSendAdvert on;\n",
        &format!("\tAdvSendAdvert on;\n\tAdvLinkMTU {mtu};\n"),
    )
}

/// A capture of the multicast RAs sent on `iface` (started and listening
/// before radvd is), for [`wait_for_a_quiet_ra_window`].
pub fn capture_multicast_ras(ns: &Netns, dir: &TestDir, iface: &str) -> Process {
    let capture = ns.spawn(
        dir,
        "isp-ras-sent",
        "tcpdump",
        &[
            "-l",
            "-n",
            "-i",
            iface,
            "icmp6 and ip6[40] == 134 and ip6 dst ff02::1",
        ],
    );
    capture.wait_for_line("listening on", std::time::Duration::from_secs(10));
    capture
}

/// Waits until a solicitation sent in the next few seconds would be
/// answered at once. radvd rate-limits multicast RAs (MinDelayBetweenRAs,
/// 3 s, RFC 4861 §6.2.6), and while it sends its first three (16 s apart
/// after it starts) it moves a rate-limited answer to the next of those, up
/// to 16 s later. A BNG has been up for months and sends a periodic RA
/// every 10-30 min here; the lab's radvd starts seconds before each drill.
/// So a drill that times how fast a CPE gets its RA after a link flap of
/// about 2 s starts when the last multicast RA (`sent`:
/// [`capture_multicast_ras`]) is at least 3 s old and the next cannot come
/// before the flap is over: at most 12 s old, or older than radvd's
/// start-up interval (16 s) so that its start-up is over.
pub fn wait_for_a_quiet_ra_window(sent: &Process, timeout: std::time::Duration) {
    use std::time::Duration;
    const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
    const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);
    const FLAP: Duration = Duration::from_secs(4);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let last = sent
            .lines()
            .into_iter()
            .filter(|line| line.text.contains("router advertisement"))
            .map(|line| line.at)
            .next_back();
        if let Some(age) = last.map(|at| at.elapsed()) {
            let quiet =
                age >= MIN_DELAY_BETWEEN_RAS && age + FLAP <= MAX_INITIAL_RTR_ADVERT_INTERVAL;
            if quiet || age > MAX_INITIAL_RTR_ADVERT_INTERVAL + Duration::from_secs(1) {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no quiet RA window in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
