//! The local server panel: start/stop the built-in server, its URLs with
//! copy buttons, who publishes and plays, and the viewer preview — what
//! the server really relays, decoded — with its glass-to-glass latency.

use super::picture::Picture;
use crate::engine::{Command, EngineState, ServerCommand, ServerState, ViewerCommand, ViewerFrame, ViewerState, WatchRequest};
use crate::net::server::ServerConfig;
use crate::session::PreviewRequest;
use std::net::SocketAddr;

/// The viewer picture's largest size: it sits in a side panel.
const VIEWER_MAX: (u32, u32) = (640, 360);

/// The panel's own state: the addresses being edited, the viewer picture.
pub struct ServerPanel {
    rtmp: String,
    http: String,
    /// Watch the rehearsal once the server runs (Rehearse asks for it).
    pub want_viewer: bool,
    viewer: Picture,
    error: Option<String>,
}

impl ServerPanel {
    /// With the addresses a rehearsal's server would use.
    pub fn new(defaults: &ServerConfig) -> Self {
        ServerPanel {
            rtmp: defaults.rtmp_listen.to_string(),
            http: defaults.http_listen.map(|a| a.to_string()).unwrap_or_default(),
            want_viewer: false,
            viewer: Picture::default(),
            error: None,
        }
    }

    /// The viewer request for the rehearsal stream.
    pub fn watch_request() -> WatchRequest {
        WatchRequest {
            stream: super::REHEARSAL_STREAM.into(),
            preview: PreviewRequest { width: VIEWER_MAX.0, height: VIEWER_MAX.1, max_fps: 30 },
        }
    }

    fn config(&self, defaults: &ServerConfig) -> Result<ServerConfig, String> {
        let rtmp: SocketAddr = self.rtmp.trim().parse().map_err(|_| format!("'{}' is not an address:port", self.rtmp.trim()))?;
        let http = match self.http.trim() {
            "" => None,
            h => Some(h.parse::<SocketAddr>().map_err(|_| format!("'{h}' is not an address:port"))?),
        };
        Ok(ServerConfig { rtmp_listen: rtmp, http_listen: http, ..defaults.clone() })
    }

    /// Draws the panel; what a click asks goes into `commands`.
    pub fn server_ui(
        &mut self,
        ui: &mut egui::Ui,
        state: &EngineState,
        viewer: Option<&ViewerFrame>,
        defaults: &ServerConfig,
        commands: &mut Vec<Command>,
    ) {
        ui.heading("Local server");
        match &state.server {
            ServerState::Off | ServerState::Failed { .. } => {
                egui::Grid::new("server-addresses").num_columns(2).show(ui, |ui| {
                    let label = ui.label("RTMP address");
                    ui.add(egui::TextEdit::singleline(&mut self.rtmp).desired_width(160.0)).labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("HTTP address");
                    ui.add(egui::TextEdit::singleline(&mut self.http).desired_width(160.0).hint_text("off")).labelled_by(label.id);
                    ui.end_row();
                });
                if ui.button("Start server").on_hover_text("Start the built-in RTMP and HTTP-FLV server").clicked() {
                    match self.config(defaults) {
                        Ok(config) => {
                            self.error = None;
                            commands.push(Command::Server(ServerCommand::Start(config)));
                        }
                        Err(e) => self.error = Some(e),
                    }
                }
                if let ServerState::Failed { message } = &state.server {
                    ui.colored_label(egui::Color32::LIGHT_RED, message);
                }
                if let Some(e) = &self.error {
                    ui.colored_label(egui::Color32::LIGHT_RED, e);
                }
            }
            ServerState::Starting => {
                ui.label("Starting…");
            }
            ServerState::Stopping => {
                ui.label("Stopping…");
            }
            ServerState::Running { rtmp, http } => {
                let stream = super::REHEARSAL_STREAM;
                url_row(ui, "RTMP", &format!("rtmp://{rtmp}/live/{stream}"));
                if let Some(h) = http {
                    url_row(ui, "HTTP-FLV", &format!("http://{h}/live/{stream}.flv"));
                }
                if state.server_streams.is_empty() {
                    ui.label("No stream yet: Rehearse publishes one.");
                }
                for s in &state.server_streams {
                    let publisher = s.publisher.as_deref().unwrap_or("no publisher");
                    ui.label(format!("{}/{}: {publisher}, {:.0} kbit/s in, {} player(s)", s.app, s.name, s.kbps_in, s.players));
                    for p in &s.player_list {
                        ui.small(format!("  {} ({:?}), queue {} ms, skipped {}", p.peer, p.protocol, p.queue_ms, p.skips));
                    }
                }
                ui.horizontal(|ui| {
                    let watching = !matches!(state.viewer, ViewerState::Off);
                    let mut watch = watching;
                    if ui.toggle_value(&mut watch, "Viewer preview").on_hover_text("Show what the server relays to a player").changed() {
                        self.want_viewer = watch;
                        commands.push(Command::Viewer(match watch { true => ViewerCommand::Watch(Self::watch_request()), false => ViewerCommand::Stop }));
                    }
                    if ui.button("Stop server").clicked() {
                        self.want_viewer = false;
                        commands.push(Command::Server(ServerCommand::Stop));
                    }
                });
                self.viewer_ui(ui, state, viewer);
            }
        }
    }

    fn viewer_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, frame: Option<&ViewerFrame>) {
        match &state.viewer {
            ViewerState::Off => {
                self.viewer.clear();
                return;
            }
            ViewerState::Waiting { .. } => {
                ui.label("Viewer: waiting for the stream…");
            }
            ViewerState::Playing { .. } => {
                let latency = frame.and_then(|f| f.latency);
                let text = match latency {
                    Some(l) => format!("Viewer: glass-to-glass {} ms", l.as_millis()),
                    None => "Viewer: playing".to_string(),
                };
                ui.label(text);
            }
            ViewerState::Failed { message } => {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("Viewer: {message}"));
            }
        }
        self.viewer.update(ui.ctx(), "viewer", frame.map(|f| &f.picture));
        let w = ui.available_width().min(VIEWER_MAX.0 as f32 / 2.0 + 40.0);
        self.viewer.picture_ui(ui, w, w * 9.0 / 16.0, "What a viewer of the local server sees", "", egui::Sense::hover());
    }
}

fn url_row(ui: &mut egui::Ui, what: &str, url: &str) {
    ui.horizontal(|ui| {
        if ui.button(format!("Copy {what} URL")).on_hover_text("Copy to the clipboard (for ffplay or VLC)").clicked() {
            ui.ctx().copy_text(url.to_string());
        }
        ui.add(egui::Label::new(egui::RichText::new(url).monospace()).truncate());
    });
}
