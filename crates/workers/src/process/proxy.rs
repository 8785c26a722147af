//! The pool's side of process workers: **a process pool is a thread pool of proxies.**
//!
//! `proxy_handlers` turns the user's `Handlers<S>` into `Handlers<Proxy>`. Each worker
//! thread's state is a [`Proxy`]: a connection to its own worker process, started by the
//! state's initializer (spawn, greeting, `Initialize`). Each registered task type gets a
//! forwarding handler that encodes the job's input with the type's [`JobCodec`], sends `Run`,
//! waits for the reply and settles the job with the decoded output or the error. A batch
//! chunk's items go as one `Run` each, pipelined within a bounded window (see
//! `Proxy::forward_chunk`). Everything else (queue, status, metrics, time limits, close,
//! terminate) is the thread pool's.
//!
//! While it waits, the forwarding handler polls the channel with a short timeout and looks at
//! the job: once the job is claimed without it (timed out, cancelled, terminated), it kills
//! the process. That is real pre-emption: the next task runs on a fresh process.
//!
//! A process that dies (or breaks the protocol and is killed) settles its task with
//! [`TaskError::WorkerCrashed`] naming how it ended. The proxy then has no process, and starts
//! one before its next task. Failures in a row (a spawn, a greeting or an `Initialize` that
//! fails, a crash) back off from 10 ms, doubling up to 1 s; after
//! [`ProcessOptions::max_restarts`] of them the worker gives up: its tasks fail at once with
//! [`TaskError::WorkerUnavailable`] instead of looping. Any reply from a process ends the run
//! of failures.
//!
//! Limits:
//! - a worker process runs one task at a time, async handlers included;
//! - a process that stops in the middle of a frame for longer than [`STALL_LIMIT`] is treated
//!   as broken; a process that never replies is only stopped by the task's time limit, so
//!   process pools should keep one;
//! - `reset()` cannot report a failure of the worker's reset: the process is replaced instead;
//! - this module's `tracing` events (process crashed, killed, could not start) follow the
//!   pool's `log_level`, which the pool hands to the proxies when it is built; a worker
//!   process's own events go to its standard error through its own subscriber (`RUST_LOG`,
//!   `warn` by default), and the rare failures of the OS calls that kill, reap or unmap are
//!   logged whatever the level;
//! - a tiny task's round trip takes a thread hop besides the socket (submitter to proxy
//!   thread and back); the waiting handle and the proxy look again briefly before sleeping,
//!   which keeps it near 1.4 to 1.6 times a bare socket round trip; a submitter writing to an
//!   idle worker process directly would remove the hop.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::channel::{self, ChannelReader, ChannelWriter, Received};
use super::child::{WorkerCommand, WorkerProcess};
use super::codec::{task_error, ChunkStart, Encoded, ItemReply, JobCodec};
use super::shm::{Segment, SegmentCache, SentSegments};
use super::wire::{
    Done, Failure, Frame, Message, Release, RequestId, Run, WireError, DEFAULT_MAX_FRAME_LEN,
};
use crate::cell::Job;
use crate::error::{HandlerError, TaskError};
use crate::handlers::{self, Entry, Handlers};
use crate::options::{LogLevel, PoolOptions};
use crate::task::WorkerInfo;

/// Requests of one batch chunk on the channel at once (see `Proxy::forward_chunk`).
const PIPELINE_DEPTH: usize = 16;

/// Bytes of one batch chunk's requests on the channel at once: well under a socket's buffer,
/// so sending never waits for a worker process that may itself be waiting to send a reply.
/// An item larger than this goes alone.
const PIPELINE_BYTES: usize = 64 * 1024;

/// How often a waiting forwarding handler looks at its job.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How many times the proxy glances at the channel, letting other threads run in between,
/// before it sleeps in `poll`: a tiny task's reply usually arrives within them, which saves
/// the proxy thread a wake-up (measured with the `ipc` benchmark).
const REPLY_SPINS: u32 = 64;

/// How long a worker process may take to greet the pool after it starts.
const GREETING_LIMIT: Duration = Duration::from_secs(20);

/// How long a frame may stall half-read before the process counts as broken.
pub const STALL_LIMIT: Duration = Duration::from_secs(2);

