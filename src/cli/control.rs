//! Live control of `tally stream` / `tally record` from standard input:
//! one command a line (`add URL`, `remove ID`, `mute`, `outputs`, ...),
//! what the app's window can do while live. A stream key typed here (in an
//! `add` URL) is never echoed: URLs are shown through [`RtmpUrl`]'s Display,
//! which redacts it, and errors never repeat what was typed.

use std::io::{self, BufRead};
use std::thread::JoinHandle;
use std::time::Duration;
use tally::capture::{AudioSourceSpec, VideoSourceSpec};
use tally::engine::{BroadcastCommand, Command, EngineState, GoLiveRequest, SourcesCommand};
use tally::pipeline::Stats;
use tally::rtmp::RtmpUrl;
use tally::session::scene::{MAX_FADE_MS, Transition};
use tokio::sync::{mpsc, watch};

/// The longest command line taken, in bytes; a longer one is skipped with an error.
pub const MAX_LINE: usize = 4096;

/// How often a reader whose terminal belongs to another job looks again.
const BACKGROUND_POLL: Duration = Duration::from_millis(500);

/// What `help` prints.
pub const HELP: &str = "\
Live commands (one a line on standard input):
  add URL                          add an rtmp[s]://host[:port]/app/KEY destination
  add-profile NAME [DESTINATION]   add a saved profile's destinations (or one of them)
  retry ID                         start a failed output again
  remove ID                        take an output out of the broadcast
  mute | unmute                    silence the microphone, or not
  hide | show                      send a slate instead of the camera, or not
  video SOURCE                     switch the picture: camera[:N], test, noise, y4m:FILE
  audio SOURCE                     switch the sound: mic[:NAME], sine, silence, wav:FILE
  scene NAME                       cut to a saved scene (`tally scenes list`)
  fade NAME                        fade to a saved scene (300 ms)
  outputs (or list)                each output's id, state and kbit/s
  stop                             end the broadcast cleanly (like Ctrl-C)
  help                             this list";

/// One command typed while live.
#[derive(Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// `add URL`: publish to one more destination (the key is in the URL).
    Add(RtmpUrl),
    /// `add-profile NAME [DESTINATION]`: a saved profile's destinations, or one of them.
    AddProfile {
        /// The profile's name.
        profile: String,
        /// One destination of it, by name; `None`: all of them.
        destination: Option<String>,
    },
    /// `retry ID`: start a failed output again.
    Retry(String),
    /// `remove ID`: take an output out of the broadcast.
    Remove(String),
    /// `mute` (true) / `unmute` (false).
    Mute(bool),
    /// `hide` (true) / `show` (false) the camera.
    HideCamera(bool),
    /// `video SOURCE`: switch the video source (same clock, a keyframe at the switch).
    SwitchVideo(VideoSourceSpec),
    /// `audio SOURCE`: switch the audio source.
    SwitchAudio(AudioSourceSpec),
    /// `scene NAME` (a cut) / `fade NAME` (a fade): put a saved scene on air.
    Scene {
        /// The scene's name (the rest of the line: names may have spaces).
        name: String,
        /// Fade rather than cut.
        fade: bool,
    },
    /// `outputs` / `list`: print the outputs.
    Outputs,
    /// `stop`: end the broadcast cleanly.
    Stop,
    /// `help`: print the commands.
    Help,
}

