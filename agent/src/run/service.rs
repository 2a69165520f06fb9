//! The systemd notification protocol (`Type=notify`): READY, RELOADING, STOPPING and STATUS
//! messages sent as datagrams to `$NOTIFY_SOCKET`, when systemd set one.

use std::os::unix::net::UnixDatagram;

/// A connection to the service manager, or nothing when not run by one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET").ok().and_then(|path| {
            // Abstract sockets (`@name`) are not supported here; systemd uses a path.
            if path.starts_with('@') {
                return None;
            }
            UnixDatagram::unbound().ok().map(|s| (s, path))
        });
        Notifier { socket }
    }

    fn send(&self, message: &str) {
        if let Some((socket, path)) = &self.socket
            && let Err(e) = socket.send_to(message.as_bytes(), path)
        {
            tracing::warn!(error = %e, "cannot notify the service manager");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}\n"));
    }

    pub fn reloading(&self) {
        let usec = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let usec = usec.tv_sec as u64 * 1_000_000 + usec.tv_nsec as u64 / 1_000;
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}\n"));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}\n"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\n");
    }
}
