//! The rules between two real feeds on disk, with the messages carried by hand and the
//! time given: nothing sleeps, every step is deterministic.

use super::*;
use crate::replicate::have::Ranges;
use crate::replicate::traffic::{Bucket, Caps, Quota};
use cobox_keys::Secret32;
use cobox_schema::hexkey::Address;

const BLOCK: usize = 1000;

fn keys() -> cobox_keys::SigningKeyPair {
    cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), 0)
}

fn traffic(quota: Option<Arc<Quota>>) -> Arc<Traffic> {
    let caps = || Caps {
        own: Bucket::new(None),
        device: Bucket::new(None),
    };
    Traffic::new(caps(), caps(), quota)
}

/// One end of a channel: its rules, its feed, what it published.
struct Side {
    rules: Rules,
    feed: Feed,
    published: Held,
    readers: Vec<u64>,
    effects: Vec<Effect>,
}

impl Side {
    async fn writer(dir: &std::path::Path, blocks: usize, open: bool) -> Side {
        let k = keys();
        let seed: [u8; 32] = k.secret_bytes()[..32].try_into().unwrap();
        let mut feed = Feed::open(dir, k.public.0, Some(&seed)).await.unwrap();
        let data: Vec<Vec<u8>> = (0..blocks).map(|i| vec![i as u8; BLOCK]).collect();
        feed.append_batch(&data).await.unwrap();
        Side::on(feed, traffic(None), open)
    }

    async fn replica(dir: &std::path::Path, traffic: Arc<Traffic>, open: bool) -> Side {
        let feed = Feed::open(dir, keys().public.0, None).await.unwrap();
        Side::on(feed, traffic, open)
    }

    fn on(feed: Feed, traffic: Arc<Traffic>, open: bool) -> Side {
        let published = Held::of(&feed);
        let rules = Rules::new(
            keys().public.0,
            "peer".into(),
            Limits::default(),
            traffic,
            published,
            open,
        );
        Side {
            rules,
            feed,
            published,
            readers: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Carry out effects as the channel task does: publish what was committed, and
    /// hear of it back through the published state.
    fn carry_out(&mut self) {
        for e in self.rules.take_effects() {
            if let Effect::Committed { .. } = e {
                self.published = Held::of(&self.feed);
                self.rules.on_held(self.published);
            }
            self.effects.push(e);
        }
    }

    fn deliver(&mut self, batch: Vec<Message>, now: Instant) -> Result<(), ReplicateError> {
        let r = self.rules.on_messages(
            &mut self.feed,
            self.published,
            &self.readers.clone(),
            batch,
            now,
        );
        self.carry_out();
        r
    }

    fn commits(&self) -> usize {
        self.effects
            .iter()
            .filter(|e| matches!(e, Effect::Committed { .. }))
            .count()
    }
}

fn is_data(m: &Message) -> bool {
    matches!(m, Message::Data(d) if d.block.is_some())
}

fn is_block_request(m: &Message) -> bool {
    matches!(m, Message::Request(r) if r.block.is_some())
}

/// Carry messages both ways until neither side has anything to say (bounded).
fn settle(a: &mut Side, b: &mut Side, now: Instant) {
    for _ in 0..10_000 {
        let (to_b, to_a) = (a.rules.take_outbox(), b.rules.take_outbox());
        if to_a.is_empty() && to_b.is_empty() {
            return;
        }
        b.deliver(to_b, now).unwrap();
        a.deliver(to_a, now).unwrap();
    }
    panic!("the channel never settled");
}

#[tokio::test]
async fn a_replica_gets_every_block_and_announces_only_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 300, true).await;
    let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
    let now = Instant::now();
    // The replica learns the length, asks for the upgrade, then for blocks.
    let mut announced_before_commit = false;
    for _ in 0..10_000 {
        let (to_r, to_w) = (w.rules.take_outbox(), r.rules.take_outbox());
        if to_r.is_empty() && to_w.is_empty() {
            break;
        }
        let committed = r.commits();
        r.deliver(to_r, now).unwrap();
        // A range from the replica before any commit would promise blocks not durable.
        let ranges = r
            .rules
            .outbox
            .iter()
            .any(|m| matches!(m, Message::Range(g) if !g.drop && g.length > 0));
        if ranges && r.commits() == committed && r.commits() == 0 {
            announced_before_commit = true;
        }
        w.deliver(to_w, now).unwrap();
    }
    assert!(!announced_before_commit);
    assert_eq!(r.feed.len(), 300);
    assert_eq!(r.feed.contiguous_len(), 300);
    assert_eq!(r.published.contiguous, 300, "everything was published");
    assert!(
        r.effects
            .iter()
            .any(|e| matches!(e, Effect::Committed { grew: true, .. })),
        "growth is reported"
    );
    let mut read = r.feed.get(299).await.unwrap().unwrap();
    read.truncate(3);
    assert_eq!(read, vec![43; 3]);
    assert_eq!(r.rules.in_flight(), 0);
    assert_eq!(w.commits(), 0, "the writer stored nothing");
}