impl ControlCommand {
    /// Parses one line (surrounding blanks ignored; the command word in any
    /// case). The error is one sentence that never contains the line's
    /// arguments when they could hold a key (a URL, an unknown word).
    pub fn parse(line: &str) -> Result<ControlCommand, String> {
        let mut words = line.split_whitespace();
        let Some(word) = words.next() else {
            return Err("empty command: type `help` for the list".into());
        };
        let args: Vec<&str> = words.collect();
        let no_args = |cmd: ControlCommand, name: &str| {
            if args.is_empty() { Ok(cmd) } else { Err(format!("`{name}` takes no arguments")) }
        };
        match word.to_ascii_lowercase().as_str() {
            "add" => match args.as_slice() {
                [url] => RtmpUrl::parse(url).map(ControlCommand::Add).map_err(|e| format!("add: {e}")),
                [] => Err("add: give the destination's URL: add rtmp://host/app/KEY".into()),
                _ => Err("add: give one URL (rtmp://host/app/KEY), nothing after it".into()),
            },
            "add-profile" => match args.as_slice() {
                [profile] => Ok(ControlCommand::AddProfile { profile: name(profile, "add-profile")?, destination: None }),
                [profile, dest] => Ok(ControlCommand::AddProfile {
                    profile: name(profile, "add-profile")?,
                    destination: Some(name(dest, "add-profile")?),
                }),
                [] => Err("add-profile: give a profile's name (tally profiles list), and optionally one of its destinations".into()),
                _ => Err("add-profile: give a profile's name and at most one destination name".into()),
            },
            cmd @ ("retry" | "remove") => match args.as_slice() {
                [id] => {
                    let id = output_id(id, cmd)?;
                    Ok(if cmd == "retry" { ControlCommand::Retry(id) } else { ControlCommand::Remove(id) })
                }
                _ => Err(format!("{cmd}: give one output id (type `outputs` to see them)")),
            },
            "mute" => no_args(ControlCommand::Mute(true), "mute"),
            "unmute" => no_args(ControlCommand::Mute(false), "unmute"),
            "hide" => no_args(ControlCommand::HideCamera(true), "hide"),
            "show" => no_args(ControlCommand::HideCamera(false), "show"),
            "video" => match args.as_slice() {
                [spec] => spec.parse().map(ControlCommand::SwitchVideo).map_err(|e| format!("video: {e}")),
                _ => Err("video: give one source: camera[:N], test, noise or y4m:FILE".into()),
            },
            "audio" => match args.as_slice() {
                [spec] => spec.parse().map(ControlCommand::SwitchAudio).map_err(|e| format!("audio: {e}")),
                _ => Err("audio: give one source: mic[:NAME], sine, silence or wav:FILE".into()),
            },
            cmd @ ("scene" | "fade") => match line.trim().split_once(char::is_whitespace) {
                Some((_, name)) if !name.trim().is_empty() => Ok(ControlCommand::Scene { name: name.trim().to_string(), fade: cmd == "fade" }),
                _ => Err(format!("{cmd}: give a scene's name (`tally scenes list` shows them)")),
            },
            "outputs" | "list" => no_args(ControlCommand::Outputs, "outputs"),
            "stop" => no_args(ControlCommand::Stop, "stop"),
            "help" | "?" => Ok(ControlCommand::Help),
            // The word itself is not repeated: a pasted URL or key would be.
            _ if word.contains("://") => Err("unknown command: to add a destination, type add URL".into()),
            _ => Err("unknown command: type `help` for the list".into()),
        }
    }

    /// The engine command this stands for; `None` for those the command
    /// line answers itself (`outputs`, `help`).
    pub fn engine_command(self) -> Option<Command> {
        Some(match self {
            ControlCommand::Add(url) => {
                Command::Broadcast(BroadcastCommand::AddOutputs { request: GoLiveRequest { urls: vec![url], ..Default::default() }, destination: None })
            }
            ControlCommand::AddProfile { profile, destination } => {
                Command::Broadcast(BroadcastCommand::AddOutputs { request: GoLiveRequest { profile: Some(profile), ..Default::default() }, destination })
            }
            ControlCommand::Retry(id) => Command::Broadcast(BroadcastCommand::RetryOutput(id)),
            ControlCommand::Remove(id) => Command::Broadcast(BroadcastCommand::RemoveOutput(id)),
            ControlCommand::Mute(on) => Command::Sources(SourcesCommand::SetMute(on)),
            ControlCommand::HideCamera(on) => Command::Sources(SourcesCommand::SetHideCamera(on)),
            ControlCommand::SwitchVideo(spec) => Command::Sources(SourcesCommand::SwitchVideo(spec)),
            ControlCommand::SwitchAudio(spec) => Command::Sources(SourcesCommand::SwitchAudio(spec)),
            ControlCommand::Stop => Command::Broadcast(BroadcastCommand::Stop),
            ControlCommand::Outputs | ControlCommand::Help | ControlCommand::Scene { .. } => return None,
        })
    }
}

/// A profile or destination name as typed (a URL is refused unechoed: it would carry a key).
fn name(word: &str, cmd: &str) -> Result<String, String> {
    if word.contains("://") {
        return Err(format!("{cmd}: give a profile's name, not a URL (add URL adds a URL)"));
    }
    Ok(word.to_string())
}

