//! Per-device IPv6 settings under /proc/sys/net/ipv6/conf/<device>/, for the
//! few knobs b4d turns on the WAN (accept_ra, optimistic_dad, use_optimistic).

use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel keeps the per-device IPv6 settings.
pub const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf";

/// One device's IPv6 settings directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Conf {
    dir: PathBuf,
}

impl Ipv6Conf {
    /// `root` is [`IPV6_CONF`] outside tests.
    pub fn new(root: &Path, device: &str) -> Self {
        Ipv6Conf {
            dir: root.join(device),
        }
    }

    pub fn read(&self, name: &str) -> io::Result<String> {
        Ok(std::fs::read_to_string(self.dir.join(name))?
            .trim()
            .to_string())
    }

    pub fn write(&self, name: &str, value: &str) -> io::Result<()> {
        std::fs::write(self.dir.join(name), value)
    }

    /// Turns on optimistic DAD (RFC 4429) for the device. The kernel then
    /// lets a new address (the link-local one after a link flap, and the
    /// leased one b4d adds with IFA_F_OPTIMISTIC) be used at once while DAD
    /// runs, instead of one DAD round (about a second) later: the DHCPv6
    /// client can send and the tunnel can carry traffic right away. DAD
    /// still runs and a duplicate is still found and declined.
    /// Linux honours IFA_F_OPTIMISTIC from netlink only when this is on.
    ///
    /// It also turns on use_optimistic. RFC 4429 §2.1 has source address
    /// selection avoid an optimistic address while another one exists, and
    /// the router always has another: the LAN's address from the delegated
    /// prefix. After a WAN flap the DNS proxy's upstream queries then left
    /// from the LAN prefix for the second DAD took, and were lost wherever
    /// the ISP did not (yet) route that prefix back (seen in the lab). With
    /// use_optimistic the outgoing-interface rule (RFC 6724 rule 5) decides,
    /// so traffic to the ISP leaves from the WAN address, as the tunnel's
    /// already does.
    pub fn enable_optimistic_dad(&self) -> OptimisticDad {
        let outcome = match self.read("optimistic_dad") {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.dir.exists() => {
                return OptimisticDad::Unsupported
            }
            Err(e) => return OptimisticDad::Failed(e),
            Ok(value) if value != "0" => OptimisticDad::AlreadyOn,
            Ok(_) => match self.write("optimistic_dad", "1") {
                Ok(()) => OptimisticDad::TurnedOn,
                Err(e) => return OptimisticDad::Failed(e),
            },
        };
        match self.read("use_optimistic") {
            Ok(value) if value == "0" => match self.write("use_optimistic", "1") {
                Ok(()) => outcome,
                Err(e) => OptimisticDad::Failed(e),
            },
            // Already on, or a kernel older than 4.0 without the knob.
            _ => outcome,
        }
    }
}

impl Ipv6Conf {
    /// RFC 4861 §6.3.4 / Linux ip-sysctl: with forwarding on, the kernel
    /// ignores RAs unless accept_ra is 2. A router still learns its WAN
    /// default route from the ISP's RAs (the AFTR and the DNS servers are
    /// off-link), so 1 is raised to 2; 0, an explicit "no", is left alone.
    /// On OpenWrt this is what keeps the route once b4d replaces odhcp6c,
    /// which handled RAs itself: OpenWrt turns forwarding on everywhere.
    pub fn keep_accepting_ras(&self) -> AcceptRa {
        let (forwarding, accept_ra) = match (self.read("forwarding"), self.read("accept_ra")) {
            (Ok(f), Ok(a)) => (f, a),
            (Err(e), _) | (_, Err(e)) => return AcceptRa::Failed(e),
        };
        match accept_ra_fix(&forwarding, &accept_ra) {
            None => AcceptRa::Unchanged,
            Some(value) => match self.write("accept_ra", value) {
                Ok(()) => AcceptRa::Raised,
                Err(e) => AcceptRa::Failed(e),
            },
        }
    }
}

