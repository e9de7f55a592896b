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
    init_logging();
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
/// log the app shows (`tally::engine::LogRing`), through the same filter.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file, a pipe or the
    // journal gets plain text that grep and log shippers can read.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let console = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(ansi);
    let _ = tracing_subscriber::registry().with(filter).with(console).with(tally::engine::log::layer()).try_init();
}
