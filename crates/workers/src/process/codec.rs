//! Task data on the wire: one [`JobCodec`] per task type turns a task's input and output into
//! postcard bytes and back, on both sides of the channel.
//!
//! The pool's queue and the handler registry only see type-erased jobs (`Arc<dyn Job>`); the
//! codec is the one place that knows the task's Rust types. It is made from the task type
//! (`JobCodec::of::<T>()`) while that type is still known, and then used by name:
//!
//! - in the pool: `take_input` starts a queued job and encodes its input (typed or
//!   JSON-submitted); `settle_output` decodes a reply and settles the job; a batch chunk
//!   goes item by item instead (`take_chunk`, then `settle_chunk` with every item's reply);
//! - in the worker process: `job_from_input` rebuilds a job the registered handler can run;
//!   `output_bytes` encodes its result.
//!
//! A failed reply becomes a [`TaskError`] through [`task_error`], the same for every type.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::handoff;
use super::shm::Segment;
use super::wire::{Failure, FailureKind};
use crate::cell::{CellSpec, Job, ResultCell, TaskCell};
use crate::error::{HandlerError, TaskError};
use crate::handlers::ChunkCell;
use crate::task::Task;

type TakeInput = fn(&dyn Job) -> Option<Result<Encoded, TaskError>>;
type SettleOutput = fn(&dyn Job, &[u8], Vec<Arc<Segment>>) -> bool;
type JobFromInput = fn(usize, &[u8], Vec<Arc<Segment>>) -> Result<Arc<dyn Job>, TaskError>;
type OutputBytes = fn(&dyn Job) -> Option<Result<Encoded, TaskError>>;
type TakeChunk = fn(&dyn Job) -> ChunkStart;
type SettleChunk = fn(&dyn Job, Vec<ItemReply>) -> bool;

/// What starting a job as a batch chunk gave.
#[derive(Debug)]
pub(crate) enum ChunkStart {
    /// The job is not a chunk of this task type.
    NotAChunk,
    /// A chunk that was already claimed (cancelled, terminated) or started.
    Claimed,
    /// The chunk's items, each encoded or the error it settles with.
    Items(Vec<Result<Encoded, TaskError>>),
}

/// One chunk item's reply from the worker: its output bytes and the segments they refer to,
/// or the error it settles with.
pub(crate) type ItemReply = Result<(Vec<u8>, Vec<Arc<Segment>>), TaskError>;

/// A value encoded for the wire: its bytes and the shared memory segments they refer to
/// (see `process::handoff`).
#[derive(Debug, Default)]
pub struct Encoded {
    /// The postcard bytes.
    pub bytes: Vec<u8>,
    /// The segments, in the order the bytes index them.
    pub segments: Vec<Arc<Segment>>,
}

/// How one task type's data crosses the channel.
#[derive(Clone, Copy)]
pub struct JobCodec {
    name: &'static str,
    take_input: TakeInput,
    settle_output: SettleOutput,
    job_from_input: JobFromInput,
    output_bytes: OutputBytes,
    take_chunk: TakeChunk,
    settle_chunk: SettleChunk,
}

impl std::fmt::Debug for JobCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCodec")
            .field("name", &self.name)
            .finish()
    }
}

impl JobCodec {
    /// The codec of task type `T`.
    pub fn of<T: Task>() -> Self {
        JobCodec {
            name: T::NAME,
            take_input: take_input::<T>,
            settle_output: settle_output::<T>,
            job_from_input: job_from_input::<T>,
            output_bytes: output_bytes::<T>,
            take_chunk: take_chunk::<T>,
            settle_chunk: settle_chunk::<T>,
        }
    }

    /// The task type's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Pool side: starts `job` and encodes its input; `None` if the job was already claimed
    /// (cancelled, terminated) or started. An input that does not encode is an error the
    /// caller settles the job with.
    pub(crate) fn take_input(&self, job: &dyn Job) -> Option<Result<Encoded, TaskError>> {
        (self.take_input)(job)
    }

