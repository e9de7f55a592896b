//! Screen capture from an X server: a monitor, or one window even when
//! other windows cover it, as a live [`VideoSource`].
//!
//! - **Monitor**: a rectangle of the root window, from RandR's monitor list
//!   (RandR 1.5), or the whole root window without it. RandR's change
//!   notifications (and the root window's ConfigureNotify) make the next
//!   frame re-read the list, so a monitor that changes size is followed: the
//!   next frame and [`VideoSource::format`] have the new size. The monitor
//!   is followed by its name: one added to or removed from the list does not
//!   move the capture to another; the monitor itself gone ends it with
//!   [`CaptureError::Disconnected`].
//! - **Window**: found by title over the window tree
//!   (`x11/targets.rs`), redirected off-screen with XComposite (`Automatic`: the
//!   server still draws it on screen as before) and read from the pixmap
//!   `NameWindowPixmap` names, which holds the window's own contents whatever
//!   covers it, and keeps the last picture while the window is unmapped
//!   (minimised). A resize (ConfigureNotify) names the new pixmap; the window
//!   destroyed, or unmapped for longer than [`UNMAPPED_FOR_GOOD`] without
//!   being minimised, ends the capture with [`CaptureError::Disconnected`].
//! - **Pixels**: MIT-SHM into a shared segment, or plain GetImage
//!   (`x11/shm.rs`); BGRX only, converted to I420 like an RGB camera
//!   (`x11/pixels.rs`); odd sizes are cropped to even.
//! - **Cursor**: XFixes' cursor image, premultiplied ARGB, drawn over the
//!   picture at its position each frame, clipped to the picture.
//! - **Pacing**: grabs at the rate asked, never faster (`x11/schedule.rs`), each
//!   frame stamped with the clock's time at the grab.

mod pixels;
mod schedule;
mod shm;
mod targets;

use self::pixels::{BYTES_PER_PIXEL, CursorImage};
use self::schedule::Schedule;
use self::shm::{GrabError, Grabber};
use self::targets::{Atoms, Rect};
use super::{ScreenOptions, ScreenTarget};
use crate::capture::convert::MAX_SOURCE_DIMENSION;
use crate::capture::{CaptureError, FrameRate, MAX_FPS, SourceState, SourceStatus, VideoFormat, VideoSource};
use crate::media::{MediaClock, VideoFrame};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ReplyError, ReplyOrIdError};
use x11rb::protocol::Event;
use x11rb::protocol::composite::{self, ConnectionExt as _, Redirect};
use x11rb::protocol::randr::{ConnectionExt as _, NotifyMask};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, EventMask, MapState, Pixmap, Screen, Window,
};
use x11rb::rust_connection::RustConnection;

/// How long a captured window may stay unmapped (and not minimised) before
/// it counts as closed: long enough for a client that unmaps and remaps to
/// change its decorations, short enough that a closed window turns into the
/// session's slate quickly.
pub const UNMAPPED_FOR_GOOD: Duration = Duration::from_secs(2);

/// ICCCM 4.1.3.1: `WM_STATE`'s first field for a minimised window.
const ICONIC_STATE: u32 = 3;

/// A monitor or a window of an X server, grabbed at the rate asked.
pub struct X11Screen {
    conn: RustConnection,
    root: Window,
    target: Target,
    grabber: Grabber,
    /// XFixes is there and the cursor is wanted.
    cursor: bool,
    rate: FrameRate,
    /// The size frames have now (even).
    size: (u32, u32),
    clock: MediaClock,
    schedule: Schedule,
    last_pts_us: Option<u64>,
    atoms: Atoms,
    /// "screen 0" / "window 'xterm'", for errors.
    device: String,
    status: Arc<SourceStatus>,
}

enum Target {
    Monitor(MonitorTarget),
    Window(WindowTarget),
}

struct MonitorTarget {
    index: u32,
    /// RandR's name of the monitor opened: followed by name, so a monitor
    /// added or removed elsewhere in the list does not switch the capture
    /// to another one.
    name: String,
    /// RandR 1.5's monitor list is there.
    randr: bool,
    rect: Rect,
    /// A change was notified: re-read the list before the next grab.
    dirty: bool,
}

struct WindowTarget {
    window: Window,
    /// The window's contents, named by Composite; `None` while unmapped
    /// before it was ever named.
    pixmap: Option<Pixmap>,
    width: u16,
    height: u16,
    border: u16,
    /// The window was resized or mapped again: name its new pixmap.
    rename: bool,
    unmapped_since: Option<Instant>,
    destroyed: bool,
}

