//! What to type next, added to an engine error where the command line
//! prints it (the engine says what is wrong; the flags are the CLI's).

use tally::engine::PlanError;

/// A plan's error with the command that fixes it, if there is one.
pub fn plan_error(e: PlanError) -> anyhow::Error {
    let hint = match &e {
        PlanError::MissingKey { profile, destination } => Some(format!("tally profiles set-key {profile} {destination} --key-stdin")),
        PlanError::NoDestination => Some("give at least one destination URL or --profile NAME".to_string()),
        _ => None,
    };
    match hint {
        Some(hint) => anyhow::anyhow!("{}: {hint}", tally::error_chain(&e)),
        None => anyhow::Error::new(e),
    }
}
