//! Handing large buffers to the other process as shared memory, from inside serde.
//!
//! A task's input and output are encoded with serde, which knows nothing of descriptors. So
//! the codec encodes a message inside a *hand-off scope*: a buffer type's `Serialize`, when
//! it runs in an outgoing scope ([`collect`]), puts its bytes in a [`Segment`] and writes
//! only the segment's index in the message ([`serialize_pod`]); the codec sends the collected
//! segments with the frame. On the other side the codec decodes inside an incoming scope
//! ([`resolve`]) where the buffer's `Deserialize` turns the index back into the mapped
//! segment ([`deserialize_pod`]), without copying.
//!
//! Outside a scope (thread workers, JSON) the same types serialize as ordinary sequences, so
//! nothing changes for them.
//!
//! A buffer handed over many times should keep its segment (see [`serialize_pod`]'s
//! `segment` argument): the segment's id is what lets the peer's cache skip the descriptor
//! and the mapping after the first hand-off.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use bytemuck::Pod;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::shm::{Segment, ShmError};

/// Buffers of at least this many bytes travel as shared memory; smaller ones inline.
pub const SHARED_MEMORY_THRESHOLD: usize = 64 << 10;

thread_local! {
    static OUTGOING: RefCell<Option<Vec<Arc<Segment>>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Arc<Segment>>>> = const { RefCell::new(None) };
}

/// Runs `encode` in an outgoing scope; returns its result and the segments that buffers
/// serialized inside it handed over, in index order.
pub fn collect<R>(encode: impl FnOnce() -> R) -> (R, Vec<Arc<Segment>>) {
    let outer = OUTGOING.with(|slot| slot.replace(Some(Vec::new())));
    let restore = Restore {
        slot: &OUTGOING,
        outer,
    };
    let result = encode();
    let segments = restore.finish();
    (result, segments.unwrap_or_default())
}

/// Runs `decode` in an incoming scope where index `i` stands for `segments[i]`.
pub fn resolve<R>(segments: Vec<Arc<Segment>>, decode: impl FnOnce() -> R) -> R {
    let outer = INCOMING.with(|slot| slot.replace(Some(segments)));
    let restore = Restore {
        slot: &INCOMING,
        outer,
    };
    let result = decode();
    restore.finish();
    result
}

/// Puts a scope's previous content back, also when the closure panics.
struct Restore {
    slot: &'static std::thread::LocalKey<RefCell<Option<Vec<Arc<Segment>>>>>,
    outer: Option<Vec<Arc<Segment>>>,
}

impl Restore {
    fn finish(mut self) -> Option<Vec<Arc<Segment>>> {
        let outer = self.outer.take();
        let ours = self.slot.with(|slot| slot.replace(outer));
        std::mem::forget(self);
        ours
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.outer.take();
        self.slot.with(|slot| slot.replace(outer));
    }
}

/// Whether a buffer serialized now would be handed over as shared memory.
pub fn in_outgoing_scope() -> bool {
    OUTGOING.with(|slot| slot.borrow().is_some())
}

/// Adds `segment` to the current outgoing scope, returning its index; the same segment twice
/// in one message gets one index.
fn attach(segment: Arc<Segment>) -> Option<u32> {
    OUTGOING.with(|slot| {
        let mut slot = slot.borrow_mut();
        let list = slot.as_mut()?;
        let index = match list.iter().position(|s| s.id() == segment.id()) {
            Some(index) => index,
            None => {
                list.push(segment);
                list.len() - 1
            }
        };
        u32::try_from(index).ok()
    })
}

fn received(index: u32) -> Option<Arc<Segment>> {
    INCOMING.with(|slot| slot.borrow().as_ref()?.get(index as usize).cloned())
}

/// How a buffer travels inside a message encoded in a scope.
#[derive(Serialize, Deserialize)]
enum Handoff<'a> {
    /// Small: the bytes themselves.
    Inline(#[serde(borrow, with = "serde_bytes")] Cow<'a, [u8]>),
    /// Large: the index of a segment sent with the frame.
    Segment(u32),
}

