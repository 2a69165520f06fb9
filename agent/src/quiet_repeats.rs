//! Warnings a library repeats on every retry are shown once: mDNS on a machine without a
//! multicast route says it cannot send twice a second; the first says so, the retries go
//! on quietly. A layer of the agent's log that turns repeats from those libraries off.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Log targets (prefixes) whose repeated warnings are said once.
const NOISY: &[&str] = &["swarm_discovery", "iroh_mdns_address_lookup"];

/// Distinct messages remembered; past it, further warnings of those libraries are quiet.
const REMEMBERED: usize = 1000;

/// The layer: each distinct warning of a noisy library passes once.
#[derive(Debug, Default)]
pub struct QuietRepeats {
    seen: Mutex<BTreeSet<(String, String)>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for QuietRepeats {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() > Level::WARN || !NOISY.iter().any(|t| meta.target().starts_with(t)) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        message.0.truncate(200);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= REMEMBERED {
            return false;
        }
        seen.insert((meta.target().to_string(), message.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::prelude::*;

    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_noisy_librarys_repeated_warning_is_shown_once_and_others_always() {
        let count = Count::default();
        let subscriber = tracing_subscriber::registry()
            .with(QuietRepeats::default())
            .with(count.clone());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..10 {
                tracing::warn!(target: "swarm_discovery::socket", "error sending mDNS: Network unreachable");
            }
            tracing::warn!(target: "swarm_discovery::socket", "error sending mDNS on IPv6: Network unreachable");
            for _ in 0..3 {
                tracing::warn!(target: "coboxd::net", "session failed");
                tracing::debug!(target: "swarm_discovery::socket", "sent");
            }
        });
        // Two distinct mDNS warnings once each, ours every time, debug untouched.
        assert_eq!(count.0.load(Ordering::Relaxed), 2 + 3 + 3);
    }
}
