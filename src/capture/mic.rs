//! Microphones (cpal) as a live audio source.
//!
//! The device callback is real-time: it only copies the samples it is given
//! into a lock-free ring (rtrb), notes where that block starts and when it
//! was captured in a second ring, and counts what did not fit. No
//! allocation, lock or log there.
//!
//! Everything else runs on the pipeline's audio thread inside
//! [`MicSource::next_block`]: samples are converted to f32, folded to stereo,
//! steered onto the broadcast clock by a [`DriftCorrector`] (a resampling
//! ratio within ±0.5 %, or dropping/inserting audio for large errors) while
//! being resampled to 48 kHz, and cut into blocks timestamped from the
//! output sample count. If the device stops delivering (stall, unplugged),
//! silence is sent in real time so the broadcast never waits for a
//! microphone, and the event is reported.

use super::drift::{CaptureFloor, Correction, DriftCorrector};
use super::pcm::{BlockCutter, pts_us, to_stereo};
use super::resample::StereoResampler;
use super::{AUDIO_BLOCK_FRAMES, AudioFormat, AudioSource, CaptureError, SourceState, SourceStatus};
use crate::media::{AudioFrame, MediaClock};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Device audio the ring holds: one second absorbs any scheduling hiccup of
/// the audio thread; beyond it samples are dropped and counted.
const RING_SECONDS: usize = 1;

/// Capture-time records the stamp ring holds (one per callback).
const STAMP_RING: usize = 1024;

/// Period asked of the device: 10 ms keeps capture latency low.
const PERIOD_MS: u32 = 10;

/// With nothing from the device for this long, silence is sent instead.
const STALL_AFTER_US: i64 = 200_000;

/// Silence sent for a stalled device stops this far short of real time.
const STALL_FILL_MARGIN_US: i64 = 20_000;

/// How long the audio thread waits between looks at an empty ring.
const RING_POLL: Duration = Duration::from_millis(3);

/// A device producing this many times its nominal rate is not a live device.
const FAST_DEVICE_FACTOR: f64 = 1.5;

/// Re-alignment reports are summed over this long.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// How long opening a device may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// ALSA plugins that are converters or sinks, not sources: listing them as
/// microphones would only confuse (they open, and capture silence).
const NOT_MICROPHONES: &[&str] = &["null", "lavrate", "samplerate", "speexrate", "upmix", "vdownmix", "a52", "speex", "usbstream"];

/// A microphone as `tally devices` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[derive(Default)]
pub struct MicInfo {
    /// Stable id (for ALSA the PCM name, e.g. `hw:CARD=0,DEV=0`); `--audio mic:ID`.
    pub id: String,
    /// Human-readable name; also accepted by `--audio mic:NAME`.
    pub name: String,
    /// Whether it is the system's default input.
    pub is_default: bool,
    /// Sample rates it accepts, as (min, max) ranges in Hz.
    pub rates: Vec<(u32, u32)>,
    /// Channel counts it offers.
    pub channels: Vec<u16>,
    /// Sample formats it offers (cpal's names).
    pub formats: Vec<String>,
}

fn cpal_err(what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Unavailable { device: what.to_string(), reason: e.to_string() }
}

fn describe(dev: &cpal::Device) -> (String, String) {
    let id = dev.id().map(|i| i.id().to_string()).unwrap_or_default();
    let name = dev.description().map(|d| d.name().to_string()).unwrap_or_else(|_| id.clone());
    (id, name)
}

