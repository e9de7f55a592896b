//! `tally devices`: what Tally can capture from, and what it cannot find.

use anyhow::Context;

/// Prints cameras and microphones, as text or JSON.
pub fn list(json: bool) -> anyhow::Result<()> {
    let cameras = tally::capture::list_cameras().context("listing cameras")?;
    let mics = tally::capture::list_microphones().context("listing microphones")?;
    if json {
        let doc = serde_json::json!({ "cameras": cameras, "microphones": mics });
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    say!("Cameras:");
    if cameras.is_empty() {
        say!("  none found (--video auto sends the test pattern)");
    }
    for c in &cameras {
        say!("  camera:{}  {}{}", c.index, c.name, if c.description.is_empty() { String::new() } else { format!("  ({})", c.description) });
        if c.modes.is_empty() {
            say!("      (its modes could not be read)");
        }
        for m in &c.modes {
            say!("      {m}");
        }
    }
    say!("Microphones:");
    if mics.is_empty() {
        say!("  none found (--audio auto sends silence)");
    }
    for m in &mics {
        let rates: Vec<String> = m
            .rates
            .iter()
            .map(|(lo, hi)| if lo == hi { format!("{lo}") } else { format!("{lo}-{hi}") })
            .collect();
        let channels: Vec<String> = m.channels.iter().map(u16::to_string).collect();
        say!(
            "  mic:{}{}  {}\n      rates {} Hz, channels {}, formats {}",
            m.id,
            if m.is_default { " (default)" } else { "" },
            m.name,
            rates.join(", "),
            channels.join(", "),
            m.formats.join(", ")
        );
    }
    Ok(())
}
