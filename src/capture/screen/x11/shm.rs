//! Getting pixels out of the X server: MIT-SHM where it can, plain GetImage
//! where it cannot.
//!
//! With MIT-SHM the server writes each picture straight into a System V
//! shared memory segment this process created (`shmget`/`shmat`), so a
//! 1080p frame costs one short request and reply instead of 8 MB through the
//! socket. The segment is marked for removal as soon as the server has
//! attached it (Linux keeps it until the last detach), so a crash leaks
//! nothing; the server detaches it on `ShmDetach` or when the connection
//! closes, this process on drop.
//!
//! A server without the extension, or one that cannot map the segment (a
//! remote display, another user's server), gets plain `GetImage`, with one
//! warning saying so.

use crate::capture::convert::MAX_SOURCE_DIMENSION;
use std::io;
use std::ptr::NonNull;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, Drawable, ImageFormat};
use x11rb::rust_connection::RustConnection;

use super::pixels::BYTES_PER_PIXEL;

/// Largest picture grabbed, in bytes: [`MAX_SOURCE_DIMENSION`] squared at
/// 4 bytes a pixel (256 MiB), the bound on the shared segment and on a
/// plain GetImage reply.
pub(super) const MAX_GRAB_BYTES: usize = MAX_SOURCE_DIMENSION as usize * MAX_SOURCE_DIMENSION as usize * BYTES_PER_PIXEL;

/// Why a grab failed.
#[derive(Debug)]
pub(super) enum GrabError {
    /// The X server refused the request, or the connection failed.
    Reply(ReplyError),
    /// The picture asked for is larger than [`MAX_GRAB_BYTES`].
    TooLarge(usize),
    /// The server delivered fewer bytes than the picture needs.
    Short {
        /// Bytes delivered.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
}

impl From<ReplyError> for GrabError {
    fn from(e: ReplyError) -> Self {
        GrabError::Reply(e)
    }
}

impl From<ConnectionError> for GrabError {
    fn from(e: ConnectionError) -> Self {
        GrabError::Reply(ReplyError::ConnectionError(e))
    }
}

impl std::fmt::Display for GrabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrabError::Reply(e) => write!(f, "{e}"),
            GrabError::TooLarge(n) => write!(f, "a {n}-byte picture is over the {MAX_GRAB_BYTES}-byte limit"),
            GrabError::Short { got, need } => write!(f, "the X server sent {got} bytes of a {need}-byte picture"),
        }
    }
}

/// A System V shared memory segment mapped into this process.
struct Segment {
    id: libc::c_int,
    addr: NonNull<u8>,
    len: usize,
    /// `IPC_RMID` done: the id must not be used again (the kernel may give it
    /// to another segment once the last attachment goes).
    removed: bool,
}

// SAFETY: the mapping belongs to the process, not to a thread; `Segment`
// hands out its bytes only through `&self`/`&mut self`, so Rust's borrow
// rules apply to them as to any buffer.
unsafe impl Send for Segment {}

impl Segment {
    /// A new private segment of `len` bytes, readable and writable by this
    /// user only, mapped read-write.
    fn create(len: usize) -> io::Result<Segment> {
        // SAFETY: plain syscall wrappers; every return value is checked.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `id` is the segment just created; a null address lets the
        // kernel choose where to map it.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if addr as isize == -1 {
            let e = io::Error::last_os_error();
            // SAFETY: removing the segment we created and never mapped.
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
            return Err(e);
        }
        let Some(addr) = NonNull::new(addr.cast::<u8>()) else {
            return Err(io::Error::other("shmat returned a null address"));
        };
        Ok(Segment { id, addr, len, removed: false })
    }

    /// Marks the segment for removal once every attachment is gone.
    fn remove(&mut self) {
        if !self.removed {
            // SAFETY: `id` is ours and not yet removed.
            unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
            self.removed = true;
        }
    }

    fn bytes_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: `addr` maps `self.len` bytes for as long as `self` lives;
        // `len` is clamped to it. The X server writes into the segment only
        // while a ShmGetImage is outstanding, and every caller waits for its
        // reply before reading.
        unsafe { std::slice::from_raw_parts_mut(self.addr.as_ptr(), len.min(self.len)) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.remove();
        // SAFETY: `addr` is the address shmat returned and is detached once.
        unsafe { libc::shmdt(self.addr.as_ptr().cast()) };
    }
}

/// A segment and the X server's name for it.
struct Shared {
    segment: Segment,
    xid: shm::Seg,
}

/// How pictures come out of the server.
enum Transport {
    Shm(Shared),
    /// Plain GetImage; the last reply's bytes.
    Plain(Vec<u8>),
}

/// Grabs rectangles of drawables as BGRX bytes, rows `width * 4` apart.
pub(super) struct Grabber {
    transport: Transport,
}

