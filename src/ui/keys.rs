//! The keyboard shortcuts, as the README and the tooltips list them. They
//! work whatever has the focus, live or not (switching scenes while live is
//! what Ctrl+1…9 are for).

use egui::{Key, KeyboardShortcut, Modifiers};

/// Go live with the selected profile.
pub const GO_LIVE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::L);
/// End the stream.
pub const END: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
/// Rehearse on the local server.
pub const REHEARSE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::R);
/// Mute or unmute the microphone.
pub const MUTE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::M);
/// Hide or show the camera.
pub const HIDE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::H);
/// Put the first … ninth scene of the strip on air (a cut, or a fade when the strip's *Fade* is on).
pub const SCENES: [KeyboardShortcut; 9] = {
    const fn scene(key: Key) -> KeyboardShortcut {
        KeyboardShortcut::new(Modifiers::COMMAND, key)
    }
    [
        scene(Key::Num1),
        scene(Key::Num2),
        scene(Key::Num3),
        scene(Key::Num4),
        scene(Key::Num5),
        scene(Key::Num6),
        scene(Key::Num7),
        scene(Key::Num8),
        scene(Key::Num9),
    ]
};
