//! The layers of the scene being edited (the one on air unless another is
//! picked), top first: each with hide (or show), up and down, remove; *Add layer* puts a camera, the test pattern, a file… on top.
//! What a layer is — its word and colour in the list, the strip's
//! schematic and the preview's outline — is said in one place,
//! [`super::layer_kind::kind`].

use super::layer_kind::kind;
use super::scenes::{Selection, edit_command};
use crate::compose::{Placement, Rect};
use crate::engine::{Command, Devices, EngineState};
use crate::session::scene::{Layer, LayerSource, MAX_LAYERS, Scene};

/// What *Add layer* offers at once: its entry and the source's text (the
/// syntax of `tally stream --video`); an entry this build cannot parse (a
/// source it does not have yet) is left out. One line per kind of source.
const ADD: &[(&str, &str)] = &[("Camera (the first found)", "camera"), ("Screen", "screen"), ("Test pattern", "test")];

/// What *Add layer* offers with a path typed in (until the window has file
/// dialogs): the entry, the source's prefix and a hint.
const ADD_FILE: &[(&str, &str, &str)] = &[
    ("Y4M file", "y4m:", "video.y4m"),
    ("Image (PNG, JPEG)", "image:", "logo.png"),
    ("Window", "window:", "part of its title"),
    ("Text", "text:", "your name"),
    ("Colour", "colour:", "#1E232E"),
];

/// Where a new layer goes: the middle of the canvas, half its size, over the others.
const NEW_LAYER: Rect = Rect { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };

/// The panel's own state: the paths being typed.
#[derive(Default)]
pub struct LayersPanel {
    paths: Vec<String>,
}

impl LayersPanel {
    /// Draws the panel for the scene being edited, if there is one.
    pub fn layers_ui(&mut self, ui: &mut egui::Ui, state: &EngineState, selection: &mut Selection, commands: &mut Vec<Command>) {
        let Some((scene, live)) = selection.scene(state) else {
            // A scene picked that is gone: back to the one on air.
            if selection.scene.take().is_some() {
                selection.layer = None;
            }
            return;
        };
        if selection.layer.is_some_and(|i| i >= scene.layers.len()) {
            selection.layer = None;
        }
        ui.horizontal(|ui| {
            let heading = ui.strong("Layers of");
            let shown = if live { format!("{} (on air)", scene.name) } else { scene.name.clone() };
            let picker = egui::ComboBox::from_id_salt("layers-scene").selected_text(shown).show_ui(ui, |ui| {
                if ui.selectable_label(selection.scene.is_none(), "The scene on air").clicked() {
                    *selection = Selection::default();
                }
                for s in state.scenes.scenes() {
                    if ui.selectable_label(selection.scene.as_deref() == Some(s.name.as_str()), &s.name).clicked() {
                        *selection = Selection { scene: Some(s.name.clone()), layer: None };
                    }
                }
            });
            picker.response.labelled_by(heading.id).on_hover_text("The scene whose layers are listed here and moved on the preview");
        });
        let mut edited: Option<Scene> = None;
        let count = scene.layers.len();
        // Top first: the last layer is drawn last, over the others.
        for (i, layer) in scene.layers.iter().enumerate().rev() {
            ui.horizontal(|ui| {
                let name = if layer.name.is_empty() { kind(&layer.source).word } else { layer.name.as_str() };
                let visible = layer.placement.visible;
                let eye = ui.add(egui::Button::new(if visible { "Hide" } else { "Show" }).selected(!visible));
                let eye = eye.accessible_name(format!("{} {name}", if visible { "Hide" } else { "Show" }));
                if eye.on_hover_text(if visible { "Hide this layer (it stays in the scene)" } else { "Show this layer again" }).clicked() {
                    let mut s = scene.clone();
                    s.layers[i].placement.visible = !visible;
                    edited = Some(s);
                }
                let k = kind(&layer.source);
                let text = if visible { egui::RichText::new(name) } else { egui::RichText::new(format!("{name} (hidden)")).weak() };
                if ui.selectable_label(selection.layer == Some(i), text).on_hover_text(format!("{} · {}: pick it to move it on the preview", k.word, layer.source)).clicked() {
                    selection.layer = Some(i);
                }
                let (swatch, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter().rect_filled(swatch, 2.0, k.colour);
                ui.small(k.word);
                let button = |ui: &mut egui::Ui, enabled: bool, icon: &str, label: String| ui.add_enabled(enabled, egui::Button::new(icon)).accessible_name(label).clicked();
                if button(ui, i + 1 < count, "Up", format!("Move {name} up")) {
                    edited = Some(swapped(scene, i, i + 1));
                    selection.layer = Some(i + 1);
                }
                if button(ui, i > 0, "Down", format!("Move {name} down")) {
                    edited = Some(swapped(scene, i, i - 1));
                    selection.layer = Some(i - 1);
                }
                // A scene keeps at least one layer.
                if button(ui, count > 1, "Remove", format!("Remove {name}")) {
                    let mut s = scene.clone();
                    s.layers.remove(i);
                    edited = Some(s);
                    selection.layer = None;
                }
            });
        }
        ui.add_enabled_ui(count < MAX_LAYERS, |ui| {
            // Stays open while a path is typed.
            let config = egui::containers::menu::MenuConfig::new().close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
            egui::containers::menu::MenuButton::new("Add layer").config(config).ui(ui, |ui| {
                if let Some(source) = self.add_menu_ui(ui, &state.devices) {
                    let mut s = scene.clone();
                    let name = kind(&source).word.to_string();
                    s.layers.push(Layer { name, source, placement: Placement::at(NEW_LAYER) });
                    selection.layer = Some(s.layers.len() - 1);
                    edited = Some(s);
                    ui.close();
                }
            });
        });
        if let Some(s) = edited {
            commands.push(edit_command(s, live));
        }
    }

    /// The sources *Add layer* offers; the one picked.
    fn add_menu_ui(&mut self, ui: &mut egui::Ui, devices: &Devices) -> Option<LayerSource> {
        let mut picked = None;
        for (entry, text) in ADD {
            if let Ok(source) = text.parse::<LayerSource>()
                && ui.button(*entry).clicked()
            {
                picked = Some(source);
            }
        }
        for camera in &devices.cameras {
            if let Ok(source) = camera.spec.parse::<LayerSource>()
                && ui.button(&camera.name).clicked()
            {
                picked = Some(source);
            }
        }
        self.paths.resize(ADD_FILE.len(), String::new());
        for ((entry, prefix, hint), path) in ADD_FILE.iter().zip(&mut self.paths) {
            ui.separator();
            let label = ui.label(*entry);
            ui.add(egui::TextEdit::singleline(path).hint_text(*hint).desired_width(180.0)).labelled_by(label.id);
            let source = format!("{prefix}{}", path.trim()).parse::<LayerSource>();
            if ui.add_enabled(!path.trim().is_empty() && source.is_ok(), egui::Button::new(format!("Add {entry}"))).clicked() {
                picked = source.ok();
                path.clear();
            }
        }
        picked
    }
}

/// `scene` with layers `a` and `b` swapped.
fn swapped(scene: &Scene, a: usize, b: usize) -> Scene {
    let mut s = scene.clone();
    s.layers.swap(a, b);
    s
}
