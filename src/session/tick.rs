//! The tick: the session's picture, once per frame — each layer's picture
//! taken from its feed, the scene composed, stamped, sent.

use super::*;
use std::time::Instant;

/// Lead waits that may pass without a picture before the tick draws
/// without the camera's new frame (4 x 250 ms: a second).
const LEAD_MISSES_BEFORE_CLOCK: u32 = 4;

/// A frame to fill: one of the pool nobody else holds any more, or a new one.
fn free_frame(pool: &mut Vec<Arc<VideoFrame>>, format: SessionFormat) -> Arc<VideoFrame> {
    match pool.iter_mut().position(|f| Arc::get_mut(f).is_some()) {
        Some(i) => pool.swap_remove(i),
        None => Arc::new(VideoFrame::black(format.width, format.height, 0)),
    }
}


/// A fade under way: the program it started from, and how far along it is.
struct Fade {
    from: Arc<Program>,
    drawn: u64,
    frames: u64,
}

/// The tick: once per frame, each layer's newest picture composed onto one
/// canvas. With a live camera on air the tick follows it — each of its
/// frames makes one canvas, stamped with its capture time — so a camera
/// goes out frame for frame; otherwise the tick
/// keeps the session's rate on the clock (or, unpaced, the paced sources'
/// pace). Either way the stamps rise by at least a millisecond.
pub(super) fn video_loop(shared: &Arc<Shared>) {
    let Some(clock) = shared.clock() else { return };
    let format = shared.format;
    let rate = crate::capture::FrameRate::per_second(format.fps.max(1));
    let frame_us = rate.pts_us_of_frame(1).max(1);
    let mut stage = stage::VideoStage::default();
    let mut pool: Vec<Arc<VideoFrame>> = Vec::with_capacity(FRAME_POOL);
    let mut on_air: Option<Arc<Program>> = None;
    let mut fade: Option<Fade> = None;
    let mut switched = false;
    let mut ended = false;
    let mut tick = 0u64;
    let mut last_pts: Option<u64> = None;
    let mut led = false;
    let mut lead_misses = 0u32;
    let mut taken: Vec<(*const feed::Feed, Option<LayerInput>, bool)> = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let next = shared.slots().next_program.take();
        if let Some((program, transition)) = next {
            shared.scene_muted.store(program.scene.mute_audio, Ordering::Relaxed);
            let previous = on_air.replace(program);
            match (transition, previous) {
                (Transition::Fade(ms), Some(from)) if ms > 0 => {
                    let frames = (u64::from(ms.min(scene::MAX_FADE_MS)) * u64::from(format.fps)).div_ceil(1000).max(1);
                    if let Some(old) = fade.replace(Fade { from, drawn: 0, frames }) {
                        retire(old.from);
                    }
                    switched = true;
                }
                (Transition::Edit, previous) => {
                    if let Some(p) = previous {
                        retire(p);
                    }
                }
                (_, previous) => {
                    // The first program needs no keyframe of its own: the encoder starts with one.
                    switched = previous.is_some();
                    if let Some(p) = previous {
                        retire(p);
                    }
                    if let Some(old) = fade.take() {
                        retire(old.from);
                    }
                }
            }
            ended = false;
        }
        let Some(program) = on_air.clone() else {
            idle(shared);
            continue;
        };
        if ended {
            idle(shared);
            continue;
        }
        let lead = program.lead().cloned();
        let unpaced = shared.pacing == Pacing::Unpaced && program.is_paced();
        let paced_wait = if unpaced { Wait::Forever } else { Wait::Until(Instant::now() + PACED_WAIT) };
        taken.clear();
        // The tick's time: the lead's next picture's, or the next slot on the clock.
        let due = if let Some(lead) = &lead {
            let (input, fresh) = lead.take(Wait::Until(Instant::now() + LEAD_WAIT), &shared.stop, false);
            // A camera that paused (unplugged: its own stand-in follows) is
            // not drawn again at once; only after a second without a frame
            // does the canvas go on without it.
            if !fresh && lead_misses < LEAD_MISSES_BEFORE_CLOCK {
                lead_misses += 1;
                continue;
            }
            lead_misses = if fresh { 0 } else { lead_misses };
            let at = input.as_ref().filter(|_| fresh).map_or_else(|| clock.now().as_micros() as u64, |i| i.frame.pts_us);
            taken.push((Arc::as_ptr(lead), input, fresh));
            led = true;
            at
        } else {
            if led {
                // Back on the clock after a live source: the next slot after the last picture.
                tick = last_pts.map_or(0, |t| (u128::from(t) * u128::from(format.fps) / 1_000_000) as u64 + 1);
                led = false;
            }
            let mut at = rate.pts_us_of_frame(tick);
            if !unpaced {
                let lag = clock.now().saturating_sub(Duration::from_micros(at));
                if lag > MAX_TICK_LAG {
                    let behind = lag.as_micros() as u64 / frame_us;
                    tracing::warn!(frames = behind, "composing fell behind the clock; skipping ahead");
                    tick += behind;
                    at = rate.pts_us_of_frame(tick);
                }
                shared.pace(clock, at);
            }
            tick += 1;
            at
        };
        // One picture per source this tick (a source in both scenes of a fade is taken once).
        let fading = fade.as_ref().map(|f| f.from.clone());
        let layers = program.layers.iter().chain(fading.iter().flat_map(|p| p.layers.iter()));
        for layer in layers {
            let key = Arc::as_ptr(&layer.feed);
            if !taken.iter().any(|(k, _, _)| *k == key) {
                let wait = if layer.feed.is_paced() { paced_wait } else { Wait::No };
                let (input, fresh) = layer.feed.take(wait, &shared.stop, true);
                taken.push((key, input, fresh));
            }
        }
        // Never the same millisecond twice, never back.
        let mut due = due;
        if let Some(last) = last_pts
            && due / 1000 <= last / 1000
        {
            due = (last / 1000 + 1) * 1000;
        }
        let input_of = |p: &Program| -> Vec<Option<LayerInput>> {
            p.layers
                .iter()
                .map(|l| taken.iter().find(|(k, _, _)| *k == Arc::as_ptr(&l.feed)).and_then(|(_, i, _)| i.clone()))
                .collect()
        };
        // The picture ran out: every file in it ended and none gave a new picture.
        let fresh_finite = program.layers.iter().any(|l| {
            l.feed.is_finite() && taken.iter().any(|(k, _, fresh)| *k == Arc::as_ptr(&l.feed) && *fresh)
        });
        if program.has_ended() && !fresh_finite {
            shared.detach(true, None);
            ended = true;
            continue;
        }
        let mut picture = free_frame(&mut pool, format);
        let Some(frame) = Arc::get_mut(&mut picture) else { continue };
        let inputs = input_of(&program);
        let hidden = shared.hidden.load(Ordering::Relaxed);
        match &fade {
            Some(f) => {
                let from_inputs = input_of(&f.from);
                let t = (f.drawn + 1) as f32 / f.frames as f32;
                let finished = f.drawn + 1 >= f.frames;
                stage.compose_fade(&f.from.draw_layers(&from_inputs), &program.draw_layers(&inputs), t, frame, hidden);
                if let Some(f) = fade.as_mut() {
                    f.drawn += 1;
                }
                if finished && let Some(done) = fade.take() {
                    retire(done.from);
                }
            }
            None => stage.compose(&program.draw_layers(&inputs), frame, hidden),
        }
        drop(inputs);
        frame.pts_us = due;
        last_pts = Some(due);
        shared.frames.fetch_add(1, Ordering::Relaxed);
        shared.publish_health(true, program.health());
        if pool.len() < FRAME_POOL {
            pool.push(picture.clone());
        }
        let (sink, previewed) = {
            let mut slots = shared.slots();
            slots.newest = Some(picture.clone());
            (slots.video_sink.as_ref().map(|s| (s.tx.clone(), s.offset_us, s.serial)), slots.preview.is_some())
        };
        // The preview thread sleeps while no face asks for pictures.
        if previewed {
            shared.wake.notify_all();
        }
        let Some((tx, offset_us, serial)) = sink else { continue };
        if picture.pts_us < offset_us {
            continue;
        }
        deliver(shared, true, (tx, serial), Picture { frame: picture, offset_us, switched });
        switched = false;
    }
}

/// Waits for a new program or a stop (nothing to draw).
fn idle(shared: &Shared) {
    let slots = shared.slots();
    if slots.next_program.is_none() && !shared.stop.load(Ordering::Relaxed) {
        let _ = shared.wake.wait_timeout(slots, POLL);
    }
}

