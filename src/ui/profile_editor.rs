//! The profile editor: a profile's destinations (a service preset and one
//! of its servers, or a custom URL; a stream key, masked unless shown,
//! which goes to the secret store only), its video and audio settings
//! checked against each service's limits as the CLI checks them, and local
//! recording. Saving, renaming, duplicating and deleting are engine
//! commands: the editor never touches a file or the keyring.

use crate::config::services::{self, Service};
use crate::config::{DestinationDraft, Profile, parse_key};
use crate::engine::{Command, ProfilesCommand};
use crate::media::FrameSize;
use std::path::PathBuf;

/// Frame sizes offered (16:9, the services' usual ones).
const SIZES: [(u32, u32); 4] = [(854, 480), (1280, 720), (1600, 900), (1920, 1080)];
/// The id of the "custom URL" choice in the service list (assets/services.toml has it as a preset).
const CUSTOM: &str = "custom";

/// One destination being edited.
#[derive(Clone, Debug, Default)]
struct DestinationForm {
    name: String,
    /// A preset id, or [`CUSTOM`].
    service: String,
    server: String,
    key: String,
    show_key: bool,
    /// A key is stored already (an empty key field keeps it).
    has_key: bool,
    /// Its own video settings (an encode of its own) rather than the profile's.
    own_video: bool,
    size: (u32, u32),
    fps: u32,
    video_kbps: u32,
}

/// A profile being edited.
#[derive(Clone, Debug)]
struct Form {
    /// The profile it was opened from.
    from: Option<String>,
    /// A duplicate keeps `from`.
    duplicate: bool,
    name: String,
    destinations: Vec<DestinationForm>,
    size: (u32, u32),
    fps: u32,
    video_kbps: u32,
    audio_kbps: u32,
    keyint_secs: f64,
    record: bool,
    record_dir: String,
    /// The base the form was made from (sources, anything not edited here).
    base: Profile,
    /// What the last check of the form said: an error blocks saving.
    verdict: Result<Vec<String>, String>,
}

/// The editor window's state.
pub struct ProfileEditor {
    form: Option<Form>,
    /// A profile whose deletion waits for a confirmation.
    confirm_delete: Option<String>,
    services: Vec<Service>,
}

impl Default for ProfileEditor {
    fn default() -> Self {
        ProfileEditor { form: None, confirm_delete: None, services: services::services() }
    }
}

impl ProfileEditor {
    /// Opens the editor on a new profile.
    pub fn new_profile(&mut self, existing: &[Profile]) {
        let mut name = "My stream".to_string();
        let mut n = 2;
        while existing.iter().any(|p| p.name == name) {
            name = format!("My stream {n}");
            n += 1;
        }
        let mut form = Form::of(&Profile::named(&name), None);
        // The person picks the service (its servers follow) or types a URL.
        form.destinations.push(DestinationForm { name: "main".into(), service: CUSTOM.into(), ..Default::default() });
        self.form = Some(form.checked());
    }

    /// Opens the editor on a saved profile (`duplicate`: as a copy to save under a new name).
    pub fn edit(&mut self, profile: &Profile, duplicate: bool, existing: &[Profile]) {
        let mut form = Form::of(profile, Some(profile.name.clone()));
        if duplicate {
            form.duplicate = true;
            let mut name = format!("{} copy", profile.name);
            let mut n = 2;
            while existing.iter().any(|p| p.name == name) {
                name = format!("{} copy {n}", profile.name);
                n += 1;
            }
            form.name = name;
        }
        self.form = Some(form.checked());
    }

    /// Asks before deleting `name`.
    pub fn delete(&mut self, name: &str) {
        self.confirm_delete = Some(name.to_string());
    }

