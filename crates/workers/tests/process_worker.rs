//! The worker side of the channel, run in real child processes: greeting, request and reply,
//! panics, cancellation, and a clean exit when the pool goes away.
#![cfg(target_os = "linux")]

mod process_support;

use std::io::Write;

use process_support::{Peer, TASKS};
use protozoa_workers::process::child::ExitCause;
use protozoa_workers::process::wire::{Done, FailureKind, Message, RequestId, PROTOCOL_VERSION};

#[test]
fn worker_entry() {
    process_support::worker_entry();
}

fn output(message: Message) -> Vec<u8> {
    match message {
        Message::Done(Done { output, .. }) => output,
        other => panic!("expected Done, got {other:?}"),
    }
}

#[test]
fn worker_greets_with_its_id_version_and_tasks() {
    let peer = Peer::start(42);

    assert_eq!(peer.hello.worker_id, 42);
    assert_eq!(peer.hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(peer.hello.pid, peer.process.pid());
    assert_eq!(peer.hello.tasks, TASKS);
}

#[test]
fn run_requests_are_answered_in_turn() {
    let mut peer = Peer::start(1);

    assert_eq!(output(peer.run("echo", b"abc")), b"abc");
    assert_eq!(output(peer.run("reverse", b"abc")), b"cba");
}

#[test]
fn initialize_and_reset_reach_the_callback() {
    let mut peer = Peer::start(1);

    assert_eq!(
        output(peer.request(Message::Initialize, &[]).frame.message),
        b"init"
    );
    assert_eq!(
        output(peer.request(Message::Reset, &[]).frame.message),
        b"reset"
    );
}

#[test]
fn panicking_handler_is_answered_as_panicked_and_the_worker_goes_on() {
    let mut peer = Peer::start(1);

    match peer.run("panic", b"") {
        Message::Failed(failure) => {
            assert_eq!(failure.kind, FailureKind::Panicked);
            assert_eq!(failure.message, "the handler gave up");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(output(peer.run("echo", b"still here")), b"still here");
}

#[test]
fn cancel_reaches_the_running_handler() {
    let mut peer = Peer::start(1);

    // The handler spins until it sees its request cancelled.
    let run = protozoa_workers::process::wire::Run {
        task: "spin".into(),
        input: Vec::new(),
        segments: Vec::new(),
    };
    let id = peer.send(Message::Run(run), &[]);
    peer.writer
        .send(
            &protozoa_workers::process::wire::Frame::new(id, Message::Cancel),
            &[],
        )
        .expect("cancel");

    let reply = peer.reader.recv().expect("reply").expect("a frame");
    assert_eq!(reply.frame.request_id, id);
    assert_eq!(output(reply.frame.message), b"cancelled");
}

#[test]
fn worker_exits_cleanly_when_the_channel_closes() {
    let Peer {
        mut process,
        reader,
        writer,
        ..
    } = Peer::start(1);

    drop(writer);
    drop(reader);
    assert_eq!(process.wait().expect("wait"), ExitCause::Exited { code: 0 });
}

#[test]
fn worker_exits_cleanly_on_shutdown() {
    let mut peer = Peer::start(1);

    peer.send(Message::Shutdown, &[]);
    assert!(peer.reader.recv().expect("clean end").is_none());
    assert_eq!(
        peer.process.wait().expect("wait"),
        ExitCause::Exited { code: 0 }
    );
}

#[test]
fn garbled_frame_makes_the_worker_exit_with_an_error() {
    let mut peer = Peer::start(1);

    // A well-formed length, then a header that is not ours.
    let mut garbage = 20u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xAB; 20]);
    let mut stream = peer.writer.stream();
    stream.write_all(&garbage).expect("write");

    assert_eq!(
        peer.process.wait().expect("wait"),
        ExitCause::Exited { code: 2 }
    );
}

#[test]
fn request_ids_pair_replies_with_requests() {
    let mut peer = Peer::start(1);

    // Two requests sent before either reply is read.
    let first = peer.send(Message::Initialize, &[]);
    let second = peer.send(Message::Reset, &[]);
    let replies: Vec<RequestId> = (0..2)
        .map(|_| {
            peer.reader
                .recv()
                .expect("reply")
                .expect("a frame")
                .frame
                .request_id
        })
        .collect();
    assert_eq!(replies, [first, second]);
}

#[test]
fn request_sent_behind_a_long_one_is_served_after_it_in_order() {
    let mut peer = Peer::start(1);

    // A long request, a second request behind it, then the cancel that ends the first.
    let spin = protozoa_workers::process::wire::Run {
        task: "spin".into(),
        input: Vec::new(),
        segments: Vec::new(),
    };
    let echo = protozoa_workers::process::wire::Run {
        task: "echo".into(),
        input: b"next".to_vec(),
        segments: Vec::new(),
    };
    let first = peer.send(Message::Run(spin), &[]);
    let second = peer.send(Message::Run(echo), &[]);
    peer.writer
        .send(
            &protozoa_workers::process::wire::Frame::new(first, Message::Cancel),
            &[],
        )
        .expect("cancel");

    let replies: Vec<(RequestId, Vec<u8>)> = (0..2)
        .map(|_| {
            let reply = peer.reader.recv().expect("reply").expect("a frame");
            (reply.frame.request_id, output(reply.frame.message))
        })
        .collect();
    assert_eq!(
        replies,
        [(first, b"cancelled".to_vec()), (second, b"next".to_vec())]
    );
}