/// Serializes `data`. In an outgoing scope, data of at least [`SHARED_MEMORY_THRESHOLD`]
/// bytes goes through the segment `segment` returns (ideally one the buffer keeps, made once),
/// smaller data inline; outside a scope, as an ordinary sequence.
pub fn serialize_pod<T, S>(
    data: &[T],
    segment: impl FnOnce() -> Result<Arc<Segment>, ShmError>,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    T: Pod + Serialize,
    S: Serializer,
{
    if !in_outgoing_scope() {
        return data.serialize(serializer);
    }
    let bytes: &[u8] = bytemuck::cast_slice(data);
    if bytes.len() < SHARED_MEMORY_THRESHOLD {
        return Handoff::Inline(Cow::Borrowed(bytes)).serialize(serializer);
    }
    let segment = segment().map_err(S::Error::custom)?;
    let index = attach(segment).ok_or_else(|| S::Error::custom("too many segments"))?;
    Handoff::Segment(index).serialize(serializer)
}

/// Pod data as decoded: owned elements, or a mapped segment holding them.
#[derive(Debug)]
pub enum PodData<T> {
    /// Decoded elements (outside a scope, or small data).
    Owned(Vec<T>),
    /// A segment whose bytes are the elements; its start is page-aligned.
    Mapped(Arc<Segment>),
}

/// Deserializes what [`serialize_pod`] wrote. A mapped segment is checked to hold a whole
/// number of `T`s.
pub fn deserialize_pod<'de, T, D>(deserializer: D) -> Result<PodData<T>, D::Error>
where
    T: Pod + Deserialize<'de>,
    D: Deserializer<'de>,
{
    let in_scope = INCOMING.with(|slot| slot.borrow().is_some());
    if !in_scope {
        return Vec::<T>::deserialize(deserializer).map(PodData::Owned);
    }
    match Handoff::deserialize(deserializer)? {
        Handoff::Inline(bytes) => elements_from(&bytes)
            .map(PodData::Owned)
            .map_err(D::Error::custom),
        Handoff::Segment(index) => {
            let segment = received(index).ok_or_else(|| {
                D::Error::custom(format!("no segment {index} came with the message"))
            })?;
            bytemuck::try_cast_slice::<u8, T>(segment.as_bytes())
                .map_err(|error| D::Error::custom(format!("segment {index}: {error:?}")))?;
            Ok(PodData::Mapped(segment))
        }
    }
}

/// Copies `bytes` into elements (the bytes need not be aligned for `T`).
fn elements_from<T: Pod>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let size = std::mem::size_of::<T>().max(1);
    if bytes.len() % size != 0 {
        return Err(format!(
            "inline buffer of {} bytes is not a whole number of elements",
            bytes.len()
        ));
    }
    let mut elements = vec![T::zeroed(); bytes.len() / size];
    bytemuck::cast_slice_mut::<T, u8>(&mut elements).copy_from_slice(bytes);
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a shared buffer: elements plus the segment made on first hand-off.
    struct Floats {
        data: Vec<f32>,
        segment: std::sync::OnceLock<Arc<Segment>>,
    }

    impl Serialize for Floats {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let segment = || -> Result<Arc<Segment>, ShmError> {
                if let Some(segment) = self.segment.get() {
                    return Ok(Arc::clone(segment));
                }
                let made = Arc::new(Segment::from_bytes(bytemuck::cast_slice(&self.data))?);
                Ok(Arc::clone(self.segment.get_or_init(|| made)))
            };
            serialize_pod(&self.data, segment, serializer)
        }
    }

    fn floats(len: usize) -> Floats {
        Floats {
            data: (0..len).map(|i| i as f32).collect(),
            segment: Default::default(),
        }
    }

    fn decode(bytes: &[u8], segments: Vec<Arc<Segment>>) -> PodData<f32> {
        resolve(segments, || {
            let mut de = postcard::Deserializer::from_bytes(bytes);
            deserialize_pod::<f32, _>(&mut de).expect("decodes")
        })
    }

    #[test]
    fn large_buffer_travels_as_one_segment_reused_across_messages() {
        let buffer = floats(SHARED_MEMORY_THRESHOLD);

        let (first, segments) = collect(|| postcard::to_allocvec(&buffer).expect("encodes"));
        let (_, again) = collect(|| postcard::to_allocvec(&buffer).expect("encodes"));
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].id(), again[0].id());

        match decode(&first, segments) {
            PodData::Mapped(segment) => {
                assert_eq!(
                    bytemuck::cast_slice::<u8, f32>(segment.as_bytes()),
                    &buffer.data[..]
                );
            }
            PodData::Owned(_) => panic!("a large buffer must arrive mapped"),
        }
    }

    #[test]
    fn small_buffer_travels_inline() {
        let buffer = floats(10);
        let (bytes, segments) = collect(|| postcard::to_allocvec(&buffer).expect("encodes"));
        assert!(segments.is_empty());
        assert!(matches!(decode(&bytes, segments), PodData::Owned(v) if v == buffer.data));
    }

    #[test]
    fn outside_a_scope_a_buffer_is_an_ordinary_sequence() {
        let buffer = floats(SHARED_MEMORY_THRESHOLD);
        let json = serde_json::to_value(&buffer).expect("encodes");
        assert_eq!(json.as_array().map(Vec::len), Some(buffer.data.len()));
    }

    #[test]
    fn index_without_its_segment_is_a_decode_error() {
        let buffer = floats(SHARED_MEMORY_THRESHOLD);
        let (bytes, _) = collect(|| postcard::to_allocvec(&buffer).expect("encodes"));
        let decoded = resolve(Vec::new(), || {
            let mut de = postcard::Deserializer::from_bytes(&bytes);
            deserialize_pod::<f32, _>(&mut de).map(|_| ())
        });
        assert!(decoded.is_err());
    }
}
