//! A pool's `Handlers` served from a real worker process: typed tasks cross as postcard
//! bytes, state lives and is rebuilt as in a thread worker, errors keep their kind.
#![cfg(target_os = "linux")]

mod process_support;

use process_support::Peer;
use protozoa_workers::process::codec::task_error;
use protozoa_workers::process::host::serve_handlers;
use protozoa_workers::process::wire::{FailureKind, Frame, Message, Run};
use protozoa_workers::process::worker_side::WorkerEnv;
use protozoa_workers::{task, HandlerError, Handlers, Task, TaskError};
use std::sync::{Arc, OnceLock};

use protozoa_workers::process::handoff::{self, PodData};
use protozoa_workers::process::shm::{Segment, SegmentCache, SentSegments, ShmError};
use serde::de::DeserializeOwned;
use serde::Serialize;

task! {
    struct Add: (i64, i64) => i64 = "add";

    /// Counts the tasks of this type the worker ran since its state was built.
    struct Count: () => u64 = "count";

    struct Refuse: String => () = "refuse";

    struct Boom: () => () = "boom";

    struct Double: Vec<f32> => Vec<f32> = "double";

    /// Waits until it is cancelled.
    struct Wait: () => () = "wait";
}

/// A read-only f32 buffer that crosses to a worker process as shared memory when large: the
/// shape `SharedBuffer` takes once it hands itself over through `process::handoff`.
#[derive(Debug, Clone)]
enum Blob {
    Owned(Vec<f32>, OnceLock<Arc<Segment>>),
    Mapped(Arc<Segment>),
}

impl Blob {
    fn new(values: Vec<f32>) -> Self {
        Blob::Owned(values, OnceLock::new())
    }

    fn values(&self) -> &[f32] {
        match self {
            Blob::Owned(values, _) => values,
            Blob::Mapped(segment) => bytemuck::cast_slice(segment.as_bytes()),
        }
    }

    /// The blob's segment, made on its first hand-off and kept for the next ones.
    fn segment(&self) -> Result<Arc<Segment>, ShmError> {
        match self {
            Blob::Mapped(segment) => Ok(Arc::clone(segment)),
            Blob::Owned(values, made) => {
                if let Some(segment) = made.get() {
                    return Ok(Arc::clone(segment));
                }
                let segment = Arc::new(Segment::from_bytes(bytemuck::cast_slice(values))?);
                Ok(Arc::clone(made.get_or_init(|| segment)))
            }
        }
    }
}

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        handoff::serialize_pod(self.values(), || self.segment(), serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match handoff::deserialize_pod::<f32, D>(deserializer)? {
            PodData::Owned(values) => Blob::new(values),
            PodData::Mapped(segment) => Blob::Mapped(segment),
        })
    }
}

task! {
    /// Sums one value from each 4 KiB page of a blob, and says whether it was mapped.
    struct PageSum: Blob => (f32, bool) = "page-sum";

    /// Makes a blob of `n` copies of a value.
    struct Fill: (usize, f32) => Blob = "fill";

    /// Not registered in the worker.
    struct Local: () => () = "local";
}

fn handlers() -> Handlers<u64> {
    Handlers::new(|_| Ok(0))
        .on_reset(|count| *count = 0)
        .handler::<Add>(|_, (a, b), _| Ok(a + b))
        .handler::<Count>(|count, (), _| {
            *count += 1;
            Ok(*count)
        })
        .handler::<Refuse>(|_, why, _| Err(HandlerError::new(why).permanent()))
        .handler::<Boom>(|_, (), _| panic!("boom"))
        .async_handler::<Double, _>(|_, values, _| async move {
            Ok(values.into_iter().map(|v| v * 2.0).collect())
        })
        .handler::<Wait>(|_, (), task| {
            while !task.is_cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(())
        })
        .handler::<PageSum>(|_, blob, _| {
            let sum = blob.values().iter().step_by(1024).sum();
            Ok((sum, matches!(blob, Blob::Mapped(_))))
        })
        .handler::<Fill>(|_, (n, value), _| Ok(Blob::new(vec![value; n])))
}

#[test]
fn worker_entry() {
    let Some(env) = WorkerEnv::from_env().expect("worker environment") else {
        return;
    };
    let code = i32::from(serve_handlers(env, &handlers()).is_err());
    std::process::exit(code);
}