    /// Draws the editor and the delete confirmation, if open.
    pub fn editor_ui(&mut self, ctx: &egui::Context, commands: &mut Vec<Command>) {
        if let Some(name) = self.confirm_delete.clone() {
            let mut open = true;
            egui::Window::new("Delete profile").collapsible(false).resizable(false).open(&mut open).show(ctx, |ui| {
                ui.label(format!("Delete the profile '{name}' and its stream keys?"));
                ui.horizontal(|ui| {
                    if ui.button(format!("Delete {name}")).clicked() {
                        commands.push(Command::Profiles(ProfilesCommand::Delete(name.clone())));
                        self.confirm_delete = None;
                    }
                    if ui.button("Keep it").clicked() {
                        self.confirm_delete = None;
                    }
                });
            });
            if !open {
                self.confirm_delete = None;
            }
        }
        let Some(mut form) = self.form.take() else { return };
        let mut open = true;
        let mut close = false;
        let title = if form.from.is_some() && !form.duplicate { "Edit profile" } else { "New profile" };
        egui::Window::new(title).open(&mut open).default_width(520.0).show(ctx, |ui| {
            let changed = form.form_ui(ui, &self.services);
            if changed {
                form = form.clone().checked();
            }
            ui.separator();
            match &form.verdict {
                Ok(warnings) => {
                    for w in warnings {
                        ui.colored_label(egui::Color32::from_rgb(230, 180, 60), w);
                    }
                }
                Err(e) => {
                    ui.colored_label(egui::Color32::LIGHT_RED, e);
                }
            }
            ui.horizontal(|ui| {
                let can_save = form.verdict.is_ok();
                if ui.add_enabled(can_save, egui::Button::new("Save profile")).clicked() {
                    match form.save_command() {
                        Ok(cmd) => {
                            commands.push(cmd);
                            close = true;
                        }
                        Err(e) => form.verdict = Err(e),
                    }
                }
                if ui.button("Cancel").clicked() {
                    close = true;
                }
            });
        });
        if open && !close {
            self.form = Some(form);
        }
    }
}

impl Form {
    fn of(p: &Profile, from: Option<String>) -> Form {
        Form {
            from,
            duplicate: false,
            name: p.name.clone(),
            destinations: p
                .destinations
                .iter()
                .map(|d| DestinationForm {
                    name: d.name.clone(),
                    service: d.preset.clone().unwrap_or_else(|| CUSTOM.into()),
                    server: d.server.clone(),
                    key: String::new(),
                    show_key: false,
                    has_key: !matches!(d.key, crate::config::KeyRef::None),
                    own_video: !d.video.is_empty(),
                    size: d.video.size.map_or((p.video.size.width, p.video.size.height), |s| (s.width, s.height)),
                    fps: d.video.fps.unwrap_or(p.video.fps),
                    video_kbps: d.video.bitrate_kbps.unwrap_or(p.video.bitrate_kbps),
                })
                .collect(),
            size: (p.video.size.width, p.video.size.height),
            fps: p.video.fps,
            video_kbps: p.video.bitrate_kbps,
            audio_kbps: p.audio.bitrate_kbps,
            keyint_secs: p.video.keyint_secs,
            record: p.record.is_some(),
            record_dir: p.record.as_ref().map(|r| r.display().to_string()).unwrap_or_default(),
            base: p.clone(),
            verdict: Ok(Vec::new()),
        }
    }

    /// The profile the form describes, and its new keys.
    fn profile(&self) -> Result<(Profile, Vec<(String, crate::rtmp::StreamKey)>), String> {
        let mut p = self.base.clone();
        p.name = self.name.trim().to_string();
        crate::config::check_name(&p.name, "profile").map_err(|e| e.to_string())?;
        p.video.size = FrameSize::new(self.size.0, self.size.1);
        p.video.fps = self.fps;
        p.video.bitrate_kbps = self.video_kbps;
        p.audio.bitrate_kbps = self.audio_kbps;
        p.video.keyint_secs = self.keyint_secs;
        p.record = (self.record && !self.record_dir.trim().is_empty()).then(|| PathBuf::from(self.record_dir.trim()));
        let old = std::mem::take(&mut p.destinations);
        let mut keys = Vec::new();
        for d in &self.destinations {
            let draft = DestinationDraft {
                url: Some(d.server.trim().to_string()),
                preset: (d.service != CUSTOM).then(|| d.service.clone()),
                name: Some(d.name.trim().to_string()),
                ca_file: old.iter().find(|o| o.name == d.name).and_then(|o| o.ca_file.clone()),
                video: if d.own_video {
                    crate::config::VideoOverride {
                        size: Some(FrameSize::new(d.size.0, d.size.1)),
                        fps: Some(d.fps),
                        bitrate_kbps: Some(d.video_kbps),
                    }
                } else {
                    Default::default()
                },
            };
            let mut dest = draft.build().map_err(|e| format!("destination '{}': {e}", d.name))?;
            if p.destinations.iter().any(|o: &crate::config::DestinationProfile| o.name == dest.name) {
                return Err(format!("two destinations are called '{}'", dest.name));
            }
            if d.key.trim().is_empty() {
                if !d.has_key {
                    return Err(format!("destination '{}' needs its stream key", d.name));
                }
                if let Some(o) = old.iter().find(|o| o.name == dest.name) {
                    dest.key = o.key.clone();
                }
            } else {
                let key = parse_key(&d.key).map_err(|e| format!("destination '{}': {e}", d.name))?;
                keys.push((dest.name.clone(), key));
            }
            p.destinations.push(dest);
        }
        Ok((p, keys))
    }

