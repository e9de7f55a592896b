//! `tally scenes …`: the scene collection from the command line — list,
//! show, add a scene from layers, make one from a built-in layout, remove.
//! `tally stream|record --scene NAME` and the `scene NAME` command on
//! `tally stream`'s stdin put one on air.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tally::capture::VideoSourceSpec;
use tally::compose::layout::{CORNER_CAMERA_SIZE, Corner, Layout};
use tally::compose::{Placement, Rect};
use tally::config::{self, SceneStore};
use tally::session::scene::{Cast, Layer, LayerSource, Scene};

/// The `scenes` subcommands.
#[derive(Subcommand, Debug)]
pub enum ScenesCommand {
    /// List the scenes (the one last on air marked), and where they are kept.
    List,
    /// Show a scene's layers: source, rectangle, fit, opacity, visibility.
    Show {
        /// Scene name.
        name: String,
        /// Print the scene as it is saved (TOML).
        #[arg(long)]
        toml: bool,
    },
    /// Add a scene from layers, bottom first: each `SOURCE` or
    /// `SOURCE@X,Y,W,H` (fractions of the canvas: `camera@0.7,0.7,0.28,0.28`);
    /// a source is a video source (camera[:N], screen[:N], window:TITLE,
    /// test, y4m:PATH), image:PATH, text:WORDS or colour:#RRGGBB[AA].
    Add {
        /// Scene name.
        name: String,
        /// A layer (repeat, bottom first).
        #[arg(long = "layer", value_name = "SOURCE[@X,Y,W,H]", required = true, value_parser = parse_layer)]
        layers: Vec<Layer>,
        /// Mute the microphone while the scene is on air.
        #[arg(long)]
        mute_audio: bool,
        /// Replace a scene of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Make (or remake) a scene from a layout: camera, screen, screen+camera,
    /// side-by-side, brb.
    Layout {
        /// Scene name.
        name: String,
        /// The layout.
        #[arg(value_parser = parse_layout)]
        layout: String,
        #[command(flatten)]
        cast: CastArgs,
    },
    /// Remove a scene.
    Remove {
        /// Scene name.
        name: String,
    },
}

/// What plays each role of a layout.
#[derive(Args, Debug, Clone)]
pub struct CastArgs {
    /// The camera: auto, camera[:N], test, y4m:PATH.
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    camera: VideoSourceSpec,
    /// The screen: screen[:N], window:TITLE (or any video source).
    #[arg(long, value_name = "SOURCE", default_value = "screen")]
    screen: VideoSourceSpec,
    /// Where the camera goes in screen+camera: top-left, top-right, bottom-left, bottom-right.
    #[arg(long, value_name = "CORNER", default_value = "bottom-right", value_parser = parse_corner)]
    corner: Corner,
    /// The camera's width in screen+camera, a fraction of the canvas's (0.1 to 0.5).
    #[arg(long, value_name = "FRACTION", default_value_t = CORNER_CAMERA_SIZE)]
    size: f32,
    /// The card's title (brb).
    #[arg(long, value_name = "TEXT", default_value = "Be right back")]
    title: String,
    /// Keep the microphone on while the card (brb) is on air.
    #[arg(long)]
    keep_audio: bool,
    /// The card's colour (brb), #RRGGBB.
    #[arg(long, value_name = "#RRGGBB", default_value = "#1E232E")]
    background: tally::capture::Rgba,
}

fn parse_layout(s: &str) -> Result<String, String> {
    Layout::parse(s).map(|l| l.name().to_string()).ok_or_else(|| format!("unknown layout '{s}' ({})", Layout::NAMES.join(", ")))
}

fn parse_corner(s: &str) -> Result<Corner, String> {
    Corner::parse(s).ok_or_else(|| format!("unknown corner '{s}' (top-left, top-right, bottom-left, bottom-right)"))
}

/// `SOURCE` or `SOURCE@X,Y,W,H`.
fn parse_layer(s: &str) -> Result<Layer, String> {
    let (source, rect) = match s.rsplit_once('@') {
        Some((source, rect)) if rect.split(',').count() == 4 => (source, Some(rect)),
        _ => (s, None),
    };
    let source: LayerSource = source.parse()?;
    let mut placement = Placement::default();
    if let Some(rect) = rect {
        let v: Vec<f32> = rect.split(',').map(|n| n.trim().parse::<f32>().map_err(|_| format!("'{n}' is not a number"))).collect::<Result<_, _>>()?;
        if v.iter().any(|n| !n.is_finite()) || v[2] <= 0.0 || v[3] <= 0.0 {
            return Err(format!("'{rect}': X,Y,W,H are fractions of the canvas, W and H above 0"));
        }
        placement.rect = Rect { x: v[0], y: v[1], w: v[2], h: v[3] };
    }
    Ok(Layer { name: String::new(), source, placement })
}

fn store() -> anyhow::Result<SceneStore> {
    Ok(SceneStore::open(&config::config_dir()?))
}

/// The scene called `name` from the collection (for `--scene` and stdin's `scene`).
pub fn load(name: &str) -> anyhow::Result<Scene> {
    Ok(store()?.get(name)?)
}

/// Runs a `scenes` subcommand.
pub fn run(cmd: ScenesCommand) -> anyhow::Result<()> {
    let store = store()?;
    match cmd {
        ScenesCommand::List => {
            let c = store.load()?;
            say!("Scenes are kept in {}", store.path().display());
            if c.scenes.is_empty() {
                say!("No scenes yet: `tally scenes layout NAME screen+camera` makes one.");
            }
            for (i, s) in c.scenes.iter().enumerate() {
                let on_air = c.on_air.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&s.name));
                let key = if i < 9 { format!("Ctrl+{}", i + 1) } else { String::new() };
                say!("{} {:<24} {:>2} layer(s)  {key}", if on_air { "*" } else { " " }, s.name, s.layers.len());
            }
        }
        ScenesCommand::Show { name, toml } => {
            let scene = store.get(&name)?;
            if toml {
                say!("{}", ::toml::to_string(&scene).context("writing the scene")?);
                return Ok(());
            }
            say!("{}{}", scene.name, if scene.mute_audio { " (mutes the microphone)" } else { "" });
            for (i, l) in scene.layers.iter().enumerate() {
                let p = l.placement;
                let r = p.rect;
                say!(
                    "  {}. {:<28} at {:.3},{:.3} size {:.3}x{:.3}  {:?}  opacity {:.2}{}",
                    i + 1,
                    l.source.to_string(),
                    r.x,
                    r.y,
                    r.w,
                    r.h,
                    p.fit,
                    p.opacity,
                    if p.visible { "" } else { "  hidden" }
                );
            }
        }
        ScenesCommand::Add { name, layers, mute_audio, replace } => {
            let scene = Scene { name, layers, mute_audio };
            store.update(|c| c.put(scene.clone(), replace))?;
            say!("Saved scene '{}' ({} layer(s)) in {}", scene.name, scene.layers.len(), store.path().display());
        }
        ScenesCommand::Layout { name, layout, cast } => {
            let Some(mut layout) = Layout::parse(&layout) else { bail!("unknown layout '{layout}'") };
            if let Layout::ScreenCamera { corner, size } = &mut layout {
                *corner = cast.corner;
                *size = cast.size;
            }
            let who = Cast { camera: cast.camera, screen: cast.screen, title: cast.title, mute_on_card: !cast.keep_audio, background: cast.background };
            // Layouts are placed in fractions: the same scene fits 720p and 1080p (16:9).
            let scene = Scene::from_layout(&name, &layout, &who, 16.0 / 9.0);
            store.update(|c| c.put(scene.clone(), true))?;
            say!("Saved scene '{}' from the {} layout in {}", scene.name, layout.title(), store.path().display());
        }
        ScenesCommand::Remove { name } => {
            let gone = store.update(|c| c.remove(&name))?;
            say!("Removed scene '{}'", gone.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_is_a_source_with_an_optional_rectangle() {
        let l = parse_layer("camera@0.7,0.7,0.28,0.28").unwrap();
        assert_eq!(l.source, LayerSource::Video(VideoSourceSpec::Camera(None)));
        assert_eq!(l.placement.rect, Rect { x: 0.7, y: 0.7, w: 0.28, h: 0.28 });
        assert_eq!(parse_layer("test").unwrap().placement, Placement::default());
        // A path with an @ in it is a path.
        let y = parse_layer("y4m:/tmp/a@b.y4m").unwrap();
        assert_eq!(y.source, LayerSource::Video(VideoSourceSpec::Y4m("/tmp/a@b.y4m".into())));
        assert!(parse_layer("camera@0,0,0,1").is_err());
        assert!(parse_layer("camera@x,0,1,1").is_err());
    }
}
