//! The framed protocol spoken between the pool and a worker process.
//!
//! Every message travels as one frame:
//!
//! ```text
//! +-----------+----------------------------------------------+-----------------+
//! | len: u32  | header (16 bytes)                            | payload         |
//! | (LE)      | magic "PZWK" | version u16 LE | kind u8 | 0 | request id u64 LE | postcard bytes  |
//! +-----------+----------------------------------------------+-----------------+
//! ```
//!
//! `len` counts the header and the payload, never the prefix itself. The header's layout is
//! fixed for every protocol version, so that a peer speaking another version is reported as a
//! [`WireError::VersionMismatch`] rather than as garbage. The payload is the message's body
//! encoded with serde in postcard's compact binary format; messages without a body have an
//! empty payload.
//!
//! The request id pairs a reply ([`Message::Done`], [`Message::Failed`]) with its request
//! ([`Message::Run`], [`Message::Initialize`], [`Message::Reset`]) and names the request a
//! [`Message::Cancel`] is about. Messages that are about no request carry id 0.
//!
//! A frame may be accompanied by file descriptors of shared memory segments (see
//! `process::shm` and `process::channel`): each [`SegmentRef`] with `attached` set stands
//! for the next descriptor received with the frames, in order. This module only counts them;
//! it never touches a descriptor, so it can decode any byte stream.

use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// The first four bytes of every header.
pub const MAGIC: [u8; 4] = *b"PZWK";

/// The version of this protocol; both sides must speak the same one.
pub const PROTOCOL_VERSION: u16 = 1;

/// The size of the fixed header that follows the length prefix.
pub const HEADER_LEN: usize = 16;

/// The size of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// The default limit on `len` (header plus payload): 256 MiB.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 256 << 20;

/// The id of a request, unique among the requests a pool sends to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One frame: a request id and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The request this frame is (or answers, or cancels); 0 when none.
    pub request_id: RequestId,
    /// The message.
    pub message: Message,
}

impl Frame {
    /// A frame of `message` about `request_id`.
    pub fn new(request_id: RequestId, message: Message) -> Self {
        Frame {
            request_id,
            message,
        }
    }

    /// How many file descriptors travel with this frame.
    pub fn attached_fds(&self) -> usize {
        let segments = match &self.message {
            Message::Run(run) => &run.segments,
            Message::Done(done) => &done.segments,
            _ => return 0,
        };
        segments.iter().filter(|s| s.attached).count()
    }
}

/// The messages of the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Worker to pool, first message on the channel: who the worker is and what it can run.
    Hello(Hello),
    /// Pool to worker: build the worker's state; answered by `Done` or `Failed`.
    Initialize,
    /// Pool to worker: clear the worker's state; answered by `Done` or `Failed`.
    Reset,
    /// Pool to worker: run one task; answered by `Done` or `Failed`.
    Run(Run),
    /// Worker to pool: the request succeeded.
    Done(Done),
    /// Worker to pool: the request failed.
    Failed(Failure),
    /// Pool to worker: the request's caller no longer wants its result.
    Cancel,
    /// Pool to worker: the pool no longer holds these segments; unmap them once unused.
    Release(Release),
    /// Pool to worker: finish the running request, then exit.
    Shutdown,
}

/// The kind byte of the header, one per [`Message`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// [`Message::Hello`].
    Hello = 1,
    /// [`Message::Initialize`].
    Initialize = 2,
    /// [`Message::Reset`].
    Reset = 3,
    /// [`Message::Run`].
    Run = 4,
    /// [`Message::Done`].
    Done = 5,
    /// [`Message::Failed`].
    Failed = 6,
    /// [`Message::Cancel`].
    Cancel = 7,
    /// [`Message::Release`].
    Release = 8,
    /// [`Message::Shutdown`].
    Shutdown = 9,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        const KINDS: [Kind; 9] = [
            Kind::Hello,
            Kind::Initialize,
            Kind::Reset,
            Kind::Run,
            Kind::Done,
            Kind::Failed,
            Kind::Cancel,
            Kind::Release,
            Kind::Shutdown,
        ];
        KINDS.into_iter().find(|kind| *kind as u8 == byte)
    }
}

