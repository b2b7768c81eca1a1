//! The client's DUID (RFC 8415 §11): DUID-LL from the WAN MAC, persisted so
//! the ISP's server sees the same client after a restart or a MAC change
//! (and keeps handing out the same prefix).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::info;
use tokio::sync::watch;

/// RFC 8415 §11.4: DUID-LL, hardware type 1 (Ethernet).
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(&mac);
    duid
}

/// RFC 8415 §11.5: DUID-UUID from 16 random bytes, for devices without a MAC
/// (PPP, tun).
pub fn duid_uuid(random: [u8; 16]) -> Vec<u8> {
    let mut duid = vec![0, 4];
    duid.extend_from_slice(&random);
    duid
}

pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex with optional ':' separators; `None` if not a plausible DUID
/// (RFC 8415 §11.1: 2-octet type plus at most 128 octets).
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    (3..=130).contains(&bytes.len()).then_some(bytes)
}

/// Where the DUID lives: `<state_dir>/duid-<device>`.
pub fn path_for(state_dir: &Path, device: &str) -> PathBuf {
    state_dir.join(format!("duid-{device}"))
}

/// Reads the stored DUID; `Ok(None)` if there is none, `Err` if unreadable.
/// A corrupt file is treated as absent (and will be rewritten).
pub fn load(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(from_hex(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes atomically (temp file, fsync, rename; a missing folder created)
/// so a crash mid-write never leaves a half DUID behind.
pub fn store(path: &Path, duid: &[u8]) -> io::Result<()> {
    crate::atomic_file::write_atomic(path, |out| {
        io::Write::write_all(out, format!("{}\n", to_hex(duid)).as_bytes())
    })
}

/// The DUID to use: the configured one, else the stored one, else a new one
/// made by `make` and stored. Storage failures are returned as a warning
/// text alongside the DUID: a read-only state folder must not stop the WAN.
pub fn obtain(
    configured: Option<&[u8]>,
    path: &Path,
    make: impl FnOnce() -> Vec<u8>,
) -> (Vec<u8>, Option<String>) {
    if let Some(duid) = configured {
        return (duid.to_vec(), None);
    }
    match load(path) {
        Ok(Some(duid)) => (duid, None),
        Ok(None) => {
            let duid = make();
            let warning = store(path, &duid)
                .err()
                .map(|e| format!("cannot store DUID in {}: {e}", path.display()));
            (duid, warning)
        }
        Err(e) => (
            make(),
            Some(format!("cannot read DUID from {}: {e}", path.display())),
        ),
    }
}

/// The device's MAC from sysfs, for the DUID-LL; `None` without one
/// (PPP, tun) or without the device.
pub fn device_mac(device: &str) -> Option<[u8; 6]> {
    let text = fs::read_to_string(format!("/sys/class/net/{device}/address")).ok()?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let mac: [u8; 6] = bytes.try_into().ok()?;
    (mac != [0; 6]).then_some(mac)
}

/// [`obtain`] for the WAN `device`, a new DUID made only once the device
/// exists: from its MAC, or a DUID-UUID when it has none. Made before a
/// device netifd creates late (a VLAN), it would be a DUID-UUID for good,
/// and an ISP server that knew odhcp6c's DUID-LL would hand out a new
/// prefix. `None` if `shutdown` comes first.
pub async fn obtain_for_device(
    configured: Option<&[u8]>,
    path: &Path,
    device: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Vec<u8>, Option<String>)> {
    // Asked of the kernel, not sysfs (which can show another namespace's
    // devices in a container).
    let exists = || nix::net::if_::if_nametoindex(device).is_ok();
    if configured.is_none() && !matches!(load(path), Ok(Some(_))) && !exists() {
        info!("DHCPv6: waiting for {device} to appear, to make the DUID from its MAC");
        while !exists() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                // The guard wait_for returns is not Send.
                _ = async { drop(shutdown.wait_for(|stop| *stop).await) } => return None,
            }
        }
    }
    Some(obtain(configured, path, || match device_mac(device) {
        Some(mac) => duid_ll(mac),
        None => duid_uuid(rand::random()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("b4d-duid-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn duid_ll_layout() {
        assert_eq!(
            duid_ll([2, 0, 0, 0, 0, 1]),
            vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let d = duid_ll([0xde, 0xad, 0xbe, 0xef, 0, 1]);
        assert_eq!(from_hex(&to_hex(&d)), Some(d));
        assert_eq!(from_hex("0003"), None, "too short");
        assert_eq!(from_hex("00:03:zz"), None);
        assert_eq!(from_hex(&"ab".repeat(131)), None, "too long");
    }

    #[test]
    fn generated_once_then_stable() {
        let dir = temp_dir("stable");
        let path = path_for(&dir, "wan");
        let (first, warn) = obtain(None, &path, || duid_ll([2, 0, 0, 0, 0, 1]));
        assert!(warn.is_none());
        let (second, _) = obtain(None, &path, || duid_ll([2, 0, 0, 0, 0, 2]));
        assert_eq!(first, second, "a new MAC does not change the stored DUID");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn configured_duid_wins_and_corrupt_file_is_replaced() {
        let dir = temp_dir("corrupt");
        let path = path_for(&dir, "wan");
        fs::create_dir_all(&dir).unwrap();
        fs::write(&path, "garbage").unwrap();
        let (d, _) = obtain(None, &path, || duid_ll([2, 0, 0, 0, 0, 3]));
        assert_eq!(d, duid_ll([2, 0, 0, 0, 0, 3]));
        assert_eq!(load(&path).unwrap(), Some(d));
        let (c, _) = obtain(Some(&[0, 4, 1, 2, 3]), &path, Vec::new);
        assert_eq!(c, vec![0, 4, 1, 2, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_folder_is_a_warning_not_a_failure() {
        let (d, warn) = obtain(None, Path::new("/proc/b4d-nope/duid-wan"), || {
            duid_ll([2, 0, 0, 0, 0, 4])
        });
        assert_eq!(d.len(), 10);
        assert!(warn.unwrap().contains("cannot store DUID"));
    }
}
