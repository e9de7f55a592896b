//! The desktop app (eframe/egui): one window to preview, go live and rehearse.
//!
//! The window is a view: each frame it reads one [`Snapshot`] from its
//! [`EngineLink`], draws it, and collects what the person asked for as
//! [`Command`]s, which one place (the end of [`TallyApp::main_ui`]) sends.
//! No panel calls into the engine. The engine converts the picture to RGBA
//! on its preview thread, reads profiles and opens devices on its own
//! threads, and wakes the window (through the waker it is given) only when
//! something it shows changed (a picture, a state, the meters moving); the
//! window asks for timed frames only for what changes by itself (the clock
//! of a live stream, falling peaks), so with nothing new to show it does
//! not repaint.
//!
//! May use `engine` (the link, commands and snapshots), `pipeline` and
//! `net` for their snapshot types, `config` for profile types, `capture`
//! for source names; never a socket, a file, a device or a runtime itself.

mod arrange;
mod charts;
mod devices;
mod frame_times;
pub mod keys;
mod layer_kind;
mod layers;
mod live;
mod log_view;
mod meters;
mod picture;
mod profile_editor;
mod scenes;
mod server_panel;
mod snap;
mod status_bar;

pub use live::TallyLight;

use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::config::Profile;
use crate::engine::{BroadcastCommand, BroadcastState, CheckState, Command, Engine, EngineLink, EngineOptions, EngineState, GoLiveRequest, PreviewRequest, ProfilesCommand, ProfilesState, RunOptions, ScenesCommand, ServerState, SessionFormat, Snapshot, SourcesCommand, SourcesState, ViewerCommand, ViewerState};
use crate::media::rendition::{DEFAULT_FPS, DEFAULT_SIZE};
use std::time::{Duration, Instant};

/// The largest preview picture asked for: the window is rarely wider.
const PREVIEW_MAX: (u32, u32) = (1280, 720);
/// How long a refused command's reason stays on screen (it is in the log too).
const REFUSAL_SHOWN: Duration = Duration::from_secs(10);
/// The preview is asked for in steps of this many pixels.
const PREVIEW_STEP: u32 = 64;
/// The stream name a rehearsal publishes on the local server.
pub const REHEARSAL_STREAM: &str = "rehearsal";


/// The eframe application.
pub struct TallyApp {
    /// The engine, as the window sees it: snapshots in, commands out.
    link: Box<dyn EngineLink>,
    preview: picture::Picture,
    server: server_panel::ServerPanel,
    editor: profile_editor::ProfileEditor,
    devices: devices::DevicePickers,
    charts: charts::Charts,
    show_charts: bool,
    meters: meters::Meters,
    scenes: scenes::SceneStrip,
    layers: layers::LayersPanel,
    arrange: arrange::Arrange,
    /// The scene whose layers are edited, and the layer picked.
    selection: scenes::Selection,
    log: log_view::LogView,
    show_log: bool,
    /// The profile Go Live uses.
    selected: Option<String>,
    /// The sources and format the capture session was last opened with.
    opened: Option<(VideoSourceSpec, AudioSourceSpec, SessionFormat)>,
    /// A command the engine could not take (it was busy or gone).
    notice: Option<String>,
    /// The engine has been given the window's waker.
    waking: bool,
    /// A frame has been drawn.
    drawn: bool,
    /// The preview size last asked of the engine.
    preview_size: Option<(u32, u32)>,
    frame_times: frame_times::FrameTimes,
    /// The camera and microphone chosen in the pickers (kept across runs):
    /// used where the profile leaves its source to `auto`.
    chosen: (Option<VideoSourceSpec>, Option<AudioSourceSpec>),
    /// The window was asked to close while live: the question is shown.
    confirm_close: bool,
    /// Ending the stream to quit: the window closes once it has ended.
    closing: bool,
}

/// The keys the window's own settings are stored under (eframe's storage,
/// beside the window size and panel layout it keeps itself).
pub mod settings {
    /// The selected profile.
    pub const PROFILE: &str = "profile";
    /// The camera chosen in the picker (`tally stream --video` syntax).
    pub const VIDEO: &str = "video";
    /// The microphone chosen in the picker (`--audio` syntax).
    pub const AUDIO: &str = "audio";
    /// Whether the log and the charts are shown.
    pub const SHOW_LOG: &str = "show_log";
    /// See [`SHOW_LOG`].
    pub const SHOW_CHARTS: &str = "show_charts";
}