/// Every input device that can be opened for capture now. None (no sound
/// card, as on a headless machine) is an empty list, not an error.
pub fn list_microphones() -> Result<Vec<MicInfo>, CaptureError> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().map(|d| describe(&d).0);
    let devices = match host.input_devices() {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "no audio input devices");
            return Ok(Vec::new());
        }
    };
    let mut out: Vec<MicInfo> = Vec::new();
    for dev in devices {
        let (id, name) = describe(&dev);
        if NOT_MICROPHONES.contains(&id.as_str()) || out.iter().any(|m| m.id == id) {
            continue;
        }
        // Only what can really be opened for capture (a plugin whose server
        // is not running, a playback-only card, fail here).
        let Ok(configs) = dev.supported_input_configs() else { continue };
        let mut info = MicInfo { is_default: default_id.as_deref() == Some(id.as_str()), id, name, ..Default::default() };
        for c in configs {
            let range = (c.min_sample_rate(), c.max_sample_rate());
            if !info.rates.contains(&range) {
                info.rates.push(range);
            }
            if !info.channels.contains(&c.channels()) {
                info.channels.push(c.channels());
            }
            let f = c.sample_format().to_string();
            if !info.formats.contains(&f) {
                info.formats.push(f);
            }
        }
        if info.channels.is_empty() {
            continue;
        }
        info.channels.sort_unstable();
        out.push(info);
    }
    Ok(out)
}


/// Where a block of device audio starts and when it was captured.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    /// Index of its first frame among all frames pushed into the ring.
    frame: u64,
    /// Capture time of that frame, µs since the source's anchor instant.
    capture_us: u64,
}

/// What the callbacks share with the worker (atomics only).
#[derive(Debug, Default)]
struct Shared {
    overrun_frames: AtomicU64,
    callbacks: AtomicU64,
    failed: AtomicBool,
}

/// The worker's side of the sample ring, hiding the device's sample type.
trait SampleRing: Send {
    /// Converts up to `max` samples to f32 and appends them; returns how many.
    fn read(&mut self, max: usize, out: &mut Vec<f32>) -> usize;
}

struct Ring<T>(rtrb::Consumer<T>);

impl<T> SampleRing for Ring<T>
where
    T: cpal::SizedSample + Send + 'static,
    f32: cpal::FromSample<T>,
{
    fn read(&mut self, max: usize, out: &mut Vec<f32>) -> usize {
        let n = self.0.slots().min(max);
        let Ok(chunk) = self.0.read_chunk(n) else { return 0 };
        let (a, b) = chunk.as_slices();
        out.extend(a.iter().chain(b).map(|s| cpal::Sample::to_sample::<f32>(*s)));
        chunk.commit_all();
        n
    }
}

/// A microphone feeding the broadcast.
pub struct MicSource {
    name: String,
    _stream: cpal::Stream,
    ring: Box<dyn SampleRing>,
    stamps: rtrb::Consumer<Stamp>,
    shared: Arc<Shared>,
    status: Arc<SourceStatus>,
    anchor: Instant,
    clock: Option<MediaClock>,
    in_rate: u32,
    channels: usize,
    out_rate: u32,
    resampler: StereoResampler,
    corrector: DriftCorrector,
    cutter: BlockCutter,
    /// Frames taken from the ring so far (same index space as `Stamp::frame`).
    popped: u64,
    /// The capture time of the frames, from the records taken so far.
    floor: CaptureFloor,
    /// Next record, not yet reached.
    next_stamp: Option<Stamp>,
    /// Input frames still to drop (a hard correction bigger than what was there).
    drop_owed: u64,
    last_data_at: Option<Instant>,
    reported_overruns: u64,
    /// Device frames dropped and output frames inserted since the last report.
    realigned: (u64, u64),
    last_report: Option<Instant>,
    popped_at_report: u64,
    /// The next alignment follows a start or a stall and is not reported.
    resyncing: bool,
    stalled: bool,
    native: Vec<f32>,
    stereo: Vec<f32>,
    resampled: Vec<f32>,
}

impl std::fmt::Debug for MicSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicSource").field("name", &self.name).field("in_rate", &self.in_rate).finish_non_exhaustive()
    }
}

