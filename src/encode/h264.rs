//! H.264 encoding with openh264 (Constrained Baseline, no B-frames).

use super::EncodeError;
use crate::media::{Codec, EncodedPacket, VideoConfig, VideoFrame};
use bytes::{BufMut, Bytes, BytesMut};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

/// Largest frame openh264 accepts (its README: level 5.2, 3840x2160).
pub const MAX_WIDTH: u32 = 3840;
/// See [`MAX_WIDTH`].
pub const MAX_HEIGHT: u32 = 2160;

/// What the H.264 encoder is asked to produce.
#[derive(Clone, Debug, PartialEq)]
pub struct H264Settings {
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second the source delivers.
    pub fps: f64,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Seconds between IDR frames.
    pub keyint_secs: f64,
    /// Encoder threads (0 = openh264 decides, 1 = deterministic single thread).
    pub threads: u16,
}

impl H264Settings {
    /// Keyframe interval in frames (at least 1).
    pub fn keyint_frames(&self) -> u32 {
        ((self.keyint_secs * self.fps).round() as u32).max(1)
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.width == 0 || self.height == 0 || !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return Err(EncodeError::Settings(format!(
                "frame size {}x{} must be non-zero and even",
                self.width, self.height
            )));
        }
        if self.width > MAX_WIDTH || self.height > MAX_HEIGHT {
            return Err(EncodeError::Settings(format!(
                "frame size {}x{} exceeds openh264's {MAX_WIDTH}x{MAX_HEIGHT}",
                self.width, self.height
            )));
        }
        if !(self.fps.is_finite() && self.fps >= 1.0 && self.fps <= 240.0) {
            return Err(EncodeError::Settings(format!("fps {} outside 1..=240", self.fps)));
        }
        if self.bitrate_kbps < 50 || self.bitrate_kbps > 100_000 {
            return Err(EncodeError::Settings(format!("video bitrate {} kbps outside 50..=100000", self.bitrate_kbps)));
        }
        if !(self.keyint_secs.is_finite() && self.keyint_secs > 0.0 && self.keyint_secs <= 60.0) {
            return Err(EncodeError::Settings(format!("keyframe interval {} s outside (0, 60]", self.keyint_secs)));
        }
        Ok(())
    }
}

/// Counters of one video encoder, for `--stats` and the UI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VideoEncoderStats {
    /// Frames handed to the encoder.
    pub frames_in: u64,
    /// Packets produced.
    pub frames_out: u64,
    /// Frames the rate controller skipped (no packet produced).
    pub skipped: u64,
    /// IDR frames produced.
    pub keyframes: u64,
    /// Bytes of H.264 produced.
    pub bytes_out: u64,
    /// Current target bitrate in kbit/s.
    pub bitrate_kbps: u32,
}

/// What one call to [`H264Encoder::encode`] yields.
#[derive(Debug)]
pub enum VideoOutput {
    /// The rate controller skipped this frame.
    Skipped,
    /// A coded frame. `config` is `Some` when the SPS/PPS are new or changed
    /// (first IDR, or after a re-configuration): muxers must send a new
    /// sequence header before this packet.
    Frame {
        /// The coded frame, AVCC, SPS/PPS removed.
        packet: EncodedPacket,
        /// New decoder configuration to announce first, if it changed.
        config: Option<VideoConfig>,
    },
}

/// An openh264 encoder producing AVCC packets and the matching [`VideoConfig`].
pub struct H264Encoder {
    encoder: Encoder,
    settings: H264Settings,
    config: Option<VideoConfig>,
    stats: VideoEncoderStats,
    frame_index: u64,
    keyint: u32,
    frames_since_idr: u32,
    /// The highest bitrate its layer may take, kbit/s (openh264's
    /// `iMaxSpatialBitrate`: the creation bitrate until raised).
    layer_max_kbps: u32,
}

struct I420<'a>(&'a VideoFrame);

impl YUVSource for I420<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width as usize, self.0.height as usize)
    }
    fn strides(&self) -> (usize, usize, usize) {
        let w = self.0.width as usize;
        (w, w / 2, w / 2)
    }
    fn y(&self) -> &[u8] {
        &self.0.y
    }
    fn u(&self) -> &[u8] {
        &self.0.u
    }
    fn v(&self) -> &[u8] {
        &self.0.v
    }
}

/// NAL unit types (ITU-T H.264 Table 7-1) the encoder looks at.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

fn strip_start_code(nal: &[u8]) -> &[u8] {
    if nal.starts_with(&[0, 0, 0, 1]) {
        &nal[4..]
    } else if nal.starts_with(&[0, 0, 1]) {
        &nal[3..]
    } else {
        nal
    }
}

