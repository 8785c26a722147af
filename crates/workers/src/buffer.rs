//! Data that moves into tasks and out of them without copies.
//!
//! - [`TransferBuffer`] is owned data handed over to a task and back (the
//!   browser's *transferables*): moving it moves a pointer, never the elements.
//! - [`SharedBuffer`] is read-only data that many tasks read at once (the
//!   browser's `SharedArrayBuffer` as the original's `useSharedArrayBuffers`
//!   meant it): cloning it clones a reference count.
//!
//! Both hold plain numeric elements (`bytemuck::Pod`, `f32` by default) so that
//! they can later be placed in memory shared with a worker process. Between
//! threads they serialize as ordinary sequences; serialization is only used
//! where data crosses a process or network boundary.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        self.data.serialize(serializer)
    }
}

impl<'de, T: Pod + Deserialize<'de>> Deserialize<'de> for TransferBuffer<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
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
    data: Arc<[T]>,
}

impl<T: Pod> SharedBuffer<T> {
    /// Whether two buffers share the same memory.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.data, &b.data)
    }

    /// The elements as raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }
}

impl<T: Pod> From<Vec<T>> for SharedBuffer<T> {
    fn from(data: Vec<T>) -> Self {
        SharedBuffer { data: data.into() }
    }
}

impl<T: Pod> Deref for SharedBuffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T: Pod> PartialEq for SharedBuffer<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<T: Pod> fmt::Debug for SharedBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedBuffer(len {})", self.data.len())
    }
}

impl<T: Pod + Serialize> Serialize for SharedBuffer<T> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.data.serialize(serializer)
    }
}

impl<'de, T: Pod + Deserialize<'de>> Deserialize<'de> for SharedBuffer<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(SharedBuffer::from)
    }
}
