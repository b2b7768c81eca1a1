//! Per-device IPv6 settings under /proc/sys/net/ipv6/conf/<device>/, for the
//! few knobs b4d turns on the WAN (accept_ra, optimistic_dad).

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
    pub fn enable_optimistic_dad(&self) -> OptimisticDad {
        match self.read("optimistic_dad") {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.dir.exists() => {
                OptimisticDad::Unsupported
            }
            Err(e) => OptimisticDad::Failed(e),
            Ok(value) if value != "0" => OptimisticDad::AlreadyOn,
            Ok(_) => match self.write("optimistic_dad", "1") {
                Ok(()) => OptimisticDad::TurnedOn,
                Err(e) => OptimisticDad::Failed(e),
            },
        }
    }
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
        assert!(matches!(
            conf.enable_optimistic_dad(),
            OptimisticDad::AlreadyOn
        ));
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
