//! Data that moves into tasks and out of them without copies.
//!
//! - [`TransferBuffer`] is owned data handed over to a task and back (the
//!   browser's *transferables*): moving it moves a pointer, never the elements.
//! - [`SharedBuffer`] is read-only data that many tasks read at once (the
//!   browser's `SharedArrayBuffer` as the original's `useSharedArrayBuffers`
//!   meant it): cloning it clones a reference count.
//!
//! Both hold plain numeric elements (`bytemuck::Pod`, `f32` by default) so that
//! they can be placed in memory shared with a worker process. Between threads
//! they are never serialized; outside a process hand-off (JSON, for instance)
//! they serialize as ordinary sequences.
//!
//! Handed to a worker process (see `process::handoff`), a buffer of at least
//! 64 KiB travels as a sealed shared memory segment instead of bytes on the
//! socket. A `SharedBuffer` makes its segment once and keeps it, so the worker
//! maps it once and handing it over again costs a message; the worker's copy
//! reads the mapping without copying. A `TransferBuffer` is mutable on both
//! sides, so each hand-off copies it into a fresh segment and out again: one
//! copy each way instead of the socket's several.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(target_os = "linux")]
use crate::process::handoff::{self, PodData};
#[cfg(target_os = "linux")]
use crate::process::shm::{Segment, ShmError};
#[cfg(target_os = "linux")]
use std::sync::OnceLock;

/// Owned numeric data handed to a task and back without copying.
///
/// ```
/// use protozoa_workers::buffer::TransferBuffer;
///
/// let mut positions = TransferBuffer::from(vec![0.0_f32; 1500]);
/// positions[0] = 1.0;
/// let moved = positions; // no element is copied
/// assert_eq!(moved.into_vec()[0], 1.0);
/// ```
#[derive(Clone, PartialEq, Default)]
pub struct TransferBuffer<T: Pod = f32> {
    data: Vec<T>,
}

impl<T: Pod> TransferBuffer<T> {
    /// A buffer of `len` zeroed elements.
    pub fn zeroed(len: usize) -> Self {
        TransferBuffer {
            data: vec![T::zeroed(); len],
        }
    }

    /// The elements, as a vector (no copy).
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The elements as raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }
}

impl<T: Pod> From<Vec<T>> for TransferBuffer<T> {
    fn from(data: Vec<T>) -> Self {
        TransferBuffer { data }
    }
}

impl<T: Pod> Deref for TransferBuffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T: Pod> DerefMut for TransferBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for TransferBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferBuffer(len {})", self.data.len())
    }
}

impl<T: Pod + Serialize> Serialize for TransferBuffer<T> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        #[cfg(target_os = "linux")]
        return handoff::serialize_pod(
            &self.data,
            || Segment::from_bytes(self.as_bytes()).map(Arc::new),
            serializer,
        );
        #[cfg(not(target_os = "linux"))]
        self.data.serialize(serializer)
    }
}

impl<'de, T: Pod + Deserialize<'de>> Deserialize<'de> for TransferBuffer<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[cfg(target_os = "linux")]
        return Ok(match handoff::deserialize_pod::<T, D>(deserializer)? {
            PodData::Owned(data) => TransferBuffer { data },
            // Mutable here, so it leaves the sealed segment: one copy.
            PodData::Mapped(segment) => {
                let elements = bytemuck::try_cast_slice::<u8, T>(segment.as_bytes())
                    .map_err(|error| serde::de::Error::custom(format!("{error:?}")))?;
                TransferBuffer::from(elements.to_vec())
            }
        });
        #[cfg(not(target_os = "linux"))]
        Vec::<T>::deserialize(deserializer).map(TransferBuffer::from)
    }
}

/// Read-only numeric data that many tasks read at once without copying.
///
/// ```
/// use protozoa_workers::buffer::SharedBuffer;
///
/// let field = SharedBuffer::from(vec![1.0_f32; 1 << 20]);
/// let for_task = field.clone(); // a reference count, not a megabyte
/// assert!(SharedBuffer::ptr_eq(&field, &for_task));
/// assert_eq!(for_task.len(), 1 << 20);
/// ```
#[derive(Clone)]
pub struct SharedBuffer<T: Pod = f32> {
    inner: Arc<Shared<T>>,
}

/// A shared buffer's elements, and its segment once it was handed to a worker process.
struct Shared<T> {
    storage: Storage<T>,
    /// Made on the first hand-off and kept, so that the worker keeps it mapped.
    #[cfg(target_os = "linux")]
    segment: OnceLock<Arc<Segment>>,
}

enum Storage<T> {
    Heap(Box<[T]>),
    /// A segment received from the other process; its bytes were checked to be whole `T`s.
    #[cfg(target_os = "linux")]
    Mapped(Arc<Segment>),
}

impl<T: Pod> SharedBuffer<T> {
    /// Whether two buffers share the same memory.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// The elements as raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }

    fn new(storage: Storage<T>) -> Self {
        SharedBuffer {
            inner: Arc::new(Shared {
                storage,
                #[cfg(target_os = "linux")]
                segment: OnceLock::new(),
            }),
        }
    }

    /// The buffer's segment: the one it came in, or the one made on its first hand-off.
    #[cfg(target_os = "linux")]
    fn segment(&self) -> Result<Arc<Segment>, ShmError> {
        if let Storage::Mapped(segment) = &self.inner.storage {
            return Ok(Arc::clone(segment));
        }
        if let Some(segment) = self.inner.segment.get() {
            return Ok(Arc::clone(segment));
        }
        let made = Arc::new(Segment::from_bytes(self.as_bytes())?);
        Ok(Arc::clone(self.inner.segment.get_or_init(|| made)))
    }
}

impl<T: Pod> From<Vec<T>> for SharedBuffer<T> {
    fn from(data: Vec<T>) -> Self {
        SharedBuffer::new(Storage::Heap(data.into_boxed_slice()))
    }
}

impl<T: Pod> Deref for SharedBuffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.inner.storage {
            Storage::Heap(data) => data,
            #[cfg(target_os = "linux")]
            Storage::Mapped(segment) => bytemuck::cast_slice(segment.as_bytes()),
        }
    }
}

impl<T: Pod> PartialEq for SharedBuffer<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<T: Pod> fmt::Debug for SharedBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedBuffer(len {})", self.len())
    }
}

impl<T: Pod + Serialize> Serialize for SharedBuffer<T> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        #[cfg(target_os = "linux")]
        return handoff::serialize_pod(self, || self.segment(), serializer);
        #[cfg(not(target_os = "linux"))]
        (**self).serialize(serializer)
    }
}

impl<'de, T: Pod + Deserialize<'de>> Deserialize<'de> for SharedBuffer<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[cfg(target_os = "linux")]
        return Ok(match handoff::deserialize_pod::<T, D>(deserializer)? {
            PodData::Owned(data) => SharedBuffer::from(data),
            PodData::Mapped(segment) => SharedBuffer::new(Storage::Mapped(segment)),
        });
        #[cfg(not(target_os = "linux"))]
        Vec::<T>::deserialize(deserializer).map(SharedBuffer::from)
    }
}
