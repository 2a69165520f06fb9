//! A space on disk: this device's log and content feeds, other members' feeds, and the
//! encrypted messages and file contents in them.

pub mod content;
pub mod feeds;
pub mod layout;
pub mod message;
