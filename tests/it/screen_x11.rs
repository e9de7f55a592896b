//! X11 screen capture (`capture::screen::x11::X11Screen`) against a private
//! Xvfb per test, with real X clients on it: ImageMagick's `display` shows a
//! colour-bar PNG the test writes (8 bars of known RGB, 80 px each), xdotool
//! moves the pointer and resizes, unmaps windows, xrandr changes the mode.
//!
//! Colours are read back from the I420 frames with the inverse of the
//! conversion the source applies (BT.709, limited range: the one
//! `capture::convert` uses for RGB cameras) and must come within
//! [`TOLERANCE`] of the PNG's values at every bar's centre.

use crate::common::xvfb::{WindowInfo, X_TIMEOUT, Xvfb};
use crate::common::{Proc, TestDir, require, wait_until};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tally::capture::screen::x11::{UNMAPPED_FOR_GOOD, X11Screen, list_targets};
use tally::capture::screen::{ScreenOptions, ScreenTarget};
use tally::capture::{CaptureError, SourceState, VideoFormat, VideoSource};
use tally::media::{MediaClock, VideoFrame};

/// The bars, left to right: white, yellow, cyan, green, magenta, red, blue,
/// dark grey (not black: Xvfb's root is black, a black bar would prove
/// nothing).
const BARS: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [64, 64, 64],
];
const BAR_WIDTH: u32 = 80;
const BARS_HEIGHT: u32 = 360;
/// Per channel, after RGB -> I420 (chroma shared by 2x2 pixels) -> RGB.
const TOLERANCE: f64 = 12.0;
const ORANGE: [u8; 3] = [255, 128, 0];
const SCREEN: &str = "1280x720x24";
/// Where the bars window goes (its outer corner; `display` adds a 2 px border).
const AT: (i32, i32) = (100, 50);

fn bars_png(dir: &TestDir) -> PathBuf {
    let path = dir.join("bars.png");
    let width = BAR_WIDTH * BARS.len() as u32;
    image::RgbImage::from_fn(width, BARS_HEIGHT, |x, _| image::Rgb(BARS[(x / BAR_WIDTH) as usize]))
        .save(&path)
        .expect("write bars.png");
    path
}

fn plain_png(dir: &TestDir, name: &str, (w, h): (u32, u32), rgb: [u8; 3]) -> PathBuf {
    let path = dir.join(name);
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb)).save(&path).expect("write a plain PNG");
    path
}

/// RGB of the I420 frame at (x, y): BT.709 limited range, inverted.
fn rgb_at(frame: &VideoFrame, x: u32, y: u32) -> [f64; 3] {
    let w = frame.width as usize;
    let (x, y) = (x as usize, y as usize);
    let luma = 255.0 / 219.0 * (f64::from(frame.y[y * w + x]) - 16.0);
    let c = (y / 2) * (w / 2) + x / 2;
    let u = 255.0 / 224.0 * (f64::from(frame.u[c]) - 128.0);
    let v = 255.0 / 224.0 * (f64::from(frame.v[c]) - 128.0);
    let (kr, kb) = (0.2126, 0.0722);
    let r = luma + 2.0 * (1.0 - kr) * v;
    let b = luma + 2.0 * (1.0 - kb) * u;
    let g = (luma - kr * r - kb * b) / (1.0 - kr - kb);
    [r, g, b]
}

fn near(got: [f64; 3], want: [u8; 3]) -> bool {
    got.iter().zip(want).all(|(g, w)| (g - f64::from(w)).abs() <= TOLERANCE)
}

/// Every bar's centre, the bars' left edge at `left`, their top at `top`.
fn bars_seen(frame: &VideoFrame, left: i32, top: i32) -> Vec<([f64; 3], [u8; 3])> {
    BARS.iter()
        .enumerate()
        .map(|(i, &want)| {
            let x = left + (BAR_WIDTH / 2 + BAR_WIDTH * i as u32) as i32;
            let y = top + (BARS_HEIGHT / 2) as i32;
            (rgb_at(frame, x as u32, y as u32), want)
        })
        .collect()
}

