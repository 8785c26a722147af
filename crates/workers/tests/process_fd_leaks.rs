//! A whole worker life (start, segments handed over and released, replies with segments,
//! shutdown, reap) leaves no descriptor open in the pool's process.
//!
//! Alone in its binary: descriptors are counted for the whole process, so no other test may
//! run beside it.
#![cfg(target_os = "linux")]

mod process_support;

use std::sync::Arc;

use process_support::Peer;
use protozoa_workers::process::shm::{Segment, SegmentCache, SentSegments};
use protozoa_workers::process::wire::{Message, Release, Run};

#[test]
fn worker_entry() {
    process_support::worker_entry();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fd list").count()
}

fn worker_life() {
    let mut peer = Peer::start(1);
    let mut sent = SentSegments::new();
    let mut received = SegmentCache::new();

    // Segments handed over twice each, then released.
    for round in 0..3 {
        let segments: Vec<Arc<Segment>> = (0..4)
            .map(|i| {
                Arc::new(Segment::from_bytes(&vec![i as u8; 8192 * (round + 1)]).expect("segment"))
            })
            .collect();
        for _ in 0..2 {
            let (refs, fds) = sent.prepare(&segments);
            let run = Run {
                task: "segment-bytes".into(),
                input: Vec::new(),
                segments: refs,
            };
            peer.request(Message::Run(run), &fds);
        }
        drop(segments);
        let released = sent.take_released();
        peer.send(Message::Release(Release { segments: released }), &[]);
    }

    // A segment coming back, opened and dropped.
    let run = Run {
        task: "segment-make".into(),
        input: vec![7; 5000],
        segments: Vec::new(),
    };
    let reply = peer.request(Message::Run(run), &[]);
    if let Message::Done(done) = reply.frame.message {
        let segments = received.resolve(&done.segments, reply.fds).expect("opens");
        assert_eq!(segments[0].as_bytes(), &[7; 5000][..]);
        received.release(&[segments[0].id()]);
    }

    // Shut down and reap.
    peer.send(Message::Shutdown, &[]);
    assert!(peer.reader.recv().expect("clean end").is_none());
    peer.process.wait().expect("reap");
}

#[test]
fn worker_life_leaves_no_descriptor_open() {
    // A first life warms up anything opened once per process (e.g. by the test harness).
    worker_life();
    let before = open_fds();

    worker_life();
    worker_life();
    assert_eq!(open_fds(), before);
}
