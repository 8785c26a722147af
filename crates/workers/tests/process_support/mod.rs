//! A test worker program and a minimal pool side for the process worker tests.
//!
//! Each test binary that uses this module has a test named `worker_entry` calling
//! [`worker_entry`]: started by [`Peer::start`] with the channel in its environment, that test
//! serves the channel and exits; run as an ordinary test, it returns at once.
#![allow(dead_code)]

use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use protozoa_workers::process::channel::{self, ChannelReader, ChannelWriter, Received};
use protozoa_workers::process::child::{WorkerCommand, WorkerProcess};
use protozoa_workers::process::shm::Segment;
use protozoa_workers::process::wire::{
    Failure, FailureKind, Frame, Hello, Message, RequestId, DEFAULT_MAX_FRAME_LEN,
};
use protozoa_workers::process::worker_side::{serve, Request, RequestBody, Response, WorkerEnv};

/// The task names the test worker runs.
pub const TASKS: [&str; 7] = [
    "echo",
    "reverse",
    "panic",
    "spin",
    "segment-bytes",
    "segment-make",
    "page-sum",
];

/// The body of the `worker_entry` test.
pub fn worker_entry() {
    let Some(env) = WorkerEnv::from_env().expect("worker environment") else {
        return;
    };
    let tasks = TASKS.iter().map(|t| (*t).to_owned()).collect();
    let code = match serve(env, tasks, handle) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("test worker stopped: {error}");
            2
        }
    };
    std::process::exit(code);
}

fn handle(request: Request) -> Response {
    let (task, input, segments) = match request.body {
        RequestBody::Initialize => return Response::done(b"init".to_vec()),
        RequestBody::Reset => return Response::done(b"reset".to_vec()),
        RequestBody::Run {
            task,
            input,
            segments,
        } => (task, input, segments),
    };
    match task.as_str() {
        "echo" => Response::done(input),
        "reverse" => Response::done(input.into_iter().rev().collect()),
        "panic" => panic!("the handler gave up"),
        "spin" => {
            while !request.cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Response::done(b"cancelled".to_vec())
        }
        "segment-bytes" => Response::done(
            segments
                .iter()
                .flat_map(|s| s.as_bytes())
                .copied()
                .collect(),
        ),
        "page-sum" => {
            // One byte from each 4 KiB page, of the segments or else of the input.
            let pages = |bytes: &[u8]| {
                bytes
                    .iter()
                    .step_by(4096)
                    .map(|&b| u64::from(b))
                    .sum::<u64>()
            };
            let sum = match segments.first() {
                Some(segment) => pages(segment.as_bytes()),
                None => pages(&input),
            };
            Response::done(sum.to_le_bytes().to_vec())
        }
        "segment-make" => match Segment::from_bytes(&input) {
            Ok(segment) => Response::Done {
                output: Vec::new(),
                segments: vec![Arc::new(segment)],
            },
            Err(error) => failure(FailureKind::Handler, error.to_string()),
        },
        other => failure(
            FailureKind::UnknownTaskType,
            format!("no handler for {other}"),
        ),
    }
}

fn failure(kind: FailureKind, message: String) -> Response {
    Response::Failed(Failure {
        kind,
        message,
        backtrace: None,
        permanent: true,
    })
}

/// The pool's side of one test worker.
pub struct Peer {
    pub process: WorkerProcess,
    pub reader: ChannelReader,
    pub writer: ChannelWriter,
    pub hello: Hello,
    next_id: u64,
}

impl Peer {
    /// Starts this test binary as worker `worker_id` and reads its greeting.
    pub fn start(worker_id: u64) -> Peer {
        let mut process = WorkerCommand::current_exe()
            .expect("current exe")
            .args(["worker_entry", "--exact", "--nocapture", "--test-threads=1"])
            .worker_id(worker_id)
            .spawn()
            .expect("spawn worker");
        let stream = process.take_channel().expect("channel");
        let (mut reader, writer) = channel::split(stream, DEFAULT_MAX_FRAME_LEN).expect("split");

        let hello = match reader
            .recv()
            .expect("hello")
            .expect("a frame")
            .frame
            .message
        {
            Message::Hello(hello) => hello,
            other => panic!("expected a greeting, got {other:?}"),
        };
        Peer {
            process,
            reader,
            writer,
            hello,
            next_id: 1,
        }
    }

    /// Sends `message` as a new request and returns the reply.
    pub fn request(&mut self, message: Message, fds: &[BorrowedFd<'_>]) -> Received {
        let id = self.send(message, fds);
        let reply = self.reader.recv().expect("reply").expect("a frame");
        assert_eq!(reply.frame.request_id, id, "reply pairs with its request");
        reply
    }

    /// Sends `message` as a new request without waiting.
    pub fn send(&mut self, message: Message, fds: &[BorrowedFd<'_>]) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.writer
            .send(&Frame::new(id, message), fds)
            .expect("send");
        id
    }

    /// A run request for `task` with `input` and no segments.
    pub fn run(&mut self, task: &str, input: &[u8]) -> Message {
        let run = protozoa_workers::process::wire::Run {
            task: task.into(),
            input: input.to_vec(),
            segments: Vec::new(),
        };
        self.request(Message::Run(run), &[]).frame.message
    }
}