impl TallyApp {
    /// The app on an engine (a running [`Engine`], or a scripted one in
    /// tests): its first frame asks for the preview, the profiles and the
    /// cameras, and from then on the window is woken whenever there is
    /// something new to draw.
    pub fn new(link: impl EngineLink + 'static) -> TallyApp {
        let server = server_panel::ServerPanel::new(&link.snapshot().server_defaults);
        TallyApp {
            link: Box::new(link),
            preview: picture::Picture::default(),
            server,
            editor: profile_editor::ProfileEditor::default(),
            devices: devices::DevicePickers::default(),
            charts: charts::Charts::default(),
            show_charts: false,
            meters: meters::Meters::default(),
            scenes: scenes::SceneStrip::default(),
            layers: layers::LayersPanel::default(),
            arrange: arrange::Arrange::default(),
            selection: scenes::Selection::default(),
            log: log_view::LogView::default(),
            show_log: false,
            selected: None,
            opened: None,
            notice: None,
            waking: false,
            drawn: false,
            preview_size: None,
            frame_times: frame_times::FrameTimes::default(),
            chosen: (None, None),
            confirm_close: false,
            closing: false,
        }
    }

    /// What the window asks of the engine with its first frame.
    fn first_commands(commands: &mut Vec<Command>) {
        commands.push(Command::from(SourcesCommand::SetPreview(Some(PreviewRequest { width: PREVIEW_MAX.0, height: PREVIEW_MAX.1, max_fps: DEFAULT_FPS }))));
        commands.push(Command::from(ProfilesCommand::Load));
        commands.push(Command::from(SourcesCommand::WatchDevices(true)));
        commands.push(Command::from(ScenesCommand::Load));
    }

    /// Who plays a new layout's roles: the camera chosen in the picker (else the first one).
    fn cast(&self) -> crate::session::scene::Cast {
        let camera = match &self.chosen.0 {
            Some(v @ VideoSourceSpec::Camera(_)) => v.clone(),
            _ => VideoSourceSpec::Auto,
        };
        crate::session::scene::Cast { camera, ..Default::default() }
    }

    fn start(cc: &eframe::CreationContext<'_>) -> anyhow::Result<TallyApp> {
        let engine = Engine::start(EngineOptions::default())?;
        let mut app = TallyApp::new(engine);
        if let Some(storage) = cc.storage {
            app.restore(storage);
        }
        app.wake_on_change(&cc.egui_ctx);
        Ok(app)
    }

    /// Takes back the settings `save` stored: the profile (when it still
    /// exists), the chosen camera and microphone, what was shown.
    pub fn restore(&mut self, storage: &dyn eframe::Storage) {
        let get = |key: &str| storage.get_string(key).filter(|v| !v.is_empty());
        self.selected = get(settings::PROFILE);
        self.chosen = (get(settings::VIDEO).and_then(|v| v.parse().ok()), get(settings::AUDIO).and_then(|a| a.parse().ok()));
        self.show_log = get(settings::SHOW_LOG).is_some_and(|v| v == "true");
        self.show_charts = get(settings::SHOW_CHARTS).is_some_and(|v| v == "true");
    }

    /// Stores the window's settings (eframe calls this every 30 s and on exit).
    pub fn save_settings(&self, storage: &mut dyn eframe::Storage) {
        storage.set_string(settings::PROFILE, self.selected.clone().unwrap_or_default());
        storage.set_string(settings::VIDEO, self.chosen.0.as_ref().map(|v| v.to_string()).unwrap_or_default());
        storage.set_string(settings::AUDIO, self.chosen.1.as_ref().map(|a| a.to_string()).unwrap_or_default());
        storage.set_string(settings::SHOW_LOG, self.show_log.to_string());
        storage.set_string(settings::SHOW_CHARTS, self.show_charts.to_string());
    }

    /// Gives the engine the window's waker: a repaint, from whichever
    /// thread the engine calls it on.
    fn wake_on_change(&mut self, ctx: &egui::Context) {
        self.waking = true;
        let ctx = ctx.clone();
        self.link.set_waker(Box::new(move || ctx.request_repaint()));
    }

