//! Arranging the scene being edited on the preview (the composed program,
//! as the capture session draws it): a click picks the topmost visible
//! layer under the pointer, a drag moves it, a drag from one of its corners
//! resizes it; edges snap to the canvas's edges and centre lines and to the
//! other layers' edges (`snap`), with a guide drawn along the line while
//! they do. The picked layer's outline and corner handles are drawn over
//! the picture. Each step of a drag sends the edited scene (shown at once
//! when it is on air; the engine writes only the last of a burst).

use super::layer_kind::kind;
use super::scenes::{Selection, edit_command};
use super::snap::{Grip, Guides, dragged};
use crate::compose::Rect;
use crate::compose::layout::Corner;
use crate::engine::{Command, EngineState};
use crate::session::scene::Scene;
use egui::{Color32, Pos2, Stroke};

/// How near a corner (points) a press grabs it rather than the layer.
const HANDLE: f32 = 8.0;
/// A corner handle's size, in points.
const HANDLE_SIZE: f32 = 7.0;
/// The guides' colour: unlike any layer kind's, bright on any picture.
const GUIDE: Color32 = Color32::from_rgb(255, 200, 0);

/// The drag under way, if any, and the rectangle the last one left.
#[derive(Default)]
pub struct Arrange {
    drag: Option<Drag>,
    /// Drawn until the engine's next state, which holds it, arrives.
    left: Option<Left>,
}

struct Drag {
    scene: String,
    layer: usize,
    grip: Grip,
    /// The layer's rectangle when the drag began, and where the pointer pressed.
    from: Rect,
    origin: Pos2,
    /// Where it is now, and the lines it snapped to.
    now: Rect,
    guides: Guides,
}

struct Left {
    /// The state it was sent from (its address: a new state is a new one).
    state: usize,
    layer: usize,
    rect: Rect,
}

/// The rectangle on screen of `r` (canvas fractions) in `area`.
fn on_screen(r: Rect, area: egui::Rect) -> egui::Rect {
    egui::Rect::from_min_size(area.min + egui::vec2(r.x * area.width(), r.y * area.height()), egui::vec2(r.w * area.width(), r.h * area.height()))
}

/// The corners of a rectangle on screen, each with its name.
fn corners(r: egui::Rect) -> [(Corner, Pos2); 4] {
    [(Corner::TopLeft, r.left_top()), (Corner::TopRight, r.right_top()), (Corner::BottomLeft, r.left_bottom()), (Corner::BottomRight, r.right_bottom())]
}

impl Arrange {
    /// Handles the pointer on the preview (`canvas`: the picture's response,
    /// sensing clicks and drags) and draws the picked layer over it.
    pub fn arrange_ui(&mut self, ui: &egui::Ui, canvas: &egui::Response, state: &EngineState, selection: &mut Selection, commands: &mut Vec<Command>) {
        let area = canvas.rect;
        let Some((scene, live)) = selection.scene(state).filter(|_| area.width() >= 1.0 && area.height() >= 1.0) else {
            self.drag = None;
            return;
        };
        let state_id = std::ptr::from_ref(state) as usize;
        if self.left.as_ref().is_some_and(|l| l.state != state_id) {
            self.left = None;
        }
        if self.drag.as_ref().is_some_and(|d| d.scene != scene.name || d.layer >= scene.layers.len()) {
            // The scene changed under the drag (another went on air).
            self.drag = None;
        }
        let rect_of = |i: usize, arrange: &Arrange| match (&arrange.drag, &arrange.left) {
            (Some(d), _) if d.layer == i => d.now,
            (None, Some(l)) if l.layer == i => l.rect,
            _ => scene.layers[i].placement.rect,
        };
        if canvas.clicked() || canvas.drag_started() {
            let origin = ui.input(|i| i.pointer.press_origin()).or(canvas.interact_pointer_pos());
            if let Some((layer, grip)) = origin.and_then(|o| self.grab(o, scene, selection, area)) {
                self.left = None;
                if canvas.drag_started()
                    && let Some(origin) = origin
                {
                    let from = scene.layers[layer].placement.rect;
                    self.drag = Some(Drag { scene: scene.name.clone(), layer, grip, from, origin, now: from, guides: Guides::default() });
                }
            }
        }
        if let (Some(d), Some(p)) = (&mut self.drag, canvas.interact_pointer_pos().filter(|_| canvas.dragged())) {
            let (dx, dy) = ((p.x - d.origin.x) / area.width(), (p.y - d.origin.y) / area.height());
            let others: Vec<Rect> =
                scene.layers.iter().enumerate().filter(|(i, l)| *i != d.layer && l.placement.visible).map(|(_, l)| l.placement.rect).collect();
            let (rect, guides) = dragged(d.from, d.grip, dx, dy, &others);
            d.guides = guides;
            if rect != d.now {
                d.now = rect;
                let mut edited = scene.clone();
                edited.layers[d.layer].placement.rect = rect;
                commands.push(edit_command(edited, live));
            }
        }
        if canvas.drag_stopped()
            && let Some(d) = self.drag.take()
        {
            self.left = Some(Left { state: state_id, layer: d.layer, rect: d.now });
        }
        self.cursor_ui(ui, canvas, scene, selection, area);
        let painter = ui.painter_at(area);
        if let Some(i) = selection.layer.filter(|&i| i < scene.layers.len()) {
            paint_outline(ui, &painter, scene, i, on_screen(rect_of(i, self), area));
        }
        if let Some(d) = &self.drag {
            let guide = Stroke::new(1.5, GUIDE);
            if let Some(x) = d.guides.x {
                let x = area.min.x + x * area.width();
                painter.extend(egui::Shape::dashed_line(&[egui::pos2(x, area.min.y), egui::pos2(x, area.max.y)], guide, 6.0, 4.0));
            }
            if let Some(y) = d.guides.y {
                let y = area.min.y + y * area.height();
                painter.extend(egui::Shape::dashed_line(&[egui::pos2(area.min.x, y), egui::pos2(area.max.x, y)], guide, 6.0, 4.0));
            }
        }
    }

