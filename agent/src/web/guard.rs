//! The dashboard's security checks, pure: the `Host` header against where the dashboard
//! listens (DNS rebinding), CSRF tokens derived from a per-process secret, the session
//! cookie, and the headers every answer carries.

use std::net::{IpAddr, SocketAddr};

/// The content security policy of every answer: nothing but the dashboard's own script,
/// style and images, no framing, forms only to itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cobox_session";

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The process's secret the CSRF tokens are derived from; never shown.
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn new(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    /// A fresh random secret.
    pub fn random() -> Secret {
        let mut b = [0u8; 32];
        libsodium_rs::random::fill_bytes(&mut b);
        Secret(b)
    }

    fn mac(&self, session: Option<&str>) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"cobox-web-csrf-v1\0");
        match session {
            Some(s) => {
                h.update(b"session\0");
                h.update(s.as_bytes());
            }
            None => {
                h.update(b"no-session");
            }
        }
        h.finalize()
    }

    /// The CSRF token of the forms shown to `session` (`None`: a browser without one,
    /// on loopback or before its login).
    pub fn csrf(&self, session: Option<&str>) -> String {
        self.mac(session).to_hex().to_string()
    }

    /// Whether `given` is the CSRF token of `session` (compared in constant time).
    pub fn csrf_ok(&self, session: Option<&str>, given: Option<&str>) -> bool {
        let Some(given) = given else {
            return false;
        };
        blake3::Hash::from_hex(given.trim()).is_ok_and(|g| g == self.mac(session))
    }
}

/// A random session id: 32 bytes, hex.
pub fn new_session_id() -> String {
    let mut b = [0u8; 32];
    libsodium_rs::random::fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `Set-Cookie` value opening a session.
pub fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/")
}

/// The `Set-Cookie` value ending a session.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Whether a request's `Host` header names this dashboard: `localhost` or a loopback
/// address, the address it listens on, or the address the connection came in on (a
/// dashboard listening on `0.0.0.0`), each with the port it listens on. Any other name
/// (a DNS name pointing a foreign page at this device) is refused.
pub fn host_allowed(host: Option<&str>, listen: SocketAddr, local: SocketAddr) -> bool {
    let Some(host) = host else {
        return false;
    };
    let host = host.trim();
    let (name, port) = match split_host(host) {
        Some(p) => p,
        None => return false,
    };
    if port != listen.port() {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == listen.ip() || ip == local.ip(),
        Err(_) => false,
    }
}

/// A `Host` header's name and port (80 when it names none); `None` when malformed.
fn split_host(host: &str) -> Option<(&str, u16)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => 80,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((ip, port));
    }
    match host.rsplit_once(':') {
        Some((name, port)) => Some((name, port.parse().ok()?)),
        None => Some((host, 80)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_this_dashboard_s_own_names_pass_the_host_check() {
        let listen = addr("127.0.0.1:8384");
        let ok = |h: &str| host_allowed(Some(h), listen, listen);
        assert!(ok("127.0.0.1:8384"));
        assert!(ok("localhost:8384"));
        assert!(ok("LocalHost:8384"));
        assert!(ok("[::1]:8384"));
        assert!(!ok("evil.example:8384"), "a rebound DNS name");
        assert!(!ok("localhost.evil.example:8384"));
        assert!(!ok("127.0.0.1:8385"), "another port");
        assert!(!ok("127.0.0.1"), "no port is port 80");
        assert!(!ok("[::1"));
        assert!(!ok(""));
        assert!(!host_allowed(None, listen, listen));
        // On every address: the one the connection came in on.
        let any = addr("0.0.0.0:8384");
        let local = addr("192.0.2.7:8384");
        assert!(host_allowed(Some("192.0.2.7:8384"), any, local));
        assert!(!host_allowed(Some("192.0.2.8:8384"), any, local));
        assert!(!host_allowed(Some("cobox.lan:8384"), any, local));
    }

    #[test]
    fn csrf_tokens_belong_to_their_secret_and_session() {
        let s = Secret::new([7; 32]);
        let t = s.csrf(Some("abc"));
        assert!(s.csrf_ok(Some("abc"), Some(&t)));
        assert!(!s.csrf_ok(Some("abd"), Some(&t)), "another session");
        assert!(!s.csrf_ok(None, Some(&t)), "no session");
        assert!(!s.csrf_ok(Some("abc"), None), "missing");
        assert!(!s.csrf_ok(Some("abc"), Some("")));
        assert!(!s.csrf_ok(Some("abc"), Some("zz")));
        let other = Secret::new([8; 32]);
        assert!(!other.csrf_ok(Some("abc"), Some(&t)), "another process");
        assert!(s.csrf_ok(None, Some(&s.csrf(None))));
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn cookies_are_found_by_name_and_sessions_are_http_only_and_strict() {
        let h = Some("a=1; cobox_session=xyz; b=2");
        assert_eq!(cookie(h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(h, "c"), None);
        assert_eq!(cookie(None, "a"), None);
        let c = session_cookie("xyz");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        assert_ne!(new_session_id(), new_session_id());
        assert_eq!(new_session_id().len(), 64);
    }
}