/// The X server's name for a failure, as the capture reports it: a lost
/// connection is the source gone, anything else the device unusable.
fn x_error(device: &str, e: impl Into<ReplyOrIdError>) -> CaptureError {
    match e.into() {
        ReplyOrIdError::ConnectionError(_) => CaptureError::Disconnected { device: device.to_string() },
        other => CaptureError::Unavailable { device: device.to_string(), reason: other.to_string() },
    }
}

fn connect(display: Option<&str>) -> Result<(RustConnection, usize), CaptureError> {
    x11rb::connect(display).map_err(|e| {
        let name = display
            .map(str::to_owned)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_else(|| "(DISPLAY is not set)".into());
        CaptureError::DeviceNotFound { requested: format!("X display {name} ({e})"), available: Vec::new() }
    })
}

fn screen_of(conn: &RustConnection, index: usize) -> Result<&Screen, CaptureError> {
    conn.setup()
        .roots
        .get(index)
        .ok_or_else(|| CaptureError::Format(format!("the X server has no screen {index}")))
}

/// Even width and height of a `width`x`height` picture, refused when too
/// small or beyond [`MAX_SOURCE_DIMENSION`].
fn even_size(width: u16, height: u16, device: &str) -> Result<(u32, u32), CaptureError> {
    let (w, h) = (u32::from(width) & !1, u32::from(height) & !1);
    if w == 0 || h == 0 || w > MAX_SOURCE_DIMENSION || h > MAX_SOURCE_DIMENSION {
        return Err(CaptureError::Format(format!(
            "{device} is {width}x{height}; capture needs 2x2 to {MAX_SOURCE_DIMENSION}x{MAX_SOURCE_DIMENSION}"
        )));
    }
    Ok((w, h))
}

/// Every monitor (`0: 1280x720+0+0 screen`) and every window on screen with
/// a title (`window 'xterm'`) of the X server at `display` (`None`:
/// `$DISPLAY`), for `tally devices`.
pub fn list_targets(display: Option<&str>) -> Result<Vec<String>, CaptureError> {
    let device = "X display";
    let (conn, screen) = connect(display)?;
    let root = screen_of(&conn, screen)?.root;
    let randr = targets::has_monitor_list(&conn).map_err(|e| x_error(device, e))?;
    let monitors = targets::monitors(&conn, root, randr).map_err(|e| x_error(device, e))?;
    let atoms = Atoms::new(&conn).map_err(|e| x_error(device, e))?.reply().map_err(|e| x_error(device, e))?;
    let windows = targets::named_windows(&conn, root, &atoms).map_err(|e| x_error(device, e))?;
    let mut all: Vec<String> = monitors.iter().enumerate().map(|(i, m)| m.label(i)).collect();
    all.extend(windows.iter().filter(|w| w.viewable).map(|w| format!("window '{}'", w.title)));
    Ok(all)
}

