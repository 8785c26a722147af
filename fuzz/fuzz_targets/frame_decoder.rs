//! Fuzzes the process workers' frame decoder: any byte stream must decode to frames or to an
//! error value, never panic, and never allocate past the frame size limit.
//!
//! Run with `cargo +nightly fuzz run frame_decoder` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protozoa_workers::process::wire::{decode_frame, FrameDecoder, FrameEncoder};

/// Small enough that oversized frames are common inputs.
const LIMIT: u32 = 64 << 10;

fuzz_target!(|data: &[u8]| {
    // As a stream: frames until the first error or the end.
    let mut decoder = FrameDecoder::new(LIMIT);
    let mut stream = data;
    let mut encoder = FrameEncoder::new(LIMIT);
    while let Ok(Some(frame)) = decoder.read_frame(&mut stream) {
        // Whatever decodes re-encodes and decodes to the same frame.
        let bytes = encoder
            .encode(&frame)
            .expect("a decoded frame re-encodes")
            .to_vec();
        let (again, used) = decode_frame(&bytes, LIMIT).expect("a re-encoded frame decodes");
        assert_eq!(again, frame);
        assert_eq!(used, bytes.len());
    }

    // As a slice.
    let _ = decode_frame(data, LIMIT);
});
