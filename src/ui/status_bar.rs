//! The status bar: CPU and memory, the encoder's rate and the bitrate out
//! while live, and what the capture session captures.

use crate::engine::{Snapshot, SourcesState};

/// The bar along the bottom: the process's load, while live the encoder's
/// rate and what goes out, and the sources (a failing one says why).
pub fn status_ui(ui: &mut egui::Ui, snap: &Snapshot) {
    let (state, stats, load) = (&*snap.state, &*snap.stats, snap.load);
    ui.horizontal(|ui| {
        // Fixed widths: the figures change every second, and the rest of
        // the bar should not shift as they gain or lose a digit.
        let cell = |ui: &mut egui::Ui, width: f32, text: String| {
            ui.add_sized([width, ui.spacing().interact_size.y], egui::Label::new(text));
        };
        cell(ui, 72.0, format!("CPU {:.0} %", load.cpu_percent));
        ui.separator();
        cell(ui, 118.0, format!("Memory {} MiB", load.rss_kib / 1024));
        ui.separator();
        if state.broadcast.is_active() {
            ui.label(format!("Encoder {:.0} fps", stats.fps));
            ui.separator();
            ui.label(format!("{:.0} kbit/s out", stats.outputs.iter().map(|o| o.kbps_out).sum::<f64>()));
            ui.separator();
        }
        match &state.sources {
            SourcesState::Open { video, audio, .. } => {
                // A source that stopped delivering says why (its stand-in goes out).
                let health = &snap.health;
                for (what, s) in [("Video", &health.video), ("Audio", &health.audio)] {
                    if let crate::capture::SourceState::Fallback(why) = s {
                        ui.colored_label(egui::Color32::from_rgb(230, 180, 60), format!("{what}: {why}"));
                        ui.separator();
                    }
                }
                ui.label(format!("{video} · {audio}"))
            }
            SourcesState::Failed { message } => ui.colored_label(egui::Color32::LIGHT_RED, format!("Sources: {message}")),
            SourcesState::Opening | SourcesState::Closed => ui.label("Opening the camera and microphone…"),
        };
    });
}
