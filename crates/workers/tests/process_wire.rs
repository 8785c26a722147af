//! The process workers' frame protocol: what encodes decodes back unchanged, and what does not
//! decode is an error naming its cause, never a panic.
#![cfg(target_os = "linux")]

use proptest::prelude::*;
use protozoa_workers::process::wire::{
    decode_frame, DecodeError, Done, Failure, FailureKind, Frame, FrameDecoder, FrameEncoder,
    Hello, Message, Release, RequestId, Run, SegmentRef, WireError, HEADER_LEN, PREFIX_LEN,
    PROTOCOL_VERSION,
};

const LIMIT: u32 = 1 << 20;

fn encode(frame: &Frame) -> Vec<u8> {
    FrameEncoder::new(LIMIT)
        .encode(frame)
        .expect("encodes")
        .to_vec()
}

fn read_one(bytes: &[u8]) -> Result<Option<Frame>, WireError> {
    FrameDecoder::new(LIMIT).read_frame(&mut &bytes[..])
}

fn segment_ref() -> impl Strategy<Value = SegmentRef> {
    (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(id, len, attached)| SegmentRef {
        id,
        len,
        attached,
    })
}

fn failure_kind() -> impl Strategy<Value = FailureKind> {
    prop_oneof![
        Just(FailureKind::Handler),
        Just(FailureKind::Panicked),
        Just(FailureKind::UnknownTaskType),
        Just(FailureKind::InvalidInput),
        Just(FailureKind::InvalidOutput),
        Just(FailureKind::Initialize),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
    let segments = || proptest::collection::vec(segment_ref(), 0..4);
    prop_oneof![
        (
            any::<u16>(),
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(".*", 0..4)
        )
            .prop_map(|(protocol_version, worker_id, pid, tasks)| {
                Message::Hello(Hello {
                    protocol_version,
                    worker_id,
                    pid,
                    tasks,
                })
            }),
        Just(Message::Initialize),
        Just(Message::Reset),
        (".*", bytes(), segments()).prop_map(|(task, input, segments)| Message::Run(Run {
            task,
            input,
            segments
        })),
        (bytes(), segments())
            .prop_map(|(output, segments)| Message::Done(Done { output, segments })),
        (
            failure_kind(),
            ".*",
            proptest::option::of(".*"),
            any::<bool>()
        )
            .prop_map(|(kind, message, backtrace, permanent)| {
                Message::Failed(Failure {
                    kind,
                    message,
                    backtrace,
                    permanent,
                })
            }),
        Just(Message::Cancel),
        proptest::collection::vec(any::<u64>(), 0..8)
            .prop_map(|segments| Message::Release(Release { segments })),
        Just(Message::Shutdown),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (any::<u64>(), message()).prop_map(|(id, message)| Frame::new(RequestId(id), message))
}

proptest! {
    #[test]
    fn encoded_frame_decodes_to_the_same_frame(frame in frame()) {
        let bytes = encode(&frame);

        prop_assert_eq!(read_one(&bytes).expect("decodes"), Some(frame.clone()));
        let (decoded, used) = decode_frame(&bytes, LIMIT).expect("decodes");
        prop_assert_eq!(decoded, frame);
        prop_assert_eq!(used, bytes.len());
    }

    #[test]
    fn frames_in_a_row_decode_in_order(frames in proptest::collection::vec(frame(), 0..6)) {
        let mut encoder = FrameEncoder::new(LIMIT);
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend_from_slice(encoder.encode(frame).expect("encodes"));
        }

        let mut decoder = FrameDecoder::new(LIMIT);
        let mut reader = &stream[..];
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.read_frame(&mut reader).expect("decodes") {
            decoded.push(frame);
        }
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_one(&bytes);
        let _ = decode_frame(&bytes, LIMIT);
    }

    #[test]
    fn decoding_a_corrupted_frame_never_panics(
        frame in frame(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&frame);
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        let _ = read_one(&bytes);
    }
}

#[test]
fn empty_stream_is_a_clean_end() {
    assert!(matches!(read_one(&[]), Ok(None)));
}

#[test]
fn stream_ending_inside_a_frame_is_truncated() {
    let bytes = encode(&Frame::new(RequestId(1), Message::Shutdown));
    for cut in 1..bytes.len() {
        let error = read_one(&bytes[..cut]).expect_err("cut frame");
        assert!(
            matches!(error, WireError::Truncated),
            "cut at {cut}: {error}"
        );
    }
}

#[test]
fn frame_over_the_limit_is_refused_before_its_body_is_read() {
    // Only the prefix exists: the decoder must not wait for (or allocate) the body.
    let prefix = (LIMIT + 1).to_le_bytes();
    let error = read_one(&prefix).expect_err("too large");
    assert!(
        matches!(error, WireError::FrameTooLarge { len, limit } if len == u64::from(LIMIT) + 1 && limit == LIMIT)
    );
}

#[test]
fn encoder_refuses_a_frame_over_its_limit() {
    let run = Run {
        task: "big".into(),
        input: vec![0; 2048],
        segments: vec![],
    };
    let error = FrameEncoder::new(1024)
        .encode(&Frame::new(RequestId(1), Message::Run(run)))
        .expect_err("too large");
    assert!(
        matches!(error, WireError::FrameTooLarge { limit: 1024, .. }),
        "{error}"
    );
}

#[test]
fn wrong_magic_is_bad_magic() {
    let mut bytes = encode(&Frame::new(RequestId(1), Message::Cancel));
    bytes[PREFIX_LEN] = b'X';
    assert!(matches!(read_one(&bytes), Err(WireError::BadMagic { .. })));
}

#[test]
fn other_protocol_version_is_a_version_mismatch() {
    let mut bytes = encode(&Frame::new(RequestId(1), Message::Cancel));
    bytes[PREFIX_LEN + 4..PREFIX_LEN + 6].copy_from_slice(&7u16.to_le_bytes());

    let error = read_one(&bytes).expect_err("mismatch");
    assert!(
        matches!(
            error,
            WireError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: 7
            }
        ),
        "{error}"
    );
}