impl Message {
    /// The kind byte this message travels under.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Initialize => Kind::Initialize,
            Message::Reset => Kind::Reset,
            Message::Run(_) => Kind::Run,
            Message::Done(_) => Kind::Done,
            Message::Failed(_) => Kind::Failed,
            Message::Cancel => Kind::Cancel,
            Message::Release(_) => Kind::Release,
            Message::Shutdown => Kind::Shutdown,
        }
    }
}

/// The worker's greeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the worker speaks (also in every header).
    pub protocol_version: u16,
    /// The worker id the pool gave this process when it started it.
    pub worker_id: u64,
    /// The worker's process id, for logs.
    pub pid: u32,
    /// The task names the worker has handlers for.
    pub tasks: Vec<String>,
}

/// A task to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The task's name (the wire-level "type").
    pub task: String,
    /// The task's input, encoded by the caller.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
    /// The shared memory segments the input refers to.
    pub segments: Vec<SegmentRef>,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// The task's output, encoded by the worker; empty for `Initialize` and `Reset`.
    #[serde(with = "serde_bytes")]
    pub output: Vec<u8>,
    /// The shared memory segments the output refers to.
    pub segments: Vec<SegmentRef>,
}

/// A failed reply: what went wrong and whether retrying could help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// What failed.
    pub kind: FailureKind,
    /// A message for people.
    pub message: String,
    /// A backtrace, where the worker captured one.
    pub backtrace: Option<String>,
    /// Set when a retry cannot help.
    pub permanent: bool,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The handler returned an error.
    Handler,
    /// The handler panicked.
    Panicked,
    /// The worker has no handler for the task's name.
    UnknownTaskType,
    /// The input did not decode as the task's input type.
    InvalidInput,
    /// The output could not be encoded.
    InvalidOutput,
    /// Building or resetting the worker's state failed.
    Initialize,
}

/// Segments the pool no longer holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The ids of the released segments.
    pub segments: Vec<u64>,
}

/// A reference to a shared memory segment inside a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// The segment's id, unique on the host for the life of its creator.
    pub id: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Whether its descriptor travels with this frame (first hand-off to this peer); when
    /// unset, the receiver already has it mapped.
    pub attached: bool,
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    /// A frame is longer than the configured limit.
    FrameTooLarge {
        /// The frame's length (header plus payload).
        len: u64,
        /// The limit.
        limit: u32,
    },
    #[error("frame does not start with the protocol's magic bytes (found {found:02x?})")]
    /// The header does not start with [`MAGIC`].
    BadMagic {
        /// The bytes found instead.
        found: [u8; 4],
    },
    #[error("peer speaks protocol version {theirs}, this side speaks {ours}")]
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// [`PROTOCOL_VERSION`].
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    #[error("frame does not decode: {0}")]
    /// A whole frame arrived but is not a valid message.
    Decode(#[from] DecodeError),
    #[error("channel closed in the middle of a frame")]
    /// The stream ended inside a frame.
    Truncated,
    #[error("frame announces {expected} descriptors but {received} arrived")]
    /// A frame came with fewer descriptors than it announces.
    MissingFds {
        /// The number of attached segments in the frame.
        expected: usize,
        /// The number of descriptors available.
        received: usize,
    },
    #[error("channel i/o failed: {0}")]
    /// Reading or writing the channel failed.
    Io(#[from] io::Error),
}

/// Why the bytes of a complete frame do not form a message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame length {len} is shorter than the {HEADER_LEN}-byte header")]
    /// The length prefix is smaller than a header.
    ShortFrame {
        /// The announced length.
        len: u32,
    },
    #[error("unknown message kind {0}")]
    /// The kind byte names no message.
    UnknownKind(u8),
    #[error("payload of a {kind:?} message: {source}")]
    /// The payload does not decode as the kind's body.
    Payload {
        /// The message kind.
        kind: Kind,
        /// What postcard found wrong.
        source: postcard::Error,
    },
    #[error("{extra} bytes left after the payload of a {kind:?} message")]
    /// Bytes are left after the body.
    TrailingBytes {
        /// The message kind.
        kind: Kind,
        /// How many.
        extra: usize,
    },
    #[error("a {kind:?} message has a payload of {len} bytes but takes none")]
    /// A message without a body has a payload.
    UnexpectedPayload {
        /// The message kind.
        kind: Kind,
        /// The payload's length.
        len: usize,
    },
}

