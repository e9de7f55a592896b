//! Source + encoder threads: pull frames, pace them to the clock, encode, hand to the muxer.

use super::mux::VideoItem;
use super::settings::{AudioSourceSpec, BroadcastSettings, VideoSourceSpec, AUDIO_CHANNELS, AUDIO_RATE};
use super::stats::PipelineCounters;
use super::PipelineError;
use crate::capture::{AudioSource, Pacer, Silence, TestPattern, Tone, VideoSource};
use crate::encode::{AacEncoder, H264Encoder, VideoOutput};
use crate::media::{EncodedPacket, MediaClock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

pub(super) type BoxedVideo = Box<dyn VideoSource + Send>;
pub(super) type BoxedAudio = Box<dyn AudioSource + Send>;

pub(super) fn open_video(s: &BroadcastSettings) -> Result<BoxedVideo, PipelineError> {
    match s.video {
        VideoSourceSpec::TestPattern => TestPattern::new(s.width, s.height, s.fps)
            .map(|p| Box::new(p) as BoxedVideo)
            .map_err(|e| PipelineError::Capture(e.to_string())),
    }
}

pub(super) fn open_audio(s: &BroadcastSettings) -> Result<BoxedAudio, PipelineError> {
    let src: BoxedAudio = match s.audio {
        AudioSourceSpec::Sine => Box::new(Tone::new(AUDIO_RATE, AUDIO_CHANNELS)),
        AudioSourceSpec::Silence => Box::new(Silence::new(AUDIO_RATE, AUDIO_CHANNELS)),
    };
    Ok(src)
}

/// Sleeps until media time `pts_us` is due on the wall clock (live sources
/// only): that is the pace of a real camera, not test synchronisation.
fn pace(pacer: &Pacer, pts_us: u64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let wait = pacer.delay_until_due(pts_us, Instant::now());
        if wait.is_zero() {
            return;
        }
        std::thread::sleep(wait.min(super::POLL));
    }
}

pub(super) fn run_video(
    mut src: BoxedVideo,
    mut enc: H264Encoder,
    settings: &BroadcastSettings,
    clock: MediaClock,
    stop: &AtomicBool,
    counters: &PipelineCounters,
    tx: SyncSender<VideoItem>,
) -> Result<(), String> {
    let end_us = settings.duration.map(|d| d.as_micros() as u64);
    let pacer = Pacer::new(clock, settings.fast || src.is_live());
    while !stop.load(Ordering::Relaxed) {
        let frame = match src.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(format!("video source: {e}"));
            }
        };
        if end_us.is_some_and(|end| frame.pts_us >= end) {
            break;
        }
        pace(&pacer, frame.pts_us, stop);
        counters.video_frames_in.fetch_add(1, Ordering::Relaxed);
        let output = enc.encode(&frame).map_err(|e| {
            stop.store(true, Ordering::SeqCst);
            e.to_string()
        })?;
        let s = enc.stats();
        counters.video_skipped.store(s.skipped, Ordering::Relaxed);
        counters.video_bitrate_kbps.store(s.bitrate_kbps as u64, Ordering::Relaxed);
        if let VideoOutput::Frame { packet, config } = output {
            if tx.send((packet, config)).is_err() {
                break; // muxer gone: the broadcast is ending
            }
        }
    }
    Ok(())
}

pub(super) fn run_audio(
    mut src: BoxedAudio,
    mut enc: AacEncoder,
    settings: &BroadcastSettings,
    clock: MediaClock,
    stop: &AtomicBool,
    tx: SyncSender<EncodedPacket>,
) -> Result<(), String> {
    let end_sample = settings.duration.map(|d| (d.as_secs_f64() * AUDIO_RATE as f64).round() as u64);
    let mut sent_samples = 0u64;
    let pacer = Pacer::new(clock, settings.fast || src.is_live());
    let send_all = |packets: Vec<EncodedPacket>| packets.into_iter().all(|p| tx.send(p).is_ok());
    while !stop.load(Ordering::Relaxed) {
        let mut block = match src.next_block() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(format!("audio source: {e}"));
            }
        };
        if let Some(end) = end_sample {
            let left = end.saturating_sub(sent_samples) as usize;
            if left == 0 {
                break;
            }
            if block.frames() > left {
                block.samples.truncate(left * block.channels as usize);
            }
        }
        pace(&pacer, block.pts_us, stop);
        sent_samples += block.frames() as u64;
        let packets = enc.encode(&block).map_err(|e| {
            stop.store(true, Ordering::SeqCst);
            e.to_string()
        })?;
        if !send_all(packets) {
            return Ok(());
        }
    }
    let last = enc.finish().map_err(|e| e.to_string())?;
    send_all(last);
    Ok(())
}
