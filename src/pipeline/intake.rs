//! The broadcast's end of the capture session: each picture handed to every
//! rendition, each audio block encoded to AAC once and handed to every
//! rendition, until the session's sources end, the media end is reached
//! (`--duration`, or the first file source to run out), or the broadcast stops.

use super::StageError;
use super::counters::PipelineCounters;
use super::renditions::{AudioFan, FrameFan, Renditions};
use crate::capture::pcm::Levels;
use crate::encode::AacEncoder;
use crate::media::{AudioFrame, EncodedPacket};
use crate::session::{AUDIO_RATE, Picture};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};

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

/// The video side: pictures from the session to every rendition.
pub(super) fn run_video(
    pictures: Receiver<Picture>,
    frame_us: u64,
    fast: bool,
    stop: &AtomicBool,
    end: &MediaEnd,
    counters: &PipelineCounters,
    renditions: Arc<Renditions>,
) -> Result<(), StageError> {
    let mut fan = FrameFan::new(renditions.clone(), fast);
    let mut last_us: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        let picture = match pictures.recv_timeout(super::POLL) {
            Ok(p) => p,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                // The session's source ended or failed: so does the video.
                end.cut_at(last_us.map_or(0, |us| us + frame_us));
                break;
            }
        };
        let media_us = picture.media_us();
        if media_us >= end.get() {
            break;
        }
        last_us = Some(media_us);
        counters.video_frames_in.fetch_add(1, Ordering::Relaxed);
        // The first picture after attaching is a keyframe anyway.
        if !fan.send(picture.frame, media_us, picture.switched) {
            break;
        }
    }
    drop(fan);
    renditions.close_video();
    Ok(())
}

/// The audio side: blocks from the session, encoded once, to every rendition.
// The audio thread's inputs, moved in once at spawn: a struct would only rename the list.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_audio(
    blocks: Receiver<AudioFrame>,
    enc: AacEncoder,
    stop: &AtomicBool,
    end: &MediaEnd,
    counters: &PipelineCounters,
    renditions: Arc<Renditions>,
) -> Result<(), StageError> {
    let mut fan = AudioFan::new(renditions.clone());
    let result = encode_audio(blocks, enc, stop, end, counters, &mut fan);
    drop(fan);
    renditions.close_audio();
    result
}

fn encode_audio(
    blocks: Receiver<AudioFrame>,
    mut enc: AacEncoder,
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
    while !stop.load(Ordering::Relaxed) {
        let mut block = match blocks.recv_timeout(super::POLL) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                let origin = first_pts.unwrap_or(0);
                end.cut_at(origin + sent_samples * 1_000_000 / u64::from(AUDIO_RATE));
                break;
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