    /// The one place commands leave the window, in the order they were asked.
    fn send_all(&mut self, commands: Vec<Command>) {
        for c in commands {
            // A source chosen in a picker is the one the window opens next time too.
            match &c {
                Command::Sources(SourcesCommand::SwitchVideo(v)) => {
                    self.chosen.0 = Some(v.clone());
                    if let Some(opened) = self.opened.as_mut() {
                        opened.0 = v.clone();
                    }
                }
                Command::Sources(SourcesCommand::SwitchAudio(a)) => {
                    self.chosen.1 = Some(a.clone());
                    if let Some(opened) = self.opened.as_mut() {
                        opened.1 = a.clone();
                    }
                }
                _ => {}
            }
            // A profile just saved is the one Go Live uses.
            if let Command::Profiles(ProfilesCommand::Save { profile, .. }) = &c {
                self.selected = Some(profile.name.clone());
            }
            if let Command::Profiles(ProfilesCommand::Delete(name)) = &c
                && self.selected.as_ref() == Some(name)
            {
                self.selected = None;
            }
            if let Err(e) = self.link.send(c) {
                self.notice = Some(e.to_string());
            }
        }
    }

    /// Opens the capture session with the selected profile's sources and
    /// size (or the defaults), unless it already runs with them.
    fn open_sources(&mut self, state: &EngineState, commands: &mut Vec<Command>) {
        // Opened once the profiles are known (with the selected one's
        // sources and size), not first with the defaults and then again.
        if state.broadcast.is_active() || matches!(state.profiles, ProfilesState::Unknown) {
            return;
        }
        let profile = self.selected_profile(state);
        let (video, audio, format) = match &profile {
            Some(p) => (
                p.video.source.clone(),
                p.audio.source.clone(),
                SessionFormat { width: p.video.size.width, height: p.video.size.height, fps: p.video.fps },
            ),
            None => (VideoSourceSpec::Auto, AudioSourceSpec::Auto, SessionFormat { width: DEFAULT_SIZE.width, height: DEFAULT_SIZE.height, fps: DEFAULT_FPS }),
        };
        // What the pickers chose stands where the profile leaves it to `auto`.
        let video = match (&video, &self.chosen.0) {
            (VideoSourceSpec::Auto, Some(chosen)) => chosen.clone(),
            _ => video,
        };
        let audio = match (&audio, &self.chosen.1) {
            (AudioSourceSpec::Auto, Some(chosen)) => chosen.clone(),
            _ => audio,
        };
        let wanted = (video, audio, format);
        if self.opened.as_ref() != Some(&wanted) {
            self.opened = Some(wanted.clone());
            let (video, audio, format) = wanted;
            commands.push(Command::from(SourcesCommand::Open { video, audio, format, looping: true }));
        }
    }

    fn selected_profile(&self, state: &EngineState) -> Option<Profile> {
        let ProfilesState::Loaded { profiles, .. } = &state.profiles else { return None };
        self.selected.as_ref().and_then(|name| profiles.iter().find(|p| &p.name == name).cloned())
    }

    /// The first time the profiles are known: the one the window had (if it
    /// still exists), else the last one used, else the first.
    fn pick_profile(&mut self, state: &EngineState) {
        let ProfilesState::Loaded { profiles, .. } = &state.profiles else { return };
        if self.selected.as_ref().is_some_and(|name| !profiles.iter().any(|p| &p.name == name)) {
            self.selected = None;
        }
        if self.selected.is_some() {
            return;
        }
        if let ProfilesState::Loaded { profiles, last_used } = &state.profiles {
            self.selected = last_used.clone().or_else(|| profiles.first().map(|p| p.name.clone()));
        }
    }

    fn go_live(&mut self, state: &EngineState, commands: &mut Vec<Command>) {
        if state.broadcast.is_active() {
            return;
        }
        match self.selected.clone() {
            Some(profile) => commands.push(Command::from(BroadcastCommand::GoLive(GoLiveRequest { profile: Some(profile), ..Default::default() }))),
            None => self.notice = Some("no profile yet: rehearse locally, or add a destination first".into()),
        }
    }