#[tokio::test]
async fn received_blocks_commit_by_age_when_more_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 200, true).await;
    let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
    let t0 = Instant::now();
    // Until the replica has asked for blocks.
    let mut answers = Vec::new();
    for _ in 0..100 {
        let (to_r, to_w) = (w.rules.take_outbox(), r.rules.take_outbox());
        r.deliver(to_r, t0).unwrap();
        let requests = to_w.iter().filter(|m| is_block_request(m)).count();
        w.deliver(to_w, t0).unwrap();
        if requests > 0 {
            answers = w.rules.take_outbox();
            break;
        }
    }
    let data: Vec<Message> = answers.into_iter().filter(is_data).collect();
    assert!(data.len() > 10, "{} answers", data.len());
    let before = r.commits();
    let mut data = data.into_iter();
    // Ten blocks arrive with more in flight: they wait, with a deadline.
    r.deliver(data.by_ref().take(10).collect(), t0).unwrap();
    assert_eq!(r.commits(), before, "more are in flight: no commit yet");
    assert_eq!(r.rules.deadline(), Some(t0 + COMMIT_AFTER));
    assert_eq!(r.published.length, 200, "the upgrade alone was committed");
    assert_eq!(r.published.contiguous, 0);
    // One more block before the deadline: still waiting.
    r.deliver(data.by_ref().take(1).collect(), t0 + COMMIT_AFTER / 2)
        .unwrap();
    assert_eq!(r.commits(), before);
    // One at the deadline: committed, published, announced.
    r.deliver(data.by_ref().take(1).collect(), t0 + COMMIT_AFTER)
        .unwrap();
    assert_eq!(r.commits(), before + 1);
    assert_eq!(r.published.contiguous, 12);
    assert_eq!(r.rules.deadline(), None);
    assert!(
        r.rules
            .take_outbox()
            .iter()
            .any(|m| matches!(m, Message::Range(g) if g.start == 0 && g.length == 12)),
        "the twelve blocks are announced once durable"
    );
    // The next one waits again, until the deadline passes with nothing arriving.
    r.deliver(data.by_ref().take(1).collect(), t0 + COMMIT_AFTER * 2)
        .unwrap();
    assert_eq!(r.published.contiguous, 12);
    r.rules.on_deadline(&mut r.feed, &[]).unwrap();
    r.carry_out();
    assert_eq!(r.published.contiguous, 13);
}