    /// The form with its verdict: the services' limits, as saving checks them.
    fn checked(mut self) -> Form {
        self.verdict = self.profile().and_then(|(p, _)| p.check(false).map_err(|e| e.to_string()));
        self
    }

    fn save_command(&self) -> Result<Command, String> {
        let (profile, keys) = self.profile()?;
        Ok(Command::Profiles(ProfilesCommand::Save { profile, from: self.from.clone(), keep_from: self.duplicate, keys }))
    }

    /// The fields; true when one changed.
    fn form_ui(&mut self, ui: &mut egui::Ui, services: &[Service]) -> bool {
        let mut changed = false;
        let profile_video = (self.size, self.fps, self.video_kbps);
        ui.horizontal(|ui| {
            let label = ui.label("Profile name");
            changed |= ui.text_edit_singleline(&mut self.name).labelled_by(label.id).changed();
        });
        ui.separator();
        let mut remove = None;
        for (i, d) in self.destinations.iter_mut().enumerate() {
            ui.push_id(i, |ui| {
                egui::Grid::new("destination").num_columns(2).show(ui, |ui| {
                    let service_label = ui.label("Service");
                    let shown = services.iter().find(|s| s.id == d.service).map_or("Custom URL".to_string(), |s| s.name.clone());
                    let service = egui::ComboBox::from_id_salt("service").selected_text(shown).show_ui(ui, |ui| {
                        for s in services {
                            if ui.selectable_label(d.service == s.id, &s.name).clicked() && d.service != s.id {
                                d.service = s.id.clone();
                                d.server = s.servers.first().map(|u| u.url.clone()).unwrap_or_default();
                                if d.name.is_empty() || services.iter().any(|o| o.id == d.name) {
                                    d.name = s.id.clone();
                                }
                                changed = true;
                            }
                        }
                        // The "custom" preset (a server URL of one's own) is in the list.
                        if !services.iter().any(|s| s.id == CUSTOM)
                            && ui.selectable_label(d.service == CUSTOM, "Custom URL").clicked()
                            && d.service != CUSTOM
                        {
                            d.service = CUSTOM.into();
                            changed = true;
                        }
                    });
                    service.response.labelled_by(service_label.id);
                    ui.end_row();
                    let server_label = ui.label("Server");
                    let preset = services.iter().find(|s| s.id == d.service);
                    match preset.filter(|s| !s.servers.is_empty()) {
                        Some(s) => {
                            let shown = s.servers.iter().find(|u| u.url == d.server).map_or(d.server.clone(), |u| u.name.clone());
                            let server = egui::ComboBox::from_id_salt("server").selected_text(shown).show_ui(ui, |ui| {
                                for u in &s.servers {
                                    changed |= ui.selectable_value(&mut d.server, u.url.clone(), &u.name).changed();
                                }
                            });
                            server.response.labelled_by(server_label.id);
                        }
                        None => {
                            changed |= ui
                                .add(egui::TextEdit::singleline(&mut d.server).hint_text("rtmp://host/app").desired_width(300.0))
                                .labelled_by(server_label.id)
                                .on_hover_text("The server URL without the stream key")
                                .changed();
                        }
                    }
                    ui.end_row();
                    let label = ui.label("Destination name");
                    changed |= ui.text_edit_singleline(&mut d.name).labelled_by(label.id).changed();
                    ui.end_row();
                    let label = ui.label("Stream key");
                    ui.horizontal(|ui| {
                        let hint = if d.has_key { "stored (type to replace)" } else { "paste the key" };
                        let edit = egui::TextEdit::singleline(&mut d.key).password(!d.show_key).hint_text(hint).desired_width(220.0);
                        changed |= ui.add(edit).labelled_by(label.id).changed();
                        ui.checkbox(&mut d.show_key, "Show key");
                    });
                    ui.end_row();
                });
                changed |= own_video_ui(ui, d, profile_video);
                if ui.button(format!("Remove destination {}", d.name)).clicked() {
                    remove = Some(i);
                }
            });
            ui.separator();
        }
        if let Some(i) = remove {
            self.destinations.remove(i);
            changed = true;
        }
        if ui.button("Add a destination").clicked() {
            self.destinations.push(DestinationForm {
                name: format!("destination {}", self.destinations.len() + 1),
                service: CUSTOM.into(),
                size: self.size,
                fps: self.fps,
                video_kbps: self.video_kbps,
                ..Default::default()
            });
            changed = true;
        }
        ui.separator();
        egui::Grid::new("encoding").num_columns(2).show(ui, |ui| {
            // Each field named by its label, for a screen reader (and the window tests).
            let label = ui.label("Video size");
            let size = egui::ComboBox::from_id_salt("size").selected_text(format!("{}x{}", self.size.0, self.size.1)).show_ui(ui, |ui| {
                for s in SIZES {
                    changed |= ui.selectable_value(&mut self.size, s, format!("{}x{}", s.0, s.1)).changed();
                }
            });
            size.response.labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Frame rate");
            changed |= ui.add(egui::DragValue::new(&mut self.fps).range(1..=60).suffix(" fps")).labelled_by(label.id).changed();
            ui.end_row();
            let label = ui.label("Video bitrate");
            changed |= ui.add(egui::DragValue::new(&mut self.video_kbps).range(300..=20_000).speed(50).suffix(" kbit/s")).labelled_by(label.id).changed();
            ui.end_row();
            let label = ui.label("Audio bitrate");
            changed |= ui.add(egui::DragValue::new(&mut self.audio_kbps).range(64..=320).speed(8).suffix(" kbit/s")).labelled_by(label.id).changed();
            ui.end_row();
            let label = ui.label("Keyframe interval");
            changed |= ui.add(egui::DragValue::new(&mut self.keyint_secs).range(0.5..=10.0).speed(0.5).suffix(" s")).labelled_by(label.id).changed();
            ui.end_row();
        });
        ui.horizontal(|ui| {
            changed |= ui.checkbox(&mut self.record, "Record locally").changed();
            if self.record {
                changed |= ui.add(egui::TextEdit::singleline(&mut self.record_dir).hint_text("folder for the recordings")).changed();
            }
        });
        changed
    }
}

