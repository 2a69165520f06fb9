//! Drive paths: relative, `/`-separated, with no empty, `.` or `..` component.

/// Longest path accepted (bytes).
pub const MAX_PATH: usize = 4096;
/// Longest single name accepted (bytes).
pub const MAX_NAME: usize = 255;

/// Why a path is not a drive path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH} bytes")]
    TooLong,
    #[error("path {0:?} has an empty, `.` or `..` component")]
    BadComponent(String),
    #[error("path {0:?} has a name longer than {MAX_NAME} bytes")]
    NameTooLong(String),
    #[error("path contains a NUL byte")]
    Nul,
}

/// Check that `path` is a drive path (the root itself is not one).
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    for c in path.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Err(PathError::BadComponent(path.to_string()));
        }
        if c.len() > MAX_NAME {
            return Err(PathError::NameTooLong(path.to_string()));
        }
    }
    Ok(())
}

/// The parent of a path ("" for a top-level name).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// The last component of a path.
pub fn name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_relative_paths_pass() {
        assert!(check_path("a/b.txt").is_ok());
        assert!(check_path("a b/ü").is_ok());
        assert_eq!(check_path(""), Err(PathError::Empty));
        assert!(matches!(
            check_path("a/../b"),
            Err(PathError::BadComponent(_))
        ));
        assert!(matches!(
            check_path(&"x".repeat(256)),
            Err(PathError::NameTooLong(_))
        ));
        assert_eq!(check_path(&"a/".repeat(3000)), Err(PathError::TooLong));
        assert_eq!((parent("a/b/c"), name("a/b/c")), ("a/b", "c"));
        assert_eq!((parent("c"), name("c")), ("", "c"));
        assert_eq!(join("", "c"), "c");
    }
}
