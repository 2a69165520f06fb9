//! Replacing a file whole: a crash leaves either the old content or the new, never a mix.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The directory holding `path` (`.` for a bare name) and its file name.
fn dir_and_name(path: &Path) -> (&Path, String) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Write `bytes` to `path` through a temporary file in the same directory (keeping the
/// old file's permissions), fsync it, rename it into place, and fsync the directory.
/// The temporary file is created afresh (never through a link left at its name) with the
/// old file's permissions from the start, so no one can open it who could not open the
/// old file.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, name) = dir_and_name(path);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let old_mode = std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(old_mode.unwrap_or(0o666))
            .open(&tmp)?;
        if let Some(mode) = old_mode {
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()
}

/// Write `bytes` to a new file `path` with `mode`, whole or not at all: written and synced
/// under a temporary name, then linked into place (which fails, `AlreadyExists`, when
/// `path` exists: nothing is ever replaced), and the directory synced.
pub fn create(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let (dir, name) = dir_and_name(path);
    // Unique in this process too: two threads may create files of one name at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    std::fs::File::open(dir)?.sync_all()
}

/// The process that wrote temporary file `name` (`.NAME.tmp-PID`), if it is one.
fn temp_writer(name: &str) -> Option<u32> {
    let (_, rest) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    rest.split('-').next()?.parse().ok()
}

/// Remove what interrupted replacements left in `dir`: temporary files of processes that
/// are gone (a live writer's file, this process's included, is left alone). Returns the
/// files removed.
pub fn sweep(dir: &Path) -> Vec<std::path::PathBuf> {
    sweep_matching(dir, |_| true)
}

/// [`sweep`] for the temporary files of replacing `path` only (in a directory that is not
/// ours alone, like the config file's).
pub fn sweep_for(path: &Path) -> Vec<std::path::PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return vec![];
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    sweep_matching(dir, |n| n.starts_with(&prefix))
}

fn sweep_matching(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut removed = vec![];
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_writer(&name).filter(|_| wanted(&name)) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive
            && e.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(e.path()).is_ok()
        {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_file_is_whole_private_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parent.key");
        create(&path, b"first", 0o600).unwrap();
        let e = create(&path, b"second", 0o600).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn leftovers_of_dead_writers_are_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // A process id no process has (beyond the kernel's maximum).
        let dead = 4_194_305;
        let me = std::process::id();
        for name in [
            format!(".cobox.toml.tmp-{dead}"),
            format!(".0000000007.json.tmp-{dead}"),
            format!(".cobox.toml.tmp-{me}"),
            "cobox.toml".into(),
            ".hidden".into(),
            format!("x.tmp-{dead}"),
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let removed = sweep(dir.path());
        let names: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                format!(".0000000007.json.tmp-{dead}"),
                format!(".cobox.toml.tmp-{dead}")
            ]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
        // Only the named file's, where the directory is shared.
        std::fs::write(dir.path().join(format!(".other.tmp-{dead}")), "x").unwrap();
        std::fs::write(dir.path().join(format!(".cobox.toml.tmp-{dead}")), "x").unwrap();
        let removed = sweep_for(&dir.path().join("cobox.toml"));
        assert_eq!(removed.len(), 1);
        assert!(dir.path().join(format!(".other.tmp-{dead}")).exists());
    }

    #[test]
    fn replaces_the_content_keeps_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cobox.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_private_file_is_never_readable_by_others_while_it_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oplog");
        std::fs::write(&path, "secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // A link planted at the temporary file's name is not followed.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let tmp = dir
            .path()
            .join(format!(".oplog.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        replace(&path, b"new secret").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new secret");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
