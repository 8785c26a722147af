//! A `WorkerPool` of process workers, started from this test binary: crashes, time limits,
//! memory limits and protocol breaches each settle their task with the right error, and the
//! pool goes on with a fresh worker process.
//!
//! The worker program is this binary run with the filter of one of the `*_worker_entry` tests
//! below: each serves the channel when started as a worker, and returns at once otherwise.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use protozoa_workers::buffer::SharedBuffer;
use protozoa_workers::process::channel;
use protozoa_workers::process::wire::{
    Done, Frame, Hello, Message, RequestId, DEFAULT_MAX_FRAME_LEN, PROTOCOL_VERSION,
};
use protozoa_workers::process::worker_side::WorkerEnv;
use protozoa_workers::process::{serve_if_worker, ProcessOptions};
use protozoa_workers::{task, Handlers, TaskError, WorkerPool};

task! {
    struct Double: u64 => u64 = "double";
    struct Count: () => u64 = "count";
    struct Pid: () => u32 = "pid";
    struct Abort: () => () = "abort";
    struct Segfault: () => () = "segfault";
    struct Spin: () => () = "spin";
    struct Hog: usize => usize = "hog";
    struct PageSum: SharedBuffer => (f32, usize) = "page-sum";
    struct Garble: () => () = "garble";
    struct Oversize: () => () = "oversize";
    struct AbortOnce: String => u32 = "abort-once";
    struct StartSleeper: () => u32 = "start-sleeper";
    struct Reverse: Vec<u8> => Vec<u8> = "reverse";
}

/// The handlers, in the pool and in its worker processes alike.
fn handlers() -> Handlers<u64> {
    Handlers::new(|_| Ok(0))
        .on_reset(|count| *count = 0)
        .handler::<Double>(|_, n, _| Ok(n * 2))
        .handler::<Count>(|count, (), _| {
            *count += 1;
            Ok(*count)
        })
        .handler::<Pid>(|_, (), _| Ok(std::process::id()))
        .handler::<Abort>(|_, (), _| std::process::abort())
        .handler::<Segfault>(|_, (), _| {
            // SAFETY: none; this is deliberate. Address 8 lies in the never-mapped first page,
            // so the write raises SIGSEGV, which is what this handler exists to cause. It is
            // not null so that debug builds' pointer checks do not abort first.
            unsafe { std::ptr::write_volatile(8 as *mut u8, 1) };
            Ok(())
        })
        .handler::<Spin>(|_, (), _| loop {
            std::hint::spin_loop();
        })
        .handler::<Hog>(|_, bytes, _| {
            let hog = vec![1_u8; bytes];
            Ok(hog.iter().step_by(4096).map(|&b| usize::from(b)).sum())
        })
        .handler::<PageSum>(|_, buffer, _| {
            // One value per 4 KiB page, and how many segments this process has mapped.
            let sum = buffer.iter().step_by(1024).sum();
            Ok((sum, mapped_segments(std::process::id())))
        })
        .handler::<Garble>(|_, (), _| Ok(()))
        .handler::<Oversize>(|_, (), _| Ok(()))
        .handler::<Reverse>(|_, mut bytes, _| {
            bytes.reverse();
            Ok(bytes)
        })
        .handler::<StartSleeper>(|_, (), _| {
            // A process of the handler's own, left running: its pid is the answer.
            let sleeper = std::process::Command::new("sleep").arg("600").spawn()?;
            Ok(sleeper.id())
        })
        .handler::<AbortOnce>(|_, marker, _| {
            // The first attempt leaves a mark and dies; the next one, in a fresh
            // process, finds the mark and answers with its pid.
            if std::fs::metadata(&marker).is_err() {
                std::fs::write(&marker, b"crashed once")?;
                std::process::abort();
            }
            Ok(std::process::id())
        })
}

/// The well-behaved worker program.
#[test]
fn worker_entry() {
    if serve_if_worker(&handlers()) {
        std::process::exit(0);
    }
}