impl X11Screen {
    /// Connects to the X server at `display` (`None`: `$DISPLAY`) and gets
    /// ready to capture `opts.target`.
    ///
    /// Errors: no X server, no such monitor or no window with that title:
    /// [`CaptureError::DeviceNotFound`] listing the monitors or the titles;
    /// a picture layout other than 24-bit BGRX, or a rate outside
    /// 1..=[`MAX_FPS`]: [`CaptureError::Format`]; no Composite extension for
    /// a window: [`CaptureError::Unavailable`]. Without MIT-SHM it still
    /// works, through GetImage, and warns once.
    pub fn open(display: Option<&str>, opts: &ScreenOptions) -> Result<X11Screen, CaptureError> {
        if opts.fps == 0 || opts.fps > MAX_FPS {
            return Err(CaptureError::Format(format!("screen capture at {} fps: 1 to {MAX_FPS} fps", opts.fps)));
        }
        let device = match &opts.target {
            ScreenTarget::Monitor(i) => format!("screen {i}"),
            ScreenTarget::Window(title) => format!("window '{title}'"),
        };
        let (conn, screen) = connect(display)?;
        let (root, root_depth, root_visual) = {
            let s = screen_of(&conn, screen)?;
            (s.root, s.root_depth, s.root_visual)
        };
        let atoms = Atoms::new(&conn).map_err(|e| x_error(&device, e))?.reply().map_err(|e| x_error(&device, e))?;
        let target = match &opts.target {
            ScreenTarget::Monitor(index) => {
                pixels::check_layout(conn.setup(), root_depth, root_visual, "the root window")?;
                Target::Monitor(open_monitor(&conn, root, *index, &device)?)
            }
            ScreenTarget::Window(title) => Target::Window(open_window(&conn, root, &atoms, title, &device)?),
        };
        let cursor = opts.cursor && cursor_ready(&conn);
        let size = match &target {
            Target::Monitor(m) => even_size(m.rect.width, m.rect.height, &device)?,
            Target::Window(w) => even_size(w.width, w.height, &device)?,
        };
        let grabber = Grabber::new(&conn, size.0 as usize * size.1 as usize * BYTES_PER_PIXEL);
        let name = match &target {
            Target::Monitor(m) => format!("screen {} ({}x{})", m.index, m.rect.width, m.rect.height),
            Target::Window(_) => device.clone(),
        };
        tracing::info!(source = %name, shm = grabber.uses_shm(), cursor, fps = opts.fps, "screen capture ready");
        let rate = FrameRate::per_second(opts.fps);
        let clock = MediaClock::start();
        Ok(X11Screen {
            conn,
            root,
            target,
            grabber,
            cursor,
            rate,
            size,
            clock,
            schedule: Schedule::new(clock.origin(), rate),
            last_pts_us: None,
            atoms,
            device,
            status: Arc::new(SourceStatus::new(&name)),
        })
    }

    /// True when pictures come through MIT-SHM (false: GetImage).
    pub fn uses_shared_memory(&self) -> bool {
        self.grabber.uses_shm()
    }