    fn rehearse(&mut self, state: &EngineState, commands: &mut Vec<Command>) {
        if !state.broadcast.is_active() {
            // And show what a viewer gets, once the server runs.
            self.server.want_viewer = true;
            commands.push(Command::from(BroadcastCommand::Rehearse { stream: REHEARSAL_STREAM.into(), encode: Default::default(), run: RunOptions::default() }));
        }
    }

    fn shortcuts(&mut self, ui: &mut egui::Ui, state: &EngineState, commands: &mut Vec<Command>) {
        let (hidden, muted) = match &state.sources {
            SourcesState::Open { hidden, muted, .. } => (*hidden, *muted),
            _ => (false, false),
        };
        let pressed = |ui: &mut egui::Ui, k: &egui::KeyboardShortcut| ui.input_mut(|i| i.consume_shortcut(k));
        if pressed(ui, &keys::GO_LIVE) {
            self.go_live(state, commands);
        }
        if pressed(ui, &keys::END) && state.broadcast.is_active() {
            commands.push(Command::from(BroadcastCommand::Stop));
        }
        if pressed(ui, &keys::REHEARSE) {
            self.rehearse(state, commands);
        }
        if pressed(ui, &keys::MUTE) {
            commands.push(Command::from(SourcesCommand::SetMute(!muted)));
        }
        if pressed(ui, &keys::HIDE) {
            commands.push(Command::from(SourcesCommand::SetHideCamera(!hidden)));
        }
        self.scenes.shortcuts(ui, state, commands);
    }