/// An output id as typed; a URL is refused (unechoed) rather than passed on
/// to an engine refusal that would repeat it, key and all.
fn output_id(word: &str, cmd: &str) -> Result<String, String> {
    if word.contains("://") {
        return Err(format!("{cmd}: give the output's id (type `outputs` to see them), not its URL"));
    }
    Ok(word.to_string())
}

/// One line read by [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its end of line.
    Text(String),
    /// A line longer than the limit (skipped up to its end).
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
    /// The end of the input.
    Eof,
}

/// Reads one line of at most `max` bytes (without `\n` / `\r\n`), holding
/// no more than that in memory however long the line is; a last line
/// without a newline counts.
pub fn read_line_bounded(input: &mut impl BufRead, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let (mut too_long, mut any) = (false, false);
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            if !any {
                return Ok(Line::Eof);
            }
            break;
        }
        any = true;
        let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        // Room for the limit plus "\r\n", to tell a full line from a long one.
        if !too_long && line.len() + take <= max + 2 {
            line.extend_from_slice(&chunk[..take]);
        } else {
            too_long = true;
            line.clear();
        }
        input.consume(take);
        if end {
            break;
        }
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if too_long || line.len() > max {
        return Ok(Line::TooLong);
    }
    Ok(String::from_utf8(line).map_or(Line::NotUtf8, Line::Text))
}

/// What the reader needs: where commands go and what it lists.
pub struct Control {
    /// The engine's commands.
    pub commands: mpsc::Sender<Command>,
    /// The engine's state (outputs, sources).
    pub state: watch::Receiver<EngineState>,
    /// The broadcast's stats (kbit/s per output).
    pub stats: watch::Receiver<Stats>,
}

/// True when commands may come on stdin: it is open and not /dev/null
/// (`</dev/null`, a service, `nohup`: nothing will ever be typed).
pub fn stdin_may_have_commands() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        // A duplicate of fd 0, so its metadata can be read; fails when stdin is closed.
        let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else { return false };
        let (Ok(stdin), Ok(null)) = (std::fs::File::from(fd).metadata(), std::fs::metadata("/dev/null")) else {
            return true;
        };
        !(stdin.file_type().is_char_device() && stdin.rdev() == null.rdev())
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// True when this process runs in the background of its terminal (`tally
/// stream ... &`): reading the terminal then would stop the whole process
/// (SIGTTIN), broadcast and all. Linux: `/proc/self/stat`'s process group
/// against the terminal's foreground group; elsewhere, never.
#[cfg(not(target_os = "linux"))]
fn in_background() -> bool {
    false
}

/// See above: Linux reads it from `/proc`.
#[cfg(target_os = "linux")]
fn in_background() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return false };
    // Fields after the command name (which may hold spaces) start after ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else { return false };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // state ppid pgrp session tty_nr tpgid
    let (Some(pgrp), Some(tpgid)) = (fields.get(2).and_then(|f| f.parse::<i64>().ok()), fields.get(5).and_then(|f| f.parse::<i64>().ok()))
    else {
        return false;
    };
    tpgid > 0 && tpgid != pgrp
}

/// Starts the `tally-stdin` thread: it reads commands until stdin ends
/// (which ends only the reading, never the broadcast) and sends them to
/// the engine. It is left blocked on stdin when the broadcast ends.
pub fn spawn_reader(control: Control) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("tally-stdin".into()).spawn(move || read_commands(&control))
}

