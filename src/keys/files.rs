//! Files that appear whole: written under a temporary name in the same directory (mode and
//! group set before the first byte, then synced) and renamed over the old file, or linked into
//! place when there must be no old file. A reader opens the old file or the new one, never a
//! part; a run killed half-way leaves at most a temporary file the next run writes over.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// The mode and group a file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    pub mode: u32,
    /// `None`: the creator's group.
    pub gid: Option<u32>,
}

impl Ownership {
    /// A file anyone may read (state files, records).
    pub(crate) const PUBLIC: Ownership = Ownership { mode: 0o644, gid: None };

    /// The group and the group read bit of an existing private key (what the administrator
    /// gave the keys qmail-dkim reads).
    pub(crate) fn like(m: &fs::Metadata) -> Ownership {
        Ownership { mode: if m.mode() & 0o040 != 0 { 0o640 } else { 0o600 }, gid: Some(m.gid()) }
    }
}

/// Puts `bytes` at `path`: over an existing file with `replace`, else only where there is
/// none (`AlreadyExists`).
pub fn install(path: &Path, bytes: &[u8], own: Ownership, replace: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{base}.tmp{}", std::process::id()));
    let result = (|| {
        // A file left by a run that was killed (the same process number, much later).
        let _ = fs::remove_file(&tmp);
        let mut f =
            OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        if let Some(gid) = own.gid {
            std::os::unix::fs::fchown(&f, None, Some(gid))?;
        }
        // Exactly this mode, whatever the umask.
        f.set_permissions(fs::Permissions::from_mode(own.mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if replace {
            fs::rename(&tmp, path)?;
        } else {
            fs::hard_link(&tmp, path)?;
            fs::remove_file(&tmp)?;
        }
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_replaces_or_refuses_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let own = Ownership { mode: 0o640, gid: None };
        install(&p, b"one", own, false).unwrap();
        assert_eq!(install(&p, b"two", own, false).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"one");
        install(&p, b"two", Ownership::PUBLIC, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
