//! Starting and supervising one worker process.
//!
//! [`WorkerCommand::spawn`] creates a socket pair for the child and starts the program with
//! one end inherited; the descriptor's number and the worker id are passed in the
//! environment ([`CHANNEL_FD_ENV`], [`WORKER_ID_ENV`]), so there is no path on disk and no
//! port. Between fork and exec the child:
//!
//! 1. asks for `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), then checks the parent
//!    did not die before that request took effect: no worker outlives the pool, also when
//!    the pool's process panics or is killed;
//! 2. applies the optional memory limit (`RLIMIT_AS`), so a runaway allocation fails in the
//!    worker (an abort, reported as a crash) instead of in the machine;
//! 3. clears close-on-exec on its end of the socket pair, and only its own: every other
//!    channel descriptor stays close-on-exec, so siblings never inherit each other's.
//!
//! Caveats:
//! - Linux delivers the parent-death signal when the *thread* that forked the child exits,
//!   not only the process. Spawn workers from a thread that lives as long as the workers
//!   (the pool's supervisor), or they are killed when that thread ends.
//! - The signal is not inherited by processes a worker starts itself (fork clears it). To
//!   reach those, each worker leads a process group of its own, and whenever the pool is
//!   done with a worker (killed, crashed, or exited) the whole group gets `SIGKILL` before
//!   the worker is reaped: an unreaped worker keeps its id, so the group's id cannot have
//!   been reused by then. A process that leaves the group (`setsid`, `setpgid`), or one
//!   started after the pool's own process died, escapes this.
//! - In its own group, a worker does not receive the terminal's Ctrl-C; it dies with the
//!   pool's process instead (the parent-death signal).
//!
//! [`WorkerProcess`] owns the child: dropping it kills and reaps the process group, and
//! [`ExitCause`] says how the worker ended.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use rustix::io::{fcntl_setfd, Errno, FdFlags};
use rustix::process::{
    getpid, getppid, kill_process_group, setrlimit, waitid, Pid, Resource, Rlimit, Signal, WaitId,
    WaitIdOptions,
};

/// The environment variable naming the inherited channel descriptor.
pub const CHANNEL_FD_ENV: &str = "PROTOZOA_WORKER_FD";

/// The environment variable carrying the worker id.
pub const WORKER_ID_ENV: &str = "PROTOZOA_WORKER_ID";

/// How to start a worker process.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    worker_id: u64,
    memory_limit: Option<u64>,
}

impl WorkerCommand {
    /// Runs `program`, which must serve the channel (see `process::worker_side`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        WorkerCommand {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            worker_id: 0,
            memory_limit: None,
        }
    }

    /// Runs the current executable, which must enter worker mode when it finds
    /// [`CHANNEL_FD_ENV`] in its environment.
    pub fn current_exe() -> io::Result<Self> {
        Ok(WorkerCommand::new(std::env::current_exe()?))
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = A>, A: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the worker (it inherits ours otherwise).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The id the worker reports in its `Hello` and its logs.
    pub fn worker_id(mut self, id: u64) -> Self {
        self.worker_id = id;
        self
    }

    /// Caps the worker's address space (`RLIMIT_AS`) at `bytes`.
    pub fn memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Starts the worker with its own end of a fresh socket pair.
    pub fn spawn(&self) -> io::Result<WorkerProcess> {
        // Both ends are close-on-exec; the child clears it on its end only.
        let (ours, theirs) = UnixStream::pair()?;
        let child_fd = theirs.as_raw_fd();
        let parent = getpid();
        let memory_limit = self.memory_limit;

        // The worker's stdout goes to our stderr, keeping our stdout for our own output.
        let stdout = io::stderr().as_fd().try_clone_to_owned()?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env(CHANNEL_FD_ENV, child_fd.to_string())
            .env(WORKER_ID_ENV, self.worker_id.to_string())
            .stdin(Stdio::null())
            .stdout(stdout)
            .process_group(0);

        // SAFETY: the closure runs in the forked child before exec and only makes raw system
        // calls (prctl, getppid, setrlimit, fcntl) through rustix: no allocation, no lock.
        // `child_fd` is open in the child, a copy of `theirs`, which outlives the fork.
        unsafe {
            command.pre_exec(move || prepare_child(parent, child_fd, memory_limit));
        }

        let child = command.spawn()?;
        drop(theirs);
        Ok(WorkerProcess {
            child,
            channel: Some(ours),
            exit: None,
        })
    }
}

/// Runs in the child between fork and exec.
fn prepare_child(parent: Pid, child_fd: i32, memory_limit: Option<u64>) -> io::Result<()> {
    // Die with the parent, and do not start if it is already gone.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    if getppid() != Some(parent) {
        return Err(Errno::SRCH.into());
    }

    if let Some(bytes) = memory_limit {
        setrlimit(
            Resource::As,
            Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            },
        )?;
    }

    // SAFETY: `child_fd` is the child's copy of the socket end, open until exec.
    let fd = unsafe { BorrowedFd::borrow_raw(child_fd) };
    fcntl_setfd(fd, FdFlags::empty())?;
    Ok(())
}

