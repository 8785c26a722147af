//! Task types and handlers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use protozoa_workers::{task, HandlerError, Handlers, TaskContext};

task! {
    pub struct Double: u64 => u64 = "double";

    pub struct Fail: String => () = "fail";

    pub struct Panic: String => () = "panic";

    /// Sleeps for the given milliseconds, checking its token; returns whether it
    /// saw a cancellation.
    pub struct Sleep: u64 => bool = "sleep";

    /// Returns how many tasks this worker's state has counted (its own included).
    pub struct Count: () => u64 = "count";

    /// An async task that completes after the given milliseconds, measured by a
    /// timer thread (no runtime needed).
    pub struct AsyncDelay: u64 => u64 = "asyncDelay";
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

/// A gate that tasks wait on until the test opens it.
#[derive(Clone, Default)]
pub struct Latch(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Latch {
    pub fn wait(&self) {
        let (open, opened) = &*self.0;
        let mut guard = open.lock().unwrap();
        while !*guard {
            guard = opened.wait(guard).unwrap();
        }
    }

    pub fn open(&self) {
        let (open, opened) = &*self.0;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
}

task! {
    /// Waits on the test's latch, counting how many tasks hold a worker.
    pub struct Hold: () => () = "hold";

    /// Records its input in the order tasks ran.
    pub struct Record: u64 => u64 = "record";
}

/// What the scheduling tests share: the latch, the holders and the record.
#[derive(Clone, Default)]
pub struct Probe {
    pub latch: Latch,
    pub holding: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub order: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl Probe {
    /// Handlers for `Hold`, `Record`, and the common task types' `Double` and `Fail`.
    pub fn handlers(&self) -> Handlers<()> {
        let (latch, holding, order) =
            (self.latch.clone(), self.holding.clone(), self.order.clone());
        Handlers::stateless()
            .handler::<Hold>(move |_, (), _| {
                holding.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                latch.wait();
                Ok(())
            })
            .handler::<Record>(move |_, n, _| {
                order.lock().unwrap().push(n);
                Ok(n)
            })
            .handler::<Double>(|_, n, _| Ok(n * 2))
            .handler::<Fail>(|_, message, _| Err(HandlerError::new(message)))
    }

    /// Waits until `count` `Hold` tasks are running.
    pub fn until_holding(&self, count: usize) {
        while self.holding.load(std::sync::atomic::Ordering::SeqCst) < count {
            std::thread::yield_now();
        }
    }

    pub fn order(&self) -> Vec<u64> {
        self.order.lock().unwrap().clone()
    }
}