    /// Reads the events that change what is captured (RandR changes, the
    /// window's ConfigureNotify, UnmapNotify, MapNotify, DestroyNotify).
    fn drain_events(&mut self) -> Result<(), CaptureError> {
        loop {
            let event = match self.conn.poll_for_event() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(e) => return Err(x_error(&self.device, e)),
            };
            match (&mut self.target, event) {
                (Target::Monitor(m), Event::RandrScreenChangeNotify(_) | Event::RandrNotify(_)) => m.dirty = true,
                (Target::Monitor(m), Event::ConfigureNotify(e)) if e.window == self.root => m.dirty = true,
                (Target::Window(t), Event::ConfigureNotify(e))
                    if e.window == t.window && (e.width, e.height, e.border_width) != (t.width, t.height, t.border) =>
                {
                    (t.width, t.height, t.border) = (e.width, e.height, e.border_width);
                    t.rename = true;
                }
                (Target::Window(t), Event::DestroyNotify(e)) if e.window == t.window => t.destroyed = true,
                (Target::Window(t), Event::UnmapNotify(e)) if e.window == t.window => {
                    t.unmapped_since.get_or_insert_with(Instant::now);
                }
                (Target::Window(t), Event::MapNotify(e)) if e.window == t.window => {
                    t.unmapped_since = None;
                    t.rename = true;
                }
                (_, Event::Error(e)) => tracing::debug!(source = %self.device, error = ?e, "X error on a request not waited for"),
                _ => {}
            }
        }
    }

    /// Brings the target up to date with what the events said.
    fn follow(&mut self) -> Result<(), CaptureError> {
        let device = self.device.clone();
        match &mut self.target {
            Target::Monitor(m) if m.dirty => {
                m.dirty = false;
                let list = targets::monitors(&self.conn, self.root, m.randr).map_err(|e| x_error(&device, e))?;
                let Some(now) = list.iter().find(|n| n.name == m.name) else {
                    return Err(CaptureError::Disconnected { device });
                };
                if now.rect != m.rect {
                    tracing::info!(source = %device, from = ?m.rect, to = ?now.rect, "monitor changed");
                    m.rect = now.rect;
                }
                self.size = even_size(m.rect.width, m.rect.height, &device)?;
            }
            Target::Monitor(_) => {}
            Target::Window(t) => {
                if t.destroyed {
                    return Err(CaptureError::Disconnected { device });
                }
                if let Some(since) = t.unmapped_since
                    && since.elapsed() >= UNMAPPED_FOR_GOOD
                    && !is_iconic(&self.conn, &self.atoms, t.window).map_err(|e| x_error(&device, e))?
                {
                    return Err(CaptureError::Disconnected { device });
                }
                if t.rename {
                    t.rename = false;
                    name_pixmap(&self.conn, t, &device)?;
                    if t.destroyed {
                        return Err(CaptureError::Disconnected { device });
                    }
                }
                self.size = even_size(t.width, t.height, &device)?;
            }
        }
        Ok(())
    }

    fn stamp(&mut self) -> u64 {
        let now = u64::try_from(self.clock.now().as_micros()).unwrap_or(u64::MAX);
        let pts = match self.last_pts_us {
            Some(last) if now <= last => last + 1,
            _ => now,
        };
        self.last_pts_us = Some(pts);
        pts
    }

    /// One grab into `frame`. `Ok(false)`: the picture went stale under the
    /// request (a resize not yet notified); the caller refreshes and retries.
    fn grab(&mut self, frame: &mut VideoFrame) -> Result<bool, CaptureError> {
        let (w, h) = self.size;
        let (drawable, at, window) = match &self.target {
            Target::Monitor(m) => (self.root, (m.rect.x, m.rect.y), None),
            Target::Window(t) => match t.pixmap {
                Some(p) => {
                    let border = i16::try_from(t.border).unwrap_or(i16::MAX);
                    (p, (border, border), Some(t.window))
                }
                None => {
                    // Mapped never yet: black until it is.
                    pixels::resize_frame(frame, w, h);
                    frame.y.fill(16);
                    frame.u.fill(128);
                    frame.v.fill(128);
                    frame.pts_us = self.stamp();
                    return Ok(true);
                }
            },
        };
        let pts = self.stamp();
        let device = &self.device;
        // Everything asked at once, the replies read after: one round trip.
        let cursor = if self.cursor { Some(self.conn.xfixes_get_cursor_image().map_err(|e| x_error(device, e))?) } else { None };
        let origin = match (window, cursor.is_some()) {
            (Some(win), true) => Some(self.conn.translate_coordinates(win, self.root, 0, 0).map_err(|e| x_error(device, e))?),
            _ => None,
        };
        let picture = match self.grabber.grab(&self.conn, drawable, at, (w as u16, h as u16)) {
            Ok(picture) => picture,
            Err(GrabError::Reply(ReplyError::X11Error(e))) => {
                tracing::debug!(source = %device, error = ?e, "grab refused; looking again");
                return Ok(false);
            }
            Err(GrabError::Reply(e)) => return Err(x_error(device, e)),
            Err(e) => return Err(CaptureError::Format(format!("{device}: {e}"))),
        };
        if let Some(cursor) = cursor {
            let image = cursor.reply().map_err(|e| x_error(device, e))?;
            let (left, top) = match origin {
                Some(o) => {
                    let o = o.reply().map_err(|e| x_error(device, e))?;
                    (i64::from(o.dst_x), i64::from(o.dst_y))
                }
                None => (i64::from(at.0), i64::from(at.1)),
            };
            let (cw, ch) = (usize::from(image.width), usize::from(image.height));
            let cursor = CursorImage { width: cw, height: ch, argb: &image.cursor_image };
            let x = i64::from(image.x) - i64::from(image.xhot) - left;
            let y = i64::from(image.y) - i64::from(image.yhot) - top;
            let stride = w as usize * BYTES_PER_PIXEL;
            pixels::blend_cursor(picture, stride, w as usize, h as usize, &cursor, x, y);
        }
        pixels::bgrx_to_i420(picture, w as usize * BYTES_PER_PIXEL, w, h, frame)?;
        frame.pts_us = pts;
        Ok(true)
    }

    fn capture(&mut self, frame: &mut VideoFrame) -> Result<(), CaptureError> {
        self.drain_events()?;
        self.follow()?;
        if self.grab(frame)? {
            return Ok(());
        }
        // Refused: the drawable changed under the request. Look at the
        // server's state now and try once more.
        match &mut self.target {
            Target::Monitor(m) => m.dirty = true,
            Target::Window(t) => t.rename = true,
        }
        self.drain_events()?;
        self.follow()?;
        if self.grab(frame)? {
            return Ok(());
        }
        Err(CaptureError::Unavailable { device: self.device.clone(), reason: "the X server refused to hand over the picture twice".into() })
    }
}

