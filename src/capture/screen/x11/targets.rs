//! What there is to capture on an X server: its monitors (RandR) and its
//! named windows (the window tree).

use x11rb::connection::RequestConnection;
use x11rb::cookie::Cookie;
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, GetPropertyReply, GetWindowAttributesReply, MapState, Window,
};
use x11rb::rust_connection::RustConnection;

x11rb::atom_manager! {
    /// The atoms the window search and tracking read.
    pub(super) Atoms: AtomsCookie {
        _NET_WM_NAME,
        UTF8_STRING,
        WM_STATE,
    }
}

/// Deepest level of the window tree searched for named windows: a client
/// sits at most a few levels under the root (root, a window manager's
/// frame, sometimes a decoration or a virtual root, the client).
pub(super) const MAX_TREE_DEPTH: usize = 6;

/// Most windows looked at in one search, so a client making windows by the
/// thousand cannot make a search take forever (a busy desktop has a few
/// hundred).
pub(super) const MAX_WINDOWS_SCANNED: usize = 8192;

/// Longest title read, in bytes (longer titles are cut).
pub(super) const MAX_TITLE_BYTES: u32 = 1024;

/// A rectangle in root window coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rect {
    /// Left edge.
    pub x: i16,
    /// Top edge.
    pub y: i16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

impl Rect {
    /// The part of `self` inside (0, 0, `width`, `height`); `None` when empty.
    fn clipped_to(self, width: u16, height: u16) -> Option<Rect> {
        let (x0, y0) = (i32::from(self.x).max(0), i32::from(self.y).max(0));
        let x1 = (i32::from(self.x) + i32::from(self.width)).min(i32::from(width));
        let y1 = (i32::from(self.y) + i32::from(self.height)).min(i32::from(height));
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        Some(Rect {
            x: i16::try_from(x0).ok()?,
            y: i16::try_from(y0).ok()?,
            width: u16::try_from(x1 - x0).ok()?,
            height: u16::try_from(y1 - y0).ok()?,
        })
    }
}

/// One monitor: where it is on the root window, and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Monitor {
    /// Its part of the root window.
    pub rect: Rect,
    /// RandR's name for it ("screen" on Xvfb, "DP-1"...).
    pub name: String,
}

impl Monitor {
    /// How `tally devices` and errors show it: `0: 1280x720+0+0 screen`.
    pub(super) fn label(&self, index: usize) -> String {
        let r = self.rect;
        format!("{index}: {}x{}+{}+{} {}", r.width, r.height, r.x, r.y, self.name)
    }
}

/// True when the server has RandR 1.5 (the monitor list).
pub(super) fn has_monitor_list(conn: &RustConnection) -> Result<bool, ConnectionError> {
    if conn.extension_information(randr::X11_EXTENSION_NAME)?.is_none() {
        return Ok(false);
    }
    Ok(match conn.randr_query_version(1, 5)?.reply() {
        Ok(v) => v.major_version > 1 || (v.major_version == 1 && v.minor_version >= 5),
        Err(ReplyError::ConnectionError(e)) => return Err(e),
        Err(ReplyError::X11Error(_)) => false,
    })
}

/// The active monitors in RandR's order, each clipped to the root window;
/// without RandR 1.5, or when it lists none, the whole root window as one
/// monitor called "screen".
pub(super) fn monitors(conn: &RustConnection, root: Window, randr: bool) -> Result<Vec<Monitor>, ReplyError> {
    let geometry = conn.get_geometry(root)?.reply()?;
    let mut found = Vec::new();
    if randr {
        let list = conn.randr_get_monitors(root, true)?.reply()?;
        let names: Vec<_> = list
            .monitors
            .iter()
            .map(|m| conn.get_atom_name(m.name))
            .collect::<Result<_, _>>()?;
        for (m, name) in list.monitors.iter().zip(names) {
            let name = match name.reply() {
                Ok(n) => String::from_utf8_lossy(&n.name).into_owned(),
                Err(ReplyError::X11Error(_)) => format!("monitor {}", found.len()),
                Err(e) => return Err(e),
            };
            let rect = Rect { x: m.x, y: m.y, width: m.width, height: m.height };
            if let Some(rect) = rect.clipped_to(geometry.width, geometry.height) {
                found.push(Monitor { rect, name });
            }
        }
    }
    if found.is_empty() {
        found.push(Monitor {
            rect: Rect { x: 0, y: 0, width: geometry.width, height: geometry.height },
            name: "screen".into(),
        });
    }
    Ok(found)
}

