//! The replica lag of each space and seed over the last hour, sampled by the status board
//! on every reconcile (at least every 10 s) and kept as one sample a minute: a replica's
//! worst lag in that minute. Kept in memory; written to the data directory when the agent
//! stops and read back when it starts, so a restart does not empty the dashboard's chart.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How many samples a resource keeps: an hour of one a minute.
pub const SAMPLES: usize = 60;

/// The file the history is kept in between runs, in the data directory.
pub const FILE: &str = "lag-history.json";

/// One sample: the minute it was taken (since the epoch) and each replica's lag in blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub minute: u64,
    pub lags: BTreeMap<String, u64>,
}

/// The samples of every space and seed (keyed like `space home`), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagHistory {
    resources: BTreeMap<String, VecDeque<Sample>>,
}

/// What the history file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    version: u32,
    resources: BTreeMap<String, VecDeque<Sample>>,
}

impl LagHistory {
    /// Record `sample` for `resource`.
    pub fn record(&mut self, resource: &str, sample: Sample) {
        let ring = self.resources.entry(resource.to_string()).or_default();
        push(ring, sample);
    }

    /// The samples of `resource`, oldest first.
    pub fn samples(&self, resource: &str) -> Vec<Sample> {
        self.resources
            .get(resource)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forget every sample taken before the hour ending at `minute`, and resources left
    /// with none.
    pub fn prune(&mut self, minute: u64) {
        let oldest = minute.saturating_sub(SAMPLES as u64 - 1);
        for ring in self.resources.values_mut() {
            ring.retain(|s| s.minute >= oldest && s.minute <= minute);
        }
        self.resources.retain(|_, r| !r.is_empty());
    }

    /// The history kept in `dir`, without what is older than the hour ending at `minute`.
    /// A file that is missing, unreadable or of another version gives an empty history: it
    /// only feeds a chart.
    pub fn load(dir: &Path, minute: u64) -> LagHistory {
        let path = dir.join(FILE);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Stored>(&bytes).ok(),
            Err(_) => None,
        };
        let mut history = match stored {
            Some(s) if s.version == 1 => LagHistory {
                resources: s.resources,
            },
            Some(_) | None => LagHistory::default(),
        };
        // Each ring as `push` would have left it: ordered, one sample a minute, at most
        // an hour.
        for ring in history.resources.values_mut() {
            let samples: Vec<Sample> = ring.drain(..).collect();
            for s in samples {
                push(ring, s);
            }
        }
        history.prune(minute);
        history
    }

    /// Keep the history in `dir` (replacing the file whole).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let stored = Stored {
            version: 1,
            resources: self.resources.clone(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
        crate::atomic_file::replace(&dir.join(FILE), &bytes)
    }
}

/// Add `sample` to `ring`: in the minute of the newest sample, each replica keeps its
/// worst lag; only the last [`SAMPLES`] minutes are kept; a sample older than the newest
/// is ignored.
pub fn push(ring: &mut VecDeque<Sample>, mut sample: Sample) {
    match ring.back() {
        Some(last) if last.minute == sample.minute => {
            if let Some(last) = ring.pop_back() {
                for (peer, lag) in last.lags {
                    let now = sample.lags.entry(peer).or_insert(0);
                    *now = (*now).max(lag);
                }
            }
        }
        Some(last) if last.minute > sample.minute => return,
        _ => {}
    }
    let oldest = sample.minute.saturating_sub(SAMPLES as u64 - 1);
    ring.push_back(sample);
    while ring.front().is_some_and(|s| s.minute < oldest) {
        ring.pop_front();
    }
}

/// The minute `t` falls in, since the epoch.
pub fn minute_of(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// A sample of `minute` with `lags` by peer, for tests.
#[cfg(test)]
pub fn sample(minute: u64, lags: &[(&str, u64)]) -> Sample {
    Sample {
        minute,
        lags: lags.iter().map(|(p, l)| (p.to_string(), *l)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_worst_lag_of_each_minute_for_an_hour() {
        let mut ring = VecDeque::new();
        push(&mut ring, sample(10, &[("p", 5), ("q", 1)]));
        push(&mut ring, sample(10, &[("p", 2)]));
        assert_eq!(ring.len(), 1, "one sample a minute");
        assert_eq!(ring[0].lags["p"], 5, "the worst lag of the minute stays");
        assert_eq!(ring[0].lags["q"], 1, "a replica not sampled again stays");
        push(&mut ring, sample(9, &[("p", 9)]));
        assert_eq!(ring.len(), 1, "an older sample is ignored");
        for m in 11..=80 {
            push(&mut ring, sample(m, &[("p", m)]));
        }
        assert_eq!(ring.len(), SAMPLES);
        assert_eq!(ring.front().map(|s| s.minute), Some(21));
        assert_eq!(ring.back().map(|s| s.minute), Some(80));
    }

    #[test]
    fn the_history_survives_a_save_and_load_without_what_is_older_than_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = LagHistory::default();
        for m in 100..=130 {
            h.record("space home", sample(m, &[("p", m - 100)]));
        }
        h.record("seed far", sample(101, &[("q", 7)]));
        h.save(dir.path()).unwrap();

        let back = LagHistory::load(dir.path(), 130);
        assert_eq!(back, h, "within the hour, everything comes back");
        let later = LagHistory::load(dir.path(), 170);
        let kept = later.samples("space home");
        assert_eq!(kept.first().map(|s| s.minute), Some(111));
        assert_eq!(kept.len(), 20);
        assert!(
            later.samples("seed far").is_empty(),
            "a resource with no sample in the hour is forgotten"
        );
    }

    #[test]
    fn a_damaged_or_foreign_file_gives_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LagHistory::load(dir.path(), 5), LagHistory::default());
        std::fs::write(dir.path().join(FILE), b"{\"version\":1,\"resou").unwrap();
        assert_eq!(LagHistory::load(dir.path(), 5), LagHistory::default());
        std::fs::write(
            dir.path().join(FILE),
            br#"{"version":2,"resources":{"space a":[{"minute":5,"lags":{"p":1}}]}}"#,
        )
        .unwrap();
        assert_eq!(LagHistory::load(dir.path(), 5), LagHistory::default());
        // Out of order and repeated minutes, as only a hand-edited file could have them,
        // are put in order.
        std::fs::write(
            dir.path().join(FILE),
            br#"{"version":1,"resources":{"space a":[{"minute":5,"lags":{"p":1}},{"minute":3,"lags":{"p":9}},{"minute":5,"lags":{"p":4}}]}}"#,
        )
        .unwrap();
        let h = LagHistory::load(dir.path(), 5);
        assert_eq!(h.samples("space a"), vec![sample(5, &[("p", 4)])]);
    }
}