/// How long a closed worker process may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// The first back-off after a failure, and the longest.
const BACKOFF_START: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How a pool starts and limits its worker processes; see
/// [`PoolBuilder::process_workers`](crate::PoolBuilder::process_workers).
///
/// The program must call [`serve_if_worker`](super::serve_if_worker) first thing in `main`
/// with handlers for the pool's task types.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    program: Option<PathBuf>,
    args: Vec<OsString>,
    memory_limit: Option<u64>,
    max_frame_len: u32,
    max_restarts: u32,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            program: None,
            args: Vec::new(),
            memory_limit: None,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_restarts: 5,
        }
    }
}

impl ProcessOptions {
    /// The default options: the current executable, no argument, no memory limit, frames of
    /// up to 256 MiB, 5 failures in a row before a worker gives up.
    pub fn new() -> Self {
        ProcessOptions::default()
    }

    /// The worker program (the original's `workerUrl`). Default: the current executable.
    #[must_use]
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Adds arguments for the worker program.
    #[must_use]
    pub fn args<I: IntoIterator<Item = A>, A: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Caps each worker process's address space at `bytes` (`RLIMIT_AS`); an allocation past
    /// it ends the process, which its task reports as a crash. Default: no limit.
    #[must_use]
    pub fn memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The longest frame the pool accepts from a worker process, in bytes. Default: 256 MiB.
    #[must_use]
    pub fn max_frame_len(mut self, bytes: u32) -> Self {
        self.max_frame_len = bytes;
        self
    }

    /// Failures in a row after which a worker stops starting processes and fails its tasks
    /// with [`TaskError::WorkerUnavailable`], for the rest of the pool's life. Default: 5.
    #[must_use]
    pub fn max_restarts(mut self, count: u32) -> Self {
        self.max_restarts = count;
        self
    }

    fn command(&self, worker: usize) -> std::io::Result<WorkerCommand> {
        let command = match &self.program {
            Some(program) => WorkerCommand::new(program),
            None => WorkerCommand::current_exe()?,
        };
        Ok(command
            .args(self.args.iter().cloned())
            .worker_id(worker as u64)
            .memory_limit(self.memory_limit))
    }
}

/// Handlers that run `handlers`' task types in worker processes, one per worker thread.
pub(crate) fn proxy_handlers<S: 'static>(
    handlers: Handlers<S>,
    options: ProcessOptions,
) -> Handlers<Proxy> {
    let supervisor = Arc::new(Supervisor {
        options,
        failures: Mutex::new(Vec::new()),
        log_level: OnceLock::new(),
    });
    let told = Arc::clone(&supervisor);
    let mut proxies =
        Handlers::new(move |info: &WorkerInfo| Proxy::start(info.id, Arc::clone(&supervisor)))
            .on_reset(Proxy::reset);
    proxies.on_build = Some(Box::new(move |pool: &PoolOptions| {
        let _ = told.log_level.set(pool.log_level);
    }));

    // One forwarding handler per task type, under the same name and Rust type.
    for entry in handlers.entries {
        let codec = entry.codec;
        proxies.entries.push(Entry {
            name: entry.name,
            task_type: entry.task_type,
            run: handlers::Run::Sync(Box::new(move |proxy: &mut Proxy, job, _worker| {
                proxy.forward(job, &codec);
            })),
            codec,
        });
    }
    proxies
}

/// The options and every worker's run of failures.
struct Supervisor {
    options: ProcessOptions,
    /// Per worker id: failures in a row and the last one's description.
    failures: Mutex<Vec<(u32, String)>>,
    /// The pool's log level, told when the pool is built.
    log_level: OnceLock<LogLevel>,
}

impl Supervisor {
    /// Whether the pool emits events at `level`.
    fn logs(&self, level: LogLevel) -> bool {
        self.log_level.get().copied().unwrap_or_default() >= level
    }

    /// Waits out the back-off before worker `worker` starts a process, or refuses once it
    /// failed `max_restarts` times in a row.
    fn before_start(&self, worker: usize) -> Result<(), HandlerError> {
        let (count, last) = self
            .failures
            .lock()
            .get(worker)
            .cloned()
            .unwrap_or_default();
        if count == 0 {
            return Ok(());
        }
        if count >= self.options.max_restarts {
            let message = format!(
                "worker process failed {count} times in a row, not restarting it (last: {last})"
            );
            return Err(HandlerError::new(message).permanent());
        }
        let backoff = BACKOFF_START.saturating_mul(1 << (count - 1).min(16));
        thread::sleep(backoff.min(BACKOFF_MAX));
        Ok(())
    }

    fn failed(&self, worker: usize, cause: &str) {
        let mut failures = self.failures.lock();
        if failures.len() <= worker {
            failures.resize(worker + 1, (0, String::new()));
        }
        failures[worker].0 += 1;
        failures[worker].1 = cause.to_owned();
    }

