//! The engine both faces drive (see `docs/ARCHITECTURE.md`, "Two faces").
//!
//! May use `pipeline`, `net` (the server), `config`, `capture`; never `ui`
//! or the command line.

pub mod plan;

pub use plan::{BroadcastPlan, GoLiveRequest, PlanError, RunOptions};