    fn top_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, light: &TallyLight, commands: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.heading("Tally");
            ui.separator();
            let names: Vec<String> = match &state.profiles {
                ProfilesState::Loaded { profiles, .. } => profiles.iter().map(|p| p.name.clone()).collect(),
                _ => Vec::new(),
            };
            let live = state.broadcast.is_active();
            ui.add_enabled_ui(!live && !names.is_empty(), |ui| {
                egui::ComboBox::from_label("Profile")
                    .selected_text(self.selected.clone().unwrap_or_else(|| "none".into()))
                    .show_ui(ui, |ui| {
                        for name in &names {
                            ui.selectable_value(&mut self.selected, Some(name.clone()), name);
                        }
                    });
            });
            let ctx = ui.ctx().clone();
            let shortcut = |k: &egui::KeyboardShortcut| ctx.format_shortcut(k);
            let big = |text: &str| egui::Button::new(egui::RichText::new(text).size(18.0).strong()).min_size(egui::vec2(140.0, 34.0));
            if live {
                let end = ui.add(big("End Stream")).on_hover_text(format!("End the stream ({})", shortcut(&keys::END)));
                if end.clicked() && !matches!(state.broadcast, BroadcastState::Stopping) {
                    commands.push(Command::from(BroadcastCommand::Stop));
                }
            } else {
                let go = ui
                    .add_enabled(self.selected.is_some(), big("Go Live"))
                    .on_hover_text(format!("Go live with the selected profile ({})", shortcut(&keys::GO_LIVE)))
                    .on_disabled_hover_text("Add a destination first, or rehearse locally");
                if go.clicked() {
                    self.go_live(state, commands);
                }
                let rehearse = ui
                    .button("Rehearse")
                    .on_hover_text(format!("Go live to the built-in server only ({})", shortcut(&keys::REHEARSE)));
                if rehearse.clicked() {
                    self.rehearse(state, commands);
                }
            }
            ui.separator();
            live::light_ui(ui, light);
        });
        let profiles: Vec<Profile> = match &state.profiles {
            ProfilesState::Loaded { profiles, .. } => profiles.clone(),
            _ => Vec::new(),
        };
        let live = state.broadcast.is_active();
        ui.horizontal(|ui| {
            if ui.button("New profile").clicked() {
                self.editor.new_profile(&profiles);
            }
            let selected = self.selected_profile(state);
            ui.add_enabled_ui(selected.is_some() && !live, |ui| {
                if let Some(p) = &selected {
                    if ui.button("Edit profile").clicked() {
                        self.editor.edit(p, false, &profiles);
                    }
                    if ui.button("Duplicate profile").clicked() {
                        self.editor.edit(p, true, &profiles);
                    }
                    if ui.button("Delete profile").clicked() {
                        self.editor.delete(&p.name);
                    }
                }
            });
            if let Some(p) = &selected {
                let running = matches!(state.check, CheckState::Running { .. });
                let check = ui.add_enabled(!running, egui::Button::new("Check")).on_hover_text(
                    "Resolve, connect, TLS, RTMP handshake and connect to each destination, publishing nothing",
                );
                if check.clicked() {
                    commands.push(Command::from(BroadcastCommand::Check { request: GoLiveRequest { profile: Some(p.name.clone()), ..Default::default() }, publish_test: None }));
                }
            }
        });
    }

    fn check_ui(ui: &mut egui::Ui, state: &EngineState) {
        let (reports, running) = match &state.check {
            CheckState::Idle => return,
            CheckState::Running { done, .. } => (done.as_slice(), true),
            CheckState::Done(done) => (done.as_slice(), false),
            CheckState::Failed { message } => {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("Check: {message}"));
                return;
            }
        };
        ui.strong(if running { "Checking…" } else { "Check" });
        for r in reports {
            let steps: Vec<String> = r.steps.iter().map(|(step, ms)| format!("{} {ms:.0} ms", step.name())).collect();
            let verdict = match (&r.failed_step, &r.error) {
                (None, _) if r.ok => "passed".to_string(),
                (Some(step), Some(e)) => format!("failed at {}: {e}", step.name()),
                (_, e) => format!("failed: {}", e.clone().unwrap_or_default()),
            };
            let colour = if r.ok { egui::Color32::from_rgb(80, 200, 100) } else { egui::Color32::LIGHT_RED };
            ui.colored_label(colour, format!("{}: {verdict}", r.url));
            ui.small(steps.join(" · "));
        }
    }

    fn first_run_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, commands: &mut Vec<Command>) {
        ui.group(|ui| {
            ui.heading("Welcome to Tally");
            ui.label("No profile is saved yet. Try it out on this computer first, or tell Tally where to stream.");
            ui.horizontal(|ui| {
                if ui.button("Rehearse locally").on_hover_text("Go live to the built-in server: nobody else sees it").clicked() {
                    self.rehearse(state, commands);
                }
                if ui.button("Add a destination").on_hover_text("Make a profile: a service, its server and your stream key").clicked() {
                    self.editor.new_profile(&[]);
                }
            });
        });
    }

    fn sources_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, commands: &mut Vec<Command>) {
        let SourcesState::Open { hidden, muted, ref video, ref audio, .. } = state.sources else { return };
        self.devices.devices_ui(ui, &state.devices, video, audio, commands);
        ui.horizontal(|ui| {
            let ctx = ui.ctx().clone();
            let shortcut = |k: &egui::KeyboardShortcut| ctx.format_shortcut(k);
            let mut mute = muted;
            if ui.toggle_value(&mut mute, "Mute microphone").on_hover_text(format!("Silence goes out instead ({})", shortcut(&keys::MUTE))).changed() {
                commands.push(Command::from(SourcesCommand::SetMute(mute)));
            }
            let mut hide = hidden;
            if ui.toggle_value(&mut hide, "Hide camera").on_hover_text(format!("A slate goes out instead; the stream stays up ({})", shortcut(&keys::HIDE))).changed() {
                commands.push(Command::from(SourcesCommand::SetHideCamera(hide)));
            }
        });
    }

    /// Closing the window while live asks first; ending the stream to quit
    /// stops it cleanly (unpublished, recording finalised) and then closes.
    fn close_ui(&mut self, ctx: &egui::Context, state: &EngineState, commands: &mut Vec<Command>) {
        let live = state.broadcast.is_active();
        if ctx.input(|i| i.viewport().close_requested()) && (live || self.closing) {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.confirm_close = !self.closing;
        }
        if self.closing && !live {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if !self.confirm_close {
            return;
        }
        if !live {
            // It ended by itself meanwhile: nothing to ask.
            self.confirm_close = false;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        egui::Modal::new(egui::Id::unique("confirm-close")).show(ctx, |ui| {
            ui.heading("You are live");
            ui.label("Quitting ends the stream for every destination (and finishes the recording).");
            ui.horizontal(|ui| {
                if ui.button("End stream and quit").clicked() {
                    self.confirm_close = false;
                    self.closing = true;
                    commands.push(Command::from(BroadcastCommand::Stop));
                }
                if ui.button("Keep streaming").clicked() {
                    self.confirm_close = false;
                }
            });
        });
        if self.closing {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui, snap: &Snapshot, height: f32, commands: &mut Vec<Command>) {
        // Uploaded once per new picture, whatever the feed's rate.
        self.preview.update(ui.ctx(), "preview", snap.preview.as_deref());
        let w = ui.available_width();
        // A scene being edited is arranged on the picture by dragging.
        let sense = if self.selection.scene(&snap.state).is_some() { egui::Sense::click_and_drag() } else { egui::Sense::hover() };
        let picture = self.preview.picture_ui(ui, w, height, "Preview of the outgoing picture", "Starting preview…", sense);
        self.arrange.arrange_ui(ui, &picture, &snap.state, &mut self.selection, commands);
        // Ask for pictures the size they are shown at (in pixels, in steps so
        // that resizing the window does not ask on every frame): converting
        // and uploading more is work nobody sees.
        let ppp = ui.ctx().pixels_per_point();
        let step = |v: f32, max: u32| (((v * ppp) as u32).div_ceil(PREVIEW_STEP) * PREVIEW_STEP).clamp(PREVIEW_STEP, max);
        let wanted = (step(w, PREVIEW_MAX.0), step(height, PREVIEW_MAX.1));
        if self.preview_size != Some(wanted) {
            self.preview_size = Some(wanted);
            commands.push(Command::from(SourcesCommand::SetPreview(Some(PreviewRequest { width: wanted.0, height: wanted.1, max_fps: DEFAULT_FPS }))));
        }
    }

    /// The whole window: one snapshot read, every part drawn from it, and
    /// what they asked for sent at the end.
    pub fn main_ui(&mut self, ui: &mut egui::Ui) {
        if !self.waking {
            let ctx = ui.ctx().clone();
            self.wake_on_change(&ctx);
        }
        let mut commands = Vec::new();
        if !self.drawn {
            self.drawn = true;
            Self::first_commands(&mut commands);
            if let Some(start) = STARTED.get() {
                // benches/app.sh reads this line: start-up to the first frame.
                tracing::info!("first frame drawn {} ms after start", start.elapsed().as_millis());
            }
        }
        let now = Instant::now();
        // The one read of the engine this frame: every part draws from it.
        let snap = self.link.snapshot();
        let state = &*snap.state;
        self.pick_profile(state);
        self.open_sources(state, &mut commands);
        self.shortcuts(ui, state, &mut commands);
        let light = TallyLight::of(state, now);
        let levels = &*snap.levels;
        self.meters.update(levels, now);

        egui::Panel::top("top").show(ui, |ui| self.top_ui(ui, state, &light, &mut commands));
        let stats = &*snap.stats;
        egui::Panel::bottom("status").show(ui, |ui| status_bar::status_ui(ui, &snap));
        if self.server.want_viewer && matches!(state.server, ServerState::Running { .. }) && matches!(state.viewer, ViewerState::Off) {
            commands.push(Command::Viewer(ViewerCommand::Watch(server_panel::ServerPanel::watch_request())));
            self.server.want_viewer = false;
        }
        egui::Panel::right("side").resizable(true).default_size(380.0).max_size(520.0).show(ui, |ui| {
            if self.selection.scene(state).is_some() {
                self.layers.layers_ui(ui, state, &mut self.selection, &mut commands);
                ui.separator();
            }
            self.server.server_ui(ui, state, snap.viewer.as_deref(), &snap.server_defaults, &mut commands);
            ui.separator();
            ui.checkbox(&mut self.show_log, "Show log");
            if self.show_log {
                self.log.log_ui(ui, now);
            }
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let first_run = matches!(&state.profiles, ProfilesState::Loaded { profiles, .. } if profiles.is_empty());
            if first_run && !state.broadcast.is_active() {
                self.first_run_ui(ui, state, &mut commands);
            }
            if let ProfilesState::Failed { message } = &state.profiles {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("Profiles could not be read: {message}"));
            }
            let aspect = match &state.sources {
                SourcesState::Open { format, .. } => format.width as f32 / format.height.max(1) as f32,
                _ => DEFAULT_SIZE.width as f32 / DEFAULT_SIZE.height as f32,
            };
            let preview_h = (ui.available_height() - 200.0 - scenes::SceneStrip::height(state, aspect, ui)).max(120.0);
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    let room = ui.available_width() - 90.0;
                    ui.set_max_width(room.max(160.0));
                    self.preview_ui(ui, &snap, preview_h, &mut commands);
                });
                self.meters.meters_ui(ui, levels, now);
            });
            let cast = self.cast();
            self.scenes.strip_ui(ui, state, aspect, &cast, &mut self.selection, &mut commands);
            self.sources_ui(ui, state, &mut commands);
            ui.separator();
            self.charts.update(stats, state.broadcast.is_active());
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                Self::check_ui(ui, state);
                live::destinations_ui(ui, state, stats, &mut commands);
                for w in &state.warnings {
                    ui.colored_label(egui::Color32::from_rgb(230, 180, 60), w);
                }
                if let Some(r) = state.refused.as_ref().filter(|r| r.at.elapsed() < REFUSAL_SHOWN) {
                    ui.colored_label(egui::Color32::from_rgb(230, 180, 60), &r.message);
                    // Woken again to take it away.
                    ui.ctx().request_repaint_after(REFUSAL_SHOWN.saturating_sub(r.at.elapsed()));
                }
                if let Some(n) = &self.notice {
                    ui.colored_label(egui::Color32::LIGHT_RED, n);
                }
                ui.checkbox(&mut self.show_charts, "Show charts");
                if self.show_charts {
                    self.charts.charts_ui(ui);
                }
            });
        });
        self.editor.editor_ui(ui.ctx(), &mut commands);
        self.close_ui(ui.ctx(), state, &mut commands);
        self.send_all(commands);
        // What changes by itself: the live clock, the countdown, falling peaks, the log.
        if light.ticking() {
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
        if self.meters.animating(levels, now) {
            ui.ctx().request_repaint_after(Duration::from_millis(33));
        }
        if self.show_log {
            ui.ctx().request_repaint_after(Duration::from_millis(500));
        }
    }
}