    fn succeeded(&self, worker: usize) {
        if let Some(entry) = self.failures.lock().get_mut(worker) {
            entry.0 = 0;
        }
    }
}

/// A worker thread's state in a process pool: its worker process, if it has a live one.
pub struct Proxy {
    worker: usize,
    supervisor: Arc<Supervisor>,
    child: Option<Connection>,
}

impl Proxy {
    /// The initializer: starts the worker's process and has it build its state.
    fn start(worker: usize, supervisor: Arc<Supervisor>) -> Result<Proxy, HandlerError> {
        let mut proxy = Proxy {
            worker,
            supervisor,
            child: None,
        };
        proxy.connect()?;
        Ok(proxy)
    }

    /// Starts a process unless one is live; a failure counts towards `max_restarts`.
    fn connect(&mut self) -> Result<&mut Connection, HandlerError> {
        if self.child.is_none() {
            self.supervisor.before_start(self.worker)?;
            match Connection::open(self.worker, &self.supervisor.options) {
                Ok(connection) => {
                    if self.supervisor.logs(LogLevel::Debug) {
                        let pid = connection.process.pid();
                        tracing::debug!(worker = self.worker, pid, "worker process started");
                    }
                    self.child = Some(connection);
                }
                Err(message) => {
                    self.supervisor.failed(self.worker, &message);
                    if self.supervisor.logs(LogLevel::Warn) {
                        tracing::warn!(worker = self.worker, %message,
                            "worker process did not start");
                    }
                    return Err(HandlerError::new(message));
                }
            }
        }
        self.child
            .as_mut()
            .ok_or_else(|| HandlerError::new("worker process missing"))
    }

    /// Runs `job` in the worker process and settles it.
    fn forward(&mut self, job: &Arc<dyn Job>, codec: &JobCodec) {
        let input = match codec.take_chunk(&**job) {
            ChunkStart::NotAChunk => match codec.take_input(&**job) {
                // Claimed while queued (cancelled, terminated), or started.
                None => return,
                Some(Err(error)) => {
                    job.fail(error);
                    return;
                }
                Some(Ok(input)) => input,
            },
            ChunkStart::Claimed => return,
            ChunkStart::Items(items) => return self.forward_chunk(job, codec, items),
        };
        match self.request(job, codec, input) {
            Reply::Output(output, segments) => {
                codec.settle_output(&**job, &output, segments);
            }
            Reply::Error(error) => {
                job.fail(error);
            }
            Reply::Crashed(error) => {
                job.fail_attempt(error);
            }
            Reply::Abandoned => {}
        }
    }

