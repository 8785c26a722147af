//! Dependencies: a task starts only after the tasks it names succeed, and
//! settles with an error naming the first one that did not.

mod common;

use common::*;
use protozoa_workers::{SubmitErrorReason, TaskError, TaskId, WorkerPool};

fn pool(probe: &Probe) -> WorkerPool {
    WorkerPool::builder(probe.handlers())
        .workers(2)
        .build()
        .unwrap()
}

#[test]
fn a_three_level_chain_whose_root_fails_settles_every_level_naming_its_dependency() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let root = pool.submit::<Fail>("no fuel".into()).unwrap();
    let middle = pool.task::<Record>(2).after(&root).submit().unwrap();
    let leaf = pool.task::<Record>(3).after(&middle).submit().unwrap();
    let (root_id, middle_id) = (root.id(), middle.id());

    assert!(matches!(root.wait(), Err(TaskError::Failed { .. })));
    match middle.wait().unwrap_err() {
        TaskError::DependencyFailed { dependency, cause } => {
            assert_eq!(dependency, root_id);
            assert!(
                matches!(*cause, TaskError::Failed { ref error, .. } if error.message() == "no fuel")
            );
        }
        other => panic!("expected a failed dependency, got {other:?}"),
    }
    match leaf.wait().unwrap_err() {
        TaskError::DependencyFailed { dependency, cause } => {
            assert_eq!(dependency, middle_id);
            assert!(
                matches!(*cause, TaskError::DependencyFailed { dependency, .. } if dependency == root_id)
            );
        }
        other => panic!("expected a failed dependency, got {other:?}"),
    }
    assert!(probe.order().is_empty(), "no dependent ran");
}

#[test]
fn a_dependent_starts_only_after_its_dependency_succeeded() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let held = pool.submit::<Hold>(()).unwrap();
    probe.until_holding(1);
    let dependent = pool.task::<Record>(1).after(&held).submit().unwrap();
    let free = pool.submit::<Record>(2).unwrap();
    assert_eq!(free.wait(), Ok(2));
    assert_eq!(probe.order(), [2], "the dependent waited for the held task");
    probe.latch.open();
    assert_eq!(dependent.wait(), Ok(1));
    assert_eq!(probe.order(), [2, 1]);
}

#[test]
fn a_continuation_receives_its_dependency_result() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let first = pool.submit::<Double>(20).unwrap();
    let second = pool.then::<Record, _>(first, |forty| forty + 2).unwrap();
    assert_eq!(second.wait(), Ok(42));
}

#[test]
fn a_continuation_of_many_receives_their_results_in_order() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let parts: Vec<_> = (1..=4).map(|n| pool.submit::<Double>(n).unwrap()).collect();
    let sum = pool
        .then_all::<Record, _>(parts, |doubled| {
            assert_eq!(doubled, [2, 4, 6, 8]);
            Some(doubled.iter().sum())
        })
        .unwrap();
    assert_eq!(sum.wait(), Ok(20));
}

#[test]
fn dependencies_named_by_id_wait_for_dependable_tasks() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let held = pool.task::<Hold>(()).dependable().submit().unwrap();
    probe.until_holding(1);
    let dependent = pool
        .task::<Record>(9)
        .after_ids(&[held.id()])
        .submit()
        .unwrap();
    probe.latch.open();
    assert_eq!(dependent.wait(), Ok(9));
}

#[test]
fn a_dependency_on_an_unknown_id_is_refused_with_the_input_back() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let stranger = TaskId::new();
    let error = pool
        .task::<Record>(5)
        .after_ids(&[stranger])
        .submit()
        .unwrap_err();
    assert_eq!(
        error.reason(),
        &SubmitErrorReason::UnknownDependency { id: stranger }
    );
    assert_eq!(error.into_input(), 5);

    // A task that was not submitted as dependable is not known by id either.
    let plain = pool.submit::<Record>(1).unwrap();
    let error = pool
        .task::<Record>(6)
        .after_ids(&[plain.id()])
        .submit()
        .unwrap_err();
    assert!(matches!(
        error.reason(),
        SubmitErrorReason::UnknownDependency { .. }
    ));
}

#[test]
fn a_dependency_cycle_is_refused() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let id = TaskId::new();
    let error = pool
        .task::<Record>(1)
        .id(id)
        .after_ids(&[id])
        .submit()
        .unwrap_err();
    assert_eq!(error.reason(), &SubmitErrorReason::DependencyCycle { id });
}

#[test]
fn a_duplicate_id_among_dependable_tasks_is_refused() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let held = pool.task::<Hold>(()).dependable().submit().unwrap();
    let error = pool
        .task::<Record>(1)
        .id(held.id())
        .dependable()
        .submit()
        .unwrap_err();
    assert_eq!(
        error.reason(),
        &SubmitErrorReason::DuplicateId { id: held.id() }
    );
    probe.latch.open();
}

#[test]
fn terminate_settles_tasks_waiting_for_dependencies() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let held = pool.submit::<Hold>(()).unwrap();
    probe.until_holding(1);
    let waiting = pool.task::<Record>(1).after(&held).submit().unwrap();
    let continuation = pool.then::<Record, _>(waiting, |n| n).unwrap();
    pool.terminate();
    assert_eq!(continuation.wait(), Err(TaskError::Terminated));
    probe.latch.open();
    assert_eq!(held.wait(), Err(TaskError::Terminated));
}

#[test]
fn a_cancelled_dependency_fails_its_dependent() {
    let probe = Probe::default();
    let pool = pool(&probe);
    let held = pool.submit::<Hold>(()).unwrap();
    probe.until_holding(1);
    let queued = pool.submit::<Hold>(()).unwrap();
    let other = pool.submit::<Hold>(()).unwrap();
    let dependent = pool.task::<Record>(1).after(&other).submit().unwrap();
    assert!(other.cancel());
    match dependent.wait().unwrap_err() {
        TaskError::DependencyFailed { cause, .. } => assert_eq!(*cause, TaskError::Cancelled),
        error => panic!("expected a failed dependency, got {error:?}"),
    }
    probe.latch.open();
    held.wait().unwrap();
    queued.wait().unwrap();
}
