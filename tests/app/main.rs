//! The window driven through egui_kittest: flows through the accessibility
//! tree on a real engine and real peers (`flows`), rendered snapshots
//! (`snapshots`), and the window's own logic against a scripted engine with
//! no peer at all (`view`, and the scenes' strip, layers and arranging on
//! the preview in `scenes`, on `scripted`), in one test binary.

#[path = "../common/mod.rs"]
mod common;

mod flows;
mod live_window;
mod scenes;
mod scripted;
mod snapshots;
mod view;
