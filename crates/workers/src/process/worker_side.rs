//! The worker process's side of the channel: find the inherited channel, greet the pool,
//! then answer requests with a callback until the channel closes.
//!
//! Two threads share the work:
//!
//! - the *reader* decodes frames, opens and caches shared memory segments, sets the cancel
//!   flag of a request on `Cancel`, drops released segments on `Release`, and passes every
//!   request to the serving thread;
//! - the *serving* thread (the caller of [`serve`]) runs the callback for one request at a
//!   time and writes its reply.
//!
//! The loop ends cleanly (`Ok`) when the pool closes the channel or sends `Shutdown`, and with
//! an error when a frame is garbled, which the pool sees as the process exiting non-zero.

use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::{io, thread};

use super::channel::{self, ChannelReader, ChannelWriter, Received};
use super::child::{CHANNEL_FD_ENV, WORKER_ID_ENV};
use super::shm::{Segment, SegmentCache, ShmError};
use super::wire::{
    Done, Failure, FailureKind, Frame, Hello, Message, RequestId, SegmentRef, WireError,
    DEFAULT_MAX_FRAME_LEN, PROTOCOL_VERSION,
};

/// Why the worker side could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum WorkerSideError {
    #[error("{CHANNEL_FD_ENV} or {WORKER_ID_ENV} is not a number: {0:?}")]
    /// A variable of the worker's environment is malformed.
    BadEnvironment(String),
    #[error("descriptor {0} is not a socket inherited from the pool")]
    /// The inherited descriptor is not an open socket.
    NotASocket(RawFd),
    #[error("the pool sent a {0:?} message, which only a worker sends")]
    /// The pool sent a message only workers send.
    UnexpectedMessage(super::wire::Kind),
    #[error(transparent)]
    /// A frame could not be read or written.
    Wire(#[from] WireError),
    #[error(transparent)]
    /// A segment could not be opened.
    Shm(#[from] ShmError),
    #[error("channel i/o failed: {0}")]
    /// The channel or the reader thread failed.
    Io(#[from] io::Error),
}

/// The channel and identity a worker process inherited from the pool.
#[derive(Debug)]
pub struct WorkerEnv {
    /// The id the pool gave this worker.
    pub worker_id: u64,
    stream: UnixStream,
}

impl WorkerEnv {
    /// The inherited channel, or `None` when this process was not started as a worker.
    ///
    /// Call it once, early in `main`: it takes ownership of the inherited descriptor and
    /// marks it close-on-exec so that programs the worker starts do not inherit it.
    pub fn from_env() -> Result<Option<WorkerEnv>, WorkerSideError> {
        let Some(fd) = std::env::var_os(CHANNEL_FD_ENV) else {
            return Ok(None);
        };
        let fd: RawFd = parse_env(fd)?;
        let worker_id: u64 = match std::env::var_os(WORKER_ID_ENV) {
            Some(id) => parse_env(id)?,
            None => 0,
        };

        // Check before owning: a stray number must not make us close someone else's file.
        if fd < 0 || !is_socket(fd) {
            return Err(WorkerSideError::NotASocket(fd));
        }
        // SAFETY: the pool passed this descriptor for us alone, it is open (checked above)
        // and nothing else in this process claims it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).map_err(io::Error::from)?;
        Ok(Some(WorkerEnv {
            worker_id,
            stream: UnixStream::from(owned),
        }))
    }

    /// A worker env over any connected stream, for tests and custom launchers.
    pub fn from_stream(worker_id: u64, stream: UnixStream) -> Self {
        WorkerEnv { worker_id, stream }
    }
}

fn parse_env<T: std::str::FromStr>(value: std::ffi::OsString) -> Result<T, WorkerSideError> {
    let text = value.to_string_lossy().into_owned();
    text.parse()
        .map_err(|_| WorkerSideError::BadEnvironment(text))
}

fn is_socket(fd: RawFd) -> bool {
    // SAFETY: borrowed only for the fstat call; if `fd` is not open, fstat fails with EBADF.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    rustix::fs::fstat(fd)
        .map(|stat| {
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket
        })
        .unwrap_or(false)
}

/// A request handed to the callback.
#[derive(Debug)]
pub struct Request {
    /// The request's id, repeated in the reply.
    pub id: RequestId,
    /// What is asked.
    pub body: RequestBody,
    /// Tells when the pool cancels this request; a long handler should look at it.
    pub cancel: CancelSignal,
}

/// Whether the pool cancelled a request, and what to do when it does.
#[derive(Clone, Default)]
pub struct CancelSignal(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    hooks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl CancelSignal {
    /// Whether the pool cancelled the request.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Runs `hook` when the request is cancelled, on the channel's reader thread; at once if
    /// it already is.
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut hooks = lock(&self.0.hooks);
        if self.is_cancelled() {
            drop(hooks);
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
    }

    /// Marks the request cancelled and runs the hooks registered so far.
    fn cancel(&self) {
        // Set under the lock, so a hook is either registered before (and run here) or
        // registered after and run by `on_cancel` itself.
        let hooks = {
            let mut hooks = lock(&self.0.hooks);
            self.0.cancelled.store(true, Ordering::Release);
            std::mem::take(&mut *hooks)
        };
        hooks.into_iter().for_each(|hook| hook());
    }
}

impl std::fmt::Debug for CancelSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelSignal")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// What the pool asks for.
#[derive(Debug)]
pub enum RequestBody {
    /// Build the worker's state.
    Initialize,
    /// Clear the worker's state.
    Reset,
    /// Run a task.
    Run {
        /// The task's name.
        task: String,
        /// Its encoded input.
        input: Vec<u8>,
        /// The shared memory segments the input refers to, in the input's order.
        segments: Vec<Arc<Segment>>,
    },
}

/// The callback's answer.
#[derive(Debug)]
pub enum Response {
    /// Success; `segments` travel as shared memory with the reply.
    Done {
        /// The encoded output.
        output: Vec<u8>,
        /// Segments the output refers to.
        segments: Vec<Arc<Segment>>,
    },
    /// Failure, with what went wrong.
    Failed(Failure),
}

impl Response {
    /// Success with `output` and no segment.
    pub fn done(output: Vec<u8>) -> Self {
        Response::Done {
            output,
            segments: Vec::new(),
        }
    }
}

/// What the reader passes to the serving thread.
enum Inbound {
    Request(Request),
    Shutdown,
    Closed,
    Broken(WorkerSideError),
}

/// Greets the pool with the names of the tasks this worker runs, then serves requests with
/// `handler` until the pool closes the channel or says `Shutdown`. A panic in `handler` is
/// answered as a `Failed` reply of kind `Panicked`, and serving goes on.
pub fn serve(
    env: WorkerEnv,
    tasks: Vec<String>,
    mut handler: impl FnMut(Request) -> Response,
) -> Result<(), WorkerSideError> {
    let (reader, mut writer) = channel::split(env.stream, DEFAULT_MAX_FRAME_LEN)?;

    // Greet first: the pool checks the version and the task names before sending work.
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        worker_id: env.worker_id,
        pid: std::process::id(),
        tasks,
    };
    writer.send(&Frame::new(RequestId(0), Message::Hello(hello)), &[])?;

    // The reader runs beside us until the channel closes.
    let flags: CancelFlags = Arc::default();
    let (inbound_tx, inbound) = mpsc::channel();
    let reader_flags = Arc::clone(&flags);
    let reader = thread::Builder::new()
        .name("protozoa-worker-reader".into())
        .spawn(move || read_loop(reader, &inbound_tx, &reader_flags))?;

    let result = serve_loop(&mut writer, &inbound, &flags, &mut handler);

    // Unblock the reader if we stopped first, then wait for it.
    let _ = writer.stream().shutdown(std::net::Shutdown::Both);
    let _ = reader.join();
    result
}

type CancelFlags = Arc<Mutex<HashMap<RequestId, CancelSignal>>>;

fn serve_loop(
    writer: &mut ChannelWriter,
    inbound: &mpsc::Receiver<Inbound>,
    flags: &CancelFlags,
    handler: &mut impl FnMut(Request) -> Response,
) -> Result<(), WorkerSideError> {
    loop {
        let request = match inbound.recv() {
            Ok(Inbound::Request(request)) => request,
            Ok(Inbound::Broken(error)) => return Err(error),
            Ok(Inbound::Shutdown | Inbound::Closed) | Err(_) => return Ok(()),
        };
        let id = request.id;

        let response = catch_unwind(AssertUnwindSafe(|| handler(request)))
            .unwrap_or_else(|payload| Response::Failed(panic_failure(payload.as_ref())));
        lock(flags).remove(&id);
        reply(writer, id, response)?;
    }
}

fn reply(
    writer: &mut ChannelWriter,
    id: RequestId,
    response: Response,
) -> Result<(), WorkerSideError> {
    match response {
        Response::Done { output, segments } => {
            // Outputs are fresh buffers: every segment is attached, none is remembered.
            let refs = segments.iter().map(|s| attached_ref(s)).collect();
            let fds: Vec<_> = segments.iter().map(|s| s.fd()).collect();
            let done = Done {
                output,
                segments: refs,
            };
            writer.send(&Frame::new(id, Message::Done(done)), &fds)?;
        }
        Response::Failed(failure) => writer.send(&Frame::new(id, Message::Failed(failure)), &[])?,
    }
    Ok(())
}

fn attached_ref(segment: &Segment) -> SegmentRef {
    SegmentRef {
        id: segment.id(),
        len: segment.len() as u64,
        attached: true,
    }
}

fn panic_failure(payload: &(dyn std::any::Any + Send)) -> Failure {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned());
    Failure {
        kind: FailureKind::Panicked,
        message,
        backtrace: None,
        permanent: false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps and lists stay valid even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Decodes frames until the channel ends, forwarding requests to the serving thread.
fn read_loop(mut reader: ChannelReader, inbound: &mpsc::Sender<Inbound>, flags: &CancelFlags) {
    let mut cache = SegmentCache::new();
    loop {
        let next = match reader.recv() {
            Ok(Some(received)) => route(received, &mut cache, flags),
            Ok(None) => Some(Inbound::Closed),
            Err(error) => Some(Inbound::Broken(error.into())),
        };
        let Some(next) = next else { continue };
        let last = !matches!(next, Inbound::Request(_));
        if inbound.send(next).is_err() || last {
            return;
        }
    }
}

/// Handles a frame the reader can settle itself; turns the rest into an [`Inbound`].
fn route(received: Received, cache: &mut SegmentCache, flags: &CancelFlags) -> Option<Inbound> {
    let Received { frame, fds } = received;
    let id = frame.request_id;
    let body = match frame.message {
        Message::Initialize => RequestBody::Initialize,
        Message::Reset => RequestBody::Reset,
        Message::Run(run) => match cache.resolve(&run.segments, fds) {
            Ok(segments) => RequestBody::Run {
                task: run.task,
                input: run.input,
                segments,
            },
            Err(error) => return Some(Inbound::Broken(error.into())),
        },
        Message::Cancel => {
            let signal = lock(flags).get(&id).cloned();
            if let Some(signal) = signal {
                signal.cancel();
            }
            return None;
        }
        Message::Release(release) => {
            cache.release(&release.segments);
            return None;
        }
        Message::Shutdown => return Some(Inbound::Shutdown),
        other @ (Message::Hello(_) | Message::Done(_) | Message::Failed(_)) => {
            return Some(Inbound::Broken(WorkerSideError::UnexpectedMessage(
                other.kind(),
            )));
        }
    };

    // Register the cancel flag before the request can start.
    let cancel = CancelSignal::default();
    lock(flags).insert(id, cancel.clone());
    Some(Inbound::Request(Request { id, body, cancel }))
}

/// The fd of the channel, for diagnostics.
impl AsFd for WorkerEnv {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
