//! Task types and handlers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use protozoa_workers::{HandlerError, Handlers, Task, TaskContext};

pub struct Double;
impl Task for Double {
    const NAME: &'static str = "double";
    type Input = u64;
    type Output = u64;
}

pub struct Fail;
impl Task for Fail {
    const NAME: &'static str = "fail";
    type Input = String;
    type Output = ();
}

pub struct Panic;
impl Task for Panic {
    const NAME: &'static str = "panic";
    type Input = String;
    type Output = ();
}

/// Sleeps for the given milliseconds, checking its token; returns whether it
/// saw a cancellation.
pub struct Sleep;
impl Task for Sleep {
    const NAME: &'static str = "sleep";
    type Input = u64;
    type Output = bool;
}

/// Returns how many tasks this worker's state has counted (its own included).
pub struct Count;
impl Task for Count {
    const NAME: &'static str = "count";
    type Input = ();
    type Output = u64;
}

/// An async task that completes after the given milliseconds, measured by a
/// timer thread (no runtime needed).
pub struct AsyncDelay;
impl Task for AsyncDelay {
    const NAME: &'static str = "asyncDelay";
    type Input = u64;
    type Output = u64;
}

pub fn sleep_checking(millis: u64, task: &TaskContext<'_>) -> bool {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until {
        if task.is_cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// A future that becomes ready once `millis` have passed, woken by a thread.
pub async fn delay(millis: u64) {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    struct Delay {
        shared: Arc<Mutex<(bool, Option<Waker>)>>,
    }
    impl Future for Delay {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut shared = self.shared.lock().unwrap();
            if shared.0 {
                Poll::Ready(())
            } else {
                shared.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
    let shared = Arc::new(Mutex::new((false, None::<Waker>)));
    let timer = Arc::clone(&shared);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(millis));
        let mut state = timer.lock().unwrap();
        state.0 = true;
        if let Some(waker) = state.1.take() {
            waker.wake();
        }
    });
    Delay { shared }.await
}

/// Handlers for all the task types above; the state counts tasks run.
pub fn handlers() -> Handlers<u64> {
    Handlers::new(|_worker| Ok(0_u64))
        .handler::<Double>(|count, n, _| {
            *count += 1;
            n.checked_mul(2)
                .ok_or_else(|| HandlerError::new("overflow"))
        })
        .handler::<Fail>(|_, message, _| Err(HandlerError::new(message)))
        .handler::<Panic>(|_, message, _| panic!("{message}"))
        .handler::<Sleep>(|_, millis, task| Ok(sleep_checking(millis, task)))
        .handler::<Count>(|count, (), _| {
            *count += 1;
            Ok(*count)
        })
        .async_handler::<AsyncDelay, _>(|_, millis, _| async move {
            delay(millis).await;
            Ok(millis)
        })
}