fn assert_bars(frame: &VideoFrame, left: i32, top: i32, what: &str) {
    let seen = bars_seen(frame, left, top);
    let shown: Vec<String> = seen.iter().map(|(g, w)| format!("{:.0?} (want {w:?})", g)).collect();
    assert!(seen.iter().all(|&(g, w)| near(g, w)), "{what}: bars at {left},{top} of a {}x{} frame: {}", frame.width, frame.height, shown.join(", "));
}

/// Grabs until the bars show at (`left`, `top`) — `display` maps its window
/// before it has drawn the picture — and returns that frame; panics with
/// what was seen last after [`X_TIMEOUT`].
fn wait_bars(source: &mut X11Screen, left: i32, top: i32, what: &str) -> VideoFrame {
    let mut frame = grab(source);
    wait_until(X_TIMEOUT, || {
        frame = grab(source);
        bars_seen(&frame, left, top).iter().all(|&(g, w)| near(g, w))
    });
    assert_bars(&frame, left, top, what);
    frame
}

fn open(xvfb: &Xvfb, target: ScreenTarget, cursor: bool, fps: u32) -> X11Screen {
    let opts = ScreenOptions { target: target.clone(), cursor, fps };
    X11Screen::open(Some(xvfb.display()), &opts).unwrap_or_else(|e| panic!("open {target:?} on {}: {e}", xvfb.display()))
}

fn grab(source: &mut X11Screen) -> VideoFrame {
    source.next_frame().expect("grab").expect("a live source never ends")
}

fn size_of(format: VideoFormat) -> (u32, u32) {
    (format.width, format.height)
}

fn xdotool(xvfb: &Xvfb, args: &[&str]) {
    require("xdotool");
    xvfb.run("xdotool", args);
}

fn show_bars(xvfb: &Xvfb, dir: &TestDir) -> (Proc, WindowInfo) {
    xvfb.show_image(&bars_png(dir), "tallybars", AT)
}

#[test]
fn monitor_capture_shows_the_bars_where_the_window_is() {
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-monitor"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    let mut screen = open(&xvfb, ScreenTarget::Monitor(0), false, 30);
    assert!(screen.is_live());
    assert!(screen.uses_shared_memory(), "Xvfb has MIT-SHM");
    assert_eq!(size_of(screen.format()), (1280, 720));
    assert_eq!(screen.status().expect("a status").name(), "screen 0 (1280x720)");
    let frame = wait_bars(&mut screen, info.x, info.y, "monitor 0");
    assert_eq!((frame.width, frame.height, frame.y.len(), frame.u.len()), (1280, 720, 1280 * 720, 640 * 360));

    // What is not there is named, with what is.
    let missing = ScreenOptions { target: ScreenTarget::Monitor(3), cursor: false, fps: 30 };
    match X11Screen::open(Some(xvfb.display()), &missing) {
        Err(CaptureError::DeviceNotFound { requested, available }) => {
            assert_eq!(requested, "screen 3");
            assert_eq!(available, ["0: 1280x720+0+0 screen"]);
        }
        other => panic!("monitor 3: {:?}", other.err()),
    }
    let all = list_targets(Some(xvfb.display())).expect("list_targets");
    assert!(all.contains(&"0: 1280x720+0+0 screen".to_string()) && all.contains(&"window 'tallybars'".to_string()), "{all:?}");
}

#[test]
fn grabs_come_at_the_rate_asked_never_faster_stamped_on_the_clock() {
    let xvfb = Xvfb::start(SCREEN);
    let mut screen = open(&xvfb, ScreenTarget::Monitor(0), false, 10);
    let clock = MediaClock::start();
    screen.start(clock);
    let started = Instant::now();
    let frames: Vec<u64> = (0..11).map(|_| grab(&mut screen).pts_us).collect();
    let took = started.elapsed();
    // Slot 0 is at once, slot 10 a second after the clock's origin.
    assert!(took >= Duration::from_millis(990), "11 frames at 10 fps in {took:?}: faster than asked");
    assert!(took < Duration::from_millis(2000), "11 frames at 10 fps took {took:?}");
    assert!(frames[0] < 100_000, "the first frame is stamped on the clock given to start: {}", frames[0]);
    // Frame n never before its slot, n / 10 s on the clock (a late one may
    // come nearer to the next: the schedule does not shift).
    for (n, &pts) in frames.iter().enumerate() {
        assert!(pts >= n as u64 * 100_000, "frame {n} at {pts} us, before its slot: {frames:?}");
    }
    assert!(frames.windows(2).all(|p| p[1] > p[0]), "timestamps go forward: {frames:?}");
}