impl H264Encoder {
    /// Creates an encoder; fails with a clear reason on settings openh264 cannot honour.
    pub fn new(settings: H264Settings) -> Result<Self, EncodeError> {
        settings.validate()?;
        let keyint = settings.keyint_frames();
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_kbps * 1000))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            // A skipped frame yields no packet; without skipping openh264's
            // rate control overshoots badly on hard frames (measured).
            .skip_frames(true)
            .usage_type(UsageType::CameraVideoRealTime)
            .complexity(Complexity::Low)
            // Scene-change IDRs would break the fixed GOP that players and
            // ingest servers (Twitch: "keyframe every 2 s") expect.
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(keyint))
            .num_threads(settings.threads);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| EncodeError::H264(e.to_string()))?;
        Ok(H264Encoder {
            encoder,
            stats: VideoEncoderStats { bitrate_kbps: settings.bitrate_kbps, ..Default::default() },
            layer_max_kbps: settings.bitrate_kbps,
            settings,
            config: None,
            frame_index: 0,
            keyint,
            frames_since_idr: 0,
        })
    }

    /// The settings this encoder was created with (bitrate reflects live changes).
    pub fn settings(&self) -> &H264Settings {
        &self.settings
    }

    /// Counters so far.
    pub fn stats(&self) -> VideoEncoderStats {
        self.stats
    }

    /// The current decoder configuration (known after the first IDR).
    pub fn config(&self) -> Option<&VideoConfig> {
        self.config.as_ref()
    }

    /// Asks for an IDR on the next frame (a new output joined, or recovery).
    pub fn force_keyframe(&mut self) {
        self.encoder.force_intra_frame();
    }

    /// Changes the target bitrate without restarting the stream.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        let kbps = kbps.clamp(50, 100_000);
        let (target, max) = (openh264_sys2::ENCODER_OPTION_BITRATE, openh264_sys2::ENCODER_OPTION_MAX_BITRATE);
        let (all, layer0) = (openh264_sys2::SPATIAL_LAYER_ALL, openh264_sys2::SPATIAL_LAYER_0);
        let mut steps = Vec::with_capacity(3);
        // openh264 refuses a layer's bitrate above that layer's maximum,
        // which it set from the bitrate the encoder was made with (and the
        // all-layers maximum does not move it): an encoder made at a low
        // bitrate — a congested destination's own — raises it first.
        if kbps > self.layer_max_kbps {
            steps.push((max, layer0));
        }
        steps.extend([(target, all), (max, all)]);
        for (option, layer) in steps {
            let mut info = openh264_sys2::SBitrateInfo { iLayer: layer as _, iBitrate: (kbps * 1000) as i32 };
            // SAFETY: `info` outlives the call and has the layout openh264 expects
            // for these options. Before the first frame the encoder is not
            // initialised; openh264 then returns an error code, reported below.
            let rc = unsafe { self.encoder.raw_api().set_option(option, (&raw mut info).cast()) };
            if rc != 0 {
                return Err(EncodeError::H264(format!("set bitrate to {kbps} kbps failed (code {rc})")));
            }
        }
        self.settings.bitrate_kbps = kbps;
        self.stats.bitrate_kbps = kbps;
        self.layer_max_kbps = self.layer_max_kbps.max(kbps);
        Ok(())
    }

    /// Encodes one frame, stamped with its own `pts_us`.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<VideoOutput, EncodeError> {
        self.encode_at(frame, frame.pts_us)
    }

    /// Encodes one frame as the picture of time `pts_us` (a capture
    /// session's frame is stamped on the session clock; the broadcast's
    /// time is the session's stamp less its media offset).
    pub fn encode_at(&mut self, frame: &VideoFrame, pts_us: u64) -> Result<VideoOutput, EncodeError> {
        if frame.width != self.settings.width || frame.height != self.settings.height {
            return Err(EncodeError::Settings(format!(
                "frame is {}x{}, encoder expects {}x{}",
                frame.width, frame.height, self.settings.width, self.settings.height
            )));
        }
        let luma = frame.width as usize * frame.height as usize;
        if frame.y.len() < luma || frame.u.len() < luma / 4 || frame.v.len() < luma / 4 {
            return Err(EncodeError::Settings("frame planes are shorter than its dimensions".into()));
        }
        self.stats.frames_in += 1;
        self.frame_index += 1;
        let pts_ms = pts_us / 1000;
        // openh264's own intra period counts coded frames, and skipped frames
        // shift it; forcing the IDR ourselves keeps it on the time grid.
        if self.frames_since_idr >= self.keyint {
            self.encoder.force_intra_frame();
        }
        let bitstream = self
            .encoder
            .encode_at(&I420(frame), Timestamp::from_millis(pts_ms))
            .map_err(|e| EncodeError::H264(e.to_string()))?;
        let frame_type = bitstream.frame_type();
        if matches!(frame_type, FrameType::Skip | FrameType::Invalid) || bitstream.num_layers() == 0 {
            self.stats.skipped += 1;
            self.frames_since_idr += 1;
            return Ok(VideoOutput::Skipped);
        }

        let mut avcc = BytesMut::with_capacity(64 * 1024);
        let mut sps: Option<Bytes> = None;
        let mut pps: Option<Bytes> = None;
        let mut keyframe = false;
        for l in 0..bitstream.num_layers() {
            let Some(layer) = bitstream.layer(l) else { continue };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n) else { continue };
                let nal = strip_start_code(nal);
                let Some(&header) = nal.first() else { continue };
                match header & 0x1f {
                    NAL_SPS => sps = Some(Bytes::copy_from_slice(nal)),
                    NAL_PPS => pps = Some(Bytes::copy_from_slice(nal)),
                    t => {
                        keyframe |= t == NAL_IDR;
                        avcc.put_u32(nal.len() as u32);
                        avcc.put_slice(nal);
                    }
                }
            }
        }
        if avcc.is_empty() {
            self.stats.skipped += 1;
            self.frames_since_idr += 1;
            return Ok(VideoOutput::Skipped);
        }

        let mut new_config = None;
        if let (Some(sps), Some(pps)) = (sps, pps) {
            let changed = self.config.as_ref().is_none_or(|c| c.sps != sps || c.pps != pps);
            if changed {
                let cfg = VideoConfig {
                    sps,
                    pps,
                    width: self.settings.width,
                    height: self.settings.height,
                    fps: self.settings.fps,
                    bitrate_kbps: self.settings.bitrate_kbps,
                };
                self.config = Some(cfg.clone());
                new_config = Some(cfg);
            }
        }
        if self.config.is_none() {
            // A decoder cannot start without SPS/PPS; openh264 always emits them
            // with the first IDR, so this is an encoder fault, not a skip.
            return Err(EncodeError::H264("first coded frame carried no SPS/PPS".into()));
        }
        if keyframe {
            self.stats.keyframes += 1;
            self.frames_since_idr = 1;
        } else {
            self.frames_since_idr += 1;
        }
        self.stats.frames_out += 1;
        self.stats.bytes_out += avcc.len() as u64;
        Ok(VideoOutput::Frame {
            packet: EncodedPacket { codec: Codec::H264, data: avcc.freeze(), pts_ms, dts_ms: pts_ms, keyframe },
            config: new_config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(w: u32, h: u32) -> H264Settings {
        H264Settings { width: w, height: h, fps: 30.0, bitrate_kbps: 1000, keyint_secs: 1.0, threads: 1 }
    }

    fn gradient(w: u32, h: u32, i: u64) -> VideoFrame {
        let mut f = VideoFrame::black(w, h, i * 33_333);
        for (n, p) in f.y.iter_mut().enumerate() {
            *p = ((n as u64 + i * 3) % 200) as u8 + 16;
        }
        f
    }

    #[test]
    fn first_frame_is_idr_with_config_and_keyint_holds() {
        let mut enc = H264Encoder::new(settings(320, 240)).unwrap();
        let mut keys = Vec::new();
        for i in 0..65 {
            match enc.encode(&gradient(320, 240, i)).unwrap() {
                VideoOutput::Frame { packet, config } => {
                    if i == 0 {
                        let cfg = config.expect("config on first frame");
                        assert_eq!(cfg.sps[0] & 0x1f, NAL_SPS);
                        assert_eq!(cfg.pps[0] & 0x1f, NAL_PPS);
                        assert!(packet.keyframe);
                    }
                    // AVCC: 4-byte lengths that add up exactly.
                    let mut rest = &packet.data[..];
                    while !rest.is_empty() {
                        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                        rest = &rest[4 + len..];
                    }
                    if packet.keyframe {
                        keys.push(i);
                    }
                }
                VideoOutput::Skipped => {}
            }
        }
        assert_eq!(keys, vec![0, 30, 60]);
        assert_eq!(enc.stats().skipped, 0);
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        assert!(H264Encoder::new(settings(321, 240)).is_err());
        assert!(H264Encoder::new(settings(0, 240)).is_err());
        assert!(H264Encoder::new(H264Settings { fps: 0.0, ..settings(320, 240) }).is_err());
        let mut enc = H264Encoder::new(settings(320, 240)).unwrap();
        assert!(enc.encode(&VideoFrame::black(640, 480, 0)).is_err());
    }

    #[test]
    fn bitrate_changes_live() {
        let mut enc = H264Encoder::new(settings(320, 240)).unwrap();
        enc.encode(&gradient(320, 240, 0)).unwrap();
        enc.set_bitrate(500).unwrap();
        assert_eq!(enc.stats().bitrate_kbps, 500);
        enc.encode(&gradient(320, 240, 1)).unwrap();
    }

    #[test]
    fn an_encoder_made_at_a_low_bitrate_climbs_past_it() {
        let mut enc = H264Encoder::new(H264Settings { bitrate_kbps: 785, ..settings(640, 360) }).unwrap();
        enc.encode(&gradient(640, 360, 0)).unwrap();
        for (i, kbps) in [980, 1500, 2500, 800, 2500].into_iter().enumerate() {
            enc.set_bitrate(kbps).unwrap_or_else(|e| panic!("{kbps}: {e}"));
            assert_eq!(enc.stats().bitrate_kbps, kbps);
            enc.encode(&gradient(640, 360, i as u64 + 1)).unwrap();
        }
    }
}
