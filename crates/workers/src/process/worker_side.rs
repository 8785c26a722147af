//! The worker process's side of the channel: find the inherited channel, greet the pool,
//! then answer requests with a callback until the channel closes.
//!
//! The *serving* thread (the caller of [`serve`]) reads the next request itself, runs the
//! callback and writes the reply, so a quick request costs no hop between threads. Reading a
//! frame also handles the ones that need no callback: `Cancel` signals the running request,
//! `Release` drops cached segments.
//!
//! While a request runs, nobody would read `Cancel`; so once a request has run for a few
//! milliseconds, a *watcher* thread takes over reading until it has a request to forward.
//! One thread holds the reading end at a time, and frames are handled in channel order.
//!
//! The loop ends cleanly (`Ok`) when the pool closes the channel or sends `Shutdown`, and with
//! an error when a frame is garbled, which the pool sees as the process exiting non-zero.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

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

/// What reading the channel yields for the serving thread.
enum Inbound {
    Request(Request),
    Shutdown,
    Closed,
    Broken(WorkerSideError),
}

/// How long a request runs before the watcher starts reading the channel beside it.
const WATCH_AFTER: Duration = Duration::from_millis(5);

/// Idle checks after which the watcher sleeps until the next request starts.
const IDLE_CHECKS_BEFORE_SLEEP: u32 = 200;

/// The reading end of the channel and the segments it opened; one thread holds it at a time.
struct Inlet {
    reader: ChannelReader,
    cache: SegmentCache,
}

/// What the serving thread and the watcher share.
struct Shared {
    /// The inlet when nobody is reading: the serving thread takes it to read the next request;
    /// the watcher takes it while a request runs long, to see `Cancel` and `Release` in time.
    inlet: Mutex<Option<Inlet>>,
    flags: Mutex<HashMap<RequestId, CancelSignal>>,
    /// When the running request started (nanoseconds since `epoch`), 0 when none runs.
    busy_since: AtomicU64,
    epoch: Instant,
    watcher_asleep: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }
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

    // The watcher stands by for requests that run long.
    let shared = Arc::new(Shared {
        inlet: Mutex::new(Some(Inlet {
            reader,
            cache: SegmentCache::new(),
        })),
        flags: Mutex::default(),
        busy_since: AtomicU64::new(0),
        epoch: Instant::now(),
        watcher_asleep: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let (to_server, from_watcher) = mpsc::channel();
    let watcher_shared = Arc::clone(&shared);
    let watcher = thread::Builder::new()
        .name("protozoa-worker-watcher".into())
        .spawn(move || watch(&watcher_shared, &to_server))?;

    let result = serve_loop(
        &mut writer,
        &shared,
        &from_watcher,
        watcher.thread(),
        &mut handler,
    );

    // Stop the watcher, unblocking it if it is reading, and wait for it.
    shared.stop.store(true, Ordering::SeqCst);
    watcher.thread().unpark();
    let _ = writer.stream().shutdown(std::net::Shutdown::Both);
    let _ = watcher.join();
    result
}

fn serve_loop(
    writer: &mut ChannelWriter,
    shared: &Shared,
    from_watcher: &mpsc::Receiver<Inbound>,
    watcher: &Thread,
    handler: &mut impl FnMut(Request) -> Response,
) -> Result<(), WorkerSideError> {
    loop {
        let request = match next_inbound(shared, from_watcher) {
            Inbound::Request(request) => request,
            Inbound::Broken(error) => return Err(error),
            Inbound::Shutdown | Inbound::Closed => return Ok(()),
        };
        let id = request.id;

        // Tell the watcher a request runs (waking it only if it sleeps).
        shared.busy_since.store(shared.now(), Ordering::SeqCst);
        if shared.watcher_asleep.load(Ordering::SeqCst) {
            watcher.unpark();
        }
        let response = catch_unwind(AssertUnwindSafe(|| handler(request)))
            .unwrap_or_else(|payload| Response::Failed(panic_failure(payload.as_ref())));
        shared.busy_since.store(0, Ordering::SeqCst);

        lock(&shared.flags).remove(&id);
        reply(writer, id, response)?;
    }
}

/// The next request for the serving thread, in channel order: read directly (the fast path,
/// no thread hop) unless the watcher holds the inlet or forwarded something.
fn next_inbound(shared: &Shared, from_watcher: &mpsc::Receiver<Inbound>) -> Inbound {
    if let Ok(inbound) = from_watcher.try_recv() {
        return inbound;
    }
    let taken = lock(&shared.inlet).take();
    let Some(mut inlet) = taken else {
        // The watcher is reading; it forwards the next request.
        return from_watcher.recv().unwrap_or(Inbound::Closed);
    };

    // The watcher forwards before it hands the inlet back, so anything it read is queued.
    let inbound = match from_watcher.try_recv() {
        Ok(inbound) => inbound,
        Err(_) => read_next(&mut inlet, &shared.flags),
    };
    *lock(&shared.inlet) = Some(inlet);
    inbound
}

/// Reads frames until one needs the serving thread; `Cancel` and `Release` are handled here.
fn read_next(inlet: &mut Inlet, flags: &Mutex<HashMap<RequestId, CancelSignal>>) -> Inbound {
    loop {
        let received = match inlet.reader.recv() {
            Ok(Some(received)) => received,
            Ok(None) => return Inbound::Closed,
            Err(error) => return Inbound::Broken(error.into()),
        };
        if let Some(inbound) = route(received, &mut inlet.cache, flags) {
            return inbound;
        }
    }
}

/// The watcher: while a request has run for [`WATCH_AFTER`], it reads the channel so that a
/// `Cancel` reaches the running handler, forwarding any request to the serving thread. Short
/// requests never involve it, so a quick request costs no thread hop.
fn watch(shared: &Shared, to_server: &mpsc::Sender<Inbound>) {
    let mut idle_checks = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        // Long idle: sleep until the serving thread starts a request.
        if idle_checks >= IDLE_CHECKS_BEFORE_SLEEP {
            shared.watcher_asleep.store(true, Ordering::SeqCst);
            if shared.busy_since.load(Ordering::SeqCst) == 0 {
                thread::park();
            }
            shared.watcher_asleep.store(false, Ordering::SeqCst);
            idle_checks = 0;
            continue;
        }

        thread::park_timeout(WATCH_AFTER);
        let since = shared.busy_since.load(Ordering::SeqCst);
        if since == 0 {
            idle_checks += 1;
            continue;
        }
        idle_checks = 0;
        if shared.now().saturating_sub(since) < WATCH_AFTER.as_nanos() as u64 {
            continue;
        }

        // A request runs long: read beside it, then hand the inlet back.
        let taken = lock(&shared.inlet).take();
        let Some(mut inlet) = taken else { continue };
        let inbound = read_next(&mut inlet, &shared.flags);
        let last = !matches!(inbound, Inbound::Request(_));
        let sent = to_server.send(inbound);
        *lock(&shared.inlet) = Some(inlet);
        if sent.is_err() || last {
            return;
        }
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

/// Handles a frame the reader can settle itself; turns the rest into an [`Inbound`].
fn route(
    received: Received,
    cache: &mut SegmentCache,
    flags: &Mutex<HashMap<RequestId, CancelSignal>>,
) -> Option<Inbound> {
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