#[tokio::test]
async fn a_closed_window_keeps_requests_for_later_and_asks_only_for_what_readers_wait_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 100, false).await;
    let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
    let now = Instant::now();
    settle(&mut w, &mut r, now);
    // The replica asked; the closed writer kept every request and answered none.
    assert_eq!(r.feed.len(), 0, "not even the upgrade was proven");
    let kept = w.rules.deferred();
    assert!(kept > 0);
    assert_eq!(r.rules.in_flight(), kept);
    // The window opens: every kept request is answered, and the rest follows.
    w.rules
        .on_window(&mut w.feed, w.published, &[], true)
        .unwrap();
    assert_eq!(w.rules.deferred(), 0);
    settle(&mut w, &mut r, now);
    assert_eq!(r.published.contiguous, 100);

    // Now the replica's window is closed and the writer grows: nothing is asked for
    // but the block a local reader waits for.
    let mut w2 = Side::writer(&dir.path().join("w2"), 100, true).await;
    let mut r2 = Side::replica(&dir.path().join("r2"), traffic(None), false).await;
    settle(&mut w2, &mut r2, now);
    assert_eq!(r2.feed.len(), 0, "closed: no upgrade asked for");
    assert_eq!(r2.rules.in_flight(), 0);
    r2.rules
        .on_window(&mut r2.feed, r2.published, &[], true)
        .unwrap();
    r2.carry_out();
    // Open just long enough for the upgrade, then closed again.
    let upgrade = r2.rules.take_outbox();
    w2.deliver(upgrade, now).unwrap();
    r2.rules
        .on_window(&mut r2.feed, r2.published, &[], false)
        .unwrap();
    r2.carry_out();
    let answers = w2.rules.take_outbox();
    let blocks_asked = answers.iter().filter(|m| is_data(m)).count();
    r2.deliver(answers, now).unwrap();
    assert_eq!(r2.feed.len(), 100, "the upgrade in flight still landed");
    let held = r2.published.contiguous;
    assert_eq!(held as usize, blocks_asked, "what was in flight landed");
    r2.readers = vec![77];
    r2.rules.on_wake(&mut r2.feed, &[77]).unwrap();
    let asked = r2.rules.take_outbox();
    let indices: Vec<u64> = asked
        .iter()
        .filter_map(|m| match m {
            Message::Request(q) => q.block.as_ref().map(|b| b.index),
            _ => None,
        })
        .collect();
    assert_eq!(indices, vec![77], "only the reader's block is asked for");
}

#[tokio::test]
async fn requests_past_what_a_closed_window_keeps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 10, false).await;
    let _ = w.rules.take_outbox();
    let requests: Vec<Message> = (0..DEFERRED as u64 + 5)
        .map(|id| {
            request(
                id + 1,
                0,
                Some(RequestBlock {
                    index: id % 10,
                    nodes: 0,
                }),
                None,
            )
        })
        .collect();
    w.deliver(requests, Instant::now()).unwrap();
    assert_eq!(w.rules.deferred(), DEFERRED);
    let out = w.rules.take_outbox();
    let refused: Vec<u64> = out
        .iter()
        .filter_map(|m| match m {
            Message::NoData(n) => Some(n.request),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 5);
    assert!(
        out.iter().all(|m| !is_data(m)),
        "nothing served while closed"
    );
}