    /// Runs a batch chunk's items in the worker process, in order, and settles the chunk
    /// with their replies. The items are pipelined: up to [`PIPELINE_DEPTH`] requests (and
    /// [`PIPELINE_BYTES`] of them) are on the channel at once, so the process goes from one
    /// item to the next without waiting for the pool. An item whose process crashes settles
    /// as crashed, and the items sent after it go again to a fresh process; a chunk settled
    /// meanwhile (its time limit, a cancel, terminate) stops at once, its process killed.
    fn forward_chunk(
        &mut self,
        job: &Arc<dyn Job>,
        codec: &JobCodec,
        items: Vec<Result<Encoded, TaskError>>,
    ) {
        let worker = self.worker;
        let count = items.len();
        let mut replies: Vec<Option<ItemReply>> = Vec::with_capacity(count);
        let mut inputs: Vec<Option<Encoded>> = Vec::with_capacity(count);
        for item in items {
            match item {
                Ok(input) => {
                    replies.push(None);
                    inputs.push(Some(input));
                }
                Err(error) => {
                    replies.push(Some(Err(error)));
                    inputs.push(None);
                }
            }
        }
        let abandoned = || job.header().is_claimed();
        // Items sent and not answered yet, oldest first, with their request ids and sizes.
        let mut in_flight: VecDeque<(usize, RequestId, usize)> = VecDeque::new();
        let mut bytes_in_flight = 0;
        let mut next = 0;
        loop {
            while next < count && inputs[next].is_none() {
                next += 1;
            }
            if next == count && in_flight.is_empty() {
                break;
            }

            // Send the next item while the pipeline has room for it.
            let size = inputs
                .get(next)
                .and_then(Option::as_ref)
                .map_or(0, |i| i.bytes.len());
            let room = in_flight.is_empty()
                || (in_flight.len() < PIPELINE_DEPTH && bytes_in_flight + size <= PIPELINE_BYTES);
            if next < count && room {
                let connection = match self.connect() {
                    Ok(connection) => connection,
                    Err(error) => {
                        // The worker gave up (or cannot start a process): so does every
                        // item not answered yet.
                        let error = TaskError::WorkerUnavailable { worker, error };
                        for reply in replies.iter_mut().filter(|reply| reply.is_none()) {
                            *reply = Some(Err(error.clone()));
                        }
                        break;
                    }
                };
                let Some(input) = inputs[next].as_ref() else {
                    continue;
                };
                match connection.send_run(codec.name(), input.bytes.clone(), &input.segments) {
                    Ok(id) => {
                        in_flight.push_back((next, id, size));
                        bytes_in_flight += size;
                        next += 1;
                    }
                    // The process is gone: the oldest item in flight (or this one) crashed
                    // it. The items after that one go again, to a fresh process.
                    Err(cause) => {
                        let crashed = in_flight.front().map_or(next, |(index, ..)| *index);
                        replies[crashed] = Some(Err(self.crash(cause)));
                        next = crashed + 1;
                        in_flight.clear();
                        bytes_in_flight = 0;
                    }
                }
                continue;
            }

            // Else read the oldest item's reply.
            let Some((index, id, size)) = in_flight.pop_front() else {
                continue;
            };
            bytes_in_flight -= size;
            let Some(connection) = self.child.as_mut() else {
                continue;
            };
            let outcome = connection.reply(id, &abandoned);
            match self.reply_of(outcome, codec) {
                Reply::Output(output, segments) => replies[index] = Some(Ok((output, segments))),
                Reply::Error(error) => replies[index] = Some(Err(error)),
                Reply::Crashed(error) => {
                    // The items after the crashed one go again, to a fresh process.
                    replies[index] = Some(Err(error));
                    next = index + 1;
                    in_flight.clear();
                    bytes_in_flight = 0;
                }
                Reply::Abandoned => return,
            }
        }
        let replies = replies.into_iter().map(|reply| {
            reply.unwrap_or_else(|| {
                Err(TaskError::WorkerUnavailable {
                    worker,
                    error: HandlerError::new("the item was never answered"),
                })
            })
        });
        codec.settle_chunk(&**job, replies.collect());
    }

    /// Sends one request (a task) to the worker process, starting one if needed, and waits
    /// for its reply.
    fn request(&mut self, job: &Arc<dyn Job>, codec: &JobCodec, input: Encoded) -> Reply {
        let worker = self.worker;
        let connection = match self.connect() {
            Ok(connection) => connection,
            Err(error) => return Reply::Error(TaskError::WorkerUnavailable { worker, error }),
        };
        let outcome = connection.run(codec.name(), input, &**job);
        self.reply_of(outcome, codec)
    }

    /// What a request's outcome gives its job (or chunk item), after doing what the outcome
    /// asks of the proxy: a reply ends the worker's run of failures; a process whose job was
    /// settled without it, or that crashed, is killed (and a crash counts as a failure).
    fn reply_of(&mut self, outcome: Outcome, codec: &JobCodec) -> Reply {
        let worker = self.worker;
        match outcome {
            Outcome::Done(done, fds) => {
                self.supervisor.succeeded(worker);
                match SegmentCache::new().resolve(&done.segments, fds) {
                    Ok(segments) => Reply::Output(done.output, segments),
                    Err(error) => Reply::Error(TaskError::InvalidOutput {
                        task: codec.name().to_owned(),
                        message: error.to_string(),
                    }),
                }
            }
            Outcome::Failed(failure) => {
                self.supervisor.succeeded(worker);
                Reply::Error(task_error(codec.name(), worker, failure))
            }
            Outcome::Abandoned => {
                // Settled without us (time limit, cancel, terminate): pre-empt for real.
                if self.supervisor.logs(LogLevel::Info) {
                    tracing::info!(worker, "task abandoned; its worker process is killed");
                }
                self.drop_child(true);
                Reply::Abandoned
            }
            Outcome::Broken(cause) => Reply::Crashed(self.crash(cause)),
        }
    }

    /// The process died or broke the protocol: it is killed and counted as a failure, and
    /// the request it ran settles with the returned error.
    fn crash(&mut self, cause: String) -> TaskError {
        let worker = self.worker;
        if self.supervisor.logs(LogLevel::Warn) {
            tracing::warn!(worker, %cause, "worker process crashed; it will be replaced");
        }
        self.supervisor.failed(worker, &cause);
        self.drop_child(true);
        TaskError::WorkerCrashed { worker, cause }
    }