/// The rule behind [`Ipv6Conf::keep_accepting_ras`]: the accept_ra value to
/// write, if any.
fn accept_ra_fix(forwarding: &str, accept_ra: &str) -> Option<&'static str> {
    (forwarding.trim() != "0" && accept_ra.trim() == "1").then_some("2")
}

/// What [`Ipv6Conf::keep_accepting_ras`] did.
#[derive(Debug)]
pub enum AcceptRa {
    /// Forwarding is on and accept_ra was 1: now 2.
    Raised,
    /// Nothing to do (a host, already 2, or 0 on purpose).
    Unchanged,
    Failed(io::Error),
}

/// What [`Ipv6Conf::enable_optimistic_dad`] found.
#[derive(Debug)]
pub enum OptimisticDad {
    TurnedOn,
    AlreadyOn,
    /// A kernel built without CONFIG_IPV6_OPTIMISTIC_DAD (OpenWrt's default):
    /// plain DAD, new addresses are usable about a second later.
    Unsupported,
    Failed(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf_dir(optimistic: Option<&str>) -> (PathBuf, Ipv6Conf) {
        let root = std::env::temp_dir().join(format!(
            "b4d-sysctl-{}-{}",
            std::process::id(),
            optimistic.unwrap_or("none")
        ));
        let dir = root.join("wan");
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(v) = optimistic {
            std::fs::write(dir.join("optimistic_dad"), format!("{v}\n")).unwrap();
            std::fs::write(dir.join("use_optimistic"), "0\n").unwrap();
        }
        (root.clone(), Ipv6Conf::new(&root, "wan"))
    }

    #[test]
    fn optimistic_dad_is_turned_on_once() {
        let (root, conf) = conf_dir(Some("0"));
        assert!(matches!(
            conf.enable_optimistic_dad(),
            OptimisticDad::TurnedOn
        ));
        assert_eq!(conf.read("optimistic_dad").unwrap(), "1");
        assert_eq!(conf.read("use_optimistic").unwrap(), "1");
        assert!(matches!(
            conf.enable_optimistic_dad(),
            OptimisticDad::AlreadyOn
        ));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn accept_ra_is_raised_only_from_1_with_forwarding_on() {
        assert_eq!(accept_ra_fix("1\n", "1\n"), Some("2"));
        assert_eq!(accept_ra_fix("1\n", "2\n"), None);
        assert_eq!(accept_ra_fix("1\n", "0\n"), None, "0 is an explicit no");
        assert_eq!(accept_ra_fix("0\n", "1\n"), None, "hosts take RAs anyway");
    }

    #[test]
    fn a_forwarding_wan_keeps_taking_ras() {
        let root = std::env::temp_dir().join(format!("b4d-sysctl-{}-ra", std::process::id()));
        std::fs::create_dir_all(root.join("wan")).unwrap();
        let conf = Ipv6Conf::new(&root, "wan");
        conf.write("forwarding", "1\n").unwrap();
        conf.write("accept_ra", "1\n").unwrap();
        assert!(matches!(conf.keep_accepting_ras(), AcceptRa::Raised));
        assert_eq!(conf.read("accept_ra").unwrap(), "2");
        assert!(matches!(conf.keep_accepting_ras(), AcceptRa::Unchanged));
        let gone = Ipv6Conf::new(&root, "no-such-device");
        assert!(matches!(gone.keep_accepting_ras(), AcceptRa::Failed(_)));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_kernel_without_optimistic_dad_is_told_apart_from_a_missing_device() {
        let (root, conf) = conf_dir(None);
        assert!(matches!(
            conf.enable_optimistic_dad(),
            OptimisticDad::Unsupported
        ));
        let gone = Ipv6Conf::new(&root, "no-such-device");
        assert!(matches!(
            gone.enable_optimistic_dad(),
            OptimisticDad::Failed(_)
        ));
        std::fs::remove_dir_all(root).unwrap();
    }
}
