//! `tally`: open the app, or go live / record / serve / manage profiles
//! from the command line (see `cli/`).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line naming the argument; the usage hint adds nothing for a script.
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut line = lines.next().unwrap_or("error: invalid arguments").to_string();
            // "...were not provided:" names the argument on the next line.
            if line.ends_with(':')
                && let Some(next) = lines.next()
            {
                line = format!("{line} {next}");
            }
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    // The window keeps a log file too: opened from a menu, it has no terminal.
    let _log_file = init_logging(args.command.is_none());
    match cli::run(args.command, args.renderer) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<cli::stream::UsageError>() {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The console log (stderr, `RUST_LOG`, info by default) and the recent
/// log the app shows (`tally::engine::LogRing`), through the same filter;
/// for the window, also the log file (`tally::engine::log_file`), flushed
/// when the returned guard drops.
fn init_logging(window: bool) -> Option<tally::engine::log_file::FlushOnDrop> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file, a pipe or the
    // journal gets plain text that grep and log shippers can read.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let console = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(ansi);
    let (file, guard) = match window.then(tally::engine::log_file::log_dir).flatten().map(|dir| tally::engine::log_file::LogFile::open(&dir)) {
        Some(Ok((file, guard))) => (Some(file), Some(guard)),
        Some(Err(e)) => {
            eprintln!("tally: no log file this run ({e}); the log is on stderr and in the window's log view");
            (None, None)
        }
        None => (None, None),
    };
    let file_layer = file.map(|f| tracing_subscriber::fmt::layer().with_writer(f).with_target(false).with_ansi(false));
    let _ = tracing_subscriber::registry().with(filter).with(console).with(file_layer).with(tally::engine::log::layer()).try_init();
    guard
}
