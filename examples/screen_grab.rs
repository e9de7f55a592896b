//! Pulls frames from the X11 screen source (`capture::screen::x11::X11Screen`)
//! and reports how many came, for `benches/screen.sh`: what it opened, then
//! one line a second, `t=<seconds> frames=<count>`, then a summary.
//!
//! Usage:
//!   screen_grab [--display :N] [--seconds S] [--fps F] [--cursor]
//!               [--monitor N | --window TITLE]

#[cfg(all(unix, not(target_os = "macos")))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write as _;
    use std::time::{Duration, Instant};
    use tally::capture::VideoSource;
    use tally::capture::screen::x11::X11Screen;
    use tally::capture::screen::{ScreenOptions, ScreenTarget};
    use tally::media::{MediaClock, VideoFrame};

    let mut args = std::env::args().skip(1);
    let (mut display, mut seconds, mut opts) =
        (None, 10.0f64, ScreenOptions { target: ScreenTarget::Monitor(0), cursor: false, fps: 30 });
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--display" => display = Some(value()?),
            "--seconds" => seconds = value()?.parse()?,
            "--fps" => opts.fps = value()?.parse()?,
            "--cursor" => opts.cursor = true,
            "--monitor" => opts.target = ScreenTarget::Monitor(value()?.parse()?),
            "--window" => opts.target = ScreenTarget::Window(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut source = X11Screen::open(display.as_deref(), &opts)?;
    let format = source.format();
    let mut frame = VideoFrame::black(format.width, format.height, 0);
    source.start(MediaClock::start());
    let (start, span) = (Instant::now(), Duration::from_secs_f64(seconds));
    let (mut frames, mut next_report) = (0u64, Duration::from_secs(1));
    let mut out = std::io::stdout().lock();
    writeln!(out, "size={}x{} shm={} cursor={}", format.width, format.height, source.uses_shared_memory(), opts.cursor)?;
    while start.elapsed() < span {
        source.fill_next(&mut frame)?;
        frames += 1;
        if start.elapsed() >= next_report {
            writeln!(out, "t={:.3} frames={frames}", start.elapsed().as_secs_f64())?;
            out.flush()?;
            next_report += Duration::from_secs(1);
        }
    }
    let took = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "size={}x{} frames={frames} seconds={took:.2} fps={:.2} shm={}",
        frame.width,
        frame.height,
        frames as f64 / took,
        source.uses_shared_memory()
    )?;
    Ok(())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn main() {
    eprintln!("screen_grab: the X11 screen source exists on Linux and the BSDs only");
    std::process::exit(2);
}
