//! Where a dragged layer lands: moved or resized by the pointer, in
//! fractions of the canvas, and snapped to the canvas's edges and centre
//! lines and to the other layers' edges when it comes near one (the lines
//! it snapped to are drawn as guides while it does). Pure geometry: the
//! window's drag code (`arrange`) calls it, the unit tests below check it.

use crate::compose::Rect;
use crate::compose::layout::Corner;

/// How near an edge (or the centre) must come to a line to snap to it:
/// 1.5 % of the canvas, along each axis (about 19 px of a 1280 px canvas,
/// a few screen pixels of the preview — near enough to mean it).
pub const SNAP: f32 = 0.015;

/// The smallest a layer is made by resizing, in canvas fractions: still
/// big enough to grab.
pub const MIN_SIZE: f32 = 0.02;

/// What the pointer holds of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grip {
    /// The whole layer: it moves.
    Body,
    /// One corner: that corner moves, the opposite one stays.
    Corner(Corner),
}

/// The lines a layer snapped to (canvas fractions), for drawing guides.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Guides {
    /// A vertical line at this x.
    pub x: Option<f32>,
    /// A horizontal line at this y.
    pub y: Option<f32>,
}

/// The layer at `from`, its `grip` dragged by (`dx`, `dy`) canvas
/// fractions, snapped to the canvas and to `others` (the other visible
/// layers' rectangles).
pub fn dragged(from: Rect, grip: Grip, dx: f32, dy: f32, others: &[Rect]) -> (Rect, Guides) {
    let xs = lines(others.iter().map(|r| (r.x, r.w)));
    let ys = lines(others.iter().map(|r| (r.y, r.h)));
    match grip {
        Grip::Body => {
            let (x, gx) = snap_span(from.x + dx, from.w, &xs);
            let (y, gy) = snap_span(from.y + dy, from.h, &ys);
            (Rect { x, y, ..from }, Guides { x: gx, y: gy })
        }
        Grip::Corner(corner) => {
            let left = matches!(corner, Corner::TopLeft | Corner::BottomLeft);
            let top = matches!(corner, Corner::TopLeft | Corner::TopRight);
            let (x, w, gx) = snap_edge(from.x, from.w, dx, left, &xs);
            let (y, h, gy) = snap_edge(from.y, from.h, dy, top, &ys);
            (Rect { x, y, w, h }, Guides { x: gx, y: gy })
        }
    }
}

/// The lines along one axis: the canvas's edges and centre, and each
/// other layer's two edges (`(start, extent)` pairs).
fn lines(others: impl Iterator<Item = (f32, f32)>) -> Vec<f32> {
    let mut lines = vec![0.0, 0.5, 1.0];
    for (start, extent) in others {
        lines.extend([start, start + extent]);
    }
    lines
}

/// The nearest line within [`SNAP`] of any of `candidates`: (which
/// candidate, the line).
fn nearest(candidates: &[f32], lines: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32, f32)> = None;
    for (i, &c) in candidates.iter().enumerate() {
        for &line in lines {
            let d = (line - c).abs();
            if d <= SNAP && best.is_none_or(|(_, _, bd)| d < bd) {
                best = Some((i, line, d));
            }
        }
    }
    best.map(|(i, line, _)| (i, line))
}

/// A span moved to `start` (extent kept), snapped by its start, centre or
/// end: its new start, and the line it snapped to.
fn snap_span(start: f32, extent: f32, lines: &[f32]) -> (f32, Option<f32>) {
    match nearest(&[start, start + extent / 2.0, start + extent], lines) {
        // Placed from the line itself, so that the snapped edge lies on it exactly.
        Some((0, line)) => (line, Some(line)),
        Some((1, line)) => (line - extent / 2.0, Some(line)),
        Some((_, line)) => (line - extent, Some(line)),
        None => (start, None),
    }
}

