//! Replacing a small state file atomically and durably: the DHCPv4 lease
//! file, the DHCPv6 binding file and the DUID. Writes go to `<file>.tmp`,
//! are fsynced, then renamed over the file and the directory fsynced, so a
//! reader (or b4d after kill -9 or a power cut) sees either the old or the
//! new file, never a mix. A missing folder (a lease file put on flash, in
//! a folder of its own) is created first.

use std::io;
use std::path::Path;
use std::time::Duration;

/// How soon a write that failed (tmpfs full: a firmware image uploaded to
/// /tmp) is tried again, by the DHCPv4 and DHCPv6 drivers alike.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// Replaces `path` with what `fill` writes, atomically and durably. The
/// text is streamed through a buffer rather than built in memory first.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir.filter(|d| !d.exists()) {
        std::fs::create_dir_all(dir)?;
        sync_dir(dir.parent());
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let written = (|| {
        let mut out = io::BufWriter::new(std::fs::File::create(tmp)?);
        fill(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(tmp, path)
    })();
    if let Err(e) = written {
        // The old file stays as it was; a half-written copy (a full /tmp)
        // must not hold the RAM it took until the next write.
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    // The rename itself is durable only once the directory is synced. The
    // new file is in place whatever that says: not a failed write (callers
    // would undo or withhold what the file now holds).
    sync_dir(dir);
    Ok(())
}

/// fsync of a folder, best effort (see above).
fn sync_dir(dir: Option<&Path>) {
    if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("b4d-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases");
        use std::io::Write as _;
        write_atomic(&path, |w| w.write_all(b"one\n")).unwrap();
        write_atomic(&path, |w| w.write_all(b"two\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert!(!dir.join("leases.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_folder_is_created() {
        let dir = std::env::temp_dir().join(format!("b4d-atomic-dir-{}", std::process::id()));
        let path = dir.join("b4d").join("leases");
        use std::io::Write as _;
        write_atomic(&path, |w| w.write_all(b"one\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_copy() {
        let dir = std::env::temp_dir().join(format!("b4d-atomic-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases");
        use std::io::Write as _;
        write_atomic(&path, |w| w.write_all(b"old\n")).unwrap();
        let failed = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            w.flush()?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert!(!dir.join("leases.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
