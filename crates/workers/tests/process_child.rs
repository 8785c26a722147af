//! Worker processes really started: how they died is reported by exit code or signal name,
//! the memory limit holds, and no child outlives its parent.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protozoa_workers::process::child::{ExitCause, WorkerCommand, CHANNEL_FD_ENV};

/// Set in the environment of this test binary when it is started as a helper process.
const ROLE_ENV: &str = "PROTOZOA_PROCESS_CHILD_TEST_ROLE";

fn sh(script: &str) -> WorkerCommand {
    WorkerCommand::new("/bin/sh").args(["-c", script])
}

fn run_to_end(command: WorkerCommand) -> ExitCause {
    let mut process = command.spawn().expect("spawn");
    process.wait().expect("wait")
}

#[test]
fn exit_code_is_reported() {
    let cause = run_to_end(sh("exit 3"));
    assert_eq!(cause, ExitCause::Exited { code: 3 });
    assert_eq!(cause.to_string(), "exited with code 3");
}

#[test]
fn segfault_is_reported_as_sigsegv() {
    let cause = run_to_end(sh("kill -SEGV $$"));
    assert_eq!(cause.signal_name(), Some("SIGSEGV"));
}

#[test]
fn abort_is_reported_as_sigabrt() {
    let cause = run_to_end(sh("kill -ABRT $$"));
    assert_eq!(cause.signal_name(), Some("SIGABRT"));
}

#[test]
fn killed_worker_is_reaped_and_reported_as_sigkill() {
    let mut process = sh("exec sleep 600").spawn().expect("spawn");
    let pid = process.pid();

    let cause = process.kill().expect("kill");
    assert_eq!(cause.signal_name(), Some("SIGKILL"));
    assert!(
        !is_alive(pid),
        "process {pid} still exists after being reaped"
    );
}

#[test]
fn dropping_a_worker_kills_it() {
    let process = sh("exec sleep 600").spawn().expect("spawn");
    let pid = process.pid();

    drop(process);
    assert!(!is_alive(pid));
}

#[test]
fn child_sees_only_its_own_channel_descriptor() {
    // The named descriptor is a socket open in the child; it is the only socket passed.
    let script = format!(
        "test -S /proc/self/fd/${CHANNEL_FD_ENV} || exit 10; \
         n=$(ls -l /proc/self/fd | grep -c socket:); test \"$n\" -eq 1 || exit 11"
    );
    let _sibling = sh("exec sleep 600").spawn().expect("spawn a sibling first");
    assert_eq!(run_to_end(sh(&script)), ExitCause::Exited { code: 0 });
}

#[test]
fn allocation_past_the_memory_limit_kills_the_worker() {
    let command = WorkerCommand::current_exe()
        .expect("current exe")
        .args([
            "helper_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .memory_limit(Some(512 << 20));
    let mut process = spawn_with_role(command, "allocate");

    // Rust aborts on allocation failure.
    let cause = process.wait().expect("wait");
    assert_eq!(cause.signal_name(), Some("SIGABRT"), "{cause}");
}

#[test]
fn worker_dies_when_its_parent_dies() {
    // An intermediate process (this binary) starts a worker, prints its pid, then waits.
    let mut intermediate = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "helper_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, "parent")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn intermediate");
    let grandchild = read_pid(intermediate.stdout.take().expect("stdout"));
    assert!(is_alive(grandchild), "worker {grandchild} did not start");

    // Kill the intermediate; its worker must follow.
    intermediate.kill().expect("kill intermediate");
    intermediate.wait().expect("reap intermediate");
    assert!(
        eventually_dead(grandchild, Duration::from_secs(20)),
        "worker {grandchild} outlived its parent"
    );
}

/// Not a test of its own: the body of the helper processes the tests above start from this
/// binary. Run as an ordinary test (no role in the environment), it does nothing.
#[test]
fn helper_process() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("allocate") => {
            let big: Vec<u8> = vec![1; 1 << 30];
            std::process::exit(i32::from(big[big.len() - 1]));
        }
        Ok("parent") => {
            let worker = sh("exec sleep 600").spawn().expect("spawn worker");
            println!("pid {}", worker.pid());
            std::thread::sleep(Duration::from_secs(600));
        }
        _ => {}
    }
}

fn spawn_with_role(
    command: WorkerCommand,
    role: &str,
) -> protozoa_workers::process::child::WorkerProcess {
    // No backtrace: the allocation failure is expected, its report is noise.
    command
        .env(ROLE_ENV, role)
        .env("RUST_BACKTRACE", "0")
        .spawn()
        .expect("spawn")
}

fn read_pid(stdout: impl Read) -> u32 {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("intermediate printed its worker's pid")
            .expect("read");
        // libtest may print its own text before ours on the same line.
        if let Some((_, pid)) = line.split_once("pid ") {
            return pid.trim().parse().expect("a pid");
        }
    }
}

/// Whether `pid` names a process that has not ended (a zombie has ended).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn eventually_dead(pid: u32, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