/// Runs task `T` in the worker; a failure comes back as the pool would see it.
fn run<T: Task>(peer: &mut Peer, input: &T::Input) -> Result<T::Output, TaskError>
where
    T::Output: DeserializeOwned,
    T::Input: Serialize,
{
    let input = postcard::to_allocvec(input).expect("encodes");
    let run = Run {
        task: T::NAME.into(),
        input,
        segments: Vec::new(),
    };
    match peer.request(Message::Run(run), &[]).frame.message {
        Message::Done(done) => Ok(postcard::from_bytes(&done.output).expect("decodes")),
        Message::Failed(failure) => Err(task_error(T::NAME, 1, failure)),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn worker_announces_the_task_types_it_can_run() {
    let peer = Peer::start(1);
    let tasks = [
        "add", "count", "refuse", "boom", "double", "wait", "page-sum", "fill",
    ];
    assert_eq!(peer.hello.tasks, tasks);
}

#[test]
fn typed_task_runs_in_the_worker_process() {
    let mut peer = Peer::start(1);
    assert_eq!(run::<Add>(&mut peer, &(40, 2)), Ok(42));
}

#[test]
fn async_handler_runs_in_the_worker_process() {
    let mut peer = Peer::start(1);
    assert_eq!(
        run::<Double>(&mut peer, &vec![1.0, 2.5]),
        Ok(vec![2.0, 5.0])
    );
}

#[test]
fn state_lives_across_tasks_and_reset_clears_it() {
    let mut peer = Peer::start(1);
    assert_eq!(run::<Count>(&mut peer, &()), Ok(1));
    assert_eq!(run::<Count>(&mut peer, &()), Ok(2));

    assert!(matches!(
        peer.request(Message::Reset, &[]).frame.message,
        Message::Done(_)
    ));
    assert_eq!(run::<Count>(&mut peer, &()), Ok(1));
}

#[test]
fn panic_is_reported_and_the_state_is_rebuilt() {
    let mut peer = Peer::start(1);
    run::<Count>(&mut peer, &()).expect("count");

    let error = run::<Boom>(&mut peer, &()).expect_err("panics");
    assert_eq!(
        error,
        TaskError::Panicked {
            task: "boom".into(),
            message: "boom".into()
        }
    );
    assert_eq!(run::<Count>(&mut peer, &()), Ok(1));
}

#[test]
fn handler_error_keeps_its_message_and_permanence() {
    let mut peer = Peer::start(1);
    match run::<Refuse>(&mut peer, &"not today".to_owned()) {
        Err(TaskError::Failed { task, error }) => {
            assert_eq!(task, "refuse");
            assert_eq!(error.message(), "not today");
            assert!(error.is_permanent());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn task_type_the_worker_does_not_serve_is_unknown() {
    let mut peer = Peer::start(1);
    let error = run::<Local>(&mut peer, &()).expect_err("unknown");
    assert_eq!(
        error,
        TaskError::UnknownTaskType {
            name: "local".into()
        }
    );
}

#[test]
fn garbled_input_is_invalid_input() {
    let mut peer = Peer::start(1);
    let run = Run {
        task: "add".into(),
        input: vec![0xff, 0xff],
        segments: Vec::new(),
    };
    match peer.request(Message::Run(run), &[]).frame.message {
        Message::Failed(failure) => assert_eq!(failure.kind, FailureKind::InvalidInput),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn cancel_turns_the_handlers_context_cancelled() {
    let mut peer = Peer::start(1);
    let run = Run {
        task: "wait".into(),
        input: postcard::to_allocvec(&()).expect("encodes"),
        segments: Vec::new(),
    };
    let id = peer.send(Message::Run(run), &[]);
    peer.writer
        .send(&Frame::new(id, Message::Cancel), &[])
        .expect("cancel");

    let reply = peer.reader.recv().expect("reply").expect("a frame");
    assert_eq!(reply.frame.request_id, id);
    match reply.frame.message {
        Message::Failed(failure) => assert!(failure.message.contains("cancelled"), "{failure:?}"),
        other => panic!("expected Failed, got {other:?}"),
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
fn large_input_is_handed_over_once_and_read_from_shared_memory() {
    let mut peer = Peer::start(1);
    let mut sent = SentSegments::new();
    let blob = Blob::new((0..(1 << 20)).map(|i| (i % 7) as f32).collect());
    let expected: f32 = blob.values().iter().step_by(1024).sum();

    for round in 0..3 {
        // Encode as the pool will: buffers become segments, known ones travel by id.
        let (input, segments) = handoff::collect(|| postcard::to_allocvec(&blob));
        let (refs, fds) = sent.prepare(&segments);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].attached, round == 0, "round {round}");

        let run = Run {
            task: "page-sum".into(),
            input: input.expect("encodes"),
            segments: refs,
        };
        let Message::Done(done) = peer.request(Message::Run(run), &fds).frame.message else {
            panic!("expected Done");
        };
        let (sum, mapped): (f32, bool) = postcard::from_bytes(&done.output).expect("decodes");
        assert_eq!(sum, expected);
        assert!(mapped, "the worker read a copy, not the shared memory");
    }
    assert_eq!(mapped_segments(peer.process.pid()), 1);
}

#[test]
fn large_output_comes_back_as_shared_memory() {
    let mut peer = Peer::start(1);
    let n = 1 << 18;
    let input = postcard::to_allocvec(&(n, 1.5_f32)).expect("encodes");
    let run = Run {
        task: "fill".into(),
        input,
        segments: Vec::new(),
    };
    let reply = peer.request(Message::Run(run), &[]);
    let Message::Done(done) = reply.frame.message else {
        panic!("expected Done")
    };

    let segments = SegmentCache::new()
        .resolve(&done.segments, reply.fds)
        .expect("opens");
    let blob: Blob =
        handoff::resolve(segments, || postcard::from_bytes(&done.output)).expect("decodes");
    assert!(matches!(blob, Blob::Mapped(_)));
    assert_eq!(blob.values(), &vec![1.5_f32; n][..]);
}
