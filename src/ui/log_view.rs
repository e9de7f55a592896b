//! The engine's recent events (keys already redacted by `engine::log`),
//! filtered by level.

use crate::engine::{LogEvent, LogRing};
use std::time::{Duration, Instant};

/// A fresh copy of the log at most this often: the ring is shared with
/// every thread that logs, so the window takes it briefly and rarely.
const REFRESH: Duration = Duration::from_millis(500);
/// Events shown, newest first.
const SHOWN: usize = 300;

/// The log panel's state.
#[derive(Debug)]
pub struct LogView {
    /// The least severe level shown.
    pub level: tracing::Level,
    events: Vec<LogEvent>,
    refreshed: Option<Instant>,
    /// Where the whole log of this run is (`engine::log_file`), for a bug
    /// report: the label, made once.
    file: Option<String>,
}

impl Default for LogView {
    fn default() -> Self {
        let file = crate::engine::log_file::log_dir()
            .map(|d| format!("The whole log of this run: {}", d.join(crate::engine::log_file::FILE_NAME).display()));
        LogView { level: tracing::Level::INFO, events: Vec::new(), refreshed: None, file }
    }
}

impl LogView {
    /// True when the copy is due for a refresh (the window asks to be woken then).
    pub fn due(&self, now: Instant) -> bool {
        self.refreshed.is_none_or(|t| now.duration_since(t) >= REFRESH)
    }

    /// Draws the filter and the newest events that pass it.
    pub fn log_ui(&mut self, ui: &mut egui::Ui, now: Instant) {
        if self.due(now) {
            self.events = LogRing::global().snapshot();
            self.refreshed = Some(now);
        }
        ui.horizontal(|ui| {
            ui.label("Log");
            egui::ComboBox::from_label("Level")
                .selected_text(self.level.as_str())
                .show_ui(ui, |ui| {
                    for level in [tracing::Level::ERROR, tracing::Level::WARN, tracing::Level::INFO, tracing::Level::DEBUG] {
                        ui.selectable_value(&mut self.level, level, level.as_str());
                    }
                });
        });
        if let Some(file) = &self.file {
            ui.weak(file);
        }
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            // `Level` orders by verbosity: ERROR is the smallest.
            for e in self.events.iter().rev().filter(|e| e.level <= self.level).take(SHOWN) {
                let colour = match e.level {
                    tracing::Level::ERROR => egui::Color32::from_rgb(230, 90, 90),
                    tracing::Level::WARN => egui::Color32::from_rgb(230, 180, 60),
                    _ => ui.visuals().text_color(),
                };
                let at: chrono_free::Hms = e.at.into();
                ui.colored_label(colour, format!("{at} {:5} {}", e.level.as_str(), e.message));
            }
        });
    }
}

/// Wall-clock time of day without a date library.
mod chrono_free {
    use std::time::{SystemTime, UNIX_EPOCH};

    /// Hours, minutes, seconds (UTC).
    pub struct Hms(u64);

    impl From<SystemTime> for Hms {
        fn from(t: SystemTime) -> Self {
            Hms(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
        }
    }

    impl std::fmt::Display for Hms {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let s = self.0 % 86_400;
            write!(f, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
    }
}
