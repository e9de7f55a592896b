//! Source + encoder threads: open the sources (with the fallbacks a streamer
//! expects), pull frames, pace file and synthetic sources to the clock,
//! encode, hand to the muxer.

use super::{PipelineError, StageError};
use super::renditions::{AudioFan, FrameFan, Renditions};
use super::settings::{AUDIO_CHANNELS, AUDIO_RATE, AudioSourceSpec, BroadcastSettings, VideoSourceSpec};
use super::counters::PipelineCounters;
use crate::capture::pcm::Levels;
use crate::capture::{
    AudioSource, CameraSource, MicSource, Pacer, Silence, SourceStatus, TestPattern, Tone, VideoSource, WavSource,
    Y4mSource, list_cameras,
};
use crate::encode::AacEncoder;
use crate::media::{EncodedPacket, MediaClock, VideoFrame};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

pub(super) type BoxedVideo = Box<dyn VideoSource + Send>;
pub(super) type BoxedAudio = Box<dyn AudioSource + Send>;

/// An opened source and the status the stats report for it.
pub(super) struct Opened<S> {
    pub source: S,
    pub status: Arc<SourceStatus>,
}

fn capture_err(e: crate::capture::CaptureError) -> PipelineError {
    PipelineError::Capture(e)
}

fn test_pattern(s: &BroadcastSettings) -> Result<Opened<BoxedVideo>, PipelineError> {
    let src = TestPattern::new(s.width, s.height, s.fps).map_err(capture_err)?;
    Ok(Opened { source: Box::new(src), status: Arc::new(SourceStatus::new("test pattern")) })
}

/// Luma noise of the `noise` source: enough that openh264 needs all of any
/// bitrate a destination takes (2.5 Mbit/s at 720p and well beyond).
const NOISE_AMPLITUDE: u8 = 40;

/// Opens the video source. `auto` falls back to the test pattern with a
/// notice when there is no camera; an explicitly named camera that does not
/// exist is an error listing those that do.
pub(super) fn open_video(s: &BroadcastSettings) -> Result<Opened<BoxedVideo>, PipelineError> {
    match &s.video {
        VideoSourceSpec::TestPattern => test_pattern(s),
        VideoSourceSpec::Noise => {
            let src = TestPattern::new(s.width, s.height, s.fps).map_err(capture_err)?.with_noise(NOISE_AMPLITUDE);
            Ok(Opened { source: Box::new(src), status: Arc::new(SourceStatus::new("noisy test pattern")) })
        }
        VideoSourceSpec::Auto => {
            let cameras = list_cameras().unwrap_or_default();
            if cameras.is_empty() {
                tracing::warn!("notice: no camera found; sending the test pattern");
                return test_pattern(s);
            }
            match CameraSource::open(None, s.width, s.height, s.fps) {
                Ok(cam) => {
                    let status = VideoSource::status(&cam).unwrap_or_else(|| Arc::new(SourceStatus::new("camera")));
                    Ok(Opened { source: Box::new(cam), status })
                }
                Err(e) => {
                    tracing::warn!("notice: the camera could not be opened ({e}); sending the test pattern");
                    test_pattern(s)
                }
            }
        }
        VideoSourceSpec::Camera(index) => {
            let cam = CameraSource::open(*index, s.width, s.height, s.fps).map_err(capture_err)?;
            let status = VideoSource::status(&cam).unwrap_or_else(|| Arc::new(SourceStatus::new("camera")));
            Ok(Opened { source: Box::new(cam), status })
        }
        VideoSourceSpec::Y4m(path) => {
            let src = Y4mSource::open(path, s.width, s.height, s.looping).map_err(capture_err)?;
            let status = Arc::new(SourceStatus::new(&format!("y4m:{}", path.display())));
            Ok(Opened { source: Box::new(src), status })
        }
    }
}

/// Opens the audio source; `auto` falls back to silence with a notice.
pub(super) fn open_audio(s: &BroadcastSettings) -> Result<Opened<BoxedAudio>, PipelineError> {
    let simple = |src: BoxedAudio, name: &str| Ok(Opened { source: src, status: Arc::new(SourceStatus::new(name)) });
    match &s.audio {
        AudioSourceSpec::Sine => simple(Box::new(Tone::new(AUDIO_RATE, AUDIO_CHANNELS)), "tone"),
        AudioSourceSpec::Silence => simple(Box::new(Silence::new(AUDIO_RATE, AUDIO_CHANNELS)), "silence"),
        AudioSourceSpec::Auto => match MicSource::open(None, AUDIO_RATE) {
            Ok(mic) => {
                let status = AudioSource::status(&mic).unwrap_or_else(|| Arc::new(SourceStatus::new("microphone")));
                Ok(Opened { source: Box::new(mic), status })
            }
            Err(e) => {
                tracing::warn!("notice: no usable microphone ({e}); sending silence");
                simple(Box::new(Silence::new(AUDIO_RATE, AUDIO_CHANNELS)), "silence (no microphone)")
            }
        },
        AudioSourceSpec::Mic(name) => {
            let mic = MicSource::open(name.as_deref(), AUDIO_RATE).map_err(capture_err)?;
            let status = AudioSource::status(&mic).unwrap_or_else(|| Arc::new(SourceStatus::new("microphone")));
            Ok(Opened { source: Box::new(mic), status })
        }
        AudioSourceSpec::Wav(path) => {
            let src = WavSource::open(path, AUDIO_RATE, s.looping).map_err(capture_err)?;
            simple(Box::new(src), &format!("wav:{}", path.display()))
        }
    }
}

