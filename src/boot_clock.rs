//! The clock that survives a restart of b4d but not a reboot: CLOCK_BOOTTIME
//! and the kernel's boot id. Files that must outlive a crash (the DHCPv6
//! binding, the DHCPv4 leases) are timed with it rather than the wall clock,
//! which a router without a battery-backed clock sets at boot from its
//! newest file and then NTP moves by days or years; nor with
//! CLOCK_MONOTONIC, which a restarted b4d cannot compare with a file's.

use std::io;
use std::time::Duration;

/// Where the kernel tells which boot this is (random per boot).
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// A reading of the restart-surviving clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootClock {
    pub boot_id: String,
    /// CLOCK_BOOTTIME: time since this boot.
    pub since_boot: Duration,
}

impl BootClock {
    /// Reads the boot id and CLOCK_BOOTTIME.
    pub fn read() -> io::Result<BootClock> {
        let boot_id = std::fs::read_to_string(BOOT_ID_PATH)?.trim().to_string();
        if boot_id.is_empty() || !boot_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(io::Error::other(format!("{BOOT_ID_PATH} is not a boot id")));
        }
        Ok(BootClock {
            boot_id,
            since_boot: boottime()?,
        })
    }

    /// The same boot, read again now.
    pub fn now(&self) -> io::Result<BootClock> {
        Ok(BootClock {
            boot_id: self.boot_id.clone(),
            since_boot: boottime()?,
        })
    }
}

/// CLOCK_BOOTTIME: monotonic, counting from this boot.
pub fn boottime() -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
