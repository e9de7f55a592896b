//! The desktop app (eframe/egui).
//!
//! For now: a window with the live test-pattern preview and a status line.
//! The UI only draws and reads snapshots; frames are produced and converted
//! to RGBA on a worker thread and handed over through a bounded channel.

mod preview;

use preview::PreviewFeed;

/// The eframe application.
pub struct TallyApp {
    preview: PreviewFeed,
    texture: Option<egui::TextureHandle>,
    frames_shown: u64,
}

impl TallyApp {
    fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let ctx = cc.egui_ctx.clone();
        TallyApp { preview: PreviewFeed::start(1280, 720, 30, move || ctx.request_repaint()), texture: None, frames_shown: 0 }
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui) {
        if let Some(image) = self.preview.latest() {
            self.frames_shown += 1;
            match &mut self.texture {
                Some(t) => t.set(image, egui::TextureOptions::LINEAR),
                None => self.texture = Some(ui.ctx().load_texture("preview", image, egui::TextureOptions::LINEAR)),
            }
        }
        match &self.texture {
            Some(t) => {
                let avail = ui.available_size();
                let aspect = 16.0 / 9.0;
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
            ui.label("Preview: the test pattern (camera capture is coming). Go live from the command line for now: `tally stream URL`.");
            ui.separator();
            self.preview_ui(ui);
            if let Some(err) = self.preview.error() {
                ui.colored_label(egui::Color32::LIGHT_RED, err);
            }
        });
    }
}

/// Opens the main window and runs until it is closed.
pub fn run() -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("Tally").with_inner_size([1000.0, 680.0]),
        ..Default::default()
    };
    eframe::run_native("Tally", options, Box::new(|cc| Ok(Box::new(TallyApp::new(cc)))))
        .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
