//! The viewer preview's part: what the local server relays for a stream,
//! decoded (see `engine::viewer`).

use super::Outbox;
use super::server::RunningServer;
use crate::engine::command::{ViewerCommand, WatchRequest};
use crate::engine::viewer::{Viewer, ViewerState};
use crate::rtmp::RtmpUrl;

/// The viewer preview's slice of state.
#[derive(Default)]
pub(super) struct ViewerPreview {
    watching: Option<Viewer>,
}

impl ViewerPreview {
    pub fn command(&mut self, cmd: ViewerCommand, out: &Outbox, server: Option<&RunningServer>) {
        self.end_watching();
        match (cmd, server) {
            (ViewerCommand::Stop, _) => self.off(out),
            (ViewerCommand::Watch(r), Some(running)) => self.watch(r, running, out),
            (ViewerCommand::Watch(_), None) => out.refuse_text("watch: the local server is not running".into()),
        }
    }

    /// Stops watching (its thread is joined by a task of its own).
    pub fn stop(&mut self, out: &Outbox) {
        self.end_watching();
        self.off(out);
    }

    fn off(&self, out: &Outbox) {
        out.viewer_frames.send_replace(None);
        out.set(|s| s.viewer = ViewerState::Off);
    }

    fn end_watching(&mut self) {
        if let Some(v) = self.watching.take() {
            tokio::spawn(v.stop());
        }
    }

    /// Starts the viewer preview of `request.stream` on the running server.
    fn watch(&mut self, request: WatchRequest, server: &RunningServer, out: &Outbox) {
        let url = match RtmpUrl::parse(&format!("rtmp://{}/live/{}", server.handle.rtmp_addr(), request.stream)) {
            Ok(u) => u,
            Err(e) => return out.refuse_text(format!("watch: {}", crate::error_chain(&e))),
        };
        out.viewer_frames.send_replace(None);
        self.watching = Some(crate::engine::viewer::start(url, request.stream, request.preview, out.origin.subscribe(), out.viewer_frames.clone(), out.state.clone()));
    }

    /// At shutdown: stops it and joins its thread.
    pub async fn stop_and_wait(&mut self, out: &Outbox) {
        if let Some(v) = self.watching.take() {
            v.stop().await;
            out.set(|s| s.viewer = ViewerState::Off);
        }
    }
}