    /// Pool side: starts `job` as a batch chunk of this task type and encodes each item's
    /// input, if it is one.
    pub(crate) fn take_chunk(&self, job: &dyn Job) -> ChunkStart {
        (self.take_chunk)(job)
    }

    /// Pool side: decodes every item's reply (in item order) and settles the chunk with
    /// them. Returns whether this settled the chunk.
    pub(crate) fn settle_chunk(&self, job: &dyn Job, replies: Vec<ItemReply>) -> bool {
        (self.settle_chunk)(job, replies)
    }

    /// Pool side: decodes a `Done` reply's output and settles `job` with it (or with the
    /// decoding error). Returns whether this settled the job.
    pub(crate) fn settle_output(
        &self,
        job: &dyn Job,
        output: &[u8],
        segments: Vec<Arc<Segment>>,
    ) -> bool {
        (self.settle_output)(job, output, segments)
    }

    /// Worker side: a job holding the decoded input, for the handler registered under entry
    /// index `handler`.
    pub(crate) fn job_from_input(
        &self,
        handler: usize,
        input: &[u8],
        segments: Vec<Arc<Segment>>,
    ) -> Result<Arc<dyn Job>, TaskError> {
        (self.job_from_input)(handler, input, segments)
    }

    /// Worker side: the encoded result of a job the handler ran; `None` if it has not
    /// settled.
    pub(crate) fn output_bytes(&self, job: &dyn Job) -> Option<Result<Encoded, TaskError>> {
        (self.output_bytes)(job)
    }
}

fn take_input<T: Task>(job: &dyn Job) -> Option<Result<Encoded, TaskError>> {
    let any = job.as_any();

    // Typed submission: encode as is.
    if let Some(cell) = any.downcast_ref::<TaskCell<T::Input, T::Output>>() {
        return cell
            .start()
            .map(|input| encode(&input).map_err(invalid_input::<T>));
    }

    // JSON submission: through the typed input, so the worker sees one format.
    if let Some(cell) = any.downcast_ref::<TaskCell<Value, Value>>() {
        let value = cell.start()?;
        let encoded = serde_json::from_value::<T::Input>(value)
            .map_err(|error| invalid_input::<T>(error.to_string()))
            .and_then(|input| encode(&input).map_err(invalid_input::<T>));
        return Some(encoded);
    }
    Some(Err(invalid_input::<T>(
        "the job has another Rust type than this task".into(),
    )))
}

fn settle_output<T: Task>(job: &dyn Job, output: &[u8], segments: Vec<Arc<Segment>>) -> bool {
    let any = job.as_any();
    let decoded = decode::<T::Output>(output, segments).map_err(invalid_output::<T>);
    if let Some(cell) = any.downcast_ref::<TaskCell<T::Input, T::Output>>() {
        return cell.settle(decoded);
    }
    if let Some(cell) = any.downcast_ref::<TaskCell<Value, Value>>() {
        let json = decoded.and_then(|output| {
            serde_json::to_value(output).map_err(|error| invalid_output::<T>(error.to_string()))
        });
        return cell.settle(json);
    }
    job.fail(invalid_output::<T>(
        "the job has another Rust type than this task".into(),
    ))
}

fn take_chunk<T: Task>(job: &dyn Job) -> ChunkStart {
    let Some(cell) = job.as_any().downcast_ref::<ChunkCell<T>>() else {
        return ChunkStart::NotAChunk;
    };
    let Some(inputs) = cell.start() else {
        return ChunkStart::Claimed;
    };
    let items = inputs
        .iter()
        .map(|input| encode(input).map_err(invalid_input::<T>))
        .collect();
    ChunkStart::Items(items)
}

fn settle_chunk<T: Task>(job: &dyn Job, replies: Vec<ItemReply>) -> bool {
    let Some(cell) = job.as_any().downcast_ref::<ChunkCell<T>>() else {
        return job.fail(invalid_output::<T>(
            "the job is not a batch chunk of this task".into(),
        ));
    };
    let results = replies
        .into_iter()
        .map(|reply| {
            reply
                .and_then(|(bytes, segments)| {
                    decode::<T::Output>(&bytes, segments).map_err(invalid_output::<T>)
                })
                .map_err(Box::new)
        })
        .collect();
    cell.settle(Ok(results))
}

