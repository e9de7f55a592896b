//! The built-in layouts: the common scenes placed in one click (StreamYard's
//! layouts; OBS leaves every scene to be built by hand). A layout says where
//! each *role* goes — the camera, the screen, a card's background and its
//! title — and the scene that uses it says which source plays each role.

use super::placement::{Fit, Placement, Rect};

/// A corner of the canvas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Corner {
    /// Top left.
    TopLeft,
    /// Top right.
    TopRight,
    /// Bottom left.
    BottomLeft,
    /// Bottom right (where a face usually goes: away from menus and titles).
    #[default]
    BottomRight,
}

impl Corner {
    /// Every corner, in the order a picker lists them.
    pub const ALL: [Corner; 4] = [Corner::TopLeft, Corner::TopRight, Corner::BottomLeft, Corner::BottomRight];

    /// The word used in commands and files.
    pub fn name(self) -> &'static str {
        match self {
            Corner::TopLeft => "top-left",
            Corner::TopRight => "top-right",
            Corner::BottomLeft => "bottom-left",
            Corner::BottomRight => "bottom-right",
        }
    }

    /// Parses [`Corner::name`].
    pub fn parse(s: &str) -> Option<Corner> {
        Corner::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// A built-in layout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// The camera, full frame.
    Camera,
    /// The screen, full frame.
    Screen,
    /// The screen full frame, the camera in a corner.
    ScreenCamera {
        /// Which corner.
        corner: Corner,
        /// The camera's width, in fractions of the canvas's.
        size: f32,
    },
    /// The screen and the camera, each in one half.
    SideBySide,
    /// A "be right back" card: a colour and a title.
    BeRightBack,
}

/// The camera's default width in *Screen + camera*: a quarter of the canvas.
pub const CORNER_CAMERA_SIZE: f32 = 0.25;
/// Room between the corner camera and the canvas's edges, in fractions of the canvas's width.
const MARGIN: f32 = 0.02;
/// The camera's aspect in the layouts (what cameras deliver): 16:9.
const CAMERA_ASPECT: f32 = 16.0 / 9.0;

impl Layout {
    /// The names commands and files use: `camera`, `screen`,
    /// `screen+camera`, `side-by-side`, `brb`.
    pub const NAMES: [&'static str; 5] = ["camera", "screen", "screen+camera", "side-by-side", "brb"];

    /// The layout's name (see [`Layout::NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Camera => "camera",
            Layout::Screen => "screen",
            Layout::ScreenCamera { .. } => "screen+camera",
            Layout::SideBySide => "side-by-side",
            Layout::BeRightBack => "brb",
        }
    }

    /// What a person calls it (the window's picker).
    pub fn title(&self) -> &'static str {
        match self {
            Layout::Camera => "Camera",
            Layout::Screen => "Screen",
            Layout::ScreenCamera { .. } => "Screen + camera",
            Layout::SideBySide => "Side by side",
            Layout::BeRightBack => "Be right back",
        }
    }

    /// Parses a name of [`Layout::NAMES`] (*Screen + camera* in the
    /// bottom-right corner at the default size).
    pub fn parse(s: &str) -> Option<Layout> {
        Some(match s {
            "camera" => Layout::Camera,
            "screen" => Layout::Screen,
            "screen+camera" => Layout::ScreenCamera { corner: Corner::default(), size: CORNER_CAMERA_SIZE },
            "side-by-side" => Layout::SideBySide,
            "brb" => Layout::BeRightBack,
            _ => return None,
        })
    }

    /// Where each role goes on a canvas of `aspect` (width / height), bottom first.
    pub fn place(&self, aspect: f32) -> Vec<(Role, Placement)> {
        let aspect = if aspect.is_finite() && aspect > 0.0 { aspect } else { 16.0 / 9.0 };
        let full = Placement::default();
        match *self {
            Layout::Camera => vec![(Role::Camera, Placement { fit: Fit::Fill, ..full })],
            Layout::Screen => vec![(Role::Screen, full)],
            Layout::ScreenCamera { corner, size } => {
                let w = if size.is_finite() { size.clamp(0.1, 0.5) } else { CORNER_CAMERA_SIZE };
                let h = w * aspect / CAMERA_ASPECT;
                let margin_y = MARGIN * aspect;
                let x = match corner {
                    Corner::TopLeft | Corner::BottomLeft => MARGIN,
                    Corner::TopRight | Corner::BottomRight => 1.0 - MARGIN - w,
                };
                let y = match corner {
                    Corner::TopLeft | Corner::TopRight => margin_y,
                    Corner::BottomLeft | Corner::BottomRight => 1.0 - margin_y - h,
                };
                vec![(Role::Screen, full), (Role::Camera, Placement { rect: Rect { x, y, w, h }, fit: Fit::Fill, ..full })]
            }
            Layout::SideBySide => vec![
                (Role::Screen, Placement::at(Rect { x: 0.0, y: 0.0, w: 0.5, h: 1.0 })),
                (Role::Camera, Placement::at(Rect { x: 0.5, y: 0.0, w: 0.5, h: 1.0 })),
            ],
            Layout::BeRightBack => vec![
                (Role::Background, Placement { fit: Fit::Stretch, ..full }),
                (Role::Title, Placement::at(Rect { x: 0.1, y: 0.35, w: 0.8, h: 0.3 })),
            ],
        }
    }
}

/// What a layer of a layout shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The streamer's camera.
    Camera,
    /// The screen (a monitor or a window).
    Screen,
    /// A card's background colour.
    Background,
    /// A card's title text.
    Title,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back() {
        for n in Layout::NAMES {
            assert_eq!(Layout::parse(n).map(|l| l.name()), Some(n));
        }
        assert!(Layout::parse("pip").is_none());
        for c in Corner::ALL {
            assert_eq!(Corner::parse(c.name()), Some(c));
        }
    }

    #[test]
    fn the_corner_camera_keeps_sixteen_by_nine_and_stays_on_the_canvas() {
        for corner in Corner::ALL {
            let l = Layout::ScreenCamera { corner, size: 0.25 };
            let placed = l.place(16.0 / 9.0);
            assert_eq!(placed[0].0, Role::Screen);
            let (role, cam) = placed[1];
            assert_eq!(role, Role::Camera);
            let r = cam.rect;
            assert!((r.w - 0.25).abs() < 1e-6 && (r.h - 0.25).abs() < 1e-6, "{r:?}");
            assert!(r.x >= 0.0 && r.y >= 0.0 && r.x + r.w <= 1.0 && r.y + r.h <= 1.0, "{corner:?}: {r:?}");
        }
    }
}