/// A window with a title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NamedWindow {
    /// Its id.
    pub window: Window,
    /// Its title (`_NET_WM_NAME`, else `WM_NAME`).
    pub title: String,
    /// Mapped, and every ancestor too.
    pub viewable: bool,
}

/// The title a window's properties give: `_NET_WM_NAME` (UTF-8) first,
/// else `WM_NAME` (Latin-1 when typed STRING, taken as UTF-8 otherwise).
fn title_of(atoms: &Atoms, net_name: Option<GetPropertyReply>, wm_name: Option<GetPropertyReply>) -> Option<String> {
    let text = |bytes: &[u8], latin1: bool| {
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        if latin1 { bytes.iter().map(|&b| char::from(b)).collect() } else { String::from_utf8_lossy(bytes).into_owned() }
    };
    if let Some(p) = net_name.filter(|p| p.format == 8 && p.type_ == atoms.UTF8_STRING && !p.value.is_empty()) {
        return Some(text(&p.value, false));
    }
    let p = wm_name.filter(|p| p.format == 8 && !p.value.is_empty())?;
    Some(text(&p.value, p.type_ == u32::from(AtomEnum::STRING)))
}

/// A reply, `None` when the server answered with an error (the window went
/// away between two requests); connection failures are returned.
fn answer<R>(reply: Result<R, ReplyError>) -> Result<Option<R>, ConnectionError> {
    match reply {
        Ok(r) => Ok(Some(r)),
        Err(ReplyError::X11Error(_)) => Ok(None),
        Err(ReplyError::ConnectionError(e)) => Err(e),
    }
}

