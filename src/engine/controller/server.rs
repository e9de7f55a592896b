//! The built-in server's part: starting it (a task: binding sockets),
//! stopping it (a task: closing its connections), its streams for a face.

use super::{Event as ControllerEvent, Outbox};
use crate::engine::command::ServerCommand;
use crate::engine::state::ServerState;
use crate::net::server::{Server, ServerConfig, ServerError, ServerHandle};
use crate::rtmp::StreamKey;
use std::sync::Arc;

/// What the server's tasks report.
pub(in crate::engine) enum Event {
    /// `Server::start` finished.
    Started { result: Result<ServerHandle, ServerError>, publish_key: Option<StreamKey> },
    /// Its connections are closed.
    Stopped,
}

/// The server the engine runs, and the key a rehearsal publishes with.
pub(super) struct RunningServer {
    pub handle: ServerHandle,
    pub publish_key: Option<StreamKey>,
}

/// The local server's slice of state.
pub(super) struct LocalServer {
    /// What a rehearsal starts when none runs.
    defaults: ServerConfig,
    running: Option<RunningServer>,
    /// A start is under way.
    starting: bool,
    /// A Stop came while it was starting: stopped as soon as it has started.
    stop_when_started: bool,
    /// A stop is under way.
    stopping: bool,
}

impl LocalServer {
    pub fn new(defaults: ServerConfig) -> Self {
        LocalServer { defaults, running: None, starting: false, stop_when_started: false, stopping: false }
    }

    pub fn running(&self) -> Option<&RunningServer> {
        self.running.as_ref()
    }

    pub fn command(&mut self, cmd: ServerCommand, out: &Outbox) {
        match cmd {
            ServerCommand::Start(config) => self.start(config, out),
            ServerCommand::Stop => {
                if self.starting {
                    self.stop_when_started = true;
                }
                if let Some(running) = self.running.take() {
                    self.stop_running(running, out);
                }
            }
        }
    }

    /// Starts the server with its defaults unless it runs or is starting;
    /// true when a start is (now) under way.
    pub fn ensure_started(&mut self, out: &Outbox) -> bool {
        if self.running.is_none() {
            self.start(self.defaults.clone(), out);
        }
        self.starting
    }

    fn start(&mut self, config: ServerConfig, out: &Outbox) {
        if self.running.is_some() || self.starting {
            return;
        }
        if self.stopping {
            return out.refuse_text("the local server is still stopping: start it again in a moment".into());
        }
        self.starting = true;
        self.stop_when_started = false;
        out.set(|s| s.server = ServerState::Starting);
        let publish_key = config.publish_key.clone();
        if let Some(k) = &publish_key {
            crate::engine::log::LogRing::global().remember_secret(k);
        }
        out.task(async move { ControllerEvent::Server(Event::Started { result: Server::start(config).await, publish_key }) });
    }

    fn stop_running(&mut self, running: RunningServer, out: &Outbox) {
        self.stopping = true;
        out.set(|s| s.server = ServerState::Stopping);
        out.task(async move {
            running.handle.stop().await;
            ControllerEvent::Server(Event::Stopped)
        });
    }

    /// A start is under way.
    pub fn is_starting(&self) -> bool {
        self.starting
    }

    /// Takes a task's result; for a start that failed, why.
    pub fn event(&mut self, event: Event, out: &Outbox) -> Option<Arc<ServerError>> {
        match event {
            Event::Started { result, publish_key } => {
                self.starting = false;
                match result {
                    Ok(handle) if self.stop_when_started => {
                        self.stop_when_started = false;
                        self.stop_running(RunningServer { handle, publish_key }, out);
                        None
                    }
                    Ok(handle) => {
                        let (rtmp, http) = (handle.rtmp_addr(), handle.http_addr());
                        out.set(|s| s.server = ServerState::Running { rtmp, http });
                        self.running = Some(RunningServer { handle, publish_key });
                        None
                    }
                    Err(e) => {
                        let message = crate::error_chain(&e);
                        tracing::error!("{message}");
                        out.set(|s| s.server = ServerState::Failed { message });
                        Some(Arc::new(e))
                    }
                }
            }
            Event::Stopped => {
                self.stopping = false;
                out.set(|s| s.server = ServerState::Off);
                None
            }
        }
    }

    /// The server's streams (publisher, players) into the state, if they changed.
    pub fn publish_streams(&self, out: &Outbox) {
        let streams = self.running.as_ref().map(|s| s.handle.streams()).unwrap_or_default();
        if out.state.borrow().server_streams != streams {
            out.set(|s| s.server_streams = streams);
        }
    }

    /// At shutdown: stops it and waits for its connections to close.
    pub async fn stop_and_wait(&mut self, out: &Outbox) {
        if let Some(running) = self.running.take() {
            running.handle.stop().await;
            out.set(|s| s.server = ServerState::Off);
        }
    }
}
