//! The scene strip under the preview: a card per scene of the collection —
//! a schematic of its layers at the canvas's aspect, its name, its
//! shortcut (Ctrl+1…9) — the one on air marked with a red *ON AIR* badge
//! and a thicker border; a click (or the shortcut, live or not) puts a
//! scene on air with a cut, or a fade when *Fade* is on. *New scene…* makes
//! one from a built-in layout. Which scene's layers are being edited (the
//! one on air unless another is picked) is the window's [`Selection`].

use super::layer_kind::kind;
use crate::compose::layout::{CORNER_CAMERA_SIZE, Corner, Layout};
use crate::engine::{Command, EngineState, ScenesCommand, SourcesState};
use crate::session::scene::{Cast, MAX_FADE_MS, Scene, Transition};

/// A card's schematic, in points: wide enough to tell the layers apart.
const THUMB_W: f32 = 112.0;
/// Room around the schematic inside a card.
const PAD: f32 = 4.0;
/// Below the schematic: the name and the shortcut.
const CAPTION_H: f32 = 30.0;
/// Red, as the tally light's: on air.
const ON_AIR_RED: egui::Color32 = egui::Color32::from_rgb(220, 40, 40);

/// Which scene's layers are edited, and which of its layers is picked
/// (the panels and the preview share it).
#[derive(Debug, Default)]
pub struct Selection {
    /// The scene picked for editing; `None`: the one on air.
    pub scene: Option<String>,
    /// The layer picked (its index, bottom first), for the preview's handles.
    pub layer: Option<usize>,
}

/// The name of the scene on air, as the capture session reports it.
pub fn on_air(state: &EngineState) -> Option<&str> {
    match &state.sources {
        SourcesState::Open { scene: Some(s), .. } => Some(s.name.as_str()),
        _ => None,
    }
}

impl Selection {
    /// The scene being edited (a scene of the collection), and whether it is on air.
    pub fn scene<'a>(&self, state: &'a EngineState) -> Option<(&'a Scene, bool)> {
        let name = self.scene.as_deref().or_else(|| on_air(state))?;
        let scene = state.scenes.scenes().iter().find(|s| s.name.eq_ignore_ascii_case(name))?;
        let live = on_air(state).is_some_and(|n| n.eq_ignore_ascii_case(&scene.name));
        Some((scene, live))
    }
}

/// What an edit of `scene` sends: shown at once if it is on air, else saved.
pub fn edit_command(scene: Scene, on_air: bool) -> Command {
    let c = if on_air { ScenesCommand::EditOnAir(scene) } else { ScenesCommand::Put { scene, replace: true } };
    Command::from(c)
}

/// The strip's own state: the transition chosen, the layout picker's settings.
pub struct SceneStrip {
    /// Switch with a fade rather than a cut.
    fade: bool,
    /// *Screen + camera*: where the camera goes, and its width.
    corner: Corner,
    size: f32,
}

impl Default for SceneStrip {
    fn default() -> Self {
        SceneStrip { fade: false, corner: Corner::default(), size: CORNER_CAMERA_SIZE }
    }
}

impl SceneStrip {
    /// How a switch is made now.
    fn transition(&self) -> Transition {
        if self.fade { Transition::Fade(MAX_FADE_MS) } else { Transition::Cut }
    }

    /// The height the strip takes (so the preview above can leave it room).
    pub fn height(state: &EngineState, aspect: f32, ui: &egui::Ui) -> f32 {
        let row = ui.spacing().interact_size.y + ui.spacing().item_spacing.y;
        if state.scenes.scenes().is_empty() { row } else { card_size(aspect).y + row }
    }

    /// Ctrl+1…9: the first nine scenes, whatever has the focus, live or not.
    pub fn shortcuts(&self, ui: &mut egui::Ui, state: &EngineState, commands: &mut Vec<Command>) {
        for (i, key) in super::keys::SCENES.iter().enumerate() {
            if ui.input_mut(|input| input.consume_shortcut(key))
                && let Some(scene) = state.scenes.scenes().get(i)
            {
                self.go_to(scene, state, commands);
            }
        }
    }

    fn go_to(&self, scene: &Scene, state: &EngineState, commands: &mut Vec<Command>) {
        if on_air(state).is_some_and(|n| n.eq_ignore_ascii_case(&scene.name)) {
            return;
        }
        commands.push(Command::from(ScenesCommand::GoTo { name: scene.name.clone(), transition: self.transition() }));
    }