#[tokio::test]
async fn a_quota_bounds_what_is_asked_for_and_gets_back_what_was_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 100, true).await;
    // Room for ten blocks.
    let quota = Quota::new(Some(10 * on_disk(BLOCK as u64)), None);
    let mut r = Side::replica(&dir.path().join("r"), traffic(Some(quota.clone())), true).await;
    let now = Instant::now();
    settle(&mut w, &mut r, now);
    assert_eq!(r.published.contiguous, 10, "exactly what fits");
    assert!(quota.is_full());
    assert_eq!(quota.used(), 10 * on_disk(BLOCK as u64));
    // Requests refused by the remote give their room back.
    let quota = Quota::new(Some(100 * on_disk(BLOCK as u64)), None);
    let mut w2 = Side::writer(&dir.path().join("w2"), 100, false).await;
    let mut r2 = Side::replica(&dir.path().join("r2"), traffic(Some(quota.clone())), true).await;
    // The upgrade only: open long enough to prove the length.
    w2.rules
        .on_window(&mut w2.feed, w2.published, &[], true)
        .unwrap();
    for _ in 0..3 {
        let (to_r, to_w) = (w2.rules.take_outbox(), r2.rules.take_outbox());
        r2.deliver(to_r, now).unwrap();
        let to_w: Vec<Message> = to_w.into_iter().filter(|m| !is_block_request(m)).collect();
        w2.deliver(to_w, now).unwrap();
    }
    assert_eq!(r2.feed.len(), 100);
    assert!(r2.rules.in_flight() > 0);
    let refused: Vec<Message> = (1..=200)
        .map(|id| Message::NoData(NoData { request: id }))
        .collect();
    r2.deliver(refused, now).unwrap();
    // The refused requests' room came back: only the requests asked since (for blocks
    // not refused) hold room now.
    let _ = r2.rules.take_outbox();
    let asked = r2.rules.in_flight() as u64;
    assert!(asked < 100);
    let room = (100 - asked) * on_disk(BLOCK as u64);
    assert!(quota.reserve(room), "the refused requests' room came back");
    assert!(!quota.reserve(on_disk(BLOCK as u64)), "the rest is held");
    quota.release(room);
    r2.rules.finish(Some(&mut r2.feed)).unwrap();
    // A channel ending with requests in flight gives their room back too.
    let mut r3 = Side::replica(&dir.path().join("r3"), traffic(Some(quota.clone())), true).await;
    let mut w3 = Side::writer(&dir.path().join("w3"), 100, true).await;
    for _ in 0..3 {
        let (to_r, to_w) = (w3.rules.take_outbox(), r3.rules.take_outbox());
        r3.deliver(to_r, now).unwrap();
        w3.deliver(to_w, now).unwrap();
    }
    assert!(r3.rules.in_flight() > 0);
    assert!(
        !quota.reserve(100 * on_disk(BLOCK as u64)),
        "held for requests"
    );
    r3.rules.finish(Some(&mut r3.feed)).unwrap();
    assert!(
        quota.reserve(100 * on_disk(BLOCK as u64)),
        "given back at the end"
    );
}

#[tokio::test]
async fn answers_are_checked_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 50, true).await;
    let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
    let now = Instant::now();
    // Up to the first block answers.
    let mut answers = Vec::new();
    for _ in 0..100 {
        let (to_r, to_w) = (w.rules.take_outbox(), r.rules.take_outbox());
        r.deliver(to_r, now).unwrap();
        w.deliver(to_w, now).unwrap();
        answers = w.rules.take_outbox();
        if answers.iter().any(is_data) {
            break;
        }
        r.deliver(std::mem::take(&mut answers), now).unwrap();
    }
    let mut data: Vec<Data> = answers
        .into_iter()
        .filter_map(|m| match m {
            Message::Data(d) if d.block.is_some() => Some(d),
            _ => None,
        })
        .collect();
    assert!(data.len() >= 3);
    // Not asked for: ignored.
    let mut stray = data[0].clone();
    stray.request = 999_999;
    r.deliver(vec![Message::Data(stray)], now).unwrap();
    assert_eq!(r.feed.contiguous_len(), 0);
    // The answer to one request carrying another block: the peer misbehaves.
    let mut swapped = data[1].clone();
    swapped.block.as_mut().unwrap().index += 1;
    let e = r.deliver(vec![Message::Data(swapped)], now).unwrap_err();
    assert!(matches!(e, ReplicateError::Unexpected { .. }), "{e}");
    // A damaged block: refused, nothing of it stored or committed.
    let mut damaged = data.remove(2);
    damaged.block.as_mut().unwrap().value[0] ^= 1;
    let commits = r.commits();
    let e = r.deliver(vec![Message::Data(damaged)], now).unwrap_err();
    assert!(matches!(e, ReplicateError::InvalidData { .. }), "{e}");
    assert_eq!(r.commits(), commits);
    assert_eq!(r.published.contiguous, 0);
}

