//! The sound's thread: the audio source pulled, stamped on the session's
//! timeline, mixed by the stage, measured for the meters, sent.

use super::*;

/// The audio source's place on the session's timeline: its own stamps
/// plus the offset that continues the previous source's. (Pictures need
/// none: the tick stamps each canvas with its own time.)
#[derive(Default)]
struct Timeline {
    offset_us: u64,
    /// Where the next block is due at the earliest.
    next_us: u64,
}

impl Timeline {
    /// A new source from now on: a live one stamps by capture time (already
    /// continuous), a synthetic or file one counts from 0 and is moved to now.
    fn restart(&mut self, live: bool, clock: MediaClock) {
        self.offset_us = if live { 0 } else { self.next_us.max(clock.now().as_micros() as u64) };
    }

    /// The session's stamp of an audio block of `frames` samples (sample
    /// counts are continuous by themselves).
    fn audio_stamp(&mut self, pts_us: u64, frames: usize) -> u64 {
        let pts = pts_us + self.offset_us;
        self.next_us = pts + frames as u64 * 1_000_000 / u64::from(AUDIO_RATE);
        pts
    }
}

/// What a capture thread pulls from: started on the session clock, live or not.
trait Pulled {
    fn start(&mut self, clock: MediaClock);
    fn is_live(&self) -> bool;
}

impl Pulled for BoxedAudio {
    fn start(&mut self, clock: MediaClock) {
        crate::capture::AudioSource::start(self.as_mut(), clock);
    }
    fn is_live(&self) -> bool {
        crate::capture::AudioSource::is_live(self.as_ref())
    }
}

/// One capture thread's source and what happens to it: a switch, its end,
/// a failure — the same for the picture and the sound.
struct Track<S> {
    source: S,
    time: Timeline,
    /// The source ran out (a file): nothing is pulled until a switch.
    ended: bool,
    video: bool,
}

impl<S: Pulled> Track<S> {
    fn new(mut source: S, clock: MediaClock, video: bool) -> Self {
        source.start(clock);
        Track { source, time: Timeline::default(), ended: false, video }
    }

    /// Takes up the replacement a switch left, if any: true when the source changed.
    fn switch(&mut self, next: Option<S>, clock: MediaClock) -> bool {
        let Some(mut next) = next else { return false };
        next.start(clock);
        self.time.restart(next.is_live(), clock);
        self.source = next;
        self.ended = false;
        true
    }

    /// The source ran out: the attached broadcast's stream ends here (the
    /// preview freezes); the thread waits for a switch.
    fn end(&mut self, shared: &Shared) {
        shared.detach(self.video, None);
        self.ended = true;
    }

    /// A source that failed while running (a camera unplugged for good, a
    /// broken file) is replaced by `stand_in` saying so, on the same
    /// timeline: the stream stays up, the preview shows it, the state says why.
    fn replace_failed(&mut self, mut stand_in: S, clock: MediaClock, shared: &Shared) {
        stand_in.start(clock);
        self.time.restart(false, clock);
        self.source = stand_in;
        shared.report_health(self.video);
    }

    /// Waits for a switch or a stop while the source has ended: true when
    /// there is nothing to pull.
    fn idle(&self, shared: &Shared) -> bool {
        if self.ended {
            let slots = shared.slots();
            if !shared.stop.load(Ordering::Relaxed) {
                let _ = shared.wake.wait_timeout(slots, POLL);
            }
        }
        self.ended
    }
}


pub(super) fn audio_loop(source: BoxedAudio, shared: &Shared) {
    let Some(clock) = shared.clock() else { return };
    let mut track = Track::new(source, clock, false);
    let mut stage = stage::AudioStage;
    let mut serial = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let next = shared.slots().next_audio.take();
        track.switch(next, clock);
        if track.idle(shared) {
            continue;
        }
        let mut block = match track.source.next_block() {
            Ok(Some(b)) if b.sample_rate == AUDIO_RATE && b.channels == AUDIO_CHANNELS => b,
            Ok(Some(b)) => {
                tracing::error!(rate = b.sample_rate, channels = b.channels, "audio source: not 48 kHz stereo");
                track.end(shared);
                continue;
            }
            Ok(None) => {
                track.end(shared);
                continue;
            }
            Err(e) => {
                tracing::error!("audio source failed: {e}; silence goes out instead");
                shared.fail_audio(format!("failed: {e}"));
                track.replace_failed(Box::new(crate::capture::Silence::new(AUDIO_RATE, AUDIO_CHANNELS)), clock, shared);
                continue;
            }
        };
        block.pts_us = track.time.audio_stamp(block.pts_us, block.frames());
        shared.report_health(false);
        stage.mix(&mut block, shared.muted.load(Ordering::Relaxed) || shared.scene_muted.load(Ordering::Relaxed));
        if !track.source.is_live() {
            shared.pace(clock, block.pts_us);
        }
        let channels = usize::from(block.channels);
        let mut at_us = block.pts_us;
        for slice in block.samples.chunks(LEVEL_SLICE_FRAMES * channels) {
            serial += 1;
            at_us += (slice.len() / channels) as u64 * 1_000_000 / u64::from(AUDIO_RATE);
            let mut levels = AudioLevels::measure(slice, channels, serial);
            levels.media_us = at_us;
            shared.feeds.levels(levels);
        }
        let sink = shared.slots().audio_sink.as_ref().map(|s| (s.tx.clone(), s.offset_us, s.serial));
        let Some((tx, offset_us, attached)) = sink else { continue };
        // Onto the broadcast's media time; a block that began before the
        // broadcast keeps only its samples from then on.
        let late = offset_us.saturating_sub(block.pts_us);
        let skip = (late as u128 * u128::from(AUDIO_RATE) / 1_000_000) as usize * channels;
        if skip >= block.samples.len() {
            continue;
        }
        block.samples.drain(..skip);
        block.pts_us = block.pts_us.max(offset_us) - offset_us;
        deliver(shared, false, (tx, attached), block);
    }
}

