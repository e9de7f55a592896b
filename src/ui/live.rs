//! Going live: the tally light, the Go Live / End Stream button, and a row
//! per destination with its state, figures and a retry for a failed one.

use crate::engine::{BroadcastCommand, BroadcastState, Command, EngineState};
use crate::net::OutputState;
use crate::pipeline::{OutputKind, Stats};
use std::time::Instant;

/// What the tally light (the on-air light) says, worked out from the engine's state.
#[derive(Clone, Debug, PartialEq)]
pub enum TallyLight {
    /// Nothing goes out.
    OffAir,
    /// Starting, or a destination still connecting.
    Connecting,
    /// Everything is live, for this long.
    Live {
        /// Since the broadcast started.
        secs: u64,
    },
    /// A destination lost its connection and retries.
    Reconnecting {
        /// Its attempt.
        attempt: u32,
        /// Seconds to the next try.
        in_secs: u64,
    },
    /// It could not start or a destination failed, and why.
    Failed(String),
    /// The outputs are draining.
    Ending,
}

impl TallyLight {
    /// The light for `state` at `now`.
    pub fn of(state: &EngineState, now: Instant) -> TallyLight {
        match &state.broadcast {
            BroadcastState::Idle => TallyLight::OffAir,
            BroadcastState::Starting => TallyLight::Connecting,
            BroadcastState::Stopping => TallyLight::Ending,
            BroadcastState::Failed { message } => TallyLight::Failed(message.clone()),
            BroadcastState::Ended(summary) => match summary.outputs.iter().find_map(|o| o.error.as_ref()) {
                Some(e) if !summary.all_ok() => TallyLight::Failed(e.message.clone()),
                _ => TallyLight::OffAir,
            },
            BroadcastState::Running { since } => {
                let states: Vec<&OutputState> = state.outputs.iter().map(|o| &o.state).collect();
                if let Some((attempt, next_try)) = states.iter().find_map(|s| match s {
                    OutputState::Reconnecting { attempt, next_try } => Some((*attempt, *next_try)),
                    _ => None,
                }) {
                    return TallyLight::Reconnecting { attempt, in_secs: next_try.saturating_duration_since(now).as_secs() };
                }
                if states.is_empty() || states.iter().any(|s| matches!(s, OutputState::Connecting)) {
                    return TallyLight::Connecting;
                }
                if !states.iter().any(|s| matches!(s, OutputState::Live)) {
                    let why = state.outputs.iter().find_map(|o| match &o.state {
                        OutputState::Failed { message, .. } => Some(message.clone()),
                        _ => None,
                    });
                    return TallyLight::Failed(why.unwrap_or_else(|| "no destination is live".into()));
                }
                TallyLight::Live { secs: now.duration_since(*since).as_secs() }
            }
        }
    }

    /// The words on the light.
    pub fn text(&self) -> String {
        match self {
            TallyLight::OffAir => "Off air".into(),
            TallyLight::Connecting => "Connecting…".into(),
            TallyLight::Live { secs } => format!("LIVE {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            TallyLight::Reconnecting { attempt, in_secs } => format!("Reconnecting (attempt {attempt}, next try in {in_secs} s)"),
            TallyLight::Failed(why) => format!("Failed: {why}"),
            TallyLight::Ending => "Ending…".into(),
        }
    }

    fn colour(&self) -> egui::Color32 {
        match self {
            TallyLight::OffAir => egui::Color32::from_gray(110),
            TallyLight::Connecting | TallyLight::Ending => egui::Color32::from_rgb(230, 170, 30),
            TallyLight::Live { .. } => egui::Color32::from_rgb(220, 30, 30),
            TallyLight::Reconnecting { .. } => egui::Color32::from_rgb(240, 120, 20),
            TallyLight::Failed(_) => egui::Color32::from_rgb(170, 40, 160),
        }
    }

    /// True while something on the light changes by itself (the clock, the countdown).
    pub fn ticking(&self) -> bool {
        matches!(self, TallyLight::Live { .. } | TallyLight::Reconnecting { .. })
    }
}

/// The light: a dot and its words.
pub fn light_ui(ui: &mut egui::Ui, light: &TallyLight) {
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 18.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 8.0, light.colour());
        ui.label(egui::RichText::new(light.text()).strong().color(light.colour()));
    });
}

/// A row per output: state, kbps, queue, drops, reconnects; a retry for a failed one.
pub fn destinations_ui(ui: &mut egui::Ui, state: &EngineState, stats: &Stats, commands: &mut Vec<Command>) {
    if state.outputs.is_empty() {
        return;
    }
    egui::Grid::new("destinations").striped(true).num_columns(8).show(ui, |ui| {
        for h in ["Destination", "State", "Video", "kbit/s", "Queue", "Dropped", "Reconnects", ""] {
            ui.strong(h);
        }
        ui.end_row();
        for o in &state.outputs {
            let figures = stats.outputs.iter().find(|s| s.id == o.id);
            let what = if o.kind == OutputKind::Record { "recording" } else { "destination" };
            ui.label(&o.id).on_hover_text(format!("{what}: {}", o.name));
            let state_text = o.state.to_string();
            match &o.state {
                OutputState::Failed { .. } => ui.colored_label(egui::Color32::from_rgb(220, 80, 80), state_text),
                OutputState::Live => ui.colored_label(egui::Color32::from_rgb(80, 200, 100), state_text),
                _ => ui.label(state_text),
            };
            match figures.and_then(|f| video_cell(stats, f)) {
                Some(cell) if cell.warn => {
                    ui.colored_label(egui::Color32::from_rgb(230, 180, 60), cell.text).on_hover_text(cell.hover);
                }
                Some(cell) => {
                    ui.label(cell.text).on_hover_text(cell.hover);
                }
                None => {
                    ui.label("–");
                }
            }
            ui.label(figures.map_or("–".into(), |f| format!("{:.0}", f.kbps_out)));
            ui.label(figures.map_or("–".into(), |f| format!("{} ms", f.queue_ms)));
            ui.label(figures.map_or("–".into(), |f| f.dropped_frames.to_string()));
            ui.label(figures.map_or("–".into(), |f| f.reconnects.to_string()));
            if matches!(o.state, OutputState::Failed { .. }) && matches!(state.broadcast, BroadcastState::Running { .. }) {
                if ui.button(format!("Retry {}", o.id)).on_hover_text("Connect this destination again").clicked() {
                    commands.push(Command::Broadcast(BroadcastCommand::RetryOutput(o.id.clone())));
                }
            } else {
                ui.label("");
            }
            ui.end_row();
        }
    });
}

