//! A picture from a feed (the outgoing preview, the viewer preview) as a
//! texture: uploaded once per new picture, drawn with its aspect kept.

use crate::session::PreviewFrame;

/// One texture and the serial of the picture in it.
#[derive(Default)]
pub struct Picture {
    texture: Option<egui::TextureHandle>,
    shown: u64,
}

impl Picture {
    /// Uploads `frame` if it is newer than what the texture holds.
    pub fn update(&mut self, ctx: &egui::Context, name: &str, frame: Option<&PreviewFrame>) {
        let Some(p) = frame.filter(|p| p.serial != self.shown) else { return };
        self.shown = p.serial;
        let image = egui::ColorImage::from_rgba_unmultiplied([p.width as usize, p.height as usize], &p.rgba);
        match &mut self.texture {
            Some(t) => t.set(image, egui::TextureOptions::LINEAR),
            None => self.texture = Some(ctx.load_texture(name, image, egui::TextureOptions::LINEAR)),
        }
    }

    /// Forgets the picture (its feed stopped).
    pub fn clear(&mut self) {
        self.texture = None;
        self.shown = 0;
    }

    /// Draws it within `max_w` x `max_h`, aspect kept; `waiting` while
    /// there is none (in the space the picture will take). The response is
    /// the picture's, sensing `sense` (a preview being arranged senses drags).
    pub fn picture_ui(&self, ui: &mut egui::Ui, max_w: f32, max_h: f32, alt: &str, waiting: &str, sense: egui::Sense) -> egui::Response {
        match &self.texture {
            Some(t) => {
                let [tw, th] = t.size();
                let aspect = tw as f32 / th.max(1) as f32;
                let w = max_w.min(max_h.max(60.0) * aspect).max(60.0);
                ui.add(egui::Image::new((t.id(), egui::vec2(w, w / aspect))).alt_text(alt).sense(sense))
            }
            None => {
                // The space the picture will take (16:9), so nothing below
                // moves when it arrives.
                let w = max_w.min(max_h.max(60.0) * 16.0 / 9.0).max(60.0);
                let (rect, response) = ui.allocate_exact_size(egui::vec2(w, w * 9.0 / 16.0), sense);
                response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, waiting));
                ui.painter().rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
                ui.painter().text(rect.center(), egui::Align2::CENTER_CENTER, waiting, egui::TextStyle::Body.resolve(ui.style()), ui.visuals().weak_text_color());
                response
            }
        }
    }
}