    /// What a press at `at` takes hold of: a corner of the picked layer,
    /// else the topmost visible layer there (which becomes the picked one).
    fn grab(&self, at: Pos2, scene: &Scene, selection: &mut Selection, area: egui::Rect) -> Option<(usize, Grip)> {
        if let Some(i) = selection.layer.filter(|&i| i < scene.layers.len()) {
            let r = on_screen(scene.layers[i].placement.rect, area);
            if let Some((corner, _)) = corners(r).into_iter().find(|(_, p)| p.distance(at) <= HANDLE) {
                return Some((i, Grip::Corner(corner)));
            }
        }
        let (fx, fy) = ((at.x - area.min.x) / area.width(), (at.y - area.min.y) / area.height());
        let hit = scene.layers.iter().rposition(|l| l.placement.visible && l.placement.rect.contains(fx, fy))?;
        selection.layer = Some(hit);
        Some((hit, Grip::Body))
    }

    /// The pointer says what a press would do: resize, move.
    fn cursor_ui(&self, ui: &egui::Ui, canvas: &egui::Response, scene: &Scene, selection: &Selection, area: egui::Rect) {
        let icon = match (&self.drag, canvas.hover_pos()) {
            (Some(d), _) => match d.grip {
                Grip::Body => egui::CursorIcon::Grabbing,
                Grip::Corner(c) => resize_icon(c),
            },
            (None, Some(at)) => {
                let handle = selection.layer.filter(|&i| i < scene.layers.len()).and_then(|i| {
                    corners(on_screen(scene.layers[i].placement.rect, area)).into_iter().find(|(_, p)| p.distance(at) <= HANDLE).map(|(c, _)| resize_icon(c))
                });
                let (fx, fy) = ((at.x - area.min.x) / area.width(), (at.y - area.min.y) / area.height());
                let over = scene.layers.iter().any(|l| l.placement.visible && l.placement.rect.contains(fx, fy));
                match handle {
                    Some(h) => h,
                    None if over => egui::CursorIcon::Grab,
                    None => return,
                }
            }
            (None, None) => return,
        };
        ui.ctx().set_cursor_icon(icon);
    }
}

fn resize_icon(corner: Corner) -> egui::CursorIcon {
    match corner {
        Corner::TopLeft | Corner::BottomRight => egui::CursorIcon::ResizeNwSe,
        Corner::TopRight | Corner::BottomLeft => egui::CursorIcon::ResizeNeSw,
    }
}

/// The picked layer over the picture: its outline (dashed when hidden) in
/// its kind's colour over a dark line (seen on any picture), its name, and
/// a handle at each corner.
fn paint_outline(ui: &egui::Ui, painter: &egui::Painter, scene: &Scene, i: usize, r: egui::Rect) {
    let layer = &scene.layers[i];
    let k = kind(&layer.source);
    let dark = Stroke::new(3.0, Color32::from_black_alpha(160));
    let line = Stroke::new(1.5, k.colour);
    let outline = [r.left_top(), r.right_top(), r.right_bottom(), r.left_bottom(), r.left_top()];
    painter.add(egui::Shape::line(outline.to_vec(), dark));
    if layer.placement.visible {
        painter.add(egui::Shape::line(outline.to_vec(), line));
    } else {
        painter.extend(egui::Shape::dashed_line(&outline, line, 5.0, 4.0));
    }
    for (_, p) in corners(r) {
        let h = egui::Rect::from_center_size(p, egui::vec2(HANDLE_SIZE, HANDLE_SIZE));
        painter.rect_filled(h, 1.0, Color32::WHITE);
        painter.rect_stroke(h, 1.0, Stroke::new(1.0, Color32::BLACK), egui::StrokeKind::Outside);
    }
    let name = if layer.name.is_empty() { k.word.to_string() } else { layer.name.clone() };
    let name = if layer.placement.visible { name } else { format!("{name} (hidden)") };
    let galley = painter.layout_no_wrap(name, egui::TextStyle::Small.resolve(ui.style()), Color32::WHITE);
    let at = egui::Rect::from_min_size(r.left_top() + egui::vec2(HANDLE_SIZE, 2.0), galley.size() + egui::vec2(6.0, 2.0));
    painter.rect_filled(at, 2.0, Color32::from_black_alpha(180));
    painter.galley(at.min + egui::vec2(3.0, 1.0), galley, Color32::WHITE);
}
