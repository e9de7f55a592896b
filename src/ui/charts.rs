//! Charts of the last minutes, per destination: bitrate, queue, encoder
//! frame rate and dropped frames, from the engine's 1 Hz stats.

use crate::pipeline::Stats;
use std::collections::{BTreeMap, VecDeque};

/// Points kept per series: five minutes of 1 Hz stats.
const HISTORY: usize = 300;

/// One destination's series.
#[derive(Default)]
struct Series {
    kbps: VecDeque<[f64; 2]>,
    queue_ms: VecDeque<[f64; 2]>,
    dropped: VecDeque<[f64; 2]>,
}

/// The history the charts draw.
#[derive(Default)]
pub struct Charts {
    outputs: BTreeMap<String, Series>,
    fps: VecDeque<[f64; 2]>,
    /// The media time of the last snapshot taken (stats arrive once a second).
    last: Option<f64>,
}

fn push(series: &mut VecDeque<[f64; 2]>, point: [f64; 2]) {
    if series.len() == HISTORY {
        series.pop_front();
    }
    series.push_back(point);
}

impl Charts {
    /// Takes a new snapshot, once (call every frame).
    pub fn update(&mut self, stats: &Stats, live: bool) {
        if !live || self.last == Some(stats.media_secs) {
            return;
        }
        if self.last.is_some_and(|l| stats.media_secs < l) {
            // A new broadcast: its own history.
            *self = Charts::default();
        }
        self.last = Some(stats.media_secs);
        let t = stats.media_secs;
        push(&mut self.fps, [t, stats.fps]);
        for o in &stats.outputs {
            let s = self.outputs.entry(o.id.clone()).or_default();
            push(&mut s.kbps, [t, o.kbps_out]);
            push(&mut s.queue_ms, [t, f64::from(o.queue_ms)]);
            push(&mut s.dropped, [t, o.dropped_frames as f64]);
        }
    }

    /// Draws the charts (nothing before the first snapshot).
    pub fn charts_ui(&self, ui: &mut egui::Ui) {
        if self.last.is_none() {
            ui.weak("The charts fill while live.");
            return;
        }
        let chart = |ui: &mut egui::Ui, title: &str, lines: Vec<(String, &VecDeque<[f64; 2]>)>| {
            ui.label(title);
            egui_plot::Plot::new(title.to_string())
                .height(110.0)
                .legend(egui_plot::Legend::default())
                .allow_scroll(false)
                .allow_drag(false)
                .show(ui, |plot| {
                    for (name, points) in lines {
                        let pts: Vec<[f64; 2]> = points.iter().copied().collect();
                        plot.line(egui_plot::Line::new(name, pts));
                    }
                });
        };
        let per_output = |pick: fn(&Series) -> &VecDeque<[f64; 2]>| -> Vec<(String, &VecDeque<[f64; 2]>)> {
            self.outputs.iter().map(|(id, s)| (id.clone(), pick(s))).collect()
        };
        chart(ui, "Bitrate out (kbit/s)", per_output(|s| &s.kbps));
        chart(ui, "Queue (ms)", per_output(|s| &s.queue_ms));
        chart(ui, "Dropped frames", per_output(|s| &s.dropped));
        chart(ui, "Encoder (fps)", vec![("encoder".to_string(), &self.fps)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::OutputStats;

    #[test]
    fn one_point_a_second_bounded_and_reset_by_a_new_broadcast() {
        let mut c = Charts::default();
        let mut stats = Stats { outputs: vec![OutputStats { id: "a".into(), kbps_out: 2500.0, ..Default::default() }], ..Default::default() };
        for i in 0..400 {
            stats.media_secs = f64::from(i);
            c.update(&stats, true);
            c.update(&stats, true);
        }
        assert_eq!(c.outputs["a"].kbps.len(), HISTORY);
        assert_eq!(c.fps.len(), HISTORY);
        stats.media_secs = 1.0;
        c.update(&stats, true);
        assert_eq!(c.outputs["a"].kbps.len(), 1, "a new broadcast starts its own history");
        c.update(&stats, false);
    }
}