fn find_device(selector: Option<&str>) -> Result<cpal::Device, CaptureError> {
    let host = cpal::default_host();
    let available = || list_microphones().unwrap_or_default().into_iter().map(|m| format!("{} ({})", m.id, m.name)).collect();
    let Some(want) = selector else {
        return host.default_input_device().ok_or_else(|| CaptureError::DeviceNotFound {
            requested: "the default microphone".into(),
            available: available(),
        });
    };
    let devices: Vec<cpal::Device> = host.input_devices().map(|d| d.collect()).unwrap_or_default();
    let named: Vec<(String, String)> = devices.iter().map(describe).collect();
    let lower = want.to_lowercase();
    let pick = named
        .iter()
        .position(|(id, _)| id == want)
        .or_else(|| named.iter().position(|(_, name)| name == want))
        .or_else(|| named.iter().position(|(id, name)| id.to_lowercase().contains(&lower) || name.to_lowercase().contains(&lower)));
    match pick.and_then(|i| devices.into_iter().nth(i)) {
        Some(d) => Ok(d),
        None => Err(CaptureError::DeviceNotFound { requested: format!("microphone '{want}'"), available: available() }),
    }
}

impl MicSource {
    /// Opens the microphone `selector` names (id, exact name, or part of
    /// either), or the default one; delivers `out_rate` Hz stereo.
    pub fn open(selector: Option<&str>, out_rate: u32) -> Result<Self, CaptureError> {
        let device = find_device(selector)?;
        let (id, name) = describe(&device);
        let supported = device.default_input_config().map_err(|e| cpal_err(&format!("microphone '{id}'"), e))?;
        let in_rate = supported.sample_rate();
        let channels = usize::from(supported.channels());
        if channels == 0 || in_rate == 0 {
            return Err(CaptureError::Format(format!("microphone '{id}' reports {channels} channels at {in_rate} Hz")));
        }
        let shared = Arc::new(Shared::default());
        let anchor = Instant::now();
        let period = in_rate * PERIOD_MS / 1000;
        let fixed_ok = match supported.buffer_size() {
            cpal::SupportedBufferSize::Range { min, max } => (*min..=*max).contains(&period),
            cpal::SupportedBufferSize::Unknown => true,
        };
        let mut last_err = None;
        // A 10 ms period where the device allows it; its own default otherwise.
        let sizes: &[cpal::BufferSize] =
            if fixed_ok { &[cpal::BufferSize::Fixed(period), cpal::BufferSize::Default] } else { &[cpal::BufferSize::Default] };
        for &buffer_size in sizes {
            let config = cpal::StreamConfig { channels: supported.channels(), sample_rate: in_rate, buffer_size };
            match build(&device, config, supported.sample_format(), channels, in_rate, &shared, anchor) {
                Ok((stream, ring, stamps)) => {
                    stream.play().map_err(|e| cpal_err(&format!("starting microphone '{id}'"), e))?;
                    let label = if name == id { id.clone() } else { format!("{name} ({id})") };
                    tracing::info!(microphone = %label, rate = in_rate, channels, format = %supported.sample_format(), ?buffer_size, "microphone open");
                    let status = Arc::new(SourceStatus::new(&format!("microphone {label}")));
                    return Ok(MicSource {
                        name: label,
                        _stream: stream,
                        ring,
                        stamps,
                        shared,
                        status,
                        anchor,
                        clock: None,
                        in_rate,
                        channels,
                        out_rate,
                        resampler: StereoResampler::new(in_rate, out_rate, true)?,
                        corrector: DriftCorrector::new(in_rate, out_rate),
                        cutter: BlockCutter::new(out_rate, AUDIO_BLOCK_FRAMES),
                        popped: 0,
                        floor: CaptureFloor::new(in_rate),
                        next_stamp: None,
                        drop_owed: 0,
                        last_data_at: None,
                        reported_overruns: 0,
                        realigned: (0, 0),
                        last_report: None,
                        popped_at_report: 0,
                        resyncing: true,
                        stalled: false,
                        native: Vec::new(),
                        stereo: Vec::new(),
                        resampled: Vec::new(),
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| CaptureError::Format(format!("microphone '{id}' could not be opened"))))
    }

    /// Media time now, µs (relative to the anchor before the clock starts).
    fn now_us(&self, at: Instant) -> i64 {
        match self.clock {
            Some(c) => signed_us(at, c.origin()),
            None => signed_us(at, self.anchor),
        }
    }

    /// Capture time of ring frame `frame` on the media clock, µs.
    fn capture_time_us(&self, frame: u64) -> Option<i64> {
        let captured = self.floor.capture_us(frame)?;
        let anchor_on_clock = match self.clock {
            Some(c) => signed_us(self.anchor, c.origin()),
            None => 0,
        };
        Some(captured + anchor_on_clock)
    }

    /// Moves the capture-time record forward to cover `frame`.
    fn advance_stamps(&mut self, frame: u64) {
        loop {
            if self.next_stamp.is_none() {
                self.next_stamp = self.stamps.pop().ok();
            }
            match self.next_stamp {
                Some(n) if n.frame <= frame => {
                    self.floor.record(n.frame, n.capture_us as i64);
                    self.next_stamp = None;
                }
                _ => return,
            }
        }
    }

    /// Takes what the device delivered, steers it onto the clock and adds it to the cutter.
    fn pump(&mut self) -> Result<usize, CaptureError> {
        self.native.clear();
        let max = self.in_rate as usize * self.channels / 10;
        let n = self.ring.read(max - max % self.channels, &mut self.native);
        let frames = n / self.channels;
        if frames == 0 {
            return Ok(0);
        }
        self.last_data_at = Some(Instant::now());
        // The first alignment after a start or a stall is expected, not news.
        if self.stalled {
            self.resyncing = true;
            self.floor.clear();
        }
        let first = self.popped;
        self.popped += frames as u64;
        // Every record for what was just taken: the latest of a burst is the truest.
        self.advance_stamps(self.popped - 1);
        self.stereo.clear();
        to_stereo(&self.native, self.channels, &mut self.stereo);
        let mut start = 0usize;
        // Owed drops come first; no new decision until they are done.
        let owed = (self.drop_owed as usize).min(frames);
        start += owed;
        self.drop_owed -= owed as u64;
        // The first input frame not yet resampled, and when it was captured.
        let next_in = first + start as u64 - self.resampler.pending_input_frames() as u64;
        let decide = self.drop_owed == 0 && start < frames;
        if let Some(captured) = self.capture_time_us(next_in).filter(|_| decide) {
            let out_frames = self.cutter.emitted_frames() + self.cutter.pending_frames() as u64;
            let next_pts = pts_us(out_frames, self.out_rate) as i64;
            let now = self.now_us(Instant::now());
            let decision = self.corrector.update(next_pts, captured, now);
            match decision {
                Correction::Ratio(r) => self.resampler.set_relative_ratio(r),
                Correction::DropInput(k) => {
                    let here = (k as usize).min(frames - start);
                    start += here;
                    self.drop_owed += k - here as u64;
                    if !self.resyncing {
                        self.realigned.0 += k;
                    }
                }
                Correction::InsertSilence(k) => {
                    self.cutter.push_silence(k as usize);
                    if !self.resyncing {
                        self.realigned.1 += k;
                    }
                }
            }
        }
        if decide {
            self.resyncing = false;
        }
        self.resampled.clear();
        self.resampler.process(&self.stereo[2 * start..], &mut self.resampled)?;
        self.cutter.push(&self.resampled);
        Ok(frames)
    }

    /// Logs what went wrong since the last report: overruns, re-alignments,
    /// a device far faster than real time. A broken device can cause these
    /// hundreds of times a second, so they are summed and logged at most
    /// every [`REPORT_EVERY`]; the counters in the status are always current.
    fn report(&mut self) {
        let overruns = self.shared.overrun_frames.load(Ordering::Relaxed);
        if overruns > self.reported_overruns {
            self.status.overruns.fetch_add(overruns - self.reported_overruns, Ordering::Relaxed);
        }
        let now = Instant::now();
        let window = self.last_report.map_or(Duration::ZERO, |t| now - t);
        if self.last_report.is_some() && window < REPORT_EVERY {
            return;
        }
        let lost = overruns - self.reported_overruns;
        // Frames the device produced in the window: what we took plus what it lost.
        let produced = self.popped - self.popped_at_report + lost;
        let expected = window.as_secs_f64() * f64::from(self.in_rate);
        if expected > 0.0 && produced as f64 > expected * FAST_DEVICE_FACTOR {
            tracing::warn!(
                microphone = %self.name,
                "microphone delivers audio {:.0}x faster than real time (not a live device? a file or null ALSA PCM?); \
                 Tally keeps real time and discards the excess",
                produced as f64 / expected
            );
        } else if lost > 0 {
            tracing::warn!(
                microphone = %self.name,
                lost_ms = lost * 1000 / u64::from(self.in_rate),
                "microphone overrun: Tally fell behind the device and its samples were lost"
            );
        }
        let (dropped, inserted) = self.realigned;
        if dropped > 0 || inserted > 0 {
            tracing::warn!(
                microphone = %self.name,
                dropped_ms = dropped * 1000 / u64::from(self.in_rate),
                inserted_ms = inserted * 1000 / u64::from(self.out_rate),
                "microphone clock jumped; audio re-aligned to the video"
            );
        }
        self.realigned = (0, 0);
        self.reported_overruns = overruns;
        self.popped_at_report = self.popped;
        self.last_report = Some(now);
    }
}

fn signed_us(at: Instant, origin: Instant) -> i64 {
    if at >= origin { (at - origin).as_micros() as i64 } else { -((origin - at).as_micros() as i64) }
}

type Built = (cpal::Stream, Box<dyn SampleRing>, rtrb::Consumer<Stamp>);

fn build(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    format: cpal::SampleFormat,
    channels: usize,
    rate: u32,
    shared: &Arc<Shared>,
    anchor: Instant,
) -> Result<Built, CaptureError> {
    use cpal::SampleFormat as F;
    match format {
        F::I8 => build_typed::<i8>(device, config, channels, rate, shared, anchor),
        F::I16 => build_typed::<i16>(device, config, channels, rate, shared, anchor),
        F::I24 => build_typed::<cpal::I24>(device, config, channels, rate, shared, anchor),
        F::I32 => build_typed::<i32>(device, config, channels, rate, shared, anchor),
        F::U8 => build_typed::<u8>(device, config, channels, rate, shared, anchor),
        F::U16 => build_typed::<u16>(device, config, channels, rate, shared, anchor),
        F::U32 => build_typed::<u32>(device, config, channels, rate, shared, anchor),
        F::F32 => build_typed::<f32>(device, config, channels, rate, shared, anchor),
        F::F64 => build_typed::<f64>(device, config, channels, rate, shared, anchor),
        other => Err(CaptureError::Format(format!("microphone sample format {other} is not supported"))),
    }
}

fn build_typed<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    channels: usize,
    rate: u32,
    shared: &Arc<Shared>,
    anchor: Instant,
) -> Result<Built, CaptureError>
where
    T: cpal::SizedSample + Send + 'static,
    f32: cpal::FromSample<T>,
{
    let (mut samples_tx, samples_rx) = rtrb::RingBuffer::<T>::new(rate as usize * channels * RING_SECONDS);
    let (mut stamps_tx, stamps_rx) = rtrb::RingBuffer::<Stamp>::new(STAMP_RING);
    let mut pushed_frames = 0u64;
    let data_shared = shared.clone();
    let err_shared = shared.clone();
    // Real-time callback: copies, counts, and reads the clock; nothing else.
    let on_data = move |data: &[T], info: &cpal::InputCallbackInfo| {
        data_shared.callbacks.fetch_add(1, Ordering::Relaxed);
        // The block's first frame was captured one block-length ago. cpal's
        // own capture timestamp is not used: ALSA plugins (pulse, dsnoop)
        // report buffer depths as latency, which would shift audio by up to
        // a second against the video.
        let _ = info;
        let block = std::time::Duration::from_micros((data.len() / channels) as u64 * 1_000_000 / u64::from(rate));
        let captured = Instant::now().checked_sub(block).unwrap_or(anchor);
        let capture_us = captured.saturating_duration_since(anchor).as_micros() as u64;
        let room = samples_tx.slots() / channels * channels;
        let take = data.len().min(room) / channels * channels;
        if take > 0 {
            // A full stamp ring only costs timing precision, never samples.
            let _ = stamps_tx.push(Stamp { frame: pushed_frames, capture_us });
            let (_pushed, _rest) = samples_tx.push_partial_slice(&data[..take]);
            pushed_frames += (take / channels) as u64;
        }
        if take < data.len() {
            data_shared.overrun_frames.fetch_add(((data.len() - take) / channels) as u64, Ordering::Relaxed);
        }
    };
    let on_error = move |_e: cpal::Error| {
        err_shared.failed.store(true, Ordering::SeqCst);
    };
    let stream = device
        .build_input_stream::<T, _, _>(config, on_data, on_error, Some(OPEN_TIMEOUT))
        .map_err(|e| cpal_err("opening the microphone", e))?;
    Ok((stream, Box::new(Ring(samples_rx)), stamps_rx))
}

impl AudioSource for MicSource {
    fn format(&self) -> AudioFormat {
        AudioFormat { sample_rate: self.out_rate, channels: 2 }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn start(&mut self, clock: MediaClock) {
        self.clock = Some(clock);
        // A device gets STALL_AFTER_US to deliver its first samples.
        self.last_data_at.get_or_insert_with(Instant::now);
    }

    fn status(&self) -> Option<Arc<SourceStatus>> {
        Some(self.status.clone())
    }

    fn next_block(&mut self) -> Result<Option<AudioFrame>, CaptureError> {
        loop {
            if let Some(block) = self.cutter.pop() {
                return Ok(Some(block));
            }
            let got = self.pump()?;
            self.report();
            if got > 0 {
                if self.stalled {
                    self.stalled = false;
                    tracing::info!(microphone = %self.name, "microphone delivering again");
                    self.status.set(SourceState::Live);
                }
                if self.status.state() != SourceState::Live && !self.shared.failed.load(Ordering::Relaxed) {
                    self.status.set(SourceState::Live);
                }
                continue;
            }
            let now = Instant::now();
            let now_us = self.now_us(now);
            let next_pts = pts_us(self.cutter.emitted_frames() + self.cutter.pending_frames() as u64, self.out_rate) as i64;
            let failed = self.shared.failed.load(Ordering::Relaxed);
            let quiet_for = self.last_data_at.map_or(i64::MAX, |t| signed_us(now, t));
            if failed || quiet_for > STALL_AFTER_US {
                if !self.stalled {
                    self.stalled = true;
                    let why = if failed { "microphone disconnected" } else { "microphone stopped delivering" };
                    tracing::warn!(microphone = %self.name, "{why}; sending silence");
                    self.status.set(SourceState::Fallback(format!("{why}; sending silence")));
                }
                // Silence in real time up to a little before now, so the
                // broadcast keeps going and audio that resumes is not "late".
                let behind = now_us - STALL_FILL_MARGIN_US - next_pts;
                if behind > 0 {
                    let frames = (behind as u64 * u64::from(self.out_rate) / 1_000_000) as usize;
                    self.cutter.push_silence(frames.max(1));
                    self.corrector.inserted_frames += frames as u64;
                    continue;
                }
            }
            std::thread::sleep(RING_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_default_microphone_is_a_clear_error() {
        // These machines have no sound card; where one exists this opens it.
        match MicSource::open(None, 48_000) {
            Ok(m) => assert!(!m.name.is_empty()),
            Err(e) => assert!(e.to_string().contains("microphone"), "{e}"),
        }
        let e = MicSource::open(Some("no-such-microphone-xyz"), 48_000).unwrap_err();
        assert!(e.to_string().contains("no-such-microphone-xyz"), "{e}");
    }
}
