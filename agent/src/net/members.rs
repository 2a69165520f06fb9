//! Members' feeds: opening those of newly admitted members, merging grown logs into the
//! drive, publishing health reports in the log.

use std::sync::Arc;

use super::{Holder, Network, health};
use crate::space::Space;
use crate::space::message::Message;
use crate::space::roster::MemberFeeds;

impl Network {
    /// Open the feeds of members not open yet, and merge their logs (members only).
    pub(super) async fn open_members(&self, address: [u8; 32]) {
        let (holder, fresh) = {
            let st = self.state();
            let Some(share) = st.shares.get(&address) else {
                return;
            };
            let fresh: Vec<MemberFeeds> = share
                .roster
                .members()
                .into_iter()
                .filter(|m| !share.members.contains(m))
                .collect();
            (share.holder.clone(), fresh)
        };
        for m in fresh {
            let opened = match &holder {
                Holder::Member(space) => {
                    let mut s = space.lock().await;
                    let mut feeds = Vec::new();
                    for key in [m.log, m.content] {
                        feeds.push(s.feeds_mut().replica(&key).await);
                    }
                    let merged = if m.log == s.log_key() {
                        Ok(())
                    } else {
                        s.add_log(m.log).await.map_err(|e| e.to_string())
                    };
                    if let Err(e) = merged {
                        tracing::error!(space = %s.name(), error = %e, "cannot merge a member's log");
                    }
                    feeds
                }
                Holder::Seed(store) => {
                    let mut s = store.lock().await;
                    let mut feeds = Vec::new();
                    for key in [m.log, m.content] {
                        feeds.push(s.replica(&key).await);
                    }
                    feeds
                }
            };
            let mut st = self.state();
            let Some(share) = st.shares.get_mut(&address) else {
                return;
            };
            let mut ok = true;
            for f in opened {
                match f {
                    Ok(f) => {
                        f.set_traffic(share.traffic.clone());
                        share.feeds.insert(f.key(), f);
                    }
                    Err(e) => {
                        ok = false;
                        tracing::error!(space = %share.name, error = %e, "cannot open a member's feed");
                    }
                }
            }
            if ok {
                share.members.insert(m);
            }
        }
    }

    /// A feed grew through replication: if it is a member space's log, merge it.
    pub(super) async fn merge_grown_log(&self, key: [u8; 32]) {
        let space = {
            let st = self.state();
            st.shares.values().find_map(|s| match &s.holder {
                Holder::Member(space) if s.members.iter().any(|m| m.log == key) => {
                    Some(space.clone())
                }
                _ => None,
            })
        };
        if let Some(space) = space {
            let mut s = space.lock().await;
            if let Err(e) = s.refresh().await {
                tracing::error!(space = %s.name(), error = %e, "cannot merge replicated log entries");
            }
        }
    }

    pub(super) async fn merge_all(&self) {
        let spaces: Vec<_> = self
            .state()
            .shares
            .values()
            .filter_map(|s| match &s.holder {
                Holder::Member(space) => Some(space.clone()),
                Holder::Seed(_) => None,
            })
            .collect();
        for space in spaces {
            let _ = space.lock().await.refresh().await;
        }
    }

    /// Publish, in each member space's log, what this device sees of the other devices'
    /// copies when a report is due ([`health::report_due`]), so members not connected to a
    /// seed still see its state.
    pub async fn publish_health(&self) {
        let due: Vec<(Arc<tokio::sync::Mutex<Space>>, Message)> = {
            let mut st = self.state();
            st.shares
                .values_mut()
                .filter_map(|share| match share.holder.clone() {
                    Holder::Member(space) => Some((space, health::report_due(share)?)),
                    Holder::Seed(_) => None,
                })
                .collect()
        };
        for (space, report) in due {
            let mut s = space.lock().await;
            if let Err(e) = s.append(&[report]).await {
                tracing::error!(space = %s.name(), error = %e, "cannot publish a health report");
            }
        }
    }
}
