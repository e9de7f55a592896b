//! `tally completions SHELL` and `tally manpages DIR`: the shell completion
//! scripts and the manual pages, generated from the clap definition itself
//! so they can never disagree with `--help`. Packages and the release
//! tarball are built with them (`make package`, `make dist`).

use super::Cli;
use anyhow::Context;
use clap::CommandFactory;
use roff::{Roff, bold, italic, roman};
use std::path::{Path, PathBuf};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "tally", &mut std::io::stdout());
}

/// Writes `tally.1` and a page per subcommand (`tally-stream.1`,
/// `tally-profiles-add.1`, ...) into `dir`; the paths written.
pub fn manpages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let date = release_date();
    let mut written = Vec::new();
    write_page(&cmd, dir, &date, true, &mut written)?;
    Ok(written)
}

/// The page's date: the day of `SOURCE_DATE_EPOCH` (set by `make package`
/// from the last commit, so a rebuild gives the same bytes), else none.
fn release_date() -> String {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()).map(tally::engine::plan::utc_date).unwrap_or_default()
}

fn write_page(cmd: &clap::Command, dir: &Path, date: &str, top: bool, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub, dir, date, false, written)?;
    }
    let man = clap_mangen::Man::new(cmd.clone()).date(date).manual("Tally Manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    if top {
        page.extend_from_slice(top_page_sections().render().as_bytes());
    } else {
        page.extend_from_slice(see_also_tally().render().as_bytes());
    }
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(())
}

/// What `tally(1)` says beyond the options: the environment, the files,
/// the exit status and where to read more.
fn top_page_sections() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    for (name, what) in [
        ("RUST_LOG", "What is logged: error, warn, info (the default), debug or trace, or per module (tally::net=debug). Stream keys are redacted at every level."),
        ("TALLY_RENDERER", "glow or wgpu: how the window draws, as --renderer."),
        ("TALLY_PUBLISH_KEY", "The key tally serve requires of publishers, as --publish-key (an argument is visible to other users; the environment is not)."),
        ("TALLY_SECRET_STORE", "file: keep stream keys in keys.toml (mode 0600) beside the profiles instead of the OS keyring."),
        ("XDG_CONFIG_HOME", "Where profiles live: $XDG_CONFIG_HOME/tally (by default ~/.config/tally)."),
    ] {
        r.control("TP", []).text([bold(name)]).text([roman(what)]);
    }
    r.control("SH", ["FILES"]);
    for (path, what) in [
        ("~/.config/tally/profiles.toml", "Saved profiles: destinations, settings, recording. Never a stream key."),
        (
            "~/.config/tally/keys.toml",
            "Stream keys, readable by their owner only, where no OS keyring (Secret Service) answers. Otherwise keys are in the keyring, service tally, account PROFILE/DESTINATION.",
        ),
        ("~/.local/share/tally/app.ron", "The window's settings: the profile picked, the sources, the window's size and panels."),
        ("/usr/share/doc/tally/", "The README (the guide), the copyright file and the licences of the libraries Tally is built with."),
    ] {
        r.control("TP", []).text([bold(path)]).text([roman(what)]);
    }
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "0 after a clean end; 1 when an output failed or the window could not open (the reason is printed once); 2 for bad arguments.",
    )]);
    r.control("SH", ["EXAMPLES"]);
    for (what, example) in [
        ("Rehearse: run the local server, publish the test pattern to it, watch it.", "tally serve & tally stream rtmp://127.0.0.1:1935/live/test --video test & ffplay rtmp://127.0.0.1:1935/live/test"),
        ("Save a Twitch profile (the key is asked for, not echoed) and go live with it.", "tally profiles add show --preset twitch --key-stdin; tally stream --profile show --stats"),
        ("Check a profile's destinations before going live.", "tally check --profile show"),
    ] {
        r.control("TP", []).text([roman(what)]).text([italic(example)]);
    }
    r.control("SH", ["SEE ALSO"]);
    r.text([roman("ffplay(1), ffmpeg(1); the README in /usr/share/doc/tally/.")]);
    r
}

/// A subcommand's page points back to the main one.
fn see_also_tally() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["SEE ALSO"]);
    r.text([bold("tally"), roman("(1)")]);
    r
}