#[test]
fn unknown_kind_is_a_decode_error_naming_it() {
    let mut bytes = encode(&Frame::new(RequestId(1), Message::Cancel));
    bytes[PREFIX_LEN + 6] = 200;
    assert!(matches!(
        read_one(&bytes),
        Err(WireError::Decode(DecodeError::UnknownKind(200)))
    ));
}

#[test]
fn frame_shorter_than_a_header_is_a_decode_error() {
    let mut bytes = (HEADER_LEN as u32 - 1).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; HEADER_LEN - 1]);
    assert!(matches!(
        read_one(&bytes),
        Err(WireError::Decode(DecodeError::ShortFrame { .. }))
    ));
}

#[test]
fn garbled_payload_is_a_decode_error() {
    let run = Run {
        task: "t".into(),
        input: vec![1, 2, 3],
        segments: vec![],
    };
    let mut bytes = encode(&Frame::new(RequestId(1), Message::Run(run)));

    // The task name's length claims more bytes than the payload holds.
    bytes[PREFIX_LEN + HEADER_LEN] = 0x7f;
    let error = read_one(&bytes).expect_err("garbled");
    assert!(
        matches!(error, WireError::Decode(DecodeError::Payload { .. })),
        "{error}"
    );
}

#[test]
fn payload_on_a_bodiless_message_is_a_decode_error() {
    let mut bytes = encode(&Frame::new(RequestId(1), Message::Shutdown));
    bytes.push(0);
    let len = (bytes.len() - PREFIX_LEN) as u32;
    bytes[..PREFIX_LEN].copy_from_slice(&len.to_le_bytes());

    let error = read_one(&bytes).expect_err("extra byte");
    assert!(
        matches!(
            error,
            WireError::Decode(DecodeError::UnexpectedPayload { .. })
        ),
        "{error}"
    );
}