impl Grabber {
    /// A grabber for pictures of up to `bytes` bytes (it grows when asked for
    /// more). Uses MIT-SHM when the server has it and can attach a segment of
    /// this process; otherwise warns once and uses GetImage.
    pub(super) fn new(conn: &RustConnection, bytes: usize) -> Grabber {
        let shm = match conn.extension_information(shm::X11_EXTENSION_NAME) {
            Ok(Some(_)) => attach(conn, bytes.clamp(1, MAX_GRAB_BYTES)),
            Ok(None) => Err("the X server has no MIT-SHM extension".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match shm {
            Ok(shared) => Grabber { transport: Transport::Shm(shared) },
            Err(why) => {
                tracing::warn!("screen capture without shared memory ({why}): every frame is copied through the X socket");
                Grabber { transport: Transport::Plain(Vec::new()) }
            }
        }
    }

    /// True when pictures come through MIT-SHM.
    pub(super) fn uses_shm(&self) -> bool {
        matches!(self.transport, Transport::Shm(_))
    }

    /// Grabs the `width`x`height` rectangle at (`x`, `y`) of `drawable`.
    /// The returned bytes are the picture, BGRX rows `width * 4` apart
    /// (ZPixmap at 32 bits per pixel pads no row).
    pub(super) fn grab(
        &mut self,
        conn: &RustConnection,
        drawable: Drawable,
        (x, y): (i16, i16),
        (width, height): (u16, u16),
    ) -> Result<&mut [u8], GrabError> {
        let need = usize::from(width) * usize::from(height) * BYTES_PER_PIXEL;
        if need > MAX_GRAB_BYTES {
            return Err(GrabError::TooLarge(need));
        }
        if let Transport::Shm(shared) = &self.transport
            && shared.segment.len < need
        {
            let grown = attach(conn, need);
            let old = std::mem::replace(&mut self.transport, Transport::Plain(Vec::new()));
            if let Transport::Shm(old) = old {
                detach(conn, &old);
            }
            match grown {
                Ok(shared) => self.transport = Transport::Shm(shared),
                Err(why) => tracing::warn!(
                    "screen capture without shared memory from now on ({why}): every frame is copied through the X socket"
                ),
            }
        }
        let plane_mask = u32::MAX;
        match &mut self.transport {
            Transport::Shm(shared) => {
                let format = u8::from(ImageFormat::Z_PIXMAP);
                let reply = conn
                    .shm_get_image(drawable, x, y, width, height, plane_mask, format, shared.xid, 0)?
                    .reply()?;
                let got = reply.size as usize;
                if got < need {
                    return Err(GrabError::Short { got, need });
                }
                Ok(shared.segment.bytes_mut(need))
            }
            Transport::Plain(data) => {
                let reply = conn.get_image(ImageFormat::Z_PIXMAP, drawable, x, y, width, height, plane_mask)?.reply()?;
                *data = reply.data;
                if data.len() < need {
                    return Err(GrabError::Short { got: data.len(), need });
                }
                Ok(&mut data[..need])
            }
        }
    }

    /// Tells the server to let go of the segment (when it is done with this
    /// connection's captures); the mapping here goes on drop.
    pub(super) fn release(&mut self, conn: &RustConnection) {
        let old = std::mem::replace(&mut self.transport, Transport::Plain(Vec::new()));
        if let Transport::Shm(old) = old {
            detach(conn, &old);
        }
    }
}

/// Creates a `bytes`-byte segment and has the server attach it.
fn attach(conn: &RustConnection, bytes: usize) -> Result<Shared, String> {
    conn.shm_query_version().map_err(|e| e.to_string())?.reply().map_err(|e| format!("MIT-SHM: {e}"))?;
    let mut segment = Segment::create(bytes).map_err(|e| format!("shmget/shmat of {bytes} bytes: {e}"))?;
    let id = u32::try_from(segment.id).map_err(|_| format!("segment id {}", segment.id))?;
    let xid = conn.generate_id().map_err(|e| e.to_string())?;
    // Checked: the server maps the segment while handling the request, and
    // it must have done so before the segment is marked for removal.
    let attached = conn.shm_attach(xid, id, false).map_err(|e| e.to_string())?.check();
    segment.remove();
    attached.map_err(|e| format!("the X server cannot attach this process's shared memory: {e}"))?;
    Ok(Shared { segment, xid })
}

fn detach(conn: &RustConnection, shared: &Shared) {
    // The server may already be gone; nothing more to do then.
    if conn.shm_detach(shared.xid).is_ok() {
        let _ = conn.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_mapped_writable_and_marked_for_removal() {
        let mut seg = Segment::create(4096).expect("shmget in a test process");
        seg.bytes_mut(4096).fill(0x5A);
        assert!(seg.bytes_mut(10_000).len() == 4096, "views are clamped to the mapping");
        assert!(seg.bytes_mut(4096).iter().all(|&b| b == 0x5A));
        let id = seg.id;
        seg.remove();
        // Still mapped after IPC_RMID; gone for good once dropped.
        assert_eq!(seg.bytes_mut(1)[0], 0x5A);
        drop(seg);
        // SAFETY: IPC_STAT into a zeroed struct on an id that must no longer exist.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
        assert_eq!(rc, -1, "segment {id} outlived its last detach");
    }

    #[test]
    fn an_impossible_segment_is_an_error() {
        assert!(Segment::create(usize::MAX / 2).is_err());
    }
}