/// A running (or finished, not yet dropped) worker process.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    channel: Option<UnixStream>,
    exit: Option<ExitCause>,
}

impl WorkerProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes the pool's end of the channel (once).
    pub fn take_channel(&mut self) -> Option<UnixStream> {
        self.channel.take()
    }

    /// How the process ended, if it has; then its group is killed and it is reaped. Does not
    /// block.
    pub fn try_reap(&mut self) -> io::Result<Option<ExitCause>> {
        if self.exit.is_none() && self.peek_exit(WaitIdOptions::NOHANG)? {
            self.kill_group();
            self.exit = self.child.try_wait()?.map(ExitCause::from);
        }
        Ok(self.exit)
    }

    /// Waits for the process to end, kills what is left of its group, and reaps it.
    pub fn wait(&mut self) -> io::Result<ExitCause> {
        if let Some(cause) = self.exit {
            return Ok(cause);
        }
        self.peek_exit(WaitIdOptions::empty())?;
        self.kill_group();
        let cause = ExitCause::from(self.child.wait()?);
        self.exit = Some(cause);
        Ok(cause)
    }

    /// Kills the process and its group (`SIGKILL`) unless it was reaped already, and reaps it.
    pub fn kill(&mut self) -> io::Result<ExitCause> {
        if self.try_reap()?.is_none() {
            self.kill_group();
        }
        self.wait()
    }

    /// Whether the process has ended, leaving it unreaped (so its id, which is also its
    /// group's, stays taken). With `NOHANG` this looks; without, it waits for the end.
    fn peek_exit(&self, how: WaitIdOptions) -> io::Result<bool> {
        let Some(pid) = self.rustix_pid() else {
            return Ok(true);
        };
        let options = how | WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        loop {
            match waitid(WaitId::Pid(pid), options) {
                Ok(status) => return Ok(status.is_some()),
                Err(Errno::INTR) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Sends `SIGKILL` to the worker's process group: the worker, if it still runs, and
    /// whatever it started. Only while the worker is unreaped (see the module docs).
    fn kill_group(&self) {
        let Some(pid) = self.rustix_pid() else {
            return;
        };
        if self.exit.is_some() {
            return;
        }
        match kill_process_group(pid, Signal::KILL) {
            // Nothing left in the group.
            Ok(()) | Err(Errno::SRCH) => {}
            Err(error) => tracing::debug!(%error, pid = self.pid(), "could not kill the group"),
        }
    }

    fn rustix_pid(&self) -> Option<Pid> {
        i32::try_from(self.child.id()).ok().and_then(Pid::from_raw)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            tracing::warn!(%error, pid = self.pid(), "could not reap a worker process");
        }
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited with this code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// A signal ended it.
    Signaled {
        /// The signal's number.
        signal: i32,
        /// Whether a core dump was written.
        core_dumped: bool,
    },
}

impl ExitCause {
    /// The conventional name of the signal that ended the process (`"SIGSEGV"`), if a
    /// signal did and it has one.
    pub fn signal_name(&self) -> Option<&'static str> {
        match self {
            ExitCause::Signaled { signal, .. } => signal_name(*signal),
            ExitCause::Exited { .. } => None,
        }
    }

    /// Whether the process exited normally with code 0.
    pub fn is_clean(&self) -> bool {
        *self == ExitCause::Exited { code: 0 }
    }
}

impl From<ExitStatus> for ExitCause {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitCause::Exited { code },
            (None, Some(signal)) => ExitCause::Signaled {
                signal,
                core_dumped: status.core_dumped(),
            },
            // Stopped or continued states are not reported by wait(); treat as unknown.
            (None, None) => ExitCause::Exited { code: -1 },
        }
    }
}

impl fmt::Display for ExitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitCause::Exited { code } => write!(f, "exited with code {code}"),
            ExitCause::Signaled {
                signal,
                core_dumped,
            } => {
                match signal_name(*signal) {
                    Some(name) => write!(f, "killed by {name}")?,
                    None => write!(f, "killed by signal {signal}")?,
                }
                if *core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    const NAMES: [(Signal, &str); 20] = [
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::VTALARM, "SIGVTALRM"),
        (Signal::PROF, "SIGPROF"),
        (Signal::SYS, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|(s, _)| s.as_raw() == signal)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_cause_names_the_signal() {
        let cause = ExitCause::Signaled {
            signal: Signal::SEGV.as_raw(),
            core_dumped: false,
        };
        assert_eq!(cause.to_string(), "killed by SIGSEGV");
        assert_eq!(cause.signal_name(), Some("SIGSEGV"));
    }

    #[test]
    fn exit_cause_names_the_code() {
        assert_eq!(
            ExitCause::Exited { code: 3 }.to_string(),
            "exited with code 3"
        );
    }
}