/// Where the broadcast's media ends: `--duration`, or the end of the first
/// file source to run out (the other stream stops there too, like ffmpeg's
/// `-shortest`), in µs of media time.
#[derive(Debug)]
pub(super) struct MediaEnd(AtomicU64);

impl MediaEnd {
    pub fn new(duration_us: Option<u64>) -> Self {
        MediaEnd(AtomicU64::new(duration_us.unwrap_or(u64::MAX)))
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// Lowers the end to `us` (never raises it).
    pub fn cut_at(&self, us: u64) {
        self.0.fetch_min(us, Ordering::SeqCst);
    }
}

/// Sleeps until media time `pts_us` is due on the wall clock (non-live
/// sources only): that is the pace of a real camera, not test synchronisation.
fn pace(pacer: &Pacer, pts_us: u64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let wait = pacer.delay_until_due(pts_us, Instant::now());
        if wait.is_zero() {
            return;
        }
        std::thread::sleep(wait.min(super::POLL));
    }
}

/// A video frame for an attached broadcast.
pub(super) struct SessionVideo {
    pub frame: Arc<VideoFrame>,
    /// The first frame of a new source: the encoder starts a keyframe here.
    pub switched: bool,
}

/// Where the video encoder thread gets its frames: a source it owns and
/// paces itself (the command line, `--fast`), or a capture session it is
/// attached to (already paced, rebased here to the broadcast's media time).
pub(super) enum VideoInput {
    Own(BoxedVideo),
    Attached { rx: std::sync::mpsc::Receiver<SessionVideo>, origin_us: u64 },
}

/// Where the audio encoder thread gets its blocks; see [`VideoInput`].
pub(super) enum AudioInput {
    Own(BoxedAudio),
    Attached { rx: std::sync::mpsc::Receiver<crate::media::AudioFrame>, origin_us: u64 },
}

/// The capture side of the video: frames from the source (paced when it
/// is not live) or from the capture session, handed to every rendition.
pub(super) fn run_video(
    input: VideoInput,
    settings: &BroadcastSettings,
    clock: MediaClock,
    stop: &AtomicBool,
    end: &MediaEnd,
    counters: &PipelineCounters,
    renditions: Arc<Renditions>,
) -> Result<(), StageError> {
    let mut fan = FrameFan::new(renditions.clone(), settings.fast);
    let result = distribute(input, settings, clock, stop, end, counters, &mut fan);
    drop(fan);
    renditions.close_video();
    result
}

fn distribute(
    input: VideoInput,
    settings: &BroadcastSettings,
    clock: MediaClock,
    stop: &AtomicBool,
    end: &MediaEnd,
    counters: &PipelineCounters,
    fan: &mut FrameFan,
) -> Result<(), StageError> {
    let mut send = |frame: Arc<VideoFrame>, keyframe: bool| {
        counters.video_frames_in.fetch_add(1, Ordering::Relaxed);
        fan.send(frame, keyframe)
    };
    let mut last_ms: Option<u64> = None;
    let mut src = match input {
        VideoInput::Own(src) => src,
        VideoInput::Attached { rx, origin_us } => {
            let frame_us = 1_000_000 / u64::from(settings.fps.max(1));
            while !stop.load(Ordering::Relaxed) {
                let Ok(item) = rx.recv_timeout(super::POLL) else {
                    if matches!(rx.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected)) {
                        // The session's source ended or failed: so does the video.
                        end.cut_at(last_ms.map_or(0, |ms| ms * 1000 + frame_us));
                        break;
                    }
                    continue;
                };
                if item.frame.pts_us < origin_us {
                    continue;
                }
                let mut frame = (*item.frame).clone();
                frame.pts_us -= origin_us;
                if frame.pts_us >= end.get() {
                    break;
                }
                // Never repeat or go back a millisecond (FLV's resolution).
                if let Some(last) = last_ms
                    && frame.pts_us / 1000 <= last
                {
                    frame.pts_us = (last + 1) * 1000;
                }
                last_ms = Some(frame.pts_us / 1000);
                // The first frame after attaching is a keyframe anyway.
                if !send(Arc::new(frame), item.switched) {
                    break;
                }
            }
            return Ok(());
        }
    };
    src.start(clock);
    let live = src.is_live();
    let pacer = Pacer::new(clock, settings.fast || live);
    let frame_us = src.format().frame_rate.pts_us_of_frame(1).max(1);
    // The frame the source fills is handed to the renditions as it is; it
    // is filled again once they are done with it (each fill writes the whole
    // picture), else a new one is made: no copy per frame.
    let mut current = Arc::new(VideoFrame::black(settings.width, settings.height, 0));
    while !stop.load(Ordering::Relaxed) {
        if Arc::get_mut(&mut current).is_none() {
            current = Arc::new(VideoFrame::black(settings.width, settings.height, 0));
        }
        let Some(frame) = Arc::get_mut(&mut current) else { continue };
        match src.fill_next(frame) {
            Ok(true) => {}
            Ok(false) => {
                // A file ended: the audio ends at the same media time.
                let end_at = last_ms.map_or(0, |ms| ms * 1000 + frame_us);
                end.cut_at(end_at);
                break;
            }
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(StageError::VideoSource(e));
            }
        }
        if frame.pts_us >= end.get() {
            break;
        }
        // Live sources stamp by capture time: never repeat or go back a
        // millisecond (FLV's resolution).
        if let Some(last) = last_ms
            && frame.pts_us / 1000 <= last
        {
            frame.pts_us = (last + 1) * 1000;
        }
        last_ms = Some(frame.pts_us / 1000);
        pace(&pacer, frame.pts_us, stop);
        if !send(current.clone(), false) {
            break;
        }
    }
    Ok(())
}