/// A worker that greets properly, then answers `garble` with a frame of an unknown kind,
/// `oversize` with a frame announcing 3 GiB, and `double` correctly.
#[test]
fn misbehaving_worker_entry() {
    let Some(env) = WorkerEnv::from_env().expect("worker environment") else {
        return;
    };
    let stream = UnixStream::from(env.as_fd().try_clone_to_owned().expect("dup"));
    let (mut reader, mut writer) = channel::split(stream, DEFAULT_MAX_FRAME_LEN).expect("split");
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        worker_id: env.worker_id,
        pid: std::process::id(),
        tasks: vec!["double".into(), "garble".into(), "oversize".into()],
    };
    let greeting = Frame::new(RequestId(0), Message::Hello(hello));
    writer.send(&greeting, &[]).expect("greet");

    while let Ok(Some(received)) = reader.recv() {
        let id = received.frame.request_id;
        let reply = match received.frame.message {
            Message::Run(run) if run.task == "garble" => raw_frame(16, PROTOCOL_VERSION, 250),
            Message::Run(run) if run.task == "oversize" => raw_frame(3 << 30, PROTOCOL_VERSION, 3),
            Message::Run(run) => {
                let n: u64 = postcard::from_bytes(&run.input).expect("input");
                let done = Done {
                    output: postcard::to_allocvec(&(n * 2)).expect("output"),
                    segments: Vec::new(),
                };
                writer
                    .send(&Frame::new(id, Message::Done(done)), &[])
                    .expect("reply");
                continue;
            }
            _ => {
                let done = Done {
                    output: Vec::new(),
                    segments: Vec::new(),
                };
                let done = Frame::new(id, Message::Done(done));
                writer.send(&done, &[]).expect("reply");
                continue;
            }
        };
        let _ = writer.stream().write_all(&reply);
    }
    std::process::exit(0);
}

/// A worker that speaks another protocol version.
#[test]
fn old_version_worker_entry() {
    let Some(env) = WorkerEnv::from_env().expect("worker environment") else {
        return;
    };
    let mut stream = UnixStream::from(env.as_fd().try_clone_to_owned().expect("dup"));
    let _ = stream.write_all(&raw_frame(16, PROTOCOL_VERSION + 98, 0));
    std::thread::sleep(Duration::from_secs(5));
    std::process::exit(0);
}

/// A frame header announcing `len` bytes, with no payload.
fn raw_frame(len: u32, version: u16, kind: u8) -> Vec<u8> {
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"PZWK");
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&[kind, 0]);
    bytes.extend_from_slice(&1_u64.to_le_bytes());
    bytes
}

