//! Screen capture: a monitor or one window as a live [`VideoSource`](super::VideoSource).
//!
//! One backend per display system, each in its own file, sharing the two
//! types below: what to capture ([`ScreenTarget`]) and how
//! ([`ScreenOptions`]).
//!
//! - [`x11`]: an X server (Xorg, Xvfb, XWayland's own windows), through
//!   MIT-SHM, RandR, Composite and XFixes.

#[cfg(all(unix, not(target_os = "macos")))]
pub mod x11;

/// What to capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScreenTarget {
    /// A monitor by its index in the display system's monitor list (RandR's
    /// on X11, in the server's order): 0 is the first, the primary one where
    /// the server puts it first.
    Monitor(u32),
    /// A window whose title contains this text (case-insensitive); the first
    /// match when several do.
    Window(String),
}

/// How to capture: the target, whether the mouse cursor is drawn into the
/// picture, and the frame rate the scene needs (the source never grabs
/// faster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenOptions {
    /// What to capture.
    pub target: ScreenTarget,
    /// Draw the mouse cursor into the picture.
    pub cursor: bool,
    /// Frames per second to grab.
    pub fps: u32,
}
