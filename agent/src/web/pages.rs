//! The dashboard's pages as HTML, pure: each renders the API's own answers (status,
//! members, events, generations, plans, invites, paper keys) into the body of a page. Spaces and seeds are
//! cards coloured by their health, and each colour is said in words too.

use std::fmt::Write;

use cobox_schema::api::{
    ApplyResponse, ConditionType, Event, EventKind, Generations, InviteInfo, InviteRole,
    MembersResponse, NetworkStatus, PlanResponse, ResourceKind, ResourceStatus, Status,
    WireDiagnostic,
};

use super::html::{bytes, csrf_field, escape, short_key};

mod config;
mod events;
mod identity;
mod invites;
mod overview;
mod peers;
mod resource;

pub use config::*;
pub use events::*;
pub use identity::*;
pub use invites::*;
pub use overview::*;
pub use peers::*;
pub use resource::*;

#[cfg(test)]
mod tests;