#[test]
fn window_capture_keeps_the_bars_when_the_window_is_covered() {
    // `display` asks for backing store, which the X server provides with
    // Composite by itself: without `-bs` the covered window's contents
    // would survive even with no redirect of ours (seen).
    let (xvfb, dir) = (Xvfb::start_with(SCREEN, &["-bs"]), TestDir::new("screen-window"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    // Case-insensitive, a part of the title.
    let mut window = open(&xvfb, ScreenTarget::Window("TallyBar".into()), false, 30);
    assert_eq!(window.status().expect("a status").name(), "window 'TallyBar'");
    assert_eq!(size_of(window.format()), (640, 360));
    let frame = wait_bars(&mut window, 0, 0, "the window");
    assert_eq!((frame.width, frame.height), (640, 360));

    // Another window on top of it: the screen shows orange where the bars were...
    let cover = plain_png(&dir, "cover.png", (800, 500), ORANGE);
    let (_cover, _) = xvfb.show_image(&cover, "cover", (AT.0 - 50, AT.1 - 30));
    let mut screen = open(&xvfb, ScreenTarget::Monitor(0), false, 30);
    let mut on_screen = vec![];
    let covered = wait_until(X_TIMEOUT, || {
        on_screen = bars_seen(&grab(&mut screen), info.x, info.y);
        on_screen.iter().all(|&(got, _)| near(got, ORANGE))
    });
    assert!(covered, "the cover never showed over the bars: {on_screen:.0?}");
    // ...and the window's own capture still the bars (Composite).
    for _ in 0..3 {
        assert_bars(&grab(&mut window), 0, 0, "the covered window");
    }

    let missing = ScreenOptions { target: ScreenTarget::Window("no such window".into()), cursor: false, fps: 30 };
    match X11Screen::open(Some(xvfb.display()), &missing) {
        Err(CaptureError::DeviceNotFound { requested, available }) => {
            assert_eq!(requested, "window 'no such window'");
            assert!(available.contains(&"'tallybars'".to_string()) && available.contains(&"'cover'".to_string()), "{available:?}");
        }
        other => panic!("a missing window: {:?}", other.err()),
    }
}

#[test]
fn a_resized_window_is_followed_and_odd_sizes_cropped_to_even() {
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-resize"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    let mut window = open(&xvfb, ScreenTarget::Window("tallybars".into()), false, 30);
    assert_eq!((wait_bars(&mut window, 0, 0, "the window").width, window.format().width), (640, 640));
    xdotool(&xvfb, &["windowsize", &info.id.to_string(), "401", "301"]);
    let mut seen = (0, 0);
    let followed = wait_until(X_TIMEOUT, || {
        let frame = grab(&mut window);
        seen = (frame.width, frame.height);
        seen == (400, 300) && size_of(window.format()) == (400, 300)
    });
    assert!(followed, "after a resize to 401x301 the frames are {seen:?}, the format {:?}", window.format());
    // The new pixmap holds the window's picture: `display` either crops the
    // bars to 401 px (bar 4, magenta, at the right edge) or scales them all
    // into it (bar 7, grey); bar 0 (white) is at the left edge either way.
    let mut frame = grab(&mut window);
    let repainted = wait_until(X_TIMEOUT, || {
        frame = grab(&mut window);
        let right = rgb_at(&frame, 390, 150);
        near(rgb_at(&frame, 10, 150), BARS[0]) && (near(right, BARS[4]) || near(right, BARS[7]))
    });
    assert!(repainted, "after the resize: left {:.0?}, right {:.0?}", rgb_at(&frame, 10, 150), rgb_at(&frame, 390, 150));
}

#[test]
fn a_closed_window_ends_the_capture_with_disconnected() {
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-closed"));
    let (bars, _) = show_bars(&xvfb, &dir);
    let mut window = open(&xvfb, ScreenTarget::Window("tallybars".into()), false, 30);
    grab(&mut window);
    bars.kill();
    let mut last = None;
    // At once (DestroyNotify), not after the grace an unmapped window gets.
    let ended = wait_until(UNMAPPED_FOR_GOOD / 2, || {
        let mut frame = VideoFrame::black(640, 360, 0);
        last = Some(window.fill_next(&mut frame));
        matches!(&last, Some(Err(CaptureError::Disconnected { device })) if device == "window 'tallybars'")
    });
    assert!(ended, "the client killed, fill_next still gives {last:?}");
    let state = window.status().expect("a status").state();
    assert!(matches!(&state, SourceState::Fallback(why) if why.contains("disconnected")), "{state:?}");
}

#[test]
fn a_window_unmapped_for_good_ends_the_capture() {
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-unmapped"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    let mut window = open(&xvfb, ScreenTarget::Window("tallybars".into()), false, 30);
    wait_bars(&mut window, 0, 0, "the window");
    let unmapped = Instant::now();
    xdotool(&xvfb, &["windowunmap", "--sync", &info.id.to_string()]);
    // Unmapped for a moment is not closed: the last picture goes on.
    assert_bars(&grab(&mut window), 0, 0, "just unmapped");
    let mut last = None;
    let ended = wait_until(UNMAPPED_FOR_GOOD + X_TIMEOUT, || {
        let mut frame = VideoFrame::black(640, 360, 0);
        last = Some(window.fill_next(&mut frame));
        matches!(&last, Some(Err(CaptureError::Disconnected { .. })))
    });
    assert!(ended, "unmapped for good, fill_next still gives {last:?}");
    assert!(unmapped.elapsed() >= UNMAPPED_FOR_GOOD, "ended {:?} after the unmap", unmapped.elapsed());
}

#[test]
fn a_minimised_window_keeps_its_last_picture() {
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-iconic"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    let id = info.id.to_string();
    let mut window = open(&xvfb, ScreenTarget::Window("tallybars".into()), false, 30);
    wait_bars(&mut window, 0, 0, "the window");
    // What a window manager does to minimise (ICCCM: WM_STATE IconicState, unmap).
    xvfb.run("xprop", &["-id", &id, "-f", "WM_STATE", "32c", "-set", "WM_STATE", "3"]);
    xdotool(&xvfb, &["windowunmap", "--sync", &id]);
    let unmapped = Instant::now();
    while unmapped.elapsed() < UNMAPPED_FOR_GOOD + Duration::from_millis(500) {
        assert_bars(&grab(&mut window), 0, 0, "minimised");
    }
    // Withdrawn (no WM_STATE): closed.
    xvfb.run("xprop", &["-id", &id, "-remove", "WM_STATE"]);
    let mut last = None;
    let ended = wait_until(X_TIMEOUT, || {
        let mut frame = VideoFrame::black(640, 360, 0);
        last = Some(window.fill_next(&mut frame));
        matches!(&last, Some(Err(CaptureError::Disconnected { .. })))
    });
    assert!(ended, "withdrawn, fill_next still gives {last:?}");
}

/// The RandR output's name (`xrandr`: `screen connected 1280x720+0+0`).
fn randr_output(xvfb: &Xvfb) -> String {
    let out = xvfb.run("xrandr", &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.split_once(" connected").map(|(name, _)| name.to_string()))
        .unwrap_or_else(|| panic!("no connected output in:\n{text}"))
}

#[test]
fn a_monitor_that_changes_size_is_followed_by_name() {
    require("xrandr");
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-randr"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    let mut screen = open(&xvfb, ScreenTarget::Monitor(0), false, 30);
    let first = wait_bars(&mut screen, info.x, info.y, "monitor 0");
    assert_eq!((first.width, first.height), (1280, 720));

    // A monitor added before it in RandR's list: the capture stays on its own.
    xvfb.run("xrandr", &["--setmonitor", "tally-left", "640/170x360/95+0+0", "none"]);
    for _ in 0..5 {
        let frame = grab(&mut screen);
        assert_eq!((frame.width, frame.height), (1280, 720), "switched to the monitor added");
    }
    wait_bars(&mut screen, info.x, info.y, "monitor 0 after another was added");

    // The mode changed to 1024x576: Xvfb shrinks its screen, RandR tells.
    let output = randr_output(&xvfb);
    xvfb.run("xrandr", &["--newmode", "tally1024", "46.50", "1024", "1064", "1160", "1296", "576", "579", "584", "599", "-hsync", "+vsync"]);
    xvfb.run("xrandr", &["--addmode", &output, "tally1024"]);
    xvfb.run("xrandr", &["--output", &output, "--mode", "tally1024"]);
    let mut seen = (0, 0);
    let followed = wait_until(X_TIMEOUT, || {
        let frame = grab(&mut screen);
        seen = (frame.width, frame.height);
        seen == (1024, 576) && size_of(screen.format()) == (1024, 576)
    });
    assert!(followed, "after the mode change the frames are {seen:?}, the format {:?}", screen.format());
    // Xvfb exposes the windows again; `display` repaints.
    wait_bars(&mut screen, info.x, info.y, "monitor 0 at 1024x576");
}

/// Luma differences above 40 inside the `size`-pixel square centred on (x, y).
fn changed_pixels(a: &VideoFrame, b: &VideoFrame, (x, y): (u32, u32), size: u32) -> usize {
    let w = a.width as usize;
    let mut n = 0;
    for row in y - size / 2..y + size / 2 {
        for col in x - size / 2..x + size / 2 {
            let i = row as usize * w + col as usize;
            n += usize::from(a.y[i].abs_diff(b.y[i]) > 40);
        }
    }
    n
}

#[test]
fn the_cursor_is_drawn_where_the_pointer_is() {
    let (xvfb, dir) = (Xvfb::start(SCREEN), TestDir::new("screen-cursor"));
    let (_bars, info) = show_bars(&xvfb, &dir);
    let mut with = open(&xvfb, ScreenTarget::Monitor(0), true, 30);
    let mut without = open(&xvfb, ScreenTarget::Monitor(0), false, 30);
    wait_bars(&mut without, info.x, info.y, "monitor 0");
    // Over the white bar, so the cursor's dark pixels show.
    let at = ((info.x + 40) as u32, (info.y + 180) as u32);
    xdotool(&xvfb, &["mousemove", "--sync", &at.0.to_string(), &at.1.to_string()]);
    let mut changed = 0;
    let drawn = wait_until(X_TIMEOUT, || {
        changed = changed_pixels(&grab(&mut with), &grab(&mut without), at, 48);
        changed >= 20
    });
    assert!(drawn, "only {changed} pixels around the pointer at {at:?} differ with the cursor on");
    // Nowhere else.
    let (a, b) = (grab(&mut with), grab(&mut without));
    let far = (at.0 + 400, at.1);
    assert_eq!(changed_pixels(&a, &b, far, 48), 0, "the cursor drawn away from the pointer");
    // In a window capture it lands at the pointer's place in the window.
    let mut window = open(&xvfb, ScreenTarget::Window("tallybars".into()), true, 30);
    let mut window_off = open(&xvfb, ScreenTarget::Window("tallybars".into()), false, 30);
    let changed = changed_pixels(&grab(&mut window), &grab(&mut window_off), (40, 180), 48);
    assert!(changed >= 20, "only {changed} pixels differ around the pointer in the window capture");
}

#[test]
fn without_mit_shm_grabs_go_through_the_socket_and_without_composite_windows_cannot() {
    let xvfb = Xvfb::start_with(SCREEN, &["-extension", "MIT-SHM", "-extension", "Composite"]);
    let dir = TestDir::new("screen-noshm");
    let (_bars, info) = show_bars(&xvfb, &dir);
    let mut screen = open(&xvfb, ScreenTarget::Monitor(0), false, 30);
    assert!(!screen.uses_shared_memory());
    wait_bars(&mut screen, info.x, info.y, "monitor 0 through GetImage");
    let opts = ScreenOptions { target: ScreenTarget::Window("tallybars".into()), cursor: false, fps: 30 };
    match X11Screen::open(Some(xvfb.display()), &opts) {
        Err(CaptureError::Unavailable { device, reason }) => {
            assert_eq!(device, "window 'tallybars'");
            assert!(reason.contains("Composite"), "{reason}");
        }
        other => panic!("a window without Composite: {:?}", other.err()),
    }
}