    /// `reset()`: the worker process clears its state; a process that cannot is replaced.
    fn reset(&mut self) {
        let Some(connection) = self.child.as_mut() else {
            return;
        };
        if let Err(message) = connection.control(Message::Reset) {
            if self.supervisor.logs(LogLevel::Warn) {
                tracing::warn!(worker = self.worker, %message, "worker process could not reset");
            }
            self.drop_child(true);
        }
    }

    fn drop_child(&mut self, kill: bool) {
        if let Some(mut connection) = self.child.take() {
            if kill {
                let _ = connection.process.kill();
            }
        }
    }
}

/// What one request to the worker process gave, for its job (or chunk item) to settle with.
enum Reply {
    /// The output's bytes and the segments they refer to.
    Output(Vec<u8>, Vec<Arc<Segment>>),
    /// An error to settle with.
    Error(TaskError),
    /// The process died or broke the protocol: an error that a retry may get past.
    Crashed(TaskError),
    /// The job was settled without the worker while it ran; its process is killed.
    Abandoned,
}

/// How a forwarded request ended.
enum Outcome {
    /// The worker replied with a value.
    Done(Done, Vec<OwnedFd>),
    /// The worker replied with an error.
    Failed(Failure),
    /// The job was settled without the worker while it ran.
    Abandoned,
    /// The worker died or broke the protocol; how, in words.
    Broken(String),
}

/// One live worker process and its channel.
struct Connection {
    process: WorkerProcess,
    reader: ChannelReader,
    writer: ChannelWriter,
    sent: SentSegments,
    next_id: u64,
}

impl Connection {
    /// Starts the process, reads its greeting and has it build its state.
    fn open(worker: usize, options: &ProcessOptions) -> Result<Connection, String> {
        let command = options
            .command(worker)
            .map_err(|error| format!("no worker program: {error}"))?;
        let mut process = command
            .spawn()
            .map_err(|error| format!("worker process could not start: {error}"))?;
        let stream = process
            .take_channel()
            .ok_or_else(|| "worker process has no channel".to_owned())?;

        // A reader never waits forever inside a frame (see `STALL_LIMIT`).
        stream
            .set_read_timeout(Some(STALL_LIMIT))
            .map_err(|error| error.to_string())?;
        let (reader, writer) = channel::split(stream, options.max_frame_len)
            .map_err(|error| format!("channel: {error}"))?;
        let mut connection = Connection {
            process,
            reader,
            writer,
            sent: SentSegments::new(),
            next_id: 1,
        };

        connection.greeting()?;
        connection.control(Message::Initialize)?;
        Ok(connection)
    }

    /// Reads the worker's `Hello`; the decoder refuses another protocol version.
    fn greeting(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + GREETING_LIMIT;
        let never = || false;
        match self.receive(&never, Some(deadline)) {
            Ok(received) => match received.frame.message {
                Message::Hello(_) => Ok(()),
                other => Err(format!(
                    "worker process greeted with a {:?} message",
                    other.kind()
                )),
            },
            Err(Wait::Abandoned) => Err(format!(
                "worker process did not greet the pool within {GREETING_LIMIT:?}; does the \
                 program call serve_if_worker first thing in main?"
            )),
            Err(Wait::Broken(cause)) => Err(format!("worker process {cause}")),
        }
    }

    /// Sends `Initialize` or `Reset` and waits for the reply.
    fn control(&mut self, message: Message) -> Result<(), String> {
        let id = self.send(message, &[])?;
        let never = || false;
        match self.reply(id, &never) {
            Outcome::Done(..) => Ok(()),
            Outcome::Failed(failure) => Err(failure.message),
            Outcome::Abandoned => Err("abandoned".to_owned()),
            Outcome::Broken(cause) => Err(format!("worker process {cause}")),
        }
    }

    /// Runs a task and waits for its reply, or until `job` is claimed.
    fn run(&mut self, task: &str, input: Encoded, job: &dyn Job) -> Outcome {
        match self.send_run(task, input.bytes, &input.segments) {
            Ok(id) => self.reply(id, &|| job.header().is_claimed()),
            Err(cause) => Outcome::Broken(cause),
        }
    }

