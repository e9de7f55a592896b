//! Composition: a scene's layers — each a source's picture with a placement
//! (rectangle, crop, fit, opacity, visibility) — drawn in order onto one
//! I420 canvas at the broadcast's size ([`Compositor`]), and the built-in
//! layouts that place the common scenes in one click ([`layout`]).
//!
//! Geometry is kept in fractions of the canvas, so a scene draws the same at
//! any size. Nothing here knows where a picture comes from: the capture
//! session hands each layer's newest picture in per tick.
//!
//! May use `crate::media` only: no other Tally module, no tokio, no egui.

mod compositor;
pub mod layout;
mod placement;

pub use compositor::{Compositor, DrawLayer, LayerInput};
pub use placement::{Crop, Fit, PixelRect, Placement, Rect, canvas_rect, crop_rect, fitted};
