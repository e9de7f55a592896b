//! A worker thread rendering the test pattern into RGBA images for the preview.

use crate::capture::{TestPattern, VideoSource};
use crate::media::MediaClock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use yuvutils_rs::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

/// Images waiting for the UI; the UI takes the newest, so 2 is plenty.
const PREVIEW_QUEUE: usize = 2;

pub(crate) struct PreviewFeed {
    rx: Receiver<egui::ColorImage>,
    stop: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
}

impl PreviewFeed {
    pub fn start(width: u32, height: u32, fps: u32, wake: impl Fn() + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(PREVIEW_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (stop2, error2) = (stop.clone(), error.clone());
        let spawned = std::thread::Builder::new().name("tally-preview".into()).spawn(move || {
            if let Err(e) = render_loop(width, height, fps, &tx, &stop2, &wake) {
                if let Ok(mut slot) = error2.lock() {
                    *slot = Some(e);
                }
                wake();
            }
        });
        if let Err(e) = spawned
            && let Ok(mut slot) = error.lock() {
                *slot = Some(format!("preview thread: {e}"));
            }
        PreviewFeed { rx, stop, error }
    }

    /// The newest image, if one arrived since the last call.
    pub fn latest(&self) -> Option<egui::ColorImage> {
        let mut newest = None;
        loop {
            match self.rx.try_recv() {
                Ok(img) => newest = Some(img),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return newest,
            }
        }
    }

    /// Why the preview stopped, if it did.
    pub fn error(&self) -> Option<String> {
        self.error.try_lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for PreviewFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn render_loop(
    width: u32,
    height: u32,
    fps: u32,
    tx: &SyncSender<egui::ColorImage>,
    stop: &AtomicBool,
    wake: &dyn Fn(),
) -> Result<(), String> {
    let mut pattern = TestPattern::new(width, height, fps).map_err(|e| e.to_string())?;
    let clock = MediaClock::start();
    let mut rgba = vec![0u8; width as usize * height as usize * 4];
    while !stop.load(Ordering::Relaxed) {
        let Some(frame) = pattern.next_frame().map_err(|e| e.to_string())? else { return Ok(()) };
        let due = clock.instant_of(frame.pts_us);
        let now = Instant::now();
        if due > now {
            // Pacing a live source to its frame rate.
            std::thread::sleep(due - now);
        }
        let image = YuvPlanarImage {
            y_plane: &frame.y,
            y_stride: frame.width,
            u_plane: &frame.u,
            u_stride: frame.width / 2,
            v_plane: &frame.v,
            v_stride: frame.width / 2,
            width: frame.width,
            height: frame.height,
        };
        yuvutils_rs::yuv420_to_rgba(&image, &mut rgba, frame.width * 4, YuvRange::Limited, YuvStandardMatrix::Bt709)
            .map_err(|e| format!("preview conversion: {e:?}"))?;
        let img = egui::ColorImage::from_rgba_unmultiplied([frame.width as usize, frame.height as usize], &rgba);
        match tx.try_send(img) {
            Ok(()) => wake(),
            // The UI is behind (window hidden): skip this frame.
            Err(std::sync::mpsc::TrySendError::Full(_)) => {}
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Ok(()),
        }
    }
    Ok(())
}