fn job_from_input<T: Task>(
    handler: usize,
    input: &[u8],
    segments: Vec<Arc<Segment>>,
) -> Result<Arc<dyn Job>, TaskError> {
    let input = decode::<T::Input>(input, segments).map_err(invalid_input::<T>)?;

    // The pool enforces the time limit by killing the process; the copy here has none.
    let spec = CellSpec::plain(handler, T::NAME);
    Ok(TaskCell::<T::Input, T::Output>::new(spec, input))
}

fn output_bytes<T: Task>(job: &dyn Job) -> Option<Result<Encoded, TaskError>> {
    let cell = job
        .as_any()
        .downcast_ref::<TaskCell<T::Input, T::Output>>()?;
    let result = ResultCell::try_result(cell)?;
    Some(result.and_then(|output| encode(&output).map_err(invalid_output::<T>)))
}

/// Encodes `value`, letting large buffers inside it hand themselves over as segments.
fn encode<V: Serialize>(value: &V) -> Result<Encoded, String> {
    let (bytes, segments) = handoff::collect(|| postcard::to_allocvec(value));
    let bytes = bytes.map_err(|error| error.to_string())?;
    Ok(Encoded { bytes, segments })
}

/// Decodes `bytes`, whose buffers may refer to `segments`.
fn decode<V: DeserializeOwned>(bytes: &[u8], segments: Vec<Arc<Segment>>) -> Result<V, String> {
    let (value, rest) = handoff::resolve(segments, || postcard::take_from_bytes(bytes))
        .map_err(|error| error.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes left over after the value", rest.len()));
    }
    Ok(value)
}

fn invalid_input<T: Task>(message: String) -> TaskError {
    TaskError::InvalidInput {
        task: T::NAME.to_owned(),
        message,
    }
}

fn invalid_output<T: Task>(message: String) -> TaskError {
    TaskError::InvalidOutput {
        task: T::NAME.to_owned(),
        message,
    }
}

/// Worker side: the reply for a job that ended with `error`.
pub(crate) fn failure(error: &TaskError) -> Failure {
    let (kind, message, backtrace, permanent) = match error {
        TaskError::Failed { error, .. } => (
            FailureKind::Handler,
            error.message().to_owned(),
            error.backtrace().map(str::to_owned),
            error.is_permanent(),
        ),
        TaskError::Panicked { message, .. } => {
            (FailureKind::Panicked, message.clone(), None, false)
        }
        TaskError::UnknownTaskType { .. } => {
            (FailureKind::UnknownTaskType, error.to_string(), None, true)
        }
        TaskError::InvalidInput { message, .. } => {
            (FailureKind::InvalidInput, message.clone(), None, true)
        }
        TaskError::InvalidOutput { message, .. } => {
            (FailureKind::InvalidOutput, message.clone(), None, true)
        }
        TaskError::WorkerUnavailable { error, .. } => (
            FailureKind::Initialize,
            error.message().to_owned(),
            error.backtrace().map(str::to_owned),
            error.is_permanent(),
        ),
        other => (FailureKind::Handler, other.to_string(), None, false),
    };
    Failure {
        kind,
        message,
        backtrace,
        permanent,
    }
}

/// Pool side: the task error a failed reply stands for. `task` is the task's name, `worker`
/// the id of the worker that replied.
pub fn task_error(task: &str, worker: usize, failure: Failure) -> TaskError {
    let task = task.to_owned();
    match failure.kind {
        FailureKind::Handler => TaskError::Failed {
            task,
            error: handler_error(failure),
        },
        FailureKind::Panicked => TaskError::Panicked {
            task,
            message: failure.message,
        },
        FailureKind::UnknownTaskType => TaskError::UnknownTaskType { name: task },
        FailureKind::InvalidInput => TaskError::InvalidInput {
            task,
            message: failure.message,
        },
        FailureKind::InvalidOutput => TaskError::InvalidOutput {
            task,
            message: failure.message,
        },
        FailureKind::Initialize => TaskError::WorkerUnavailable {
            worker,
            error: handler_error(failure),
        },
    }
}