    /// Sends a task to run (after a `Release` of the segments the pool let go of, if any);
    /// returns its request id. The reply is read with [`Self::reply`].
    fn send_run(
        &mut self,
        task: &str,
        input: Vec<u8>,
        segments: &[Arc<Segment>],
    ) -> Result<RequestId, String> {
        let released = self.sent.take_released();
        if !released.is_empty() {
            self.send(Message::Release(Release { segments: released }), &[])?;
        }
        let run = Message::Run(Run {
            task: task.to_owned(),
            input,
            segments: Vec::new(),
        });
        self.send(run, segments)
    }

    /// Sends a message, with `segments` for a `Run`; returns its request id.
    fn send(
        &mut self,
        mut message: Message,
        segments: &[Arc<Segment>],
    ) -> Result<RequestId, String> {
        let (refs, fds) = self.sent.prepare(segments);
        if let Message::Run(run) = &mut message {
            run.segments = refs;
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        match self.writer.send(&Frame::new(id, message), &fds) {
            Ok(()) => Ok(id),
            Err(error) => Err(self.death(&format!("refused a frame: {error}"))),
        }
    }

    /// Waits for the reply to request `id`.
    fn reply(&mut self, id: RequestId, abandoned: &dyn Fn() -> bool) -> Outcome {
        let received = match self.receive(abandoned, None) {
            Ok(received) => received,
            Err(Wait::Abandoned) => return Outcome::Abandoned,
            Err(Wait::Broken(cause)) => return Outcome::Broken(cause),
        };
        let Received { frame, fds } = received;
        if frame.request_id != id {
            return Outcome::Broken(format!(
                "answered request {} while request {} was running",
                frame.request_id.0, id.0
            ));
        }
        match frame.message {
            Message::Done(done) => Outcome::Done(done, fds),
            Message::Failed(failure) => Outcome::Failed(failure),
            other => Outcome::Broken(format!("sent an unexpected {:?} message", other.kind())),
        }
    }

    /// Reads the next frame, polling so that `abandoned` (or `deadline`) is noticed.
    fn receive(
        &mut self,
        abandoned: &dyn Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Result<Received, Wait> {
        let mut spins = 0;
        while !self.reader.has_buffered() && !self.readable(spins < REPLY_SPINS) {
            spins += 1;
            let late = deadline.is_some_and(|deadline| Instant::now() >= deadline);
            if abandoned() || late {
                return Err(Wait::Abandoned);
            }
        }
        match self.reader.recv() {
            Ok(Some(received)) => Ok(received),
            Ok(None) => Err(Wait::Broken(self.death("closed its channel"))),
            Err(error @ (WireError::Truncated | WireError::Io(_))) => {
                Err(Wait::Broken(self.death(&error.to_string())))
            }
            Err(error) => {
                // Whatever it sent, it is no longer trusted: stop it, then report.
                let _ = self.process.kill();
                Err(Wait::Broken(format!(
                    "sent a frame the pool refuses: {error}"
                )))
            }
        }
    }

    /// Whether the channel has data (or an end) to read, waiting up to [`POLL_INTERVAL`];
    /// with `glance`, only looking, after letting other threads run once.
    fn readable(&self, glance: bool) -> bool {
        let stream = self.reader.stream();
        let mut fds = [PollFd::new(stream, PollFlags::IN)];
        let timeout = if glance {
            std::thread::yield_now();
            Timespec::try_from(Duration::ZERO).ok()
        } else {
            Timespec::try_from(POLL_INTERVAL).ok()
        };
        matches!(poll(&mut fds, timeout.as_ref()), Ok(n) if n > 0)
    }

    /// How the process ended after its channel failed: its exit, once reaped. `what` says
    /// what the channel showed, for a process that is somehow still alive.
    fn death(&mut self, what: &str) -> String {
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match self.process.try_reap() {
                Ok(Some(cause)) => return cause.to_string(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
                _ => break,
            }
        }
        match self.process.kill() {
            Ok(cause) => format!("{what} and was stopped ({cause})"),
            Err(_) => what.to_owned(),
        }
    }
}

impl Drop for Connection {
    /// Closes the channel so the process exits on its own; kills it if it lingers.
    fn drop(&mut self) {
        let _ = self.writer.stream().shutdown(std::net::Shutdown::Both);
        let deadline = Instant::now() + EXIT_GRACE;
        while matches!(self.process.try_reap(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        // Dropping `process` then kills and reaps it if it is still there.
    }
}

/// Why waiting for a frame stopped without one.
enum Wait {
    Abandoned,
    Broken(String),
}