    /// Draws the strip; `aspect` is the canvas's, `cast` what a new layout's roles are played by.
    pub fn strip_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, aspect: f32, cast: &Cast, selection: &mut Selection, commands: &mut Vec<Command>) {
        let scenes = state.scenes.scenes();
        if !scenes.is_empty() {
            egui::ScrollArea::horizontal().id_salt("scene-strip").auto_shrink([false, true]).show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (i, scene) in scenes.iter().enumerate() {
                        self.card_ui(ui, state, i, scene, aspect, selection, commands);
                    }
                });
            });
        }
        ui.horizontal(|ui| {
            let readable = state.scenes.collection.is_some();
            ui.add_enabled_ui(readable, |ui| self.layout_picker_ui(ui, scenes, cast, commands));
            ui.toggle_value(&mut self.fade, "Fade").on_hover_text(format!("Switch scenes with a {MAX_FADE_MS} ms fade instead of a cut"));
            match &state.scenes.message {
                Some(m) => {
                    ui.colored_label(egui::Color32::LIGHT_RED, format!("Scenes: {m}"));
                    if !readable && ui.button("Read the scenes again").clicked() {
                        commands.push(Command::from(ScenesCommand::Load));
                    }
                }
                None if readable && scenes.is_empty() => {
                    ui.weak("No scenes yet: make one from a layout to switch between cameras, screens and cards");
                }
                None => {}
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn card_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, i: usize, scene: &Scene, aspect: f32, selection: &mut Selection, commands: &mut Vec<Command>) {
        let live = on_air(state).is_some_and(|n| n.eq_ignore_ascii_case(&scene.name));
        let editing = selection.scene(state).is_some_and(|(s, _)| s.name == scene.name);
        let shortcut = super::keys::SCENES.get(i).map(|k| ui.ctx().format_shortcut(k));
        let (rect, response) = ui.allocate_exact_size(card_size(aspect), egui::Sense::click());
        let label = match (&shortcut, live) {
            (Some(k), true) => format!("Scene {}, {k}, ON AIR", scene.name),
            (Some(k), false) => format!("Scene {}, {k}", scene.name),
            (None, true) => format!("Scene {}, ON AIR", scene.name),
            (None, false) => format!("Scene {}", scene.name),
        };
        response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, live, &label));
        if ui.is_rect_visible(rect) {
            paint_card(ui, rect, scene, live, editing, response.hovered(), shortcut.as_deref());
        }
        let response = response.on_hover_text(if live {
            format!("'{}' is on air; right-click to edit its layers, move or remove it", scene.name)
        } else {
            format!("Put '{}' on air ({}); right-click to edit its layers, move or remove it", scene.name, if self.fade { "fade" } else { "cut" })
        });
        if response.clicked() {
            self.go_to(scene, state, commands);
        }
        let count = state.scenes.scenes().len();
        response.context_menu(|ui| {
            if ui.button("Edit layers").clicked() {
                selection.scene = Some(scene.name.clone());
                selection.layer = None;
            }
            if ui.add_enabled(i > 0, egui::Button::new("Move left")).clicked() {
                commands.push(Command::from(ScenesCommand::Reorder { from: i, to: i - 1 }));
            }
            if ui.add_enabled(i + 1 < count, egui::Button::new("Move right")).clicked() {
                commands.push(Command::from(ScenesCommand::Reorder { from: i, to: i + 1 }));
            }
            if ui.button("Remove scene").clicked() {
                commands.push(Command::from(ScenesCommand::Remove(scene.name.clone())));
                if selection.scene.as_deref() == Some(scene.name.as_str()) {
                    *selection = Selection::default();
                }
            }
        });
    }

    /// *New scene…*: the built-in layouts by title; *Screen + camera* with its corner and size.
    fn layout_picker_ui(&mut self, ui: &mut egui::Ui, scenes: &[Scene], cast: &Cast, commands: &mut Vec<Command>) {
        let config = egui::containers::menu::MenuConfig::new().close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
        let button = egui::containers::menu::MenuButton::new("New scene…").config(config);
        let (response, _) = button.ui(ui, |ui| {
            ui.label("From a layout:");
            let mut make = |layout: Layout, ui: &mut egui::Ui| {
                let name = unique_name(layout.title(), scenes);
                commands.push(Command::from(ScenesCommand::MakeLayout { name, layout, cast: cast.clone() }));
                ui.close();
            };
            for layout in Layout::NAMES.iter().filter_map(|n| Layout::parse(n)) {
                if let Layout::ScreenCamera { .. } = layout {
                    ui.separator();
                    ui.label("Screen + camera, the camera in the");
                    for corner in Corner::ALL {
                        ui.radio_value(&mut self.corner, corner, corner_title(corner));
                    }
                    let size = egui::Slider::new(&mut self.size, 0.1..=0.5).custom_formatter(|v, _| format!("{:.0} %", v * 100.0)).text("Camera width");
                    ui.add(size);
                    if ui.button("Add Screen + camera").clicked() {
                        make(Layout::ScreenCamera { corner: self.corner, size: self.size }, ui);
                    }
                    ui.separator();
                } else if ui.button(layout.title()).clicked() {
                    make(layout, ui);
                }
            }
        });
        response.on_hover_text("Make a scene from a layout; its layers can be moved on the preview after");
    }
}

/// A card's size for a canvas of `aspect`.
fn card_size(aspect: f32) -> egui::Vec2 {
    let aspect = if aspect.is_finite() && aspect > 0.2 { aspect } else { 16.0 / 9.0 };
    egui::vec2(THUMB_W + 2.0 * PAD, THUMB_W / aspect + 2.0 * PAD + CAPTION_H)
}