// The audio thread's inputs, moved in once at spawn: a struct would only rename the list.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_audio(
    input: AudioInput,
    enc: AacEncoder,
    settings: &BroadcastSettings,
    clock: MediaClock,
    stop: &AtomicBool,
    end: &MediaEnd,
    counters: &PipelineCounters,
    renditions: Arc<Renditions>,
) -> Result<(), StageError> {
    let mut fan = AudioFan::new(renditions.clone());
    let result = encode_audio(input, enc, settings, clock, stop, end, counters, &mut fan);
    drop(fan);
    renditions.close_audio();
    result
}

// run_audio's arguments, with the fan it closes after this returns: same list.
#[allow(clippy::too_many_arguments)]
fn encode_audio(
    input: AudioInput,
    mut enc: AacEncoder,
    settings: &BroadcastSettings,
    clock: MediaClock,
    stop: &AtomicBool,
    end: &MediaEnd,
    counters: &PipelineCounters,
    fan: &mut AudioFan,
) -> Result<(), StageError> {
    let mut sent_samples = 0u64;
    let mut send_all = |packets: Vec<EncodedPacket>| {
        packets.into_iter().all(|p| {
            counters.audio_bytes.fetch_add(p.data.len() as u64, Ordering::Relaxed);
            fan.send(p)
        })
    };
    let mut first_pts: Option<u64> = None;
    let (mut own, attached, pacer) = match input {
        AudioInput::Own(mut src) => {
            src.start(clock);
            let pacer = Pacer::new(clock, settings.fast || src.is_live());
            (Some(src), None, Some(pacer))
        }
        AudioInput::Attached { rx, origin_us } => (None, Some((rx, origin_us)), None),
    };
    while !stop.load(Ordering::Relaxed) {
        let next = match (&mut own, &attached) {
            (Some(src), _) => src.next_block().map_err(StageError::AudioSource),
            (None, Some((rx, origin_us))) => match rx.recv_timeout(super::POLL) {
                Ok(mut block) => {
                    // Rebased onto the broadcast's clock; a block that began
                    // before the broadcast keeps only its samples from then on.
                    let late = origin_us.saturating_sub(block.pts_us);
                    let skip = (late as u128 * u128::from(AUDIO_RATE) / 1_000_000) as usize * usize::from(block.channels);
                    if skip >= block.samples.len() {
                        continue;
                    }
                    block.samples.drain(..skip);
                    block.pts_us = block.pts_us.max(*origin_us) - origin_us;
                    Ok(Some(block))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            },
            (None, None) => Ok(None),
        };
        let mut block = match next {
            Ok(Some(b)) => b,
            Ok(None) => {
                let origin = first_pts.unwrap_or(0);
                end.cut_at(origin + sent_samples * 1_000_000 / u64::from(AUDIO_RATE));
                break;
            }
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        let origin = *first_pts.get_or_insert(block.pts_us);
        let end_us = end.get();
        if end_us != u64::MAX {
            let end_sample = (end_us.saturating_sub(origin) as f64 * f64::from(AUDIO_RATE) / 1e6).round() as u64;
            let left = end_sample.saturating_sub(sent_samples) as usize;
            if left == 0 {
                break;
            }
            if block.frames() > left {
                block.samples.truncate(left * block.channels as usize);
            }
        }
        if let Some(p) = &pacer {
            pace(p, block.pts_us, stop);
        }
        sent_samples += block.frames() as u64;
        let levels = Levels::of_i16(&block.samples);
        counters.audio_peak.store(levels.peak.to_bits(), Ordering::Relaxed);
        counters.audio_rms.store(levels.rms.to_bits(), Ordering::Relaxed);
        let packets = enc.encode(&block).map_err(|e| {
            stop.store(true, Ordering::SeqCst);
            StageError::AudioEncoder(e)
        })?;
        if !send_all(packets) {
            return Ok(());
        }
    }
    let last = enc.finish().map_err(StageError::AudioEncoder)?;
    send_all(last);
    Ok(())
}
