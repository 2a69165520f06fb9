//! The protocol side of cobox, below the agent: feeds on disk as the agent uses them
//! (`feed`: the feed core plus a seed's eviction floor, shared with sessions), replication
//! of feeds with one peer over one byte stream (`replicate`), and the authenticated
//! streams it runs on (`transport`). Nothing here knows spaces, configs or the agent.

pub mod feed;
pub mod replicate;
pub mod transport;