/// Encodes frames into one buffer reused from frame to frame.
#[derive(Debug)]
pub struct FrameEncoder {
    buf: Vec<u8>,
    max_frame_len: u32,
}

impl Default for FrameEncoder {
    fn default() -> Self {
        FrameEncoder::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameEncoder {
    /// An encoder refusing frames longer than `max_frame_len` (header plus payload), so
    /// that the peer's decoder, configured alike, never has to refuse one.
    pub fn new(max_frame_len: u32) -> Self {
        FrameEncoder {
            buf: Vec::new(),
            max_frame_len,
        }
    }

    /// Encodes `frame`, prefix included; the bytes stay valid until the next call.
    pub fn encode(&mut self, frame: &Frame) -> Result<&[u8], WireError> {
        // Prefix placeholder and header.
        self.buf.clear();
        self.buf.extend_from_slice(&[0; PREFIX_LEN]);
        self.buf.extend_from_slice(&MAGIC);
        self.buf.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        self.buf.push(frame.message.kind() as u8);
        self.buf.push(0);
        self.buf
            .extend_from_slice(&frame.request_id.0.to_le_bytes());

        // Payload, appended in place.
        let buf = std::mem::take(&mut self.buf);
        self.buf = encode_payload(&frame.message, buf)?;

        // Now that the length is known, check and write it.
        let len = (self.buf.len() - PREFIX_LEN) as u64;
        if len > u64::from(self.max_frame_len) {
            return Err(WireError::FrameTooLarge {
                len,
                limit: self.max_frame_len,
            });
        }
        self.buf[..PREFIX_LEN].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(&self.buf)
    }
}

fn encode_payload(message: &Message, buf: Vec<u8>) -> Result<Vec<u8>, WireError> {
    let encoded = match message {
        Message::Hello(hello) => postcard::to_extend(hello, buf),
        Message::Run(run) => postcard::to_extend(run, buf),
        Message::Done(done) => postcard::to_extend(done, buf),
        Message::Failed(failure) => postcard::to_extend(failure, buf),
        Message::Release(release) => postcard::to_extend(release, buf),
        Message::Initialize | Message::Reset | Message::Cancel | Message::Shutdown => Ok(buf),
    };

    // Serializing plain structs into a vector can only fail on a broken `Serialize`.
    encoded.map_err(|source| {
        WireError::Io(io::Error::other(format!(
            "encoding a {:?} message: {source}",
            message.kind()
        )))
    })
}

/// Decodes frames from a byte stream, one at a time, refusing frames over a size limit before
/// reading (or allocating for) their body.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max_frame_len: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_frame_len` (header plus payload).
    pub fn new(max_frame_len: u32) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            max_frame_len,
        }
    }

    /// The limit on a frame's length.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// Reads the next frame. `Ok(None)` means the stream ended cleanly between frames; an
    /// end in the middle of a frame is [`WireError::Truncated`].
    pub fn read_frame<R: Read + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Frame>, WireError> {
        // The prefix; no byte at all is a clean end.
        let mut prefix = [0; PREFIX_LEN];
        if !read_exact_or_eof(reader, &mut prefix)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes(prefix);
        check_len(len, self.max_frame_len)?;

        // The body, into the reused buffer.
        self.buf.clear();
        self.buf.resize(len as usize, 0);
        reader.read_exact(&mut self.buf).map_err(truncated_on_eof)?;
        decode_body(&self.buf).map(Some)
    }
}

/// Decodes one frame from the start of `bytes`, returning it and the number of bytes it
/// took. Too few bytes for a whole frame is [`WireError::Truncated`].
pub fn decode_frame(bytes: &[u8], max_frame_len: u32) -> Result<(Frame, usize), WireError> {
    let prefix: [u8; PREFIX_LEN] = match bytes.get(..PREFIX_LEN) {
        Some(prefix) => prefix.try_into().map_err(|_| WireError::Truncated)?,
        None => return Err(WireError::Truncated),
    };
    let len = u32::from_le_bytes(prefix);
    check_len(len, max_frame_len)?;

    let end = PREFIX_LEN + len as usize;
    let body = bytes.get(PREFIX_LEN..end).ok_or(WireError::Truncated)?;
    Ok((decode_body(body)?, end))
}