fn open_monitor(conn: &RustConnection, root: Window, index: u32, device: &str) -> Result<MonitorTarget, CaptureError> {
    let randr = targets::has_monitor_list(conn).map_err(|e| x_error(device, e))?;
    if randr {
        let changes = NotifyMask::SCREEN_CHANGE | NotifyMask::CRTC_CHANGE | NotifyMask::OUTPUT_CHANGE;
        conn.randr_select_input(root, changes).map_err(|e| x_error(device, e))?;
    }
    let watch = ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
    conn.change_window_attributes(root, &watch).map_err(|e| x_error(device, e))?;
    let list = targets::monitors(conn, root, randr).map_err(|e| x_error(device, e))?;
    match list.get(index as usize) {
        Some(m) => Ok(MonitorTarget { index, name: m.name.clone(), randr, rect: m.rect, dirty: false }),
        None => Err(CaptureError::DeviceNotFound {
            requested: device.to_string(),
            available: list.iter().enumerate().map(|(i, m)| m.label(i)).collect(),
        }),
    }
}

fn open_window(conn: &RustConnection, root: Window, atoms: &Atoms, title: &str, device: &str) -> Result<WindowTarget, CaptureError> {
    if conn.extension_information(composite::X11_EXTENSION_NAME).map_err(|e| x_error(device, e))?.is_none() {
        return Err(CaptureError::Unavailable {
            device: device.to_string(),
            reason: "the X server has no Composite extension, which capturing a window needs".into(),
        });
    }
    conn.composite_query_version(0, 4).map_err(|e| x_error(device, e))?.reply().map_err(|e| x_error(device, e))?;
    let windows = targets::named_windows(conn, root, atoms).map_err(|e| x_error(device, e))?;
    let Some(found) = targets::find_window(&windows, title) else {
        return Err(CaptureError::DeviceNotFound {
            requested: device.to_string(),
            available: windows.iter().filter(|w| w.viewable).map(|w| format!("'{}'", w.title)).collect(),
        });
    };
    let window = found.window;
    let attributes = conn.get_window_attributes(window).map_err(|e| x_error(device, e))?;
    let geometry = conn.get_geometry(window).map_err(|e| x_error(device, e))?;
    let (attributes, geometry) = (
        attributes.reply().map_err(|e| x_error(device, e))?,
        geometry.reply().map_err(|e| x_error(device, e))?,
    );
    pixels::check_layout(conn.setup(), geometry.depth, attributes.visual, device)?;
    let watch = ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
    conn.change_window_attributes(window, &watch).map_err(|e| x_error(device, e))?;
    conn.composite_redirect_window(window, Redirect::AUTOMATIC)
        .map_err(|e| x_error(device, e))?
        .check()
        .map_err(|e| x_error(device, e))?;
    let viewable = attributes.map_state == MapState::VIEWABLE;
    let mut target = WindowTarget {
        window,
        pixmap: None,
        width: geometry.width,
        height: geometry.height,
        border: geometry.border_width,
        rename: false,
        unmapped_since: (!viewable).then(Instant::now),
        destroyed: false,
    };
    if viewable {
        name_pixmap(conn, &mut target, device)?;
    }
    tracing::debug!(source = %device, title = %found.title, window, "window found");
    Ok(target)
}

/// Names the window's current pixmap (freeing the previous one) and reads
/// its size again; an unmapped window leaves `pixmap` at `None`, a
/// destroyed one sets `destroyed`.
fn name_pixmap(conn: &RustConnection, t: &mut WindowTarget, device: &str) -> Result<(), CaptureError> {
    if let Some(old) = t.pixmap.take() {
        conn.free_pixmap(old).map_err(|e| x_error(device, e))?;
    }
    let geometry = match conn.get_geometry(t.window).map_err(|e| x_error(device, e))?.reply() {
        Ok(g) => g,
        Err(ReplyError::X11Error(_)) => {
            t.destroyed = true;
            return Ok(());
        }
        Err(e) => return Err(x_error(device, e)),
    };
    (t.width, t.height, t.border) = (geometry.width, geometry.height, geometry.border_width);
    let pixmap = conn.generate_id().map_err(|e| x_error(device, e))?;
    match conn.composite_name_window_pixmap(t.window, pixmap).map_err(|e| x_error(device, e))?.check() {
        Ok(()) => t.pixmap = Some(pixmap),
        // Not viewable (unmapped again already): nothing to name until MapNotify.
        Err(ReplyError::X11Error(e)) => tracing::debug!(source = %device, error = ?e, "window has no pixmap now"),
        Err(e) => return Err(x_error(device, e)),
    }
    Ok(())
}