/// Every named window, breadth first from the root, children bottom to top
/// of the stack as the server lists them. A named window is a client: its
/// own subwindows (widgets) are not searched. Bounded by
/// [`MAX_TREE_DEPTH`] and [`MAX_WINDOWS_SCANNED`]. Requests of one level are
/// sent together, then their replies read, so a search costs a few round
/// trips rather than one per window.
pub(super) fn named_windows(conn: &RustConnection, root: Window, atoms: &Atoms) -> Result<Vec<NamedWindow>, ConnectionError> {
    type Asked<'c> = (
        Window,
        Cookie<'c, RustConnection, GetPropertyReply>,
        Cookie<'c, RustConnection, GetPropertyReply>,
        Cookie<'c, RustConnection, GetWindowAttributesReply>,
    );
    let long_length = MAX_TITLE_BYTES / 4;
    let mut found = Vec::new();
    let mut level = vec![root];
    let mut scanned = 0usize;
    for _ in 0..MAX_TREE_DEPTH {
        let trees = level.iter().map(|&w| conn.query_tree(w)).collect::<Result<Vec<_>, _>>()?;
        let mut children = Vec::new();
        for tree in trees {
            if let Some(tree) = answer(tree.reply())? {
                children.extend(tree.children);
            }
        }
        children.truncate(MAX_WINDOWS_SCANNED.saturating_sub(scanned));
        scanned += children.len();
        let asked = children
            .iter()
            .map(|&w| -> Result<Asked<'_>, ConnectionError> {
                Ok((
                    w,
                    conn.get_property(false, w, atoms._NET_WM_NAME, atoms.UTF8_STRING, 0, long_length)?,
                    conn.get_property(false, w, AtomEnum::WM_NAME, AtomEnum::ANY, 0, long_length)?,
                    conn.get_window_attributes(w)?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut next = Vec::new();
        for (window, net_name, wm_name, attributes) in asked {
            let (net_name, wm_name) = (answer(net_name.reply())?, answer(wm_name.reply())?);
            let Some(attributes) = answer(attributes.reply())? else { continue };
            match title_of(atoms, net_name, wm_name) {
                Some(title) => found.push(NamedWindow { window, title, viewable: attributes.map_state == MapState::VIEWABLE }),
                None => next.push(window),
            }
        }
        if next.is_empty() || scanned >= MAX_WINDOWS_SCANNED {
            break;
        }
        level = next;
    }
    Ok(found)
}

/// The window a title search means: the first whose title contains
/// `needle` (case-insensitive), a viewable one before any other.
pub(super) fn find_window<'a>(windows: &'a [NamedWindow], needle: &str) -> Option<&'a NamedWindow> {
    let needle = needle.to_lowercase();
    let matching = || windows.iter().filter(|w| w.title.to_lowercase().contains(&needle));
    matching().find(|w| w.viewable).or_else(|| matching().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(window: Window, title: &str, viewable: bool) -> NamedWindow {
        NamedWindow { window, title: title.into(), viewable }
    }

    #[test]
    fn a_title_search_is_case_insensitive_and_prefers_what_is_on_screen() {
        let list = [w(1, "Commands", false), w(2, "TallyBars — hidden", false), w(3, "tallybars", true), w(4, "TALLYBARS", true)];
        assert_eq!(find_window(&list, "TallyBars").map(|w| w.window), Some(3));
        assert_eq!(find_window(&list, "hidden").map(|w| w.window), Some(2), "an unmapped match beats none");
        assert_eq!(find_window(&list, "xterm"), None);
        assert_eq!(find_window(&list, "ÉCRAN"), None);
        let accents = [w(9, "Écran partagé", true)];
        assert_eq!(find_window(&accents, "écran").map(|w| w.window), Some(9));
    }

    fn property(type_: u32, value: &[u8]) -> Option<GetPropertyReply> {
        let value_len = value.len() as u32;
        Some(GetPropertyReply { format: 8, sequence: 0, length: 0, type_, bytes_after: 0, value_len, value: value.to_vec() })
    }

    #[test]
    fn titles_come_from_net_wm_name_first_then_wm_name() {
        let atoms = Atoms { _NET_WM_NAME: 300, UTF8_STRING: 301, WM_STATE: 302 };
        let string = u32::from(AtomEnum::STRING);
        let utf8 = "Écran – tally".as_bytes();
        assert_eq!(title_of(&atoms, property(301, utf8), property(string, b"old")), Some("Écran – tally".into()));
        // WM_NAME typed STRING is Latin-1: 0xC9 is É.
        assert_eq!(title_of(&atoms, None, property(string, b"\xC9cran\0junk")), Some("Écran".into()));
        assert_eq!(title_of(&atoms, property(301, b""), property(301, utf8)), Some("Écran – tally".into()));
        assert_eq!(title_of(&atoms, None, property(string, b"")), None, "an empty title is no title");
        assert_eq!(title_of(&atoms, None, None), None);
    }

    #[test]
    fn rects_are_clipped_to_the_root() {
        let r = Rect { x: -10, y: 5, width: 100, height: 100 };
        assert_eq!(r.clipped_to(50, 50), Some(Rect { x: 0, y: 5, width: 50, height: 45 }));
        assert_eq!(Rect { x: 60, y: 0, width: 10, height: 10 }.clipped_to(50, 50), None);
        let full = Rect { x: 0, y: 0, width: 1280, height: 720 };
        assert_eq!(full.clipped_to(1280, 720), Some(full));
        assert_eq!(Monitor { rect: full, name: "screen".into() }.label(0), "0: 1280x720+0+0 screen");
    }
}
