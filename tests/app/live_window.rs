//! The window on a real engine, for the tests with real peers (`flows`,
//! `snapshots`): the test keeps the engine to wait on its channels, and the
//! window holds a link to the same engine, as `ui::run` gives it one.

use std::sync::Arc;
use tally::engine::Engine;
use tally::ui::TallyApp;

/// The app and the engine it drives.
pub struct LiveWindow {
    /// The window.
    pub app: TallyApp,
    engine: Arc<Engine>,
}

impl LiveWindow {
    /// The window on `engine`.
    pub fn new(engine: Engine) -> LiveWindow {
        let engine = Arc::new(engine);
        LiveWindow { app: TallyApp::new(engine.clone()), engine }
    }

    /// The engine, for a test to read its state and wait for its changes.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Draws one frame of the window.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.app.main_ui(ui);
    }
}
