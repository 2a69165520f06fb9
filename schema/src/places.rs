//! Where the agent may put a mount, its data directory and its control socket: never on
//! the system's directories or inside its trees, and a mount never on the home directory
//! itself or one holding it (a service's data directory may well be its home). Pure rules on absolute, normalized paths, checked by validation (with the
//! config's line and column) and again by the agent just before it acts.

use std::path::{Component, Path};

/// Directories whose whole tree belongs to the system: nothing of ours goes inside.
pub const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr",
];

/// Directories that may hold ours inside but must never be one of ours themselves.
pub const SYSTEM_DIRS: &[&str] = &[
    "/home",
    "/media",
    "/mnt",
    "/opt",
    "/root",
    "/run",
    "/srv",
    "/tmp",
    "/var",
    "/var/lib",
    "/var/tmp",
    "/run/user",
];

/// What a path is used for, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Mount,
    DataDir,
    Socket,
}

impl Use {
    fn word(self) -> &'static str {
        match self {
            Use::Mount => "a mount",
            Use::DataDir => "the data directory",
            Use::Socket => "the control socket",
        }
    }
}

/// Why `path` may not be used as `what`, or `None` when it may. `home` is the user's home
/// directory when known (it matters for mounts).
pub fn refusal(path: &Path, what: Use, home: Option<&Path>) -> Option<String> {
    let shown = path.display();
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Some(format!("path {shown:?} contains a NUL byte"));
    }
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Some(format!("path {shown} is not absolute and normalized"));
    }
    if path == Path::new("/") {
        return Some(format!("{} cannot be the root directory", what.word()));
    }
    if let Some(tree) = SYSTEM_TREES
        .iter()
        .map(Path::new)
        .find(|t| path.starts_with(t))
    {
        return Some(format!(
            "{shown} is in the system directory {}: {} never goes there",
            tree.display(),
            what.word()
        ));
    }
    if SYSTEM_DIRS.iter().any(|d| path == Path::new(d)) {
        return Some(format!(
            "{shown} is a system directory: {} goes inside one, never on it",
            what.word()
        ));
    }
    if let Some(home) = home.filter(|h| h.is_absolute() && what == Use::Mount)
        && home.starts_with(path)
    {
        let how = if home == path {
            "the home directory"
        } else {
            "a directory holding the home directory"
        };
        return Some(format!(
            "{shown} is {how}: {} goes inside it, never on it",
            what.word()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &str, what: Use) -> bool {
        refusal(Path::new(p), what, Some(Path::new("/home/ana"))).is_some()
    }

    #[test]
    fn system_places_and_the_home_directory_are_refused_for_every_use() {
        for what in [Use::Mount, Use::DataDir, Use::Socket] {
            for p in [
                "/",
                "/etc",
                "/etc/cobox",
                "/usr/local/share/x",
                "/proc/1",
                "/dev/shm/x",
                "/boot/efi",
                "/home",
                "/var",
                "/tmp",
                "/run",
                "/root",
                "relative/path",
                "/srv/../etc",
            ] {
                assert!(refused(p, what), "{p} as {what:?}");
            }
            for p in [
                "/home/ana/cobox/photos",
                "/home/ana/.local/share/cobox",
                "/var/lib/cobox",
                "/srv/cobox/a",
                "/mnt/photos",
                "/tmp/test-123/m",
                "/run/user/1000/coboxd.sock",
                "/home/bob/cobox",
                "/etcetera/x",
            ] {
                assert!(!refused(p, what), "{p} as {what:?}");
            }
        }
        let nul = refusal(Path::new("/srv/a\0b"), Use::Mount, None).unwrap();
        assert!(nul.contains("NUL"), "{nul}");
        assert!(
            refused("/home/ana", Use::Mount),
            "a mount over the home directory"
        );
        assert!(
            !refused("/home/ana", Use::DataDir),
            "a service's home is its data"
        );
        // Without a known home only the system's places count.
        assert!(refusal(Path::new("/home/ana"), Use::Mount, None).is_none());
        let m = refusal(
            Path::new("/home/ana"),
            Use::Mount,
            Some(Path::new("/home/ana")),
        )
        .unwrap();
        assert!(m.contains("home directory"), "{m}");
    }
}