/// What a destination row says of the video it gets.
#[derive(Debug, PartialEq)]
pub struct VideoCell {
    /// "1280x720 · 3000k", with "own encode" or "shared" when that matters.
    pub text: String,
    /// The rendition, its settings and why, for the tooltip.
    pub hover: String,
    /// It is held back: a congested destination sharing an encode (CPU budget).
    pub warn: bool,
}

/// The rendition an output is on, as its row shows it.
pub fn video_cell(stats: &Stats, o: &crate::pipeline::OutputStats) -> Option<VideoCell> {
    let r = stats.renditions.iter().find(|r| r.id == o.rendition)?;
    let mut text = format!("{}x{} · {}k", r.width, r.height, r.bitrate_kbps);
    let mut hover = format!(
        "Rendition {}: {}x{} at {} fps, {} of {} kbit/s; its encoder uses {:.0} % of a core",
        r.id, r.width, r.height, r.fps_target, r.bitrate_kbps, r.target_kbps, r.encoder_cpu_percent
    );
    if let Some(from) = &r.split_from {
        text.push_str(" · own encode");
        hover.push_str(&format!(
            ". Its path cannot carry {from}'s bitrate, so it has an encode of its own; it rejoins {from} once its path carries it again"
        ));
    } else if r.outputs.len() > 1 {
        hover.push_str(&format!(". Shared with {}", r.outputs.iter().filter(|id| **id != o.id).cloned().collect::<Vec<_>>().join(", ")));
    }
    if let Some(note) = &o.note {
        text.push_str(" · shared (CPU)");
        hover.push_str(&format!(". {note}"));
    }
    Some(VideoCell { text, hover, warn: o.note.is_some() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::OutputSnapshot;
    use std::time::Duration;

    fn with(outputs: Vec<OutputState>, since: Instant) -> EngineState {
        EngineState {
            broadcast: BroadcastState::Running { since },
            outputs: outputs
                .into_iter()
                .enumerate()
                .map(|(i, state)| OutputSnapshot { id: format!("d{i}"), name: "x".into(), kind: OutputKind::Publish, state, since })
                .collect(),
            ..EngineState::default()
        }
    }

    #[test]
    fn the_light_follows_the_destinations() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(3725);
        assert_eq!(TallyLight::of(&EngineState::default(), now), TallyLight::OffAir);
        assert_eq!(TallyLight::of(&with(vec![OutputState::Live, OutputState::Connecting], t0), now), TallyLight::Connecting);
        let live = TallyLight::of(&with(vec![OutputState::Live], t0), now);
        assert_eq!(live.text(), "LIVE 01:02:05");
        let next_try = now + Duration::from_secs(4);
        let lost = TallyLight::of(&with(vec![OutputState::Live, OutputState::Reconnecting { attempt: 2, next_try }], t0), now);
        assert_eq!(lost.text(), "Reconnecting (attempt 2, next try in 4 s)");
        let failed = OutputState::failed(crate::net::FailureKind::Rejected, true, "bad key");
        assert_eq!(TallyLight::of(&with(vec![failed.clone()], t0), now), TallyLight::Failed("bad key".into()));
        assert!(matches!(TallyLight::of(&with(vec![failed, OutputState::Live], t0), now), TallyLight::Live { .. }), "one live is on air");
    }

    #[test]
    fn a_row_says_which_encode_its_destination_is_on() {
        use crate::pipeline::{OutputStats, RenditionStats};
        let r = |id: &str, w, h, kbps, outputs: &[&str], split: Option<&str>| RenditionStats {
            id: id.into(),
            width: w,
            height: h,
            fps_target: 30,
            target_kbps: 2500,
            bitrate_kbps: kbps,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            split_from: split.map(str::to_string),
            ..Default::default()
        };
        let stats = Stats {
            renditions: vec![r("r1", 1280, 720, 2500, &["yt", "rec"], None), r("r2", 1280, 720, 700, &["tw"], Some("r1"))],
            ..Default::default()
        };
        let out = |id: &str, on: &str, note: Option<&str>| OutputStats { id: id.into(), rendition: on.into(), note: note.map(str::to_string), ..Default::default() };
        let shared = video_cell(&stats, &out("yt", "r1", None)).unwrap();
        assert_eq!(shared.text, "1280x720 · 2500k");
        assert!(shared.hover.contains("Shared with rec") && !shared.warn);
        let own = video_cell(&stats, &out("tw", "r2", None)).unwrap();
        assert_eq!(own.text, "1280x720 · 700k · own encode");
        assert!(own.hover.contains("rejoins r1"));
        let held = video_cell(&stats, &out("yt", "r1", Some("yt shares r1 at its lowest bitrate: ... budget"))).unwrap();
        assert!(held.warn && held.text.ends_with("shared (CPU)") && held.hover.contains("budget"));
        assert_eq!(video_cell(&stats, &out("gone", "", None)), None);
    }
}
