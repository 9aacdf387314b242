//! Why a file cannot be read, in words the administrator can act on: which user and groups we
//! run as, who owns the file (or the directory that stops us), and what to change.
//! Only called on the error path, so the user and group look-ups cost nothing normally.

use nix::unistd::{Gid, Group, Uid, User};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who is asking: a user and the groups it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Creds {
    pub(crate) uid: u32,
    /// The primary group first.
    pub(crate) gids: Vec<u32>,
}

impl Creds {
    /// This process (effective ids and supplementary groups).
    pub(crate) fn current() -> Creds {
        let mut gids = vec![Gid::effective().as_raw()];
        for g in nix::unistd::getgroups().unwrap_or_default() {
            if !gids.contains(&g.as_raw()) {
                gids.push(g.as_raw());
            }
        }
        Creds { uid: Uid::effective().as_raw(), gids }
    }

    /// `qmaild uid 1004, groups nofiles,qmail`.
    pub(crate) fn describe(&self) -> String {
        let groups: Vec<String> = self.gids.iter().map(|&g| group_name(g)).collect();
        match User::from_uid(Uid::from_raw(self.uid)) {
            Ok(Some(u)) => format!("{} uid {}, groups {}", u.name, self.uid, groups.join(",")),
            _ => format!("uid {}, groups {}", self.uid, groups.join(",")),
        }
    }
}

fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

fn group_name(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}

/// For an EACCES on `path`: `running as ...; the key is root:qmail 0640: make it readable by
/// group nofiles`. `what` names the file (`the key`).
pub(crate) fn explain(path: &Path, what: &str, who: &Creds) -> String {
    let running = format!("running as {}", who.describe());
    // A directory on the way that we cannot search hides the file's own mode.
    let mut dirs: Vec<&Path> = path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()).collect();
    dirs.reverse();
    for d in dirs {
        if let Ok(m) = std::fs::metadata(d) {
            if !allows(&m, who, 0o1) {
                return format!(
                    "{running}; the directory {} is {} {:04o}: {}",
                    d.display(),
                    owner(&m),
                    m.mode() & 0o7777,
                    advice(&m, who, "searchable", 'x')
                );
            }
        }
    }
    match std::fs::metadata(path) {
        Ok(m) if allows(&m, who, 0o4) => {
            format!(
                "{running}; {what} is {} {:04o}, which allows reading: check its ACL, SELinux or AppArmor",
                owner(&m),
                m.mode() & 0o7777
            )
        }
        Ok(m) => format!(
            "{running}; {what} is {} {:04o}: {}",
            owner(&m),
            m.mode() & 0o7777,
            advice(&m, who, "readable", 'r')
        ),
        Err(_) => running,
    }
}

fn owner(m: &std::fs::Metadata) -> String {
    format!("{}:{}", user_name(m.uid()), group_name(m.gid()))
}

/// Whether the mode bits give `who` the permission `bit` (0o4 read, 0o1 search). Root may do
/// anything but search a directory nobody may search.
fn allows(m: &std::fs::Metadata, who: &Creds, bit: u32) -> bool {
    let mode = m.mode();
    if who.uid == 0 {
        return bit != 0o1 || mode & 0o111 != 0;
    }
    if m.uid() == who.uid {
        mode & (bit << 6) != 0
    } else if who.gids.contains(&m.gid()) {
        mode & (bit << 3) != 0
    } else {
        mode & bit != 0
    }
}

fn advice(m: &std::fs::Metadata, who: &Creds, adj: &str, letter: char) -> String {
    if m.uid() == who.uid {
        return format!("make it {adj} by its owner (chmod u+{letter})");
    }
    if who.gids.contains(&m.gid()) {
        return format!("make it {adj} by group {} (chmod g+{letter})", group_name(m.gid()));
    }
    let g = who.gids.first().map_or_else(String::new, |&g| group_name(g));
    format!("make it {adj} by group {g} (chgrp {g}, chmod g+{letter})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Ids that are not ours, so the mode bits decide (works as root too).
    fn stranger() -> Creds {
        Creds { uid: 54_321, gids: vec![54_321] }
    }

    #[test]
    fn names_the_owner_mode_and_what_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("default");
        std::fs::write(&key, "k").unwrap();
        chmod(&key, 0o640);
        let me = Creds::current();
        let who = stranger();
        let s = explain(&key, "the key", &who);
        assert!(s.starts_with("running as uid 54321, groups 54321; the key is "), "{s}");
        assert!(s.ends_with(" 0640: make it readable by group 54321 (chgrp 54321, chmod g+r)"), "{s}");
        assert!(s.contains(&format!("the key is {}:{} 0640", user_name(me.uid), group_name(me.gids[0]))), "{s}");
        // In the file's group, without g+r.
        let member = Creds { uid: 54_321, gids: vec![54_321, std::fs::metadata(&key).unwrap().gid()] };
        chmod(&key, 0o600);
        assert!(explain(&key, "the key", &member)
            .ends_with(&format!("make it readable by group {} (chmod g+r)", group_name(member.gids[1]))));
        // A directory in the way.
        chmod(dir.path(), 0o700);
        let s = explain(&key, "the key", &who);
        assert!(
            s.contains(&format!("the directory {} is ", dir.path().display()))
                && s.ends_with("0700: make it searchable by group 54321 (chgrp 54321, chmod g+x)"),
            "{s}"
        );
        chmod(dir.path(), 0o755);
        chmod(&key, 0o644);
        assert!(explain(&key, "the key", &who).ends_with("which allows reading: check its ACL, SELinux or AppArmor"));
    }

    #[test]
    fn describes_the_current_user_by_name() {
        let me = Creds::current();
        let d = me.describe();
        if let Ok(Some(u)) = User::from_uid(Uid::from_raw(me.uid)) {
            assert!(d.starts_with(&format!("{} uid {}, groups ", u.name, me.uid)), "{d}");
        }
        assert!(d.contains(&group_name(me.gids[0])));
    }
}
