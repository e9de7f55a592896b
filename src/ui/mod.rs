//! The desktop app (eframe/egui).
//!
//! For now: a window with the live preview of the capture session the
//! engine runs (the first camera, else the test pattern) and a status line.
//! The UI only draws snapshots and sends commands: the engine converts the
//! picture to RGBA on its preview thread and wakes the window when a new
//! one is ready, so an unchanging window does not repaint.

use std::sync::Arc;
use crate::engine::{Command, Engine, EngineOptions, PreviewRequest, SessionFormat, SourcesState};
use crate::capture::{AudioSourceSpec, VideoSourceSpec};
use crate::media::settings::{DEFAULT_FPS, DEFAULT_SIZE};
use crate::pipeline::PreviewFrame;

/// The largest preview picture asked for: the window is rarely wider.
const PREVIEW_MAX: (u32, u32) = (1280, 720);

/// The eframe application.
pub struct TallyApp {
    engine: Engine,
    texture: Option<egui::TextureHandle>,
    shown: u64,
}

impl TallyApp {
    fn new(cc: &eframe::CreationContext<'_>) -> anyhow::Result<Self> {
        let engine = Engine::start(EngineOptions::default())?;
        engine.send(Command::SetPreview(Some(PreviewRequest { width: PREVIEW_MAX.0, height: PREVIEW_MAX.1, max_fps: DEFAULT_FPS })))?;
        let format = SessionFormat { width: DEFAULT_SIZE.width, height: DEFAULT_SIZE.height, fps: DEFAULT_FPS };
        engine.send(Command::OpenSources { video: VideoSourceSpec::Auto, audio: AudioSourceSpec::Auto, format, looping: false })?;
        // Wake the window only when there is something new to draw.
        let ctx = cc.egui_ctx.clone();
        let (mut preview, mut state) = (engine.preview(), engine.state());
        engine.runtime().spawn(async move {
            loop {
                tokio::select! {
                    p = preview.changed() => if p.is_err() { break },
                    s = state.changed() => if s.is_err() { break },
                }
                ctx.request_repaint();
            }
        });
        Ok(TallyApp { engine, texture: None, shown: 0 })
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui) {
        let latest: Option<Arc<PreviewFrame>> = self.engine.preview().borrow().clone();
        if let Some(p) = latest.filter(|p| p.serial != self.shown) {
            self.shown = p.serial;
            let image = egui::ColorImage::from_rgba_unmultiplied([p.width as usize, p.height as usize], &p.rgba);
            match &mut self.texture {
                Some(t) => t.set(image, egui::TextureOptions::LINEAR),
                None => self.texture = Some(ui.ctx().load_texture("preview", image, egui::TextureOptions::LINEAR)),
            }
        }
        match &self.texture {
            Some(t) => {
                let avail = ui.available_size();
                let [tw, th] = t.size();
                let aspect = tw as f32 / th.max(1) as f32;
                let w = avail.x.min((avail.y - 40.0).max(90.0) * aspect);
                ui.image((t.id(), egui::vec2(w, w / aspect)));
            }
            None => {
                ui.label("Starting preview…");
            }
        }
    }
}

impl eframe::App for TallyApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Tally");
            let sources = self.engine.state().borrow().sources.clone();
            match sources {
                SourcesState::Open { video, audio, .. } => {
                    ui.label(format!("Preview: {video}, {audio}. Go live from the command line for now: `tally stream URL`."));
                }
                SourcesState::Failed { message } => {
                    ui.colored_label(egui::Color32::LIGHT_RED, format!("The sources could not be opened: {message}"));
                }
                SourcesState::Opening | SourcesState::Closed => {
                    ui.label("Opening the camera and microphone…");
                }
            }
            ui.separator();
            self.preview_ui(ui);
        });
    }
}

/// Opens the main window and runs until it is closed.
pub fn run() -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("Tally").with_inner_size([1000.0, 680.0]),
        ..Default::default()
    };
    eframe::run_native("Tally", options, Box::new(|cc| Ok(Box::new(TallyApp::new(cc).map_err(|e| e.to_string())?))))
        .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