impl eframe::App for TallyApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        // The previous frame's time: this code and its rendering.
        if let Some(secs) = frame.info().cpu_usage {
            self.frame_times.record(Duration::from_secs_f32(secs.max(0.0)), Instant::now());
        }
        self.main_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.save_settings(storage);
    }
}

/// When `run` was called: the start of the app, for the first frame's log line.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Why the window cannot open here, in one line, or None where it can: on
/// Linux and the BSDs a window needs an X11 or Wayland display (winit would
/// otherwise fail with a long backend error, or panic on some versions).
pub fn no_display() -> Option<String> {
    if cfg!(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd", target_os = "dragonfly")) {
        let set = |v: &str| std::env::var_os(v).is_some_and(|d| !d.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Some(
                "tally: no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the window cannot open; \
                 without one, go live with `tally stream` or run the local server with `tally serve` (see `tally --help`)"
                    .into(),
            );
        }
    }
    None
}

/// The app's ID: the Wayland app_id and the X11 WM_CLASS of the window,
/// and the name of the desktop entry, the icon and the AppStream metadata
/// that packages install (`packaging/`), so that desktops match the
/// running window to its menu entry and icon.
pub const APP_ID: &str = "io.github.tallycast.Tally";

/// The window's icon (taskbars, window switchers): `assets/tally.svg`
/// rendered at 128 px (`packaging/check.sh` checks the two agree).
fn window_icon() -> std::sync::Arc<egui::IconData> {
    // A PNG built into the binary: it decodes, or the tests fail first.
    std::sync::Arc::new(eframe::icon_data::from_png_bytes(include_bytes!("../../assets/tally-128.png")).unwrap_or_default())
}

