//! Shared memory segments: large buffers handed to a worker process without copying.
//!
//! A [`Segment`] is an anonymous memory file (`memfd_create`) that its creator fills once,
//! then seals against any change (`F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
//! F_SEAL_SEAL`) and maps read-only. Its descriptor travels to the other process alongside a
//! frame (see `process::channel`); the receiver checks the seals before mapping it, so no
//! side can change the bytes after hand-off.
//!
//! Handing the same buffer to a worker many times must cost a message, not a mapping: a
//! fresh mapping takes a page fault per page on first touch. So each side keeps a cache:
//!
//! - the sender's [`SentSegments`] remembers, per peer, which segments that peer has
//!   mapped; a segment it already has travels as an id alone ([`SegmentRef::attached`]
//!   unset);
//! - the receiver's [`SegmentCache`] keeps every segment it was handed, by id, until the
//!   sender says with a `Release` message that it dropped its side.
//!
//! Lifetimes: the memory lives while any descriptor or mapping of it does. The sender's
//! cache holds only weak references, so dropping the last user's handle unmaps the sender's
//! side; [`SentSegments::take_released`] then names the ids to release in the peer. When a
//! worker process dies, its descriptors and mappings die with it, and the pool drops the
//! dead worker's `SentSegments`; when the pool's process dies, its workers die too (see
//! `process::child`), so no segment outlives both.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::{fmt, io, slice};

use rustix::fs::{
    fcntl_add_seals, fcntl_get_seals, fstat, ftruncate, memfd_create, MemfdFlags, SealFlags,
};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use super::wire::SegmentRef;

/// The seals every segment carries before it leaves its creator.
pub const REQUIRED_SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::GROW)
    .union(SealFlags::SHRINK)
    .union(SealFlags::SEAL);

/// Why a segment could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("creating a memory file failed: {0}")]
    /// `memfd_create` or sizing the file failed.
    Create(#[source] io::Error),
    #[error("mapping a segment of {len} bytes failed: {source}")]
    /// `mmap` failed.
    Map {
        /// The length asked for.
        len: usize,
        /// The system's error.
        source: io::Error,
    },
    #[error("sealing a segment failed: {0}")]
    /// Adding the seals failed.
    Seal(#[source] io::Error),
    #[error("segment {id} is missing seals {missing:?}: its sender could still change it")]
    /// A received segment lacks seals, so its sender could still change it.
    NotSealed {
        /// The segment.
        id: u64,
        /// The seals it lacks.
        missing: SealFlags,
    },
    #[error("segment {id} holds {actual} bytes, its message says {expected}")]
    /// A segment's size differs from what its message says.
    SizeMismatch {
        /// The segment.
        id: u64,
        /// The size in the message.
        expected: u64,
        /// The memory file's size.
        actual: u64,
    },
    #[error("segment {id} was never handed over and is not in the cache")]
    /// A message refers to a segment this side never received.
    Unknown {
        /// The segment.
        id: u64,
    },
    #[error("segment {id} is marked attached but no descriptor came with it")]
    /// A segment marked attached came without a descriptor.
    MissingFd {
        /// The segment.
        id: u64,
    },
    #[error("inspecting segment {id} failed: {source}")]
    /// Reading a received segment's seals or size failed.
    Inspect {
        /// The segment.
        id: u64,
        /// The system's error.
        source: io::Error,
    },
}

/// A sealed, read-only shared memory segment.
pub struct Segment {
    id: u64,
    fd: OwnedFd,
    map: Option<Mapping>,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("id", &self.id)
            .field("len", &self.len())
            .finish()
    }
}

impl Segment {
    /// Creates a segment of `len` bytes, lets `fill` write them, then seals it.
    pub fn create_with(len: usize, fill: impl FnOnce(&mut [u8])) -> Result<Segment, ShmError> {
        let id = next_segment_id();
        let fd = memfd_create(
            "protozoa-segment",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| ShmError::Create(e.into()))?;
        ftruncate(&fd, len as u64).map_err(|e| ShmError::Create(e.into()))?;

        // Fill through a writable mapping that is gone before sealing: the kernel refuses
        // F_SEAL_WRITE while any writable mapping exists.
        if len > 0 {
            let writable = Mapping::new(fd.as_fd(), len, ProtFlags::READ | ProtFlags::WRITE)?;
            // A process forked by another thread meanwhile (a worker being started) would
            // inherit the writable mapping until it execs, and sealing would fail with EBUSY.
            // SAFETY: the range is exactly the mapping just made; the advice changes only
            // whether children inherit it.
            unsafe {
                rustix::mm::madvise(
                    writable.ptr.as_ptr().cast(),
                    len,
                    rustix::mm::Advice::LinuxDontFork,
                )
            }
            .map_err(|e| ShmError::Create(e.into()))?;
            // SAFETY: the mapping is private to this function, `len` bytes long, writable,
            // and no other reference to it exists until it is dropped below.
            let bytes = unsafe { slice::from_raw_parts_mut(writable.ptr.as_ptr(), len) };
            fill(bytes);
            drop(writable);
        }
        fcntl_add_seals(&fd, REQUIRED_SEALS).map_err(|e| ShmError::Seal(e.into()))?;

        let map = map_read_only(fd.as_fd(), len)?;
        Ok(Segment { id, fd, map })
    }

