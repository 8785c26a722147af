//! Batches: one submission, one handle, every result in submission order.

mod common;

use common::*;
use protozoa_workers::{SubmitErrorReason, TaskError, WorkerPool};

#[test]
fn a_batch_of_ten_thousand_gathers_every_result_in_submission_order() {
    let pool = WorkerPool::builder(handlers()).workers(4).build().unwrap();
    let batch = pool.batch::<Double>(0..10_000).unwrap();
    assert_eq!(batch.len(), 10_000);
    let results = batch.wait();
    let expected: Vec<Result<u64, TaskError>> = (0..10_000).map(|n| Ok(n * 2)).collect();
    assert_eq!(results, expected);
}

#[test]
fn a_batch_can_be_awaited() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let results = runtime.block_on(pool.batch::<Double>(vec![1, 2, 3]).unwrap());
    assert_eq!(results, [Ok(2), Ok(4), Ok(6)]);
}

#[test]
fn errors_in_a_batch_are_reported_per_item() {
    let pool = WorkerPool::builder(handlers()).workers(2).build().unwrap();
    let results = pool.batch::<Double>([1, u64::MAX, 3]).unwrap().wait();
    assert_eq!(results[0], Ok(2));
    assert!(matches!(results[1], Err(TaskError::Failed { .. })));
    assert_eq!(results[2], Ok(6));
}

#[test]
fn a_batch_larger_than_the_room_left_is_refused_whole() {
    let probe = Probe::default();
    let pool = WorkerPool::builder(probe.handlers())
        .workers(1)
        .max_queue_size(Some(3))
        .build()
        .unwrap();
    let error = pool.batch::<Record>(0..4).unwrap_err();
    assert_eq!(error.reason(), &SubmitErrorReason::QueueFull { limit: 3 });
    assert_eq!(error.into_input(), [0, 1, 2, 3]);
}

#[test]
fn a_panicking_item_fails_itself_and_the_rest_of_its_chunk_but_not_other_chunks() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let results = pool
        .batch::<Panic>(["boom".to_owned(), "never".to_owned()])
        .unwrap()
        .wait();
    assert!(matches!(&results[0], Err(TaskError::Panicked { message, .. }) if message == "boom"));
    assert!(
        matches!(&results[1], Err(TaskError::Panicked { message, .. }) if message.contains("not run"))
    );

    // The worker was rebuilt and runs the next batch.
    assert_eq!(pool.batch::<Double>([4]).unwrap().wait(), [Ok(8)]);
}

#[test]
fn an_empty_batch_resolves_to_no_results() {
    let pool = WorkerPool::builder(handlers()).workers(1).build().unwrap();
    let batch = pool.batch::<Double>([]).unwrap();
    assert!(batch.is_empty());
    assert!(batch.wait().is_empty());
}