/// A handler error carrying the worker's message, backtrace and permanence.
///
/// `HandlerError` has no constructor taking a backtrace, and `HandlerError::new` would capture
/// one in the pool's process, so this goes through its serde form. A crate-internal
/// `HandlerError::from_parts(message, backtrace, permanent)` would lift this detour.
fn handler_error(failure: Failure) -> HandlerError {
    let parts = serde_json::json!({
        "message": failure.message,
        "backtrace": failure.backtrace,
        "permanent": failure.permanent,
    });
    serde_json::from_value(parts).unwrap_or_else(|_| {
        let error = HandlerError::new(failure.message);
        if failure.permanent {
            error.permanent()
        } else {
            error
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Add;
    impl Task for Add {
        const NAME: &'static str = "add";
        type Input = (i64, i64);
        type Output = i64;
    }

    fn spec() -> CellSpec {
        CellSpec::plain(0, Add::NAME)
    }

    #[test]
    fn typed_input_crosses_and_output_settles_the_job() {
        let codec = JobCodec::of::<Add>();
        let cell = TaskCell::<(i64, i64), i64>::new(spec(), (2, 3));

        // Pool side encodes; worker side decodes it into a runnable job.
        let input = codec
            .take_input(&*cell)
            .expect("not claimed")
            .expect("encodes");
        let remote = codec
            .job_from_input(0, &input.bytes, input.segments)
            .expect("decodes");
        let remote_cell = remote
            .as_any()
            .downcast_ref::<TaskCell<(i64, i64), i64>>()
            .expect("typed cell");
        let (a, b) = remote_cell.start().expect("input");
        remote_cell.settle(Ok(a + b));

        // Worker side encodes the result; pool side settles the original job.
        let output = codec
            .output_bytes(&*remote)
            .expect("settled")
            .expect("encodes");
        assert!(codec.settle_output(&*cell, &output.bytes, output.segments));
        assert_eq!(ResultCell::try_result(&*cell), Some(Ok(5)));
    }

    #[test]
    fn json_submission_crosses_in_the_typed_format() {
        let codec = JobCodec::of::<Add>();
        let cell = TaskCell::<Value, Value>::new(spec(), serde_json::json!([4, 5]));

        let input = codec
            .take_input(&*cell)
            .expect("not claimed")
            .expect("encodes");
        assert_eq!(decode::<(i64, i64)>(&input.bytes, Vec::new()), Ok((4, 5)));
        let output = encode(&9_i64).expect("encodes");
        assert!(codec.settle_output(&*cell, &output.bytes, Vec::new()));
        assert_eq!(
            ResultCell::try_result(&*cell),
            Some(Ok(serde_json::json!(9)))
        );
    }

    #[test]
    fn garbled_output_settles_the_job_as_invalid_output() {
        let codec = JobCodec::of::<Add>();
        let cell = TaskCell::<(i64, i64), i64>::new(spec(), (1, 1));
        let _ = codec.take_input(&*cell);

        assert!(codec.settle_output(&*cell, &[0xff, 0xff], Vec::new()));
        assert!(matches!(
            ResultCell::try_result(&*cell),
            Some(Err(TaskError::InvalidOutput { .. }))
        ));
    }

    #[test]
    fn garbled_input_is_invalid_input_in_the_worker() {
        let error = JobCodec::of::<Add>()
            .job_from_input(0, &[0xff], Vec::new())
            .err()
            .expect("refused");
        assert!(matches!(error, TaskError::InvalidInput { .. }), "{error}");
    }

    #[test]
    fn handler_failure_keeps_message_backtrace_and_permanence() {
        let failure = Failure {
            kind: FailureKind::Handler,
            message: "no such block".into(),
            backtrace: Some("frame 0".into()),
            permanent: true,
        };
        match task_error("fetchBlock", 1, failure) {
            TaskError::Failed { task, error } => {
                assert_eq!(task, "fetchBlock");
                assert_eq!(error.message(), "no such block");
                assert_eq!(error.backtrace(), Some("frame 0"));
                assert!(error.is_permanent());
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