    /// Creates a sealed segment holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Segment, ShmError> {
        Segment::create_with(bytes.len(), |target| target.copy_from_slice(bytes))
    }

    /// Opens a segment received from a peer: checks that it is sealed and `expected_len`
    /// bytes long, then maps it read-only.
    pub fn open(id: u64, fd: OwnedFd, expected_len: u64) -> Result<Segment, ShmError> {
        let inspect = |source: rustix::io::Errno| ShmError::Inspect {
            id,
            source: source.into(),
        };

        // Seals first: once they hold, the size below cannot change any more.
        let missing = REQUIRED_SEALS.difference(fcntl_get_seals(&fd).map_err(inspect)?);
        if !missing.is_empty() {
            return Err(ShmError::NotSealed { id, missing });
        }
        let actual = fstat(&fd).map_err(inspect)?.st_size as u64;
        if actual != expected_len {
            return Err(ShmError::SizeMismatch {
                id,
                expected: expected_len,
                actual,
            });
        }

        let len = usize::try_from(actual).map_err(|_| ShmError::Map {
            len: usize::MAX,
            source: io::Error::other("segment larger than the address space"),
        })?;
        let map = map_read_only(fd.as_fd(), len)?;
        Ok(Segment { id, fd, map })
    }

    /// The segment's id, the same in every process that maps it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |map| map.len)
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment's bytes; the start is page-aligned.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.map {
            // SAFETY: the mapping is `len` bytes, readable, lives as long as `self`, and
            // the seals guarantee nobody writes to it.
            Some(map) => unsafe { slice::from_raw_parts(map.ptr.as_ptr(), map.len) },
            None => &[],
        }
    }

    /// The memory file's descriptor, to hand the segment to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A mapping of a memory file, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a segment's mapping is read-only and sealed, so sharing or moving it between
