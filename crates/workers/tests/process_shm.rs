//! Shared memory segments between the pool and a worker process: sealed against change,
//! read exactly by the worker, handed over once and then by id, released when done.
#![cfg(target_os = "linux")]

mod process_support;

use std::sync::Arc;

use process_support::Peer;
use protozoa_workers::process::shm::{Segment, SegmentCache, SentSegments};
use protozoa_workers::process::wire::{Done, Message, Release, Run, SegmentRef};
use rustix::io::Errno;
use rustix::mm::{mmap, MapFlags, ProtFlags};

#[test]
fn worker_entry() {
    process_support::worker_entry();
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Runs `task` on `segments`; returns the references sent and the reply.
fn run_with(
    peer: &mut Peer,
    sent: &mut SentSegments,
    task: &str,
    segments: &[Arc<Segment>],
) -> (Vec<SegmentRef>, Done) {
    let (refs, fds) = sent.prepare(segments);
    let run = Run {
        task: task.into(),
        input: Vec::new(),
        segments: refs.clone(),
    };
    match peer.request(Message::Run(run), &fds).frame.message {
        Message::Done(done) => (refs, done),
        other => panic!("expected Done, got {other:?}"),
    }
}

/// How many mappings of segments the process `pid` has.
fn mapped_segments(pid: u32) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    maps.lines()
        .filter(|line| line.contains("protozoa-segment"))
        .count()
}

#[test]
fn sealed_segment_cannot_be_written_through_its_descriptor() {
    let segment = Segment::from_bytes(&pattern(4096)).expect("segment");

    assert_eq!(rustix::io::pwrite(segment.fd(), b"x", 0), Err(Errno::PERM));
    assert_eq!(rustix::fs::ftruncate(segment.fd(), 8192), Err(Errno::PERM));
    assert_eq!(rustix::fs::ftruncate(segment.fd(), 0), Err(Errno::PERM));
    assert_eq!(segment.as_bytes(), &pattern(4096)[..]);
}

#[test]
fn sealed_segment_cannot_be_mapped_writable() {
    let segment = Segment::from_bytes(&pattern(4096)).expect("segment");

    // SAFETY: a fresh mapping at an address the kernel picks; expected to fail.
    let mapped = unsafe {
        mmap(
            std::ptr::null_mut(),
            4096,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            segment.fd(),
            0,
        )
    };
    assert_eq!(mapped.err(), Some(Errno::PERM));
}

#[test]
fn worker_reads_the_exact_bytes_of_a_segment() {
    let mut peer = Peer::start(1);
    let bytes = pattern(3 << 20);
    let segment = Arc::new(Segment::from_bytes(&bytes).expect("segment"));

    let (_, done) = run_with(
        &mut peer,
        &mut SentSegments::new(),
        "segment-bytes",
        &[segment],
    );
    assert!(done.output == bytes, "worker read different bytes");
}

#[test]
fn repeated_hand_off_sends_the_descriptor_once_and_the_worker_keeps_it_mapped() {
    let mut peer = Peer::start(1);
    let mut sent = SentSegments::new();
    let segment = Arc::new(Segment::from_bytes(&pattern(64 << 10)).expect("segment"));

    // First hand-off attaches the descriptor; later ones refer to the id alone.
    for round in 0..3 {
        let (refs, done) = run_with(
            &mut peer,
            &mut sent,
            "segment-bytes",
            std::slice::from_ref(&segment),
        );
        assert_eq!(refs[0].attached, round == 0, "round {round}");
        assert_eq!(done.output, segment.as_bytes());
    }
    assert_eq!(mapped_segments(peer.process.pid()), 1);
}

#[test]
fn released_segment_is_unmapped_in_the_worker() {
    let mut peer = Peer::start(1);
    let mut sent = SentSegments::new();
    let segment = Arc::new(Segment::from_bytes(&pattern(4096)).expect("segment"));
    run_with(
        &mut peer,
        &mut sent,
        "segment-bytes",
        std::slice::from_ref(&segment),
    );
    assert_eq!(mapped_segments(peer.process.pid()), 1);

    // Drop our side, tell the worker, and wait for a later reply so the release was read.
    drop(segment);
    let released = sent.take_released();
    assert_eq!(released.len(), 1);
    peer.send(Message::Release(Release { segments: released }), &[]);
    peer.run("echo", b"");
    assert_eq!(mapped_segments(peer.process.pid()), 0);
}

#[test]
fn segment_made_by_the_worker_reaches_the_pool() {
    let mut peer = Peer::start(1);
    let bytes = pattern(100_000);

    let run = Run {
        task: "segment-make".into(),
        input: bytes.clone(),
        segments: Vec::new(),
    };
    let reply = peer.request(Message::Run(run), &[]);
    let Message::Done(done) = reply.frame.message else {
        panic!("expected Done")
    };

    let segments = SegmentCache::new()
        .resolve(&done.segments, reply.fds)
        .expect("opens");
    assert_eq!(segments[0].as_bytes(), &bytes[..]);
}

#[test]
fn crashed_worker_leaves_no_mapping_behind() {
    let mut peer = Peer::start(1);
    let mut sent = SentSegments::new();
    let segment = Arc::new(Segment::from_bytes(&pattern(4096)).expect("segment"));
    run_with(
        &mut peer,
        &mut sent,
        "segment-bytes",
        std::slice::from_ref(&segment),
    );

    // The worker dies holding the segment; ours stays valid, and its process is gone.
    let pid = peer.process.pid();
    peer.process.kill().expect("kill");
    assert!(std::fs::metadata(format!("/proc/{pid}/maps")).is_err());
    assert_eq!(segment.as_bytes(), &pattern(4096)[..]);
}