/// A destination's own video settings: off, it shares the profile's
/// encode; on, it gets a size (at most the profile's), a rate and a
/// bitrate of its own — another encode while live. True when one changed.
fn own_video_ui(ui: &mut egui::Ui, d: &mut DestinationForm, (size, fps, kbps): ((u32, u32), u32, u32)) -> bool {
    let mut changed = false;
    let toggled = ui.checkbox(&mut d.own_video, format!("Own video settings for {}", d.name)).on_hover_text(
        "Send this destination its own size and bitrate (a second encode while live); otherwise it shares the profile's",
    );
    if toggled.changed() {
        changed = true;
        if d.own_video {
            (d.size, d.fps, d.video_kbps) = (size, fps, kbps);
        }
    }
    if !d.own_video {
        return changed;
    }
    egui::Grid::new("own video").num_columns(2).show(ui, |ui| {
        let label = ui.label(format!("Video size for {}", d.name));
        let response = egui::ComboBox::from_id_salt("own size").selected_text(format!("{}x{}", d.size.0, d.size.1)).show_ui(ui, |ui| {
            for s in SIZES.into_iter().filter(|s| s.0 <= size.0 && s.1 <= size.1) {
                changed |= ui.selectable_value(&mut d.size, s, format!("{}x{}", s.0, s.1)).changed();
            }
        });
        response.response.labelled_by(label.id);
        ui.end_row();
        let label = ui.label(format!("Frame rate for {}", d.name));
        changed |= ui.add(egui::DragValue::new(&mut d.fps).range(1..=fps.max(1)).suffix(" fps")).labelled_by(label.id).changed();
        ui.end_row();
        let label = ui.label(format!("Video bitrate for {}", d.name));
        changed |= ui
            .add(egui::DragValue::new(&mut d.video_kbps).range(300..=20_000).speed(50).suffix(" kbit/s"))
            .labelled_by(label.id)
            .changed();
        ui.end_row();
    });
    changed
}