/// How the window is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Renderer {
    /// OpenGL through glow: the smaller of the two in memory.
    Glow,
    /// wgpu (Vulkan, or GL where there is no Vulkan): in the Windows and
    /// macOS builds, and Linux builds made with `--features wgpu`.
    Wgpu,
}

/// Whether this build can draw with wgpu as well as OpenGL. Windows and
/// macOS builds always can (where OpenGL is weakest: a VM's basic display
/// adapter, macOS's deprecated GL). On Linux and the BSDs, where Mesa
/// always offers OpenGL, wgpu is the `wgpu` cargo feature: it is an eighth
/// of the whole build's compile time (docs/PERFORMANCE.md).
pub const HAS_WGPU: bool = cfg!(any(feature = "wgpu", target_os = "windows", target_os = "macos"));

/// Why `renderer` cannot be used by this build, or None when it can.
pub fn unavailable(renderer: Renderer) -> Option<String> {
    (renderer == Renderer::Wgpu && !HAS_WGPU).then(|| {
        "error: this build of Tally draws with OpenGL only (--renderer glow); wgpu comes with builds made \
         with `cargo build --release --features wgpu`, and with the Windows and macOS builds"
            .to_string()
    })
}

/// Opens the main window and runs until it is closed.
pub fn run(renderer: Renderer) -> anyhow::Result<()> {
    STARTED.get_or_init(Instant::now);
    tracing::info!("opening the window (renderer: {renderer:?})");
    // eframe keeps the window's size and position and egui's panel layout
    // (with the settings above) in its storage: ~/.local/share/tally/app.ron.
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tally")
            .with_app_id(APP_ID)
            .with_icon(window_icon())
            .with_inner_size([1100.0, 760.0]),
        persist_window: true,
        renderer: match renderer {
            Renderer::Glow => eframe::Renderer::Glow,
            #[cfg(any(feature = "wgpu", target_os = "windows", target_os = "macos"))]
            Renderer::Wgpu => eframe::Renderer::Wgpu,
            #[cfg(not(any(feature = "wgpu", target_os = "windows", target_os = "macos")))]
            Renderer::Wgpu => return Err(anyhow::anyhow!(unavailable(renderer).unwrap_or_default())),
        },
        ..Default::default()
    };
    let created = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app_made = created.clone();
    let result = eframe::run_native(
        "Tally",
        options,
        Box::new(move |cc| {
            app_made.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(Box::new(TallyApp::start(cc).map_err(|e| e.to_string())?))
        }),
    );
    match result {
        Ok(()) => Ok(()),
        // OpenGL could not even make the window (no GL driver, a broken
        // one): the same app again, drawn by wgpu. A second event loop is
        // not allowed in one process, so it is a second process.
        Err(e) if renderer == Renderer::Glow && !created.load(std::sync::atomic::Ordering::SeqCst) && !HAS_WGPU => Err(anyhow::anyhow!(
            "could not open the window with OpenGL: {e}. Update the graphics driver (Mesa), or build Tally with \
             --features wgpu for a second renderer; the command line (tally stream, tally serve) needs no window"
        )),
        Err(e) if renderer == Renderer::Glow && !created.load(std::sync::atomic::Ordering::SeqCst) => {
            tracing::warn!("the OpenGL renderer could not open the window ({e}); trying wgpu (--renderer wgpu)");
            let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("could not open the window, and cannot find tally itself to try wgpu: {e}"))?;
            let mut again = std::process::Command::new(exe);
            again.args(["--renderer", "wgpu"]);
            // The same process, so signals and the exit status are the new window's.
            #[cfg(unix)]
            let e = std::os::unix::process::CommandExt::exec(&mut again);
            #[cfg(not(unix))]
            let e = match again.status() {
                Ok(status) if status.success() => return Ok(()),
                Ok(_) => return Err(anyhow::anyhow!("could not open the window with OpenGL nor with wgpu")),
                Err(e) => e,
            };
            Err(anyhow::anyhow!("could not open the window with OpenGL, nor start tally again with wgpu: {e}"))
        }
        Err(e) => Err(anyhow::anyhow!("could not open the window: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_icon_decodes_at_128_px() {
        let icon = window_icon();
        assert_eq!((icon.width, icon.height), (128, 128));
        assert_eq!(icon.rgba.len(), 128 * 128 * 4);
        // Not a blank square: the red tally light is in it.
        assert!(icon.rgba.chunks(4).any(|p| p[0] > 200 && p[1] < 90 && p[3] == 255), "no red in the icon");
    }

    #[test]
    fn wgpu_is_refused_clearly_where_the_build_has_none() {
        assert_eq!(unavailable(Renderer::Glow), None);
        assert_eq!(unavailable(Renderer::Wgpu).is_some(), !HAS_WGPU);
    }
}
