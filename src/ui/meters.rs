//! Audio meters: peak and RMS per channel in dBFS, clipping held visibly.

use crate::session::AudioLevels;
use std::time::{Duration, Instant};

/// The quietest level a meter shows; below is an empty bar.
const FLOOR_DB: f32 = -60.0;
/// How long a clip stays lit after the last clipped slice: long enough to be
/// seen by someone looking elsewhere for a moment.
const CLIP_HOLD: Duration = Duration::from_secs(2);
/// Peaks fall back this fast, dB a second (as broadcast meters do), so a
/// short peak is readable.
const PEAK_FALL_DB_PER_SEC: f32 = 20.0;

/// What the meters hold between frames: falling peaks and the clip light.
#[derive(Debug, Default)]
pub struct Meters {
    held_peak: Vec<f32>,
    last: Option<Instant>,
    clipped_at: Option<Instant>,
    serial: u64,
}

impl Meters {
    /// Takes the newest reading (call once a frame).
    pub fn update(&mut self, levels: &AudioLevels, now: Instant) {
        let dt = self.last.map_or(0.0, |l| now.duration_since(l).as_secs_f32());
        self.last = Some(now);
        if self.held_peak.len() != levels.peak_dbfs.len() {
            self.held_peak = levels.peak_dbfs.clone();
        }
        for (held, &p) in self.held_peak.iter_mut().zip(&levels.peak_dbfs) {
            *held = (*held - PEAK_FALL_DB_PER_SEC * dt).max(p);
        }
        if levels.clipping && levels.serial != self.serial {
            self.clipped_at = Some(now);
        }
        self.serial = levels.serial;
    }

    /// True while the clip light is held.
    pub fn clipping(&self, now: Instant) -> bool {
        self.clipped_at.is_some_and(|t| now.duration_since(t) < CLIP_HOLD)
    }

    /// True while something on the meters still moves without new input
    /// (a peak falling, a clip light to put out).
    pub fn animating(&self, levels: &AudioLevels, now: Instant) -> bool {
        let falling = self.held_peak.iter().zip(&levels.peak_dbfs).any(|(h, p)| h - p > 0.5);
        falling || self.clipping(now)
    }

    /// Draws one vertical bar per channel with its dB figures.
    pub fn meters_ui(&self, ui: &mut egui::Ui, levels: &AudioLevels, now: Instant) {
        let clipping = self.clipping(now);
        ui.vertical(|ui| {
            ui.label("Audio");
            ui.horizontal(|ui| {
                for (i, (&rms, &peak)) in levels.rms_dbfs.iter().zip(&self.held_peak).enumerate() {
                    let name = if levels.rms_dbfs.len() == 2 { ["L", "R"][i] } else { "ch" };
                    bar(ui, name, rms, peak, clipping);
                }
                if levels.rms_dbfs.is_empty() {
                    ui.label("no sound yet");
                }
            });
            let text = if clipping { "CLIPPING" } else { "" };
            ui.colored_label(egui::Color32::from_rgb(230, 40, 40), text);
        });
    }
}

/// Height in the bar of a level, 0..=1.
fn fraction(db: f32) -> f32 {
    ((db - FLOOR_DB) / -FLOOR_DB).clamp(0.0, 1.0)
}

fn bar(ui: &mut egui::Ui, name: &str, rms: f32, peak: f32, clipping: bool) {
    let size = egui::vec2(14.0, 140.0);
    ui.vertical(|ui| {
        let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
        let label = format!("{name}: RMS {rms:.0} dBFS, peak {peak:.0} dBFS{}", if clipping { ", clipping" } else { "" });
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::ProgressIndicator, true, &label));
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
        let level_rect = |f: f32| egui::Rect::from_min_max(egui::pos2(rect.left(), rect.bottom() - rect.height() * f), rect.max);
        let colour = if rms > -9.0 { egui::Color32::from_rgb(230, 180, 40) } else { egui::Color32::from_rgb(60, 190, 90) };
        painter.rect_filled(level_rect(fraction(rms)), 2.0, colour);
        let y = rect.bottom() - rect.height() * fraction(peak);
        let peak_colour = if clipping { egui::Color32::from_rgb(230, 40, 40) } else { egui::Color32::WHITE };
        painter.line_segment([egui::pos2(rect.left(), y), egui::pos2(rect.right(), y)], egui::Stroke::new(2.0, peak_colour));
        response.on_hover_text(label);
        ui.small(name);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(peak: f32, clipping: bool, serial: u64) -> AudioLevels {
        AudioLevels { peak_dbfs: vec![peak, peak], rms_dbfs: vec![peak - 3.0, peak - 3.0], clipping, serial, media_us: 0 }
    }

    #[test]
    fn peaks_fall_slowly_and_a_clip_is_held() {
        let t0 = Instant::now();
        let mut m = Meters::default();
        m.update(&levels(-1.0, true, 1), t0);
        m.update(&levels(-40.0, false, 2), t0 + Duration::from_millis(500));
        assert!((m.held_peak[0] - -11.0).abs() < 0.1, "{:?}", m.held_peak);
        assert!(m.clipping(t0 + Duration::from_millis(1900)));
        assert!(!m.clipping(t0 + Duration::from_millis(2100)));
        assert!(m.animating(&levels(-40.0, false, 2), t0 + Duration::from_millis(600)));
    }
}