/// Options starting this binary as the worker program `entry`; `marker` is an extra filter
/// that matches no test, so that a test can find its own worker processes.
fn options(entry: &str, marker: &str) -> ProcessOptions {
    let program = std::env::current_exe().expect("current exe");
    ProcessOptions::new().program(program).args([
        entry,
        marker,
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
}

fn pool(workers: usize, options: ProcessOptions) -> WorkerPool {
    WorkerPool::builder(handlers())
        .workers(workers)
        .task_timeout(Some(Duration::from_secs(60)))
        .process_workers(options)
        .build()
        .expect("pool")
}

fn crash_cause(result: Result<(), TaskError>) -> String {
    match result {
        Err(TaskError::WorkerCrashed { cause, .. }) => cause,
        other => panic!("expected a crash, got {other:?}"),
    }
}

fn mapped_segments(pid: u32) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines()
        .filter(|line| line.contains("protozoa-segment"))
        .count()
}

fn is_alive(pid: u32) -> bool {
    // A zombie is dead for our purpose: it runs nothing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The worker processes of this process whose command line holds `marker`.
fn worker_pids(marker: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let marked = String::from_utf8_lossy(&cmdline).contains(marker);
        if parent == Some(me.as_str()) && marked && is_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn tasks_run_in_a_worker_process_with_state_and_json() {
    let pool = pool(1, options("worker_entry", "plain"));

    assert_eq!(pool.submit::<Double>(21).unwrap().wait(), Ok(42));
    let pid = pool.submit::<Pid>(()).unwrap().wait().unwrap();
    assert_ne!(pid, std::process::id());
    assert_eq!(pool.submit::<Count>(()).unwrap().wait(), Ok(1));
    assert_eq!(pool.submit::<Count>(()).unwrap().wait(), Ok(2));
    let json = pool.submit_json("double", serde_json::json!(5)).unwrap();
    assert_eq!(json.wait(), Ok(serde_json::json!(10)));

    pool.reset().unwrap().wait().unwrap();
    assert_eq!(pool.submit::<Count>(()).unwrap().wait(), Ok(1));
    pool.close();
    pool.join();
}

#[test]
fn a_batch_runs_in_worker_processes_with_results_in_order() {
    let pool = pool(2, options("worker_entry", "batch"));

    let results = pool.batch::<Double>(0..100).unwrap().wait();

    let expected: Vec<Result<u64, TaskError>> = (0..100).map(|n| Ok(n * 2)).collect();
    assert_eq!(results, expected);
    pool.close();
    pool.join();
}

#[test]
fn a_batch_item_whose_process_crashes_settles_as_crashed_and_the_rest_run_on() {
    let pool = pool(1, options("worker_entry", "batch-crash"));
    let marker = std::env::temp_dir().join(format!("protozoa-batch-crash-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let marker = marker.to_string_lossy().into_owned();

    let results = pool
        .batch::<AbortOnce>(vec![marker.clone(); 3])
        .unwrap()
        .wait();
    let _ = std::fs::remove_file(&marker);

    // The first item killed its process; the others ran in the fresh one.
    assert!(
        matches!(results[0], Err(TaskError::WorkerCrashed { .. })),
        "{results:?}"
    );
    let pids: Vec<u32> = results[1..].iter().map(|r| r.clone().unwrap()).collect();
    assert_eq!(pids[0], pids[1]);
    assert!(is_alive(pids[0]));
    pool.close();
    pool.join();
}

#[test]
fn a_batch_of_large_items_crosses_to_the_worker_process_and_back_intact() {
    let pool = pool(1, options("worker_entry", "batch-large"));
    // Items of 10 KiB share the channel with others; items of 300 KiB go alone. Replies are
    // as large as the requests, so a pool that sent without reading would deadlock here.
    let items: Vec<Vec<u8>> = (0..40_u8)
        .map(|n| {
            let len = if n % 5 == 0 { 300 << 10 } else { 10 << 10 };
            (0..len).map(|i| (i as u8).wrapping_add(n)).collect()
        })
        .collect();

    let results = pool.batch::<Reverse>(items.clone()).unwrap().wait();

    assert_eq!(results.len(), items.len());
    for (result, mut item) in results.into_iter().zip(items) {
        item.reverse();
        assert_eq!(result.unwrap(), item);
    }
    pool.close();
    pool.join();
}

#[test]
fn a_batch_past_its_time_limit_settles_every_item_and_the_pool_goes_on() {
    let pool = WorkerPool::builder(handlers())
        .workers(1)
        .task_timeout(Some(Duration::from_millis(200)))
        .process_workers(options("worker_entry", "batch-timeout"))
        .build()
        .expect("pool");

    let results = pool.batch::<Spin>(vec![(); 3]).unwrap().wait();

    for result in &results {
        assert!(
            matches!(result, Err(TaskError::TimedOut { .. })),
            "{results:?}"
        );
    }
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
    pool.close();
    pool.join();
}

#[test]
fn shared_buffer_reaches_the_worker_as_one_segment_mapped_once() {
    let pool = pool(1, options("worker_entry", "shared"));
    let buffer = SharedBuffer::from(vec![1.0_f32; 1 << 20]);

    // Handed over three times: the worker maps one segment and keeps it.
    for _ in 0..3 {
        let (sum, mapped) = pool
            .submit::<PageSum>(buffer.clone())
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(sum, 1024.0);
        assert_eq!(mapped, 1);
    }

    // A small one travels inline.
    let small = SharedBuffer::from(vec![2.0_f32; 1024]);
    assert_eq!(pool.submit::<PageSum>(small).unwrap().wait(), Ok((2.0, 1)));
}

#[test]
fn abort_settles_its_task_as_crashed_and_the_next_task_runs_on_a_fresh_process() {
    let pool = pool(1, options("worker_entry", "abort"));
    let before = pool.submit::<Pid>(()).unwrap().wait().unwrap();

    let cause = crash_cause(pool.submit::<Abort>(()).unwrap().wait());
    assert!(cause.contains("SIGABRT"), "{cause}");

    let after = pool.submit::<Pid>(()).unwrap().wait().unwrap();
    assert_ne!(before, after);
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
}

#[test]
fn a_task_whose_worker_process_crashes_runs_again_under_the_retry_policy() {
    let pool = pool(1, options("worker_entry", "retry"));
    let marker = std::env::temp_dir().join(format!("protozoa-abort-once-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);

    let handle = pool
        .task::<AbortOnce>(marker.to_string_lossy().into_owned())
        .retries(1)
        .submit()
        .unwrap();
    while !handle.is_settled() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let attempts = handle.attempts();
    let result = handle.wait();
    let _ = std::fs::remove_file(&marker);

    // The second attempt, on a fresh process, succeeded.
    assert_eq!(attempts, 2);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_crash_without_retries_left_settles_as_crashed() {
    let pool = pool(1, options("worker_entry", "no-retry"));
    let marker =
        std::env::temp_dir().join(format!("protozoa-abort-no-retry-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let result = pool
        .submit::<AbortOnce>(marker.to_string_lossy().into_owned())
        .unwrap()
        .wait();
    let _ = std::fs::remove_file(&marker);
    assert!(
        matches!(result, Err(TaskError::WorkerCrashed { .. })),
        "{result:?}"
    );
}

#[test]
fn segfault_settles_its_task_as_crashed_by_sigsegv_and_the_pool_keeps_working() {
    let pool = pool(1, options("worker_entry", "segfault"));

    let cause = crash_cause(pool.submit::<Segfault>(()).unwrap().wait());
    assert!(cause.contains("SIGSEGV"), "{cause}");
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
}

#[test]
fn endless_loop_is_killed_at_its_time_limit_and_replaced() {
    let pool = pool(1, options("worker_entry", "spin"));
    let before = pool.submit::<Pid>(()).unwrap().wait().unwrap();

    let spin = pool.task::<Spin>(()).timeout(Duration::from_millis(300));
    let result = spin.submit().unwrap().wait();
    assert!(
        matches!(result, Err(TaskError::TimedOut { .. })),
        "{result:?}"
    );

    // The next task runs on a new process; the looping one is gone.
    let after = pool.submit::<Pid>(()).unwrap().wait().unwrap();
    assert_ne!(before, after);
    assert!(!is_alive(before));
}

/// Waits (up to 10 s) for a process to be gone; whether it went.
fn ends_soon(pid: u32) -> bool {
    for _ in 0..1_000 {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_process_a_handler_started_is_killed_with_its_worker_at_the_time_limit() {
    let pool = pool(1, options("worker_entry", "sleeper-timeout"));
    let sleeper = pool.submit::<StartSleeper>(()).unwrap().wait().unwrap();
    assert!(is_alive(sleeper));

    let spin = pool.task::<Spin>(()).timeout(Duration::from_millis(300));
    let result = spin.submit().unwrap().wait();
    assert!(
        matches!(result, Err(TaskError::TimedOut { .. })),
        "{result:?}"
    );
    assert!(ends_soon(sleeper), "sleep {sleeper} outlived its worker");
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
}

#[test]
fn a_process_a_handler_started_is_killed_when_its_worker_crashes() {
    let pool = pool(1, options("worker_entry", "sleeper-crash"));
    let sleeper = pool.submit::<StartSleeper>(()).unwrap().wait().unwrap();

    let cause = crash_cause(pool.submit::<Abort>(()).unwrap().wait());
    assert!(cause.contains("SIGABRT"), "{cause}");
    assert!(ends_soon(sleeper), "sleep {sleeper} outlived its worker");
}

#[test]
fn processes_handlers_started_do_not_outlive_a_terminated_pool() {
    let pool = pool(2, options("worker_entry", "sleeper-terminate"));
    let sleepers: Vec<u32> = (0..4)
        .map(|_| pool.submit::<StartSleeper>(()).unwrap())
        .map(|handle| handle.wait().unwrap())
        .collect();
    assert!(sleepers.iter().all(|&pid| is_alive(pid)));

    pool.terminate();
    pool.join();
    for pid in sleepers {
        assert!(ends_soon(pid), "sleep {pid} outlived the pool");
    }
}

#[test]
fn cancelling_a_running_task_kills_its_process() {
    let pool = pool(1, options("worker_entry", "cancel"));
    let before = pool.submit::<Pid>(()).unwrap().wait().unwrap();

    let spin = pool.submit::<Spin>(()).unwrap();
    while pool.status().workers[0].running.is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Running on the worker thread; give the request time to reach the process.
    std::thread::sleep(Duration::from_millis(100));
    assert!(spin.cancel());

    let after = pool.submit::<Pid>(()).unwrap().wait().unwrap();
    assert_ne!(before, after);
    assert!(!is_alive(before));
}

#[test]
fn allocation_past_the_memory_limit_is_a_crash_and_the_pool_keeps_working() {
    let limited = options("worker_entry", "hog").memory_limit(Some(512 << 20));
    let pool = pool(1, limited);

    assert_eq!(pool.submit::<Hog>(16 << 20).unwrap().wait(), Ok(4096));
    let result = pool.submit::<Hog>(2 << 30).unwrap().wait().map(|_| ());
    let cause = crash_cause(result);
    assert!(cause.contains("killed by"), "{cause}");
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
}

#[test]
fn terminate_with_tasks_running_leaves_no_worker_process_alive() {
    let marker = "terminate_marker";
    let pool = pool(2, options("worker_entry", marker));
    let spins: Vec<_> = (0..4).map(|_| pool.submit::<Spin>(()).unwrap()).collect();
    while pool.status().workers.iter().any(|w| w.running.is_empty()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pids = worker_pids(marker);
    assert_eq!(pids.len(), 2, "{pids:?}");

    pool.terminate();
    for spin in spins {
        assert_eq!(spin.wait(), Err(TaskError::Terminated));
    }
    pool.join();
    assert!(pids.iter().all(|&pid| !is_alive(pid)), "{pids:?}");
    assert!(worker_pids(marker).is_empty());
}

#[test]
fn close_lets_queued_tasks_finish_and_the_worker_processes_exit() {
    let marker = "close_marker";
    let pool = pool(2, options("worker_entry", marker));
    let handles: Vec<_> = (0..20).map(|n| pool.submit::<Double>(n).unwrap()).collect();

    pool.close();
    for (n, handle) in (0..20).zip(handles) {
        assert_eq!(handle.wait(), Ok(n * 2));
    }
    pool.join();
    assert!(worker_pids(marker).is_empty());
}

#[test]
fn garbled_frame_from_a_worker_settles_its_task_and_the_worker_is_replaced() {
    let pool = pool(1, options("misbehaving_worker_entry", "garble"));

    let cause = crash_cause(pool.submit::<Garble>(()).unwrap().wait());
    assert!(cause.contains("does not decode"), "{cause}");
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
}

#[test]
fn oversized_frame_from_a_worker_settles_its_task_and_the_worker_is_replaced() {
    let small = options("misbehaving_worker_entry", "oversize").max_frame_len(1 << 20);
    let pool = pool(1, small);

    let cause = crash_cause(pool.submit::<Oversize>(()).unwrap().wait());
    assert!(cause.contains("exceeds the limit"), "{cause}");
    assert_eq!(pool.submit::<Double>(4).unwrap().wait(), Ok(8));
}

#[test]
fn version_mismatch_makes_the_worker_unavailable_with_the_cause() {
    let old = options("old_version_worker_entry", "version").max_restarts(2);
    let pool = pool(1, old);

    match pool.submit::<Double>(4).unwrap().wait() {
        Err(TaskError::WorkerUnavailable { error, .. }) => {
            assert!(error.message().contains("version"), "{}", error.message());
        }
        other => panic!("expected an unavailable worker, got {other:?}"),
    }
}

#[test]
fn worker_that_keeps_crashing_gives_up_after_max_restarts() {
    let pool = pool(1, options("worker_entry", "give_up").max_restarts(2));

    crash_cause(pool.submit::<Abort>(()).unwrap().wait());
    crash_cause(pool.submit::<Abort>(()).unwrap().wait());
    match pool.submit::<Double>(4).unwrap().wait() {
        Err(TaskError::WorkerUnavailable { error, .. }) => {
            assert!(
                error.message().contains("2 times in a row"),
                "{}",
                error.message()
            );
        }
        other => panic!("expected an unavailable worker, got {other:?}"),
    }
}
