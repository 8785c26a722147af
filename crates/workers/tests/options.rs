//! Options that the pool cannot work with are refused when it is built, with
//! an error that names the option.

mod common;

use std::time::Duration;

use common::*;
use protozoa_workers::{BuildError, Handlers, WorkerPool, MAX_WORKERS};

fn refused_option(result: Result<WorkerPool, BuildError>) -> (&'static str, String) {
    match result {
        Err(BuildError::InvalidOption { option, reason }) => (option, reason),
        other => panic!("expected an invalid option, got {other:?}"),
    }
}

#[test]
fn a_pool_without_workers_is_refused() {
    let (option, reason) = refused_option(WorkerPool::builder(handlers()).workers(0).build());
    assert_eq!(option, "workers");
    assert!(reason.contains("at least one"));
}

#[test]
fn an_absurd_number_of_workers_is_refused() {
    let result = WorkerPool::builder(handlers())
        .workers(MAX_WORKERS + 1)
        .build();
    assert_eq!(refused_option(result).0, "workers");
}

#[test]
fn a_zero_time_limit_is_refused() {
    let result = WorkerPool::builder(handlers())
        .task_timeout(Some(Duration::ZERO))
        .build();
    let (option, reason) = refused_option(result);
    assert_eq!(option, "task_timeout");
    assert!(reason.contains("zero"));
}

#[test]
fn zero_concurrent_tasks_is_refused() {
    let result = WorkerPool::builder(handlers())
        .max_concurrent_tasks(0)
        .build();
    assert_eq!(refused_option(result).0, "max_concurrent_tasks");
}

#[test]
fn two_handlers_for_one_task_type_are_refused() {
    let handlers = Handlers::stateless()
        .handler::<Double>(|_, n, _| Ok(n))
        .handler::<Double>(|_, n, _| Ok(n + 1));
    match WorkerPool::builder(handlers).build() {
        Err(BuildError::DuplicateHandler { name }) => assert_eq!(name, "double"),
        other => panic!("expected a duplicate handler error, got {other:?}"),
    }
}

#[test]
fn a_handler_named_like_a_protocol_message_is_refused() {
    struct Reset;
    impl protozoa_workers::Task for Reset {
        const NAME: &'static str = "reset";
        type Input = ();
        type Output = ();
    }
    let handlers = Handlers::stateless().handler::<Reset>(|_, (), _| Ok(()));
    match WorkerPool::builder(handlers).build() {
        Err(BuildError::ReservedName { name }) => assert_eq!(name, "reset"),
        other => panic!("expected a reserved name error, got {other:?}"),
    }
}

#[test]
fn the_default_worker_count_is_the_machines_parallelism() {
    let pool = WorkerPool::builder(handlers()).build().unwrap();
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    assert_eq!(pool.workers(), cores);
}

#[test]
fn log_levels_parse_from_their_names() {
    use protozoa_workers::LogLevel;
    assert_eq!("warn".parse::<LogLevel>().unwrap(), LogLevel::Warn);
    assert_eq!("NONE".parse::<LogLevel>().unwrap(), LogLevel::None);
    assert!("loud".parse::<LogLevel>().unwrap_err().contains("loud"));
}

#[test]
fn a_zero_time_limit_on_one_task_is_refused_and_its_input_handed_back() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let refused = pool
        .task::<Double>(3)
        .timeout(Duration::ZERO)
        .submit()
        .unwrap_err();
    assert!(refused.to_string().contains("timeout"), "{refused}");
    assert_eq!(refused.into_input(), 3);
}
