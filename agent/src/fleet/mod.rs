//! Following the device's admins (DESIGN §6): the fleet is a space whose members are the
//! admins and the devices they manage; admins write config envelopes and changes of the
//! admin set to their logs in it, devices their status reports. What the device keeps of
//! it (`state.rs`), reading the fleet's logs (`inbox.rs`) and the checks a config from the
//! admins must pass before it is applied (`checks.rs`, pure). The loop does the rest
//! (`run/admins.rs`).

pub mod checks;
pub mod inbox;
pub mod state;