/// A span whose start (`moving_start`) or end edge moves by `d`, the other
/// edge staying, snapped by the moving edge and at least [`MIN_SIZE`]:
/// its start, extent, and the line it snapped to.
fn snap_edge(start: f32, extent: f32, d: f32, moving_start: bool, lines: &[f32]) -> (f32, f32, Option<f32>) {
    let end = start + extent;
    if moving_start {
        let edge = (start + d).min(end - MIN_SIZE);
        let (edge, guide) = match nearest(&[edge], lines).filter(|&(_, l)| l <= end - MIN_SIZE) {
            Some((_, line)) => (line, Some(line)),
            None => (edge, None),
        };
        (edge, end - edge, guide)
    } else {
        let edge = (end + d).max(start + MIN_SIZE);
        let (edge, guide) = match nearest(&[edge], lines).filter(|&(_, l)| l >= start + MIN_SIZE) {
            Some((_, line)) => (line, Some(line)),
            None => (edge, None),
        };
        (start, edge - start, guide)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMERA: Rect = Rect { x: 0.3, y: 0.3, w: 0.25, h: 0.25 };

    #[test]
    fn a_move_far_from_every_line_is_the_pointer_s() {
        let (r, g) = dragged(CAMERA, Grip::Body, 0.02, -0.1, &[]);
        assert!((r.x - 0.32).abs() < 1e-6 && (r.y - 0.2).abs() < 1e-6, "{r:?}");
        assert_eq!((r.w, r.h), (CAMERA.w, CAMERA.h));
        assert_eq!(g, Guides::default());
    }

    #[test]
    fn an_edge_near_the_canvas_edge_snaps_onto_it_exactly() {
        // Right edge at 0.99: within 1.5 % of the canvas's right edge.
        let (r, g) = dragged(CAMERA, Grip::Body, 0.44, 0.0, &[]);
        assert_eq!(r.x + r.w, 1.0, "{r:?}");
        assert_eq!(g.x, Some(1.0));
        // Left edge at -0.01.
        let (r, _) = dragged(CAMERA, Grip::Body, -0.31, 0.0, &[]);
        assert_eq!(r.x, 0.0);
        // Just outside the threshold: not snapped.
        let (r, g) = dragged(CAMERA, Grip::Body, 0.43, 0.0, &[]);
        assert!((r.x + r.w - 0.98).abs() < 1e-6 && g.x.is_none(), "{r:?}");
    }

    #[test]
    fn the_centre_snaps_to_the_canvas_centre_lines() {
        // Centre at (0.51, 0.495).
        let (r, g) = dragged(CAMERA, Grip::Body, 0.085, 0.07, &[]);
        assert!((r.x + r.w / 2.0 - 0.5).abs() < 1e-6 && (r.y + r.h / 2.0 - 0.5).abs() < 1e-6, "{r:?}");
        assert_eq!(g, Guides { x: Some(0.5), y: Some(0.5) });
    }

    #[test]
    fn edges_snap_to_the_other_layers_edges() {
        let other = Rect { x: 0.1, y: 0.1, w: 0.6, h: 0.2 };
        // Top edge at 0.305: the other's bottom is 0.3.
        let (r, g) = dragged(CAMERA, Grip::Body, 0.0, 0.005, &[other]);
        assert!((r.y - 0.3).abs() < 1e-6 && g.y == Some(0.3), "{r:?} {g:?}");
        // Left edge at 0.705 (centre 0.83, right 0.955): the other's right edge, 0.7.
        let (r, g) = dragged(CAMERA, Grip::Body, 0.405, 0.0, &[other]);
        assert!((r.x - 0.7).abs() < 1e-6 && g.x.is_some_and(|x| (x - 0.7).abs() < 1e-6), "{r:?} {g:?}");
    }

    #[test]
    fn a_corner_resizes_keeping_the_opposite_corner_and_its_edges_snap() {
        let (r, g) = dragged(CAMERA, Grip::Corner(Corner::BottomRight), 0.1, 0.05, &[]);
        assert!((r.x - 0.3).abs() < 1e-6 && (r.w - 0.35).abs() < 1e-6 && (r.h - 0.3).abs() < 1e-6, "{r:?}");
        assert_eq!(g, Guides::default());
        // The top-left corner dragged near the canvas's corner: onto it.
        let (r, g) = dragged(CAMERA, Grip::Corner(Corner::TopLeft), -0.29, -0.31, &[]);
        assert_eq!((r.x, r.y), (0.0, 0.0));
        assert!((r.x + r.w - 0.55).abs() < 1e-6 && (r.y + r.h - 0.55).abs() < 1e-6, "the opposite corner stays: {r:?}");
        assert_eq!(g, Guides { x: Some(0.0), y: Some(0.0) });
        // Dragged past the opposite edge: the smallest size, not a negative one.
        let (r, _) = dragged(CAMERA, Grip::Corner(Corner::TopRight), -0.5, 0.5, &[]);
        assert!((r.w - MIN_SIZE).abs() < 1e-6 && (r.h - MIN_SIZE).abs() < 1e-6 && r.x == CAMERA.x, "{r:?}");
    }
}
