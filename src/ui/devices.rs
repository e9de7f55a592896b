//! Camera and microphone pickers: the devices the engine found (cameras
//! re-listed every few seconds, microphones when the picker opens), the
//! synthetic sources, and Y4M/WAV files. A choice switches the capture
//! session's source, live or not; a camera that fails sends a slate and
//! says why in the status bar.

use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::engine::{Command, Devices, SourcesCommand};
use std::path::PathBuf;

/// What the pickers hold between frames: the file paths being typed.
#[derive(Default)]
pub struct DevicePickers {
    y4m: String,
    wav: String,
    /// The microphone list was asked for since the picker last opened.
    mics_asked: bool,
}

impl DevicePickers {
    /// Draws both pickers; a choice goes into `commands`.
    pub fn devices_ui(&mut self, ui: &mut egui::Ui, devices: &Devices, video_now: &str, audio_now: &str, commands: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            let camera = egui::ComboBox::from_label("Camera").selected_text(video_now).width(220.0).show_ui(ui, |ui| {
                if ui.selectable_label(false, "Test pattern").clicked() {
                    commands.push(Command::Sources(SourcesCommand::SwitchVideo(VideoSourceSpec::TestPattern)));
                }
                for c in &devices.cameras {
                    if ui.selectable_label(video_now.contains(&c.name), &c.name).clicked()
                        && let Ok(spec) = c.spec.parse::<VideoSourceSpec>()
                    {
                        commands.push(Command::Sources(SourcesCommand::SwitchVideo(spec)));
                    }
                }
                if devices.cameras.is_empty() {
                    ui.weak("no camera found");
                }
            });
            camera.response.on_hover_text("The picture that goes out (switching while live keeps the stream up)");
            let label = ui.label("or a Y4M file");
            let y4m = ui.add(egui::TextEdit::singleline(&mut self.y4m).hint_text("video.y4m").desired_width(140.0)).labelled_by(label.id);
            if ui.add_enabled(!self.y4m.trim().is_empty(), egui::Button::new("Use Y4M file")).clicked() {
                commands.push(Command::Sources(SourcesCommand::SwitchVideo(VideoSourceSpec::Y4m(PathBuf::from(self.y4m.trim())))));
            }
            y4m.on_hover_text("A Y4M file to send instead of a camera (it loops)");
        });
        ui.horizontal(|ui| {
            let mic = egui::ComboBox::from_label("Microphone").selected_text(audio_now).width(220.0).show_ui(ui, |ui| {
                if !self.mics_asked {
                    self.mics_asked = true;
                    commands.push(Command::Sources(SourcesCommand::ListMicrophones));
                }
                if ui.selectable_label(false, "Silence").clicked() {
                    commands.push(Command::Sources(SourcesCommand::SwitchAudio(AudioSourceSpec::Silence)));
                }
                if ui.selectable_label(false, "Test tone").clicked() {
                    commands.push(Command::Sources(SourcesCommand::SwitchAudio(AudioSourceSpec::Sine)));
                }
                for m in &devices.microphones {
                    if ui.selectable_label(audio_now.contains(&m.name), &m.name).clicked()
                        && let Ok(spec) = m.spec.parse::<AudioSourceSpec>()
                    {
                        commands.push(Command::Sources(SourcesCommand::SwitchAudio(spec)));
                    }
                }
                if devices.microphones.is_empty() {
                    ui.weak("no microphone found");
                }
            });
            if mic.inner.is_none() {
                // Closed: list again the next time it opens (devices come and go).
                self.mics_asked = false;
            }
            mic.response.on_hover_text("The sound that goes out");
            let label = ui.label("or a WAV file");
            let wav = ui.add(egui::TextEdit::singleline(&mut self.wav).hint_text("sound.wav").desired_width(140.0)).labelled_by(label.id);
            if ui.add_enabled(!self.wav.trim().is_empty(), egui::Button::new("Use WAV file")).clicked() {
                commands.push(Command::Sources(SourcesCommand::SwitchAudio(AudioSourceSpec::Wav(PathBuf::from(self.wav.trim())))));
            }
            wav.on_hover_text("A WAV file to send instead of a microphone (it loops)");
        });
        if let Some(e) = &devices.error {
            ui.colored_label(egui::Color32::LIGHT_RED, format!("Devices: {e}"));
        }
    }
}