#[tokio::test]
async fn growth_and_eviction_are_announced_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 10, true).await;
    let _ = w.rules.take_outbox();
    let held = |length, run, floor| Held {
        length,
        contiguous: run,
        bytes: 0,
        floor,
        run,
        cleared: 0,
    };
    w.rules.on_held(held(12, 12, 0));
    let out = w.rules.take_outbox();
    assert!(
        matches!(&out[..], [Message::Synchronize(s), Message::Range(r)]
        if s.length == 12 && !r.drop && (r.start, r.length) == (10, 2))
    );
    w.rules.on_held(held(12, 12, 0));
    assert!(
        w.rules.take_outbox().is_empty(),
        "nothing new, nothing said"
    );
    w.rules.on_held(held(12, 12, 5));
    let out = w.rules.take_outbox();
    assert!(matches!(&out[..], [Message::Range(r)] if r.drop && (r.start, r.length) == (0, 5)));
}

#[tokio::test]
async fn a_writers_cleared_blocks_are_not_fetched_and_a_seed_clears_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Side::writer(&dir.path().join("w"), 100, true).await;
    let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
    let now = Instant::now();
    settle(&mut w, &mut r, now);
    assert_eq!(r.feed.core().contiguous_len(), 100, "the seed holds all");

    // The writer clears 10..60 and says so; the seed's copy goes too.
    let mut gone = Ranges::default();
    gone.insert(10, 60);
    assert_eq!(w.feed.state_cleared(&gone).unwrap(), Some(50));
    assert!(!w.feed.core().has(10) && w.feed.core().has(60));
    let st = w.feed.statement_bytes();
    w.rules.announce_cleared(1, st.as_deref());
    w.rules.announce_cleared(1, st.as_deref());
    let out = w.rules.take_outbox();
    assert_eq!(out.len(), 1, "announced once: {out:?}");
    r.deliver(out, now).unwrap();
    assert!(r.effects.contains(&Effect::Cleared));
    assert_eq!(r.feed.clear_stated().unwrap(), 50);
    assert!(!r.feed.core().has(30) && r.feed.core().has(9) && r.feed.core().has(60));
    assert_eq!(r.feed.contiguous_len(), 100, "cleared blocks count as had");

    // The writer grows; a fresh replica fetches only what was not cleared.
    w.feed.append_batch(&[vec![7u8; BLOCK]]).await.unwrap();
    let mut fresh = Side::replica(&dir.path().join("f"), traffic(None), true).await;
    fresh.rules.announce_cleared(0, None);
    let mut w2 = Side::on(
        Feed::open(&dir.path().join("w"), keys().public.0, None)
            .await
            .unwrap(),
        traffic(None),
        true,
    );
    let st = w2.feed.statement_bytes();
    w2.rules.announce_cleared(1, st.as_deref());
    let mut asked = 0;
    for _ in 0..10_000 {
        let (to_f, to_w) = (w2.rules.take_outbox(), fresh.rules.take_outbox());
        if to_f.is_empty() && to_w.is_empty() {
            break;
        }
        asked += to_w
            .iter()
            .filter(|m| matches!(m, Message::Request(q) if q.block.as_ref().is_some_and(|b| (10..60).contains(&b.index))))
            .count();
        fresh.deliver(to_f, now).unwrap();
        w2.deliver(to_w, now).unwrap();
    }
    assert_eq!(asked, 0, "no cleared block was asked for");
    assert_eq!(fresh.feed.contiguous_len(), 101);
    assert!(fresh.feed.core().has(100) && !fresh.feed.core().has(10));

    // A statement not signed by the writer ends the channel.
    let mut forged = st.unwrap().to_vec();
    forged[12] ^= 1;
    let e = fresh.deliver(
        vec![Message::Extension(Extension {
            name: cleared::EXTENSION.into(),
            message: forged,
        })],
        now,
    );
    assert!(
        matches!(e, Err(ReplicateError::InvalidData { .. })),
        "{e:?}"
    );
}
