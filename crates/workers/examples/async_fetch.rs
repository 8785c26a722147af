//! Async handlers: eight slow "block fetches" run at once on one worker thread.
//!
//! A fetch waits on a timer (a thread that sleeps, then wakes the future's waker), standing in
//! for a network read: no runtime and no network are involved. With `max_concurrent_tasks(8)`
//! the one worker keeps all eight futures in flight, so they take about one delay in total,
//! not eight. A ninth fetch with a time limit shorter than its delay settles as timed out,
//! and its future is dropped.
//!
//! Run with `cargo run --release -p protozoa-workers --example async_fetch`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use protozoa_workers::{Handlers, Task, WorkerPool};
use serde::{Deserialize, Serialize};

/// How long one simulated fetch takes.
const FETCH_DELAY: Duration = Duration::from_millis(300);

/// Fetches a block's header by height (simulated).
struct FetchBlock;

#[derive(Debug, Serialize, Deserialize)]
struct BlockHeader {
    height: u64,
    nonce: u32,
    /// The worker that ran the fetch.
    worker: usize,
}

impl Task for FetchBlock {
    const NAME: &'static str = "fetchBlock";
    type Input = u64;
    type Output = BlockHeader;
}

/// A future that becomes ready once its timer thread has slept for the delay.
struct Delay {
    state: Arc<Mutex<DelayState>>,
}

#[derive(Default)]
struct DelayState {
    done: bool,
    waker: Option<Waker>,
}

impl Delay {
    fn new(delay: Duration) -> Self {
        let state = Arc::new(Mutex::new(DelayState::default()));
        let timer = Arc::clone(&state);
        thread::spawn(move || {
            thread::sleep(delay);

            // Mark the delay done, then wake whoever polled it last.
            let waker = {
                let mut state = timer.lock().unwrap_or_else(PoisonError::into_inner);
                state.done = true;
                state.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        Delay { state }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.done {
            return Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The handler builds its future from the input; the future must not borrow the task
    // context, so it copies what it needs first.
    let handlers = Handlers::stateless().async_handler::<FetchBlock, _>(|_state, height, task| {
        let worker = task.worker();
        async move {
            Delay::new(FETCH_DELAY).await;
            let nonce = (height as u32).wrapping_mul(2_654_435_761);
            Ok(BlockHeader {
                height,
                nonce,
                worker,
            })
        }
    });
    let pool = WorkerPool::builder(handlers)
        .workers(1)
        .max_concurrent_tasks(8)
        .build()?;

    // Eight fetches at once on the one worker.
    let started = Instant::now();
    let handles = (840_000..840_008)
        .map(|height| pool.submit::<FetchBlock>(height))
        .collect::<Result<Vec<_>, _>>()?;
    thread::sleep(FETCH_DELAY / 3);
    let status = pool.status();
    println!(
        "while fetching: worker 0 runs {} tasks, {} queued",
        status.workers[0].running.len(),
        status.queued
    );
    for handle in handles {
        let header = handle.wait()?;
        println!(
            "block {} nonce {:#010x} (worker {})",
            header.height, header.nonce, header.worker
        );
    }
    println!(
        "8 fetches of {FETCH_DELAY:?} each took {:?} on one worker thread",
        started.elapsed()
    );

    // A fetch past its time limit settles as timed out; its future is dropped.
    let slow = pool
        .task::<FetchBlock>(1)
        .timeout(Duration::from_millis(50))
        .submit()?;
    match slow.wait() {
        Err(error) => println!("with a 50 ms limit: {error}"),
        Ok(header) => println!("unexpected: {header:?}"),
    }

    pool.close();
    pool.join();
    Ok(())
}
