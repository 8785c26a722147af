//! Submitting tasks and getting their results, typed and by name.

mod common;

use common::*;
use protozoa_workers::{SubmitErrorReason, TaskError, WorkerPool};
use serde_json::json;

#[test]
fn a_typed_task_returns_its_value() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let handle = pool.submit::<Double>(21).unwrap();
    assert_eq!(handle.wait().unwrap(), 42);
}

#[test]
fn a_handle_is_a_future_under_any_executor() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let value = runtime.block_on(async { pool.submit::<Double>(5).unwrap().await });
    assert_eq!(value.unwrap(), 10);
}

#[test]
fn a_handle_carries_a_random_id_and_its_times() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let first = pool.submit::<Sleep>(20).unwrap();
    let second = pool.submit::<Double>(1).unwrap();
    assert_ne!(first.id(), second.id());
    assert_eq!(first.id().as_uuid().get_version_num(), 4);
    let created = second.created();
    let second = match second.wait_timeout(std::time::Duration::from_secs(5)) {
        Ok(result) => result,
        Err(_) => panic!("task did not settle"),
    };
    assert_eq!(second.unwrap(), 2);
    let handle = pool.submit::<Double>(3).unwrap();
    let created_at = handle.created();
    while !handle.is_settled() {
        std::thread::yield_now();
    }
    let started = handle.started().expect("started");
    let completed = handle.completed().expect("completed");
    assert!(created_at <= started && started <= completed);
    assert!(created <= created_at);
}

#[test]
fn the_string_keyed_form_reaches_the_same_handler() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let value = pool
        .submit_json("double", json!(8))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(value, json!(16));
}

#[test]
fn json_data_of_the_wrong_shape_fails_as_invalid_input() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let error = pool
        .submit_json("double", json!("eight"))
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(
        matches!(error, TaskError::InvalidInput { ref task, .. } if task == "double"),
        "{error}"
    );
}

#[test]
fn an_unknown_task_type_is_refused_by_name_and_the_data_handed_back() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let refused = pool
        .submit_json("calculateForces", json!({"n": 1}))
        .unwrap_err();
    assert_eq!(
        refused.reason(),
        &SubmitErrorReason::UnknownTaskType {
            name: "calculateForces".to_owned()
        }
    );
    assert!(refused.to_string().contains("calculateForces"));
    assert_eq!(refused.into_input(), json!({"n": 1}));
}

#[test]
fn a_task_type_without_a_handler_is_refused_by_name() {
    struct Unregistered;
    impl protozoa_workers::Task for Unregistered {
        const NAME: &'static str = "unregistered";
        type Input = u8;
        type Output = u8;
    }
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let refused = pool.submit::<Unregistered>(7).unwrap_err();
    assert!(refused.to_string().contains("unregistered"));
    assert_eq!(refused.into_input(), 7);
}

#[test]
fn a_handler_error_reaches_the_caller_with_its_message() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let error = pool
        .submit::<Fail>("no block 42".into())
        .unwrap()
        .wait()
        .unwrap_err();
    match error {
        TaskError::Failed { task, error } => {
            assert_eq!(task, "fail");
            assert_eq!(error.message(), "no block 42");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn the_pool_handle_is_cheap_to_clone_and_shared_by_many_clients() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.submit::<Double>(client).unwrap().wait().unwrap())
        })
        .collect();
    let mut results: Vec<u64> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    results.sort_unstable();
    assert_eq!(results, vec![0, 2, 4, 6]);
}

#[test]
fn async_handlers_overlap_on_one_worker() {
    let pool = WorkerPool::builder(handlers())
        .workers(1)
        .max_concurrent_tasks(8)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| pool.submit::<AsyncDelay>(300).unwrap())
        .collect();

    // Watch the one worker: run one after another, it would never hold more
    // than one task at a time.
    let mut most_at_once = 0;
    while !handles.iter().all(|handle| handle.is_settled()) {
        let running = pool.status().workers[0].running.len();
        most_at_once = most_at_once.max(running);
        std::thread::yield_now();
    }
    assert_eq!(most_at_once, 8);
    for handle in handles {
        assert_eq!(handle.wait().unwrap(), 300);
    }
}