/// True when the window manager says the window is minimised (`WM_STATE`,
/// of any type: window managers type it `WM_STATE`, some tools `CARDINAL`).
fn is_iconic(conn: &RustConnection, atoms: &Atoms, window: Window) -> Result<bool, ReplyError> {
    let reply = conn.get_property(false, window, atoms.WM_STATE, AtomEnum::ANY, 0, 2)?.reply();
    Ok(match reply {
        Ok(p) => p.value32().and_then(|mut v| v.next()) == Some(ICONIC_STATE),
        Err(ReplyError::X11Error(_)) => false,
        Err(e) => return Err(e),
    })
}

/// XFixes ready for GetCursorImage; false (with a warning) when the server
/// lacks it.
fn cursor_ready(conn: &RustConnection) -> bool {
    let ready = matches!(conn.extension_information(xfixes::X11_EXTENSION_NAME), Ok(Some(_)))
        && conn.xfixes_query_version(5, 0).map(|c| c.reply().is_ok()).unwrap_or(false);
    if !ready {
        tracing::warn!("the X server has no XFixes extension: the cursor is left out of the screen capture");
    }
    ready
}

impl VideoSource for X11Screen {
    fn format(&self) -> VideoFormat {
        VideoFormat { width: self.size.0, height: self.size.1, frame_rate: self.rate }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn start(&mut self, clock: MediaClock) {
        self.clock = clock;
        self.last_pts_us = None;
        self.schedule.restart(clock.origin(), Instant::now());
    }

    fn status(&self) -> Option<Arc<SourceStatus>> {
        Some(self.status.clone())
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, CaptureError> {
        let mut frame = VideoFrame::black(self.size.0, self.size.1, 0);
        self.fill_next(&mut frame)?;
        Ok(Some(frame))
    }

    /// Waits for the next frame's slot (frame n at the clock's origin + n / fps; a slot missed is skipped, never caught up), then grabs it into
    /// `frame`, resizing its planes when the target changed size.
    fn fill_next(&mut self, frame: &mut VideoFrame) -> Result<bool, CaptureError> {
        let slot = self.schedule.take(Instant::now());
        if slot.skipped > 0 {
            self.status.overruns.fetch_add(slot.skipped, Ordering::Relaxed);
        }
        let wait = slot.at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if let Err(e) = self.capture(frame) {
            self.status.set(SourceState::Fallback(e.to_string()));
            return Err(e);
        }
        Ok(true)
    }
}

impl Drop for X11Screen {
    fn drop(&mut self) {
        // Best effort: the server may be gone; it lets go of everything of a
        // closed connection anyway.
        self.grabber.release(&self.conn);
        if let Target::Window(t) = &self.target {
            if let Some(p) = t.pixmap {
                let _ = self.conn.free_pixmap(p);
            }
            let _ = self.conn.composite_unredirect_window(t.window, Redirect::AUTOMATIC);
        }
        let _ = self.conn.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_cropped_to_even_and_bounded() {
        assert_eq!(even_size(1281, 721, "s").unwrap(), (1280, 720));
        assert_eq!(even_size(2, 2, "s").unwrap(), (2, 2));
        assert!(matches!(even_size(1, 720, "s"), Err(CaptureError::Format(_))));
        assert!(matches!(even_size(8194, 720, "s"), Err(CaptureError::Format(_))));
    }

    #[test]
    fn a_missing_server_is_device_not_found_and_a_bad_rate_a_format_error() {
        // A display number nothing listens on (the socket path is absent).
        let opts = ScreenOptions { target: ScreenTarget::Monitor(0), cursor: false, fps: 30 };
        match X11Screen::open(Some(":65000"), &opts) {
            Err(CaptureError::DeviceNotFound { requested, available }) => {
                assert!(requested.starts_with("X display :65000"), "{requested}");
                assert!(available.is_empty());
            }
            other => panic!("expected DeviceNotFound, got {:?}", other.err()),
        }
        assert!(matches!(list_targets(Some(":65000")), Err(CaptureError::DeviceNotFound { .. })));
        for fps in [0, MAX_FPS + 1] {
            let opts = ScreenOptions { fps, ..opts.clone() };
            assert!(matches!(X11Screen::open(Some(":65000"), &opts), Err(CaptureError::Format(_))));
        }
    }

    #[test]
    fn the_source_can_move_to_the_capture_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<X11Screen>();
    }
}
