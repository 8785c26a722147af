//! The events of process workers' proxies (a worker process crashed, was killed, could not
//! start) follow the pool's `log_level`, like the events of its thread workers.
//!
//! In a file of its own: the subscriber that captures the events is the whole test binary's.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::sync::{Arc, Mutex};

use protozoa_workers::process::{serve_if_worker, ProcessOptions};
use protozoa_workers::{task, Handlers, LogLevel, TaskError, WorkerPool};
use tracing_subscriber::fmt::MakeWriter;

task! {
    struct Abort: () => () = "abort";
}

fn handlers() -> Handlers<()> {
    Handlers::stateless().handler::<Abort>(|_, (), _| std::process::abort())
}

/// The worker program: this binary, run with this test's name.
#[test]
fn worker_entry() {
    if serve_if_worker(&handlers()) {
        std::process::exit(0);
    }
}

/// Everything the subscriber printed, from any thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs one task whose worker process aborts, in a pool at `level`. The level is set after
/// `process_workers`, as a builder chain may well do.
fn crash_one_worker_process(level: LogLevel) {
    let program = std::env::current_exe().expect("current exe");
    let options = ProcessOptions::new().program(program).args([
        "worker_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    let pool = WorkerPool::builder(handlers())
        .workers(1)
        .process_workers(options)
        .log_level(level)
        .build()
        .expect("pool");
    let result = pool.submit::<Abort>(()).unwrap().wait();
    assert!(
        matches!(result, Err(TaskError::WorkerCrashed { .. })),
        "{result:?}"
    );
    pool.close();
    pool.join();
}

#[test]
fn process_worker_events_follow_the_pools_log_level() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .init();

    crash_one_worker_process(LogLevel::None);
    assert!(!captured.text().contains("crashed"), "{}", captured.text());

    crash_one_worker_process(LogLevel::Warn);
    assert!(
        captured.text().contains("worker process crashed"),
        "{}",
        captured.text()
    );
}
