//! Who may use the dashboard: a browser on loopback without a login; any other after a
//! login (the password checked against its argon2 hash, or the token of the token file)
//! that opens a session held in memory (an agent restart ends every session).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use cobox_schema::config::WebLogin;

/// How many sessions are kept; the oldest ends when one more opens.
pub const MAX_SESSIONS: usize = 64;

/// What a login is checked against.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub password_hash: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl From<&WebLogin> for Login {
    fn from(w: &WebLogin) -> Login {
        Login {
            password_hash: w.password_hash.clone(),
            token_file: w.token_file.clone(),
        }
    }
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("web token file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("web token file {0} holds no token on its first line")]
    Empty(PathBuf),
}

/// The token: the first line of `path`, trimmed.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(TokenError::Empty(path.to_path_buf()));
    }
    Ok(token.to_string())
}

/// Whether `secret` (what the login form was given) opens a session: it is the password
/// of the hash, or the token. Blocking: argon2 takes tens of milliseconds on purpose.
pub fn login_ok(login: &Login, secret: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    if let Some(hash) = &login.password_hash
        && let Ok(parsed) = PasswordHash::new(hash)
        && Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    {
        return true;
    }
    if let Some(path) = &login.token_file {
        match read_token(path) {
            // Compared as hashes: equal time whatever the first differing byte.
            Ok(token) => return blake3::hash(token.as_bytes()) == blake3::hash(secret.as_bytes()),
            Err(e) => tracing::warn!(error = %e, "web login by token refused"),
        }
    }
    false
}

/// The open sessions, oldest first.
#[derive(Debug, Default)]
pub struct Sessions {
    ids: Mutex<VecDeque<String>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open a session; its id goes into the cookie.
    pub fn open(&self) -> String {
        let id = super::guard::new_session_id();
        let mut ids = self.lock();
        if ids.len() == MAX_SESSIONS {
            ids.pop_front();
        }
        ids.push_back(id.clone());
        id
    }

    pub fn is_open(&self, id: &str) -> bool {
        self.lock().iter().any(|s| s == id)
    }

    pub fn close(&self, id: &str) {
        self.lock().retain(|s| s != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;
    use argon2::password_hash::SaltString;

    fn hash(password: &str) -> String {
        let salt = SaltString::encode_b64(b"a fixed test salt").unwrap();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_login_opens_with_the_password_of_the_hash_or_the_token_only() {
        let tmp = tempfile::tempdir().unwrap();
        let token = tmp.path().join("token");
        std::fs::write(&token, "s3cret-token\nignored\n").unwrap();
        let login = Login {
            password_hash: Some(hash("correct horse")),
            token_file: Some(token.clone()),
        };
        assert!(login_ok(&login, "correct horse"));
        assert!(login_ok(&login, "s3cret-token"));
        assert!(!login_ok(&login, "correct horse "));
        assert!(!login_ok(&login, "ignored"));
        assert!(!login_ok(&login, ""));
        assert!(!login_ok(&Login::default(), "anything"));
        std::fs::write(&token, "\n").unwrap();
        assert!(matches!(read_token(&token), Err(TokenError::Empty(_))));
        assert!(!login_ok(&login, ""));
        std::fs::remove_file(&token).unwrap();
        assert!(!login_ok(&login, "s3cret-token"));
        let e = read_token(&token).unwrap_err().to_string();
        assert!(e.starts_with("web token file "), "{e}");
    }

    #[test]
    fn sessions_open_close_and_the_oldest_ends_past_the_limit() {
        let s = Sessions::default();
        let first = s.open();
        assert!(s.is_open(&first));
        assert!(!s.is_open("nope"));
        for _ in 0..MAX_SESSIONS {
            s.open();
        }
        assert!(!s.is_open(&first));
        let last = s.open();
        s.close(&last);
        assert!(!s.is_open(&last));
    }
}