fn check_len(len: u32, limit: u32) -> Result<(), WireError> {
    if len > limit {
        return Err(WireError::FrameTooLarge {
            len: len.into(),
            limit,
        });
    }
    if (len as usize) < HEADER_LEN {
        return Err(DecodeError::ShortFrame { len }.into());
    }
    Ok(())
}

/// Decodes a frame's header and payload (everything after the prefix).
fn decode_body(body: &[u8]) -> Result<Frame, WireError> {
    let (header, payload) = body.split_at(HEADER_LEN);

    // Magic first, then version: a peer of another version still has the same magic.
    let found: [u8; 4] = [header[0], header[1], header[2], header[3]];
    if found != MAGIC {
        return Err(WireError::BadMagic { found });
    }
    let theirs = u16::from_le_bytes([header[4], header[5]]);
    if theirs != PROTOCOL_VERSION {
        return Err(WireError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs,
        });
    }
    let kind = Kind::from_byte(header[6]).ok_or(DecodeError::UnknownKind(header[6]))?;
    let mut id = [0; 8];
    id.copy_from_slice(&header[8..16]);

    let message = decode_payload(kind, payload)?;
    Ok(Frame {
        request_id: RequestId(u64::from_le_bytes(id)),
        message,
    })
}

fn decode_payload(kind: Kind, payload: &[u8]) -> Result<Message, DecodeError> {
    let message = match kind {
        Kind::Hello => Message::Hello(from_payload(kind, payload)?),
        Kind::Run => Message::Run(from_payload(kind, payload)?),
        Kind::Done => Message::Done(from_payload(kind, payload)?),
        Kind::Failed => Message::Failed(from_payload(kind, payload)?),
        Kind::Release => Message::Release(from_payload(kind, payload)?),
        Kind::Initialize | Kind::Reset | Kind::Cancel | Kind::Shutdown => {
            if !payload.is_empty() {
                return Err(DecodeError::UnexpectedPayload {
                    kind,
                    len: payload.len(),
                });
            }
            match kind {
                Kind::Initialize => Message::Initialize,
                Kind::Reset => Message::Reset,
                Kind::Cancel => Message::Cancel,
                _ => Message::Shutdown,
            }
        }
    };
    Ok(message)
}

fn from_payload<'a, T: Deserialize<'a>>(kind: Kind, payload: &'a [u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(payload)
        .map_err(|source| DecodeError::Payload { kind, source })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            kind,
            extra: rest.len(),
        });
    }
    Ok(value)
}

/// Fills `buf` completely; `Ok(false)` when the stream ended before its first byte.
fn read_exact_or_eof<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> Result<bool, WireError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(WireError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    Ok(true)
}

fn truncated_on_eof(error: io::Error) -> WireError {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        WireError::Truncated
    } else {
        WireError::Io(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(frame: &Frame) -> Vec<u8> {
        FrameEncoder::default()
            .encode(frame)
            .map(<[u8]>::to_vec)
            .expect("encodes")
    }

    #[test]
    fn header_layout_is_fixed() {
        let bytes = encode(&Frame::new(RequestId(0x0102), Message::Cancel));

        assert_eq!(bytes.len(), PREFIX_LEN + HEADER_LEN);
        assert_eq!(&bytes[..4], &(HEADER_LEN as u32).to_le_bytes());
        assert_eq!(&bytes[4..8], b"PZWK");
        assert_eq!(&bytes[8..10], &PROTOCOL_VERSION.to_le_bytes());
        assert_eq!(bytes[10], Kind::Cancel as u8);
        assert_eq!(&bytes[12..20], &0x0102u64.to_le_bytes());
    }

    #[test]
    fn every_kind_byte_maps_back_to_its_kind() {
        for byte in 0..=u8::MAX {
            if let Some(kind) = Kind::from_byte(byte) {
                assert_eq!(kind as u8, byte);
            }
        }
    }
}
