//! `fetchBlock` and `fetchConfirmations` against a real HTTP server on a loopback port,
//! started by each test: good records, errors, tampered records and slow answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use protozoa_sim::fetch::{fetch_block, FetchError, FetchRequest};
use protozoa_sim::tasks::{FetchBlock, FetchConfirmations};
use protozoa_workers::{TaskError, WorkerPool};
use tiny_http::{Response, Server};

const GENESIS: &str = r#"{"height": 0,
 "hash": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
 "nonce": 2083236893, "confirmations": 878977, "time": 1231006505,
 "merkleroot": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
 "difficulty": 1, "size": 285, "weight": 1140, "version": 1,
 "previousblockhash": "0000000000000000000000000000000000000000000000000000000000000000",
 "bits": "1d00ffff"}"#;

/// What the test server does with a request: its status, body and delay, given how many
/// requests came before it.
type Behaviour = dyn Fn(&str, usize) -> (u16, String, Duration) + Send + Sync;

/// Starts a server on a free loopback port; returns its base URL and its request counter.
fn serve(behaviour: Arc<Behaviour>) -> (String, Arc<AtomicUsize>) {
    let server = Server::http("127.0.0.1:0").expect("a loopback port is free");
    let port = server.server_addr().to_ip().expect("an IP address").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    thread::spawn(move || {
        for request in server.incoming_requests() {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let behaviour = Arc::clone(&behaviour);
            thread::spawn(move || {
                let (status, body, delay) = behaviour(request.url(), n);
                thread::sleep(delay);
                let _ = request.respond(Response::from_string(body).with_status_code(status));
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), count)
}

fn quick(base: &str, height: u64) -> FetchRequest {
    FetchRequest {
        retry_delay: Duration::from_millis(20),
        time_limit: Duration::from_millis(300),
        ..FetchRequest::new(base, height)
    }
}

fn genesis_server() -> (String, Arc<AtomicUsize>) {
    serve(Arc::new(|url: &str, _| match url {
        "/r/blockinfo/0" => (200, GENESIS.to_owned(), Duration::ZERO),
        _ => (404, "not found".to_owned(), Duration::ZERO),
    }))
}

#[test]
fn good_record_is_fetched_and_checked() {
    let (base, _) = genesis_server();
    let block = futures_lite::future::block_on(fetch_block(&quick(&base, 0))).expect("fetched");
    assert_eq!(block.nonce, 2_083_236_893);
    assert_eq!(block.confirmations, Some(878_977));
}

#[test]
fn missing_block_is_not_found_without_retries() {
    let (base, count) = genesis_server();
    let error = futures_lite::future::block_on(fetch_block(&quick(&base, 7))).expect_err("404");
    assert_eq!(error, FetchError::NotFound(7));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn server_errors_are_retried_until_the_record_comes() {
    let (base, count) = serve(Arc::new(|_: &str, n| match n {
        0 | 1 => (503, "busy".to_owned(), Duration::ZERO),
        _ => (200, GENESIS.to_owned(), Duration::ZERO),
    }));
    let block = futures_lite::future::block_on(fetch_block(&quick(&base, 0))).expect("third try");
    assert_eq!(block.height, 0);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn slow_answers_time_out_after_every_retry() {
    let (base, count) = serve(Arc::new(|_: &str, _| {
        (200, GENESIS.to_owned(), Duration::from_secs(2))
    }));
    let error = futures_lite::future::block_on(fetch_block(&quick(&base, 0))).expect_err("slow");
    match error {
        FetchError::GaveUp { attempts, last } => {
            assert_eq!(attempts, 4, "one try and three retries");
            assert!(matches!(*last, FetchError::TimedOut(_)));
        }
        other => panic!("expected a time-out after retries, got {other}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[test]
fn tampered_record_is_refused_naming_the_check() {
    let tampered = GENESIS.replace("2083236893", "2083236894");
    let (base, count) = serve(Arc::new(move |_: &str, _| {
        (200, tampered.clone(), Duration::ZERO)
    }));
    let error = futures_lite::future::block_on(fetch_block(&quick(&base, 0))).expect_err("bad");
    assert!(error.to_string().contains("hash check failed"), "{error}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "a bad record is not fetched again"
    );
}

#[test]
fn record_of_another_height_is_refused() {
    let (base, _) = serve(Arc::new(|_: &str, _| {
        (200, GENESIS.to_owned(), Duration::ZERO)
    }));
    let error = futures_lite::future::block_on(fetch_block(&quick(&base, 5))).expect_err("height");
    assert_eq!(error, FetchError::WrongHeight { asked: 5, got: 0 });
}

#[test]
fn unreachable_api_fails_after_retries() {
    // Bind a port, then free it: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let request = quick(&format!("http://127.0.0.1:{port}"), 0);
    let error = futures_lite::future::block_on(fetch_block(&request)).expect_err("refused");
    assert!(
        matches!(error, FetchError::GaveUp { attempts: 4, .. }),
        "{error}"
    );
}

#[test]
fn fetch_handlers_run_on_the_pool() {
    let (base, _) = genesis_server();
    let pool = WorkerPool::builder(protozoa_sim::handlers())
        .workers(1)
        .build()
        .expect("pool");

    let block = pool
        .submit::<FetchBlock>(quick(&base, 0))
        .expect("submitted");
    let confirmations = pool
        .submit::<FetchConfirmations>(quick(&base, 0))
        .expect("submitted");
    assert_eq!(block.wait().expect("fetched").height, 0);
    assert_eq!(confirmations.wait().expect("fetched"), 878_977);

    let missing = pool
        .submit::<FetchBlock>(quick(&base, 9))
        .expect("submitted")
        .wait();
    match missing {
        Err(TaskError::Failed { error, .. }) => assert!(error.message().contains("height 9")),
        other => panic!("expected a failed fetch, got {other:?}"),
    }
}