/// What a picker calls a corner.
pub fn corner_title(corner: Corner) -> &'static str {
    match corner {
        Corner::TopLeft => "Top left",
        Corner::TopRight => "Top right",
        Corner::BottomLeft => "Bottom left",
        Corner::BottomRight => "Bottom right",
    }
}

/// `base`, or `base 2`, `base 3`… : the first name no scene has (names are case-insensitive).
pub fn unique_name(base: &str, scenes: &[Scene]) -> String {
    let taken = |n: &str| scenes.iter().any(|s| s.name.eq_ignore_ascii_case(n));
    if !taken(base) {
        return base.to_string();
    }
    (2..).map(|i| format!("{base} {i}")).find(|n| !taken(n)).unwrap_or_else(|| base.to_string())
}

/// Draws a card: the schematic (each visible layer's rectangle, coloured
/// and named by kind; hidden ones outlined only), the name and the
/// shortcut; on air, a red badge and a thick red border.
fn paint_card(ui: &egui::Ui, rect: egui::Rect, scene: &Scene, live: bool, editing: bool, hovered: bool, shortcut: Option<&str>) {
    let visuals = ui.visuals();
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, visuals.faint_bg_color);
    let thumb = egui::Rect::from_min_size(rect.min + egui::vec2(PAD, PAD), egui::vec2(THUMB_W, rect.height() - 2.0 * PAD - CAPTION_H));
    painter.rect_filled(thumb, 2.0, egui::Color32::from_gray(16));
    let small = egui::TextStyle::Small.resolve(ui.style());
    let thumb_painter = painter.with_clip_rect(thumb);
    for layer in &scene.layers {
        let r = layer.placement.rect;
        let at = egui::Rect::from_min_size(thumb.min + egui::vec2(r.x * thumb.width(), r.y * thumb.height()), egui::vec2(r.w * thumb.width(), r.h * thumb.height()));
        let k = kind(&layer.source);
        if layer.placement.visible {
            thumb_painter.rect_filled(at, 1.0, k.colour.gamma_multiply(0.55));
            thumb_painter.rect_stroke(at, 1.0, egui::Stroke::new(1.0, k.colour), egui::StrokeKind::Inside);
            let word = if layer.name.is_empty() { k.word } else { layer.name.as_str() };
            let galley = ui.painter().layout_no_wrap(word.to_string(), small.clone(), egui::Color32::WHITE);
            if galley.size().x + 4.0 <= at.width() && galley.size().y + 2.0 <= at.height() {
                thumb_painter.galley(at.center() - galley.size() / 2.0, galley, egui::Color32::WHITE);
            }
        } else {
            for s in egui::Shape::dashed_line(&[at.left_top(), at.right_top(), at.right_bottom(), at.left_bottom(), at.left_top()], egui::Stroke::new(1.0, k.colour), 3.0, 3.0) {
                thumb_painter.add(s);
            }
        }
    }
    if live {
        let badge = ui.painter().layout_no_wrap("ON AIR".into(), small.clone(), egui::Color32::WHITE);
        let at = egui::Rect::from_min_size(thumb.min + egui::vec2(3.0, 3.0), badge.size() + egui::vec2(6.0, 2.0));
        painter.rect_filled(at, 3.0, ON_AIR_RED);
        painter.galley(at.min + egui::vec2(3.0, 1.0), badge, egui::Color32::WHITE);
    }
    let caption = egui::Rect::from_min_max(egui::pos2(thumb.min.x, thumb.max.y + 2.0), egui::pos2(thumb.max.x, rect.max.y - PAD));
    let body = egui::TextStyle::Body.resolve(ui.style());
    let mut job = egui::text::LayoutJob::single_section(scene.name.clone(), egui::TextFormat::simple(body, visuals.strong_text_color()));
    job.wrap = egui::text::TextWrapping::truncate_at_width(caption.width() - if shortcut.is_some() { 44.0 } else { 0.0 });
    let name = ui.painter().layout_job(job);
    painter.galley(caption.left_top(), name, visuals.strong_text_color());
    if let Some(k) = shortcut {
        painter.text(caption.right_top(), egui::Align2::RIGHT_TOP, k, small, visuals.weak_text_color());
    }
    let border = if live {
        egui::Stroke::new(3.0, ON_AIR_RED)
    } else if editing {
        egui::Stroke::new(2.0, visuals.selection.stroke.color)
    } else if hovered {
        visuals.widgets.hovered.bg_stroke
    } else {
        visuals.widgets.noninteractive.bg_stroke
    };
    painter.rect_stroke(rect, 4.0, border, egui::StrokeKind::Inside);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::VideoSourceSpec;

    #[test]
    fn a_new_scene_gets_the_first_free_name() {
        let named = |n: &str| Scene { name: n.into(), ..Scene::single(VideoSourceSpec::TestPattern) };
        assert_eq!(unique_name("Camera", &[]), "Camera");
        assert_eq!(unique_name("Camera", &[named("camera"), named("Camera 2")]), "Camera 3");
    }
}