// threads cannot race; the writable mapping of `create_with` never leaves its function.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only ever gives out shared, immutable bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: ProtFlags) -> Result<Mapping, ShmError> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint) aliases no Rust
        // object; the file is at least `len` bytes long (set by ftruncate or checked by
        // fstat), so every mapped page is backed.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }
            .map_err(|e| ShmError::Map {
                len,
                source: e.into(),
            })?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| ShmError::Map {
            len,
            source: io::Error::other("mmap returned null"),
        })?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` describe a mapping made in `Mapping::new`, unmapped only
        // here; every borrow of its bytes is bounded by the owner's lifetime.
        if let Err(error) = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::warn!(%error, len = self.len, "unmapping a segment failed");
        }
    }
}

fn map_read_only(fd: BorrowedFd<'_>, len: usize) -> Result<Option<Mapping>, ShmError> {
    // A zero-length mapping does not exist; an empty segment has none.
    if len == 0 {
        return Ok(None);
    }
    Mapping::new(fd, len, ProtFlags::READ).map(Some)
}

/// A segment id unique on this host while this process lives: the process id in the high
/// half, a counter in the low half. Ids are never reused within a process, so a `Release`
/// can never name a newer segment by mistake.
fn next_segment_id() -> u64 {
    static COUNTER: AtomicU32 = AtomicU32::new(1);
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    (u64::from(pid) << 32) | u64::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The sender's record of which segments one peer has mapped.
#[derive(Debug, Default)]
pub struct SentSegments {
    known: HashMap<u64, Weak<Segment>>,
}

impl SentSegments {
    /// A peer that has no segment yet.
    pub fn new() -> Self {
        SentSegments::default()
    }

    /// Describes `segments` for a frame to this peer. Those the peer does not know yet are
    /// attached: their descriptors, returned in the same order, must travel with the frame.
    pub fn prepare<'a>(
        &mut self,
        segments: &'a [Arc<Segment>],
    ) -> (Vec<SegmentRef>, Vec<BorrowedFd<'a>>) {
        let mut refs = Vec::with_capacity(segments.len());
        let mut fds = Vec::new();
        for segment in segments {
            let attached = !self.known.contains_key(&segment.id);
            if attached {
                self.known.insert(segment.id, Arc::downgrade(segment));
                fds.push(segment.fd());
            }
            refs.push(SegmentRef {
                id: segment.id,
                len: segment.len() as u64,
                attached,
            });
        }
        (refs, fds)
    }

    /// Forgets the segments whose last handle in this process is gone, returning their ids
    /// so that the peer can be told to release them.
    pub fn take_released(&mut self) -> Vec<u64> {
        let mut released = Vec::new();
        self.known.retain(|id, segment| {
            let alive = segment.strong_count() > 0;
            if !alive {
                released.push(*id);
            }
            alive
        });
        released
    }

    /// How many segments the peer is believed to hold.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether the peer is believed to hold none.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

/// The receiver's segments, kept mapped by id until the sender releases them.
#[derive(Debug, Default)]
pub struct SegmentCache {
    mapped: HashMap<u64, Arc<Segment>>,
}

impl SegmentCache {
    /// An empty cache.
    pub fn new() -> Self {
        SegmentCache::default()
    }

    /// Turns a frame's segment references into segments: attached ones are opened with the
    /// frame's descriptors (in order) and cached, the others looked up.
    pub fn resolve(
        &mut self,
        refs: &[SegmentRef],
        fds: Vec<OwnedFd>,
    ) -> Result<Vec<Arc<Segment>>, ShmError> {
        let mut fds = fds.into_iter();
        let mut segments = Vec::with_capacity(refs.len());
        for r in refs {
            let segment = if r.attached {
                let fd = fds.next().ok_or(ShmError::MissingFd { id: r.id })?;
                self.insert(Segment::open(r.id, fd, r.len)?)
            } else {
                self.get(r)?
            };
            segments.push(segment);
        }
        Ok(segments)
    }

    fn insert(&mut self, segment: Segment) -> Arc<Segment> {
        let segment = Arc::new(segment);
        self.mapped.insert(segment.id, Arc::clone(&segment));
        segment
    }

    fn get(&self, r: &SegmentRef) -> Result<Arc<Segment>, ShmError> {
        let segment = self
            .mapped
            .get(&r.id)
            .ok_or(ShmError::Unknown { id: r.id })?;
        if segment.len() as u64 != r.len {
            return Err(ShmError::SizeMismatch {
                id: r.id,
                expected: r.len,
                actual: segment.len() as u64,
            });
        }
        Ok(Arc::clone(segment))
    }

    /// Drops the cache's hold on these segments; each unmaps once its last user is done.
    pub fn release(&mut self, ids: &[u64]) {
        for id in ids {
            self.mapped.remove(id);
        }
    }

    /// How many segments are cached.
    pub fn len(&self) -> usize {
        self.mapped.len()
    }

    /// Whether no segment is cached.
    pub fn is_empty(&self) -> bool {
        self.mapped.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_segment_reads_back_its_bytes() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let segment = Segment::from_bytes(&bytes).expect("segment");
        assert_eq!(segment.as_bytes(), &bytes[..]);
    }

    #[test]
    fn empty_segment_is_sealed_and_empty() {
        let segment = Segment::from_bytes(&[]).expect("segment");
        assert!(segment.is_empty());
        assert!(fcntl_get_seals(segment.fd())
            .expect("seals")
            .contains(REQUIRED_SEALS));
    }

    #[test]
    fn unsealed_memory_file_is_refused() {
        let fd = memfd_create("unsealed", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .expect("memfd");
        ftruncate(&fd, 4096).expect("ftruncate");
        let error = Segment::open(1, fd, 4096).expect_err("must refuse");
        assert!(matches!(error, ShmError::NotSealed { .. }), "{error}");
    }

    #[test]
    fn second_hand_off_to_a_peer_sends_no_descriptor() {
        let segment = Arc::new(Segment::from_bytes(&[1, 2, 3]).expect("segment"));
        let mut sent = SentSegments::new();

        let (first, fds) = sent.prepare(std::slice::from_ref(&segment));
        assert!(first[0].attached);
        assert_eq!(fds.len(), 1);
        let (second, fds) = sent.prepare(std::slice::from_ref(&segment));
        assert!(!second[0].attached);
        assert!(fds.is_empty());
    }

    #[test]
    fn dropped_segment_is_reported_released_once() {
        let segment = Arc::new(Segment::from_bytes(&[1]).expect("segment"));
        let id = segment.id();
        let mut sent = SentSegments::new();
        let _ = sent.prepare(std::slice::from_ref(&segment));

        assert!(sent.take_released().is_empty());
        drop(segment);
        assert_eq!(sent.take_released(), vec![id]);
        assert!(sent.take_released().is_empty());
    }
}