fn read_commands(control: &Control) {
    use std::io::IsTerminal as _;
    let terminal = io::stdin().is_terminal();
    let mut input = io::stdin().lock();
    loop {
        // Typed commands wait while another job has the terminal.
        while terminal && in_background() {
            std::thread::sleep(BACKGROUND_POLL);
        }
        let line = match read_line_bounded(&mut input, MAX_LINE) {
            Ok(Line::Text(l)) => l,
            Ok(Line::Eof) => {
                tracing::debug!("stdin closed: no more live commands (the broadcast goes on)");
                return;
            }
            Ok(Line::TooLong) => {
                eprintln!("error: command line longer than {MAX_LINE} bytes: skipped");
                continue;
            }
            Ok(Line::NotUtf8) => {
                eprintln!("error: command line is not UTF-8: skipped");
                continue;
            }
            Err(e) => {
                eprintln!("error: reading commands from stdin: {e}; no more live commands");
                return;
            }
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match ControlCommand::parse(line) {
            Ok(cmd) => {
                if !run(control, cmd) {
                    return;
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
}

/// Carries out one command; false once the engine is gone.
fn run(control: &Control, cmd: ControlCommand) -> bool {
    match &cmd {
        ControlCommand::Help => {
            say!("{HELP}");
            return true;
        }
        ControlCommand::Outputs => {
            let lines = outputs_table(&control.state.borrow(), &control.stats.borrow());
            for line in lines {
                say!("{line}");
            }
            return true;
        }
        ControlCommand::Add(url) => eprintln!("adding {url}"),
        ControlCommand::Stop => eprintln!("Stopping: finishing the outputs cleanly"),
        _ => {}
    }
    let command = match cmd {
        // The scene is read from the collection here, on the reader's thread.
        ControlCommand::Scene { name, fade } => {
            let scene = match super::scenes::load(&name) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: scene: {e:#}");
                    return true;
                }
            };
            eprintln!("{} scene '{}'", if fade { "fading to" } else { "cutting to" }, scene.name);
            let transition = if fade { Transition::Fade(MAX_FADE_MS) } else { Transition::Cut };
            Command::Sources(SourcesCommand::ShowScene { scene, transition })
        }
        other => match other.engine_command() {
            Some(c) => c,
            None => return true,
        },
    };
    match control.commands.try_send(command) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            eprintln!("error: the engine is busy: command dropped, try again");
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// One line per output: id, state, kbit/s out, name (key redacted).
pub fn outputs_table(state: &EngineState, stats: &Stats) -> Vec<String> {
    if state.outputs.is_empty() {
        return vec!["no outputs".into()];
    }
    state
        .outputs
        .iter()
        .map(|o| {
            let kbps = stats.outputs.iter().find(|s| s.id == o.id).map_or(0.0, |s| s.kbps_out);
            format!("{}  {}  {kbps:.0} kbit/s  {}", o.id, o.state, o.name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_live_SECRETKEY_42";

    #[test]
    fn good_commands_parse() {
        let url = format!("rtmp://127.0.0.1:1935/live/{KEY}");
        match ControlCommand::parse(&format!("  add   {url} ")) {
            Ok(ControlCommand::Add(u)) => assert_eq!(u.stream_key.expose(), KEY),
            other => panic!("{other:?}"),
        }
        assert!(matches!(ControlCommand::parse("ADD rtmps://a.example/app/k"), Ok(ControlCommand::Add(_))));
        assert_eq!(
            ControlCommand::parse("add-profile show"),
            Ok(ControlCommand::AddProfile { profile: "show".into(), destination: None })
        );
        assert_eq!(
            ControlCommand::parse("add-profile show backup"),
            Ok(ControlCommand::AddProfile { profile: "show".into(), destination: Some("backup".into()) })
        );
        assert_eq!(ControlCommand::parse("retry destination-2"), Ok(ControlCommand::Retry("destination-2".into())));
        assert_eq!(ControlCommand::parse("remove show/backup"), Ok(ControlCommand::Remove("show/backup".into())));
        assert_eq!(ControlCommand::parse("mute"), Ok(ControlCommand::Mute(true)));
        assert_eq!(ControlCommand::parse("unmute"), Ok(ControlCommand::Mute(false)));
        assert_eq!(ControlCommand::parse("hide"), Ok(ControlCommand::HideCamera(true)));
        assert_eq!(ControlCommand::parse("Show"), Ok(ControlCommand::HideCamera(false)));
        assert_eq!(ControlCommand::parse("video test"), Ok(ControlCommand::SwitchVideo(VideoSourceSpec::TestPattern)));
        assert_eq!(ControlCommand::parse("audio silence"), Ok(ControlCommand::SwitchAudio(AudioSourceSpec::Silence)));
        assert!(ControlCommand::parse("video").is_err());
        assert!(ControlCommand::parse("audio wav:").is_err());
        assert_eq!(ControlCommand::parse("outputs"), Ok(ControlCommand::Outputs));
        assert_eq!(ControlCommand::parse("list"), Ok(ControlCommand::Outputs));
        assert_eq!(ControlCommand::parse("stop"), Ok(ControlCommand::Stop));
        assert_eq!(ControlCommand::parse("help"), Ok(ControlCommand::Help));
        assert_eq!(ControlCommand::parse("?"), Ok(ControlCommand::Help));
    }

    #[test]
    fn commands_map_to_the_engine() {
        let Ok(add) = ControlCommand::parse("add rtmp://h/app/k") else { panic!("parse") };
        match add.engine_command() {
            Some(Command::Broadcast(BroadcastCommand::AddOutputs { request, destination: None })) => {
                assert_eq!(request.urls.len(), 1);
                assert!(request.profile.is_none() && request.record.is_none());
            }
            other => panic!("{other:?}"),
        }
        let profile = ControlCommand::AddProfile { profile: "show".into(), destination: Some("main".into()) };
        match profile.engine_command() {
            Some(Command::Broadcast(BroadcastCommand::AddOutputs { request, destination })) => {
                assert_eq!((request.profile.as_deref(), destination.as_deref()), (Some("show"), Some("main")));
                assert!(request.urls.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(ControlCommand::Retry("a".into()).engine_command(), Some(Command::Broadcast(BroadcastCommand::RetryOutput(id))) if id == "a"));
        assert!(matches!(ControlCommand::Remove("a".into()).engine_command(), Some(Command::Broadcast(BroadcastCommand::RemoveOutput(id))) if id == "a"));
        assert!(matches!(ControlCommand::Mute(true).engine_command(), Some(Command::Sources(SourcesCommand::SetMute(true)))));
        assert!(matches!(ControlCommand::HideCamera(false).engine_command(), Some(Command::Sources(SourcesCommand::SetHideCamera(false)))));
        assert!(matches!(ControlCommand::Stop.engine_command(), Some(Command::Broadcast(BroadcastCommand::Stop))));
        assert!(ControlCommand::Outputs.engine_command().is_none());
        assert!(ControlCommand::Help.engine_command().is_none());
    }

    #[test]
    fn bad_commands_are_one_clear_error() {
        for bad in [
            "",
            "   ",
            "bogus",
            "add",
            "add http://example.com/x",
            "add rtmp://host-only",
            "add rtmp://h/app/k extra",
            "add-profile",
            "add-profile a b c",
            "retry",
            "remove",
            "remove a b",
            "mute now",
            "stop please",
            "outputs all",
        ] {
            let e = ControlCommand::parse(bad).expect_err(bad);
            assert!(!e.is_empty() && !e.contains('\n'), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn a_key_never_appears_in_an_error() {
        let lines = [
            format!("add rtmp://127.0.0.1:99999/live/{KEY}"),
            format!("add rtmp://user:pass@host/live/{KEY}"),
            format!("add rtmp://host/live/{KEY} {KEY}"),
            format!("add ftp://host/live/{KEY}"),
            format!("rtmp://host/live/{KEY}"),
            KEY.to_string(),
            format!("remove rtmp://host/live/{KEY}"),
            format!("retry rtmp://host/live/{KEY}"),
            format!("add-profile rtmp://host/live/{KEY}"),
            format!("add-profile show rtmp://host/live/{KEY}"),
            format!("mute {KEY}"),
        ];
        for line in &lines {
            let e = ControlCommand::parse(line).expect_err(line);
            assert!(!e.contains(KEY) && !e.contains("SECRETKEY"), "{line:?} -> {e:?}");
        }
        // And a good one's Debug (a log might print it) redacts the key too.
        let Ok(ok) = ControlCommand::parse(&format!("add rtmp://h/live/{KEY}")) else { panic!("parse") };
        assert!(!format!("{ok:?}").contains(KEY));
    }

    #[test]
    fn lines_are_bounded() {
        let long = "x".repeat(MAX_LINE + 1);
        let exact = "y".repeat(MAX_LINE);
        let mut bytes = format!("mute\r\n{long}\n{exact}\nhelp\n").into_bytes();
        // A line that is not UTF-8, then a last line without a newline.
        bytes.extend_from_slice(b"\xff\xfe\ngarbage");
        let mut input = io::BufReader::with_capacity(64, &bytes[..]);
        let mut read = || read_line_bounded(&mut input, MAX_LINE).expect("read");
        assert_eq!(read(), Line::Text("mute".into()));
        assert_eq!(read(), Line::TooLong);
        assert_eq!(read(), Line::Text(exact.clone()));
        assert_eq!(read(), Line::Text("help".into()));
        assert_eq!(read(), Line::NotUtf8);
        assert_eq!(read(), Line::Text("garbage".into()));
        assert_eq!(read(), Line::Eof);
        assert_eq!(read(), Line::Eof);
    }
}
