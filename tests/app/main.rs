//! The window driven through egui_kittest: flows through the accessibility
//! tree (`flows`) and rendered snapshots (`snapshots`), in one test binary.

#[path = "../common/mod.rs"]
mod common;

mod flows;
mod snapshots;
