//! Block records from an HTTP JSON API (`{base}/r/blockinfo/{height}`), behind the
//! `fetchBlock` and `fetchConfirmations` handlers.
//!
//! A request is a plain HTTP/1.1 `GET` over `async-net`, whose reactor runs on its own thread,
//! so the futures here work under any executor (the pool's workers included) without a
//! runtime. Each attempt has a time limit; a failed attempt that could succeed later (no
//! connection, a time-out, a 5xx answer, a broken answer) is retried after a delay, up to
//! [`DEFAULT_RETRIES`] times by default. A record that fails its checks (see
//! [`Block::verify`]), a 404 or another 4xx answer is final.
//!
//! Only `http://` is spoken: TLS would need a TLS stack, which this crate does not carry.

use std::time::Duration;

use async_io::Timer;
use async_net::TcpStream;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use serde::{Deserialize, Serialize};

use crate::block::{record, Block, BlockError};

/// Retries after a failed attempt, as in the original.
pub const DEFAULT_RETRIES: u32 = 3;
/// The wait before a retry, as in the original.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The time limit of one attempt, as in the original.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30);
/// The largest answer read.
const MAX_RESPONSE: u64 = 1 << 20;

/// Where to fetch which block, and how patiently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The API's base URL, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    pub height: u64,
    pub retries: u32,
    pub retry_delay: Duration,
    /// The time limit of each attempt.
    pub time_limit: Duration,
}

impl FetchRequest {
    /// A request with the original's retries, delay and time limit.
    pub fn new(base_url: impl Into<String>, height: u64) -> Self {
        Self {
            base_url: base_url.into(),
            height,
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
            time_limit: DEFAULT_TIME_LIMIT,
        }
    }
}

/// Why a block could not be fetched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("invalid API URL `{0}` (expected http://host[:port][/path])")]
    InvalidUrl(String),
    #[error("cannot reach {address}: {message}")]
    Unreachable { address: String, message: String },
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("the API has no block at height {0}")]
    NotFound(u64),
    #[error("the API answered HTTP {status}")]
    Status { status: u16 },
    #[error("broken HTTP answer: {0}")]
    BadResponse(String),
    #[error("asked for block {asked}, the API answered block {got}")]
    WrongHeight { asked: u64, got: u64 },
    #[error("refused block record: {0}")]
    Record(#[from] BlockError),
    #[error("the record carries no confirmations")]
    NoConfirmations,
    #[error("{last} (after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<FetchError>,
    },
}

impl FetchError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Unreachable { .. } | FetchError::TimedOut(_) => true,
            FetchError::BadResponse(_) => true,
            FetchError::Status { status } => *status >= 500,
            _ => false,
        }
    }
}

/// Fetches and checks the block at `request.height`, retrying as the request says.
pub async fn fetch_block(request: &FetchRequest) -> Result<Block, FetchError> {
    let url = Url::parse(&request.base_url)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt = attempt(&url, request.height);
        let limit = async {
            Timer::after(request.time_limit).await;
            Err(FetchError::TimedOut(request.time_limit))
        };
        match future::or(attempt, limit).await {
            Ok(block) => return Ok(block),
            Err(error) if error.is_retryable() && attempts <= request.retries => {
                tracing::debug!(height = request.height, %error, "fetch failed; retrying");
                Timer::after(request.retry_delay).await;
            }
            Err(error) if attempts > 1 => {
                return Err(FetchError::GaveUp {
                    attempts,
                    last: Box::new(error),
                });
            }
            Err(error) => return Err(error),
        }
    }
}

/// Fetches the block at `request.height` and returns its confirmations as the API counts them.
pub async fn fetch_confirmations(request: &FetchRequest) -> Result<u64, FetchError> {
    fetch_block(request)
        .await?
        .confirmations
        .ok_or(FetchError::NoConfirmations)
}

/// One `GET` of one record.
async fn attempt(url: &Url, height: u64) -> Result<Block, FetchError> {
    let (status, body) = get(url, &format!("{}/r/blockinfo/{height}", url.path)).await?;
    match status {
        200 => {}
        404 => return Err(FetchError::NotFound(height)),
        status => return Err(FetchError::Status { status }),
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| FetchError::BadResponse("the body is not UTF-8".into()))?;
    let block = record::parse_record(text)?;
    if block.height != height {
        return Err(FetchError::WrongHeight {
            asked: height,
            got: block.height,
        });
    }
    Ok(block)
}

/// The parts of an `http://` base URL.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    host: String,
    port: u16,
    /// The path prefix, without a trailing slash.
    path: String,
}

impl Url {
    fn parse(text: &str) -> Result<Self, FetchError> {
        let invalid = || FetchError::InvalidUrl(text.to_owned());
        let rest = text.strip_prefix("http://").ok_or_else(invalid)?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| invalid())?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(invalid());
        }
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path,
        })
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Sends `GET path` and returns the status and the body.
async fn get(url: &Url, path: &str) -> Result<(u16, Vec<u8>), FetchError> {
    let address = url.address();
    let unreachable = |e: std::io::Error| FetchError::Unreachable {
        address: address.clone(),
        message: e.to_string(),
    };
    let mut stream = TcpStream::connect(address.as_str())
        .await
        .map_err(unreachable)?;

    // Send the request, then read until the server closes the connection.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: application/json\r\n\
         User-Agent: protozoa/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await
        .map_err(unreachable)?;
    parse_response(&raw)
}

/// Splits a raw HTTP/1.1 answer into its status and its (de-chunked) body.
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), FetchError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let start = match response.parse(raw) {
        Ok(httparse::Status::Complete(start)) => start,
        Ok(httparse::Status::Partial) => return Err(bad("the answer ended inside its headers")),
        Err(e) => return Err(bad(&e.to_string())),
    };
    let status = response.code.ok_or_else(|| bad("no status code"))?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };

    let body = &raw[start..];
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Ok((status, dechunk(body)?));
    }
    match header("content-length").map(str::parse::<usize>) {
        Some(Ok(len)) if len <= body.len() => Ok((status, body[..len].to_vec())),
        Some(Ok(_)) => Err(bad("the answer is shorter than its Content-Length")),
        Some(Err(_)) => Err(bad("unreadable Content-Length")),
        None => Ok((status, body.to_vec())),
    }
}

/// Joins the chunks of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("chunk"))?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| bad("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(bad("the answer ended inside a chunk"));
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn bad(what: &str) -> FetchError {
    FetchError::BadResponse(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_parse_into_host_port_and_prefix() {
        let url = Url::parse("http://127.0.0.1:8080/api/").expect("valid");
        assert_eq!(
            url,
            Url {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/api".into()
            }
        );
        assert_eq!(Url::parse("http://example.org").expect("valid").port, 80);
        assert!(Url::parse("https://example.org").is_err());
        assert!(Url::parse("http://:80").is_err());
        assert!(Url::parse("http://host:port").is_err());
    }

    #[test]
    fn plain_response_is_cut_at_content_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage";
        assert_eq!(parse_response(raw).expect("valid"), (200, b"{}".to_vec()));
    }

    #[test]
    fn chunked_response_is_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(raw).expect("valid"),
            (200, b"abcde".to_vec())
        );
    }

    #[test]
    fn truncated_response_is_a_bad_response() {
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nCont"),
            Err(FetchError::BadResponse(_))
        ));
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(FetchError::Status { status: 503 }.is_retryable());
        assert!(!FetchError::Status { status: 400 }.is_retryable());
        assert!(!FetchError::NotFound(1).is_retryable());
        assert!(FetchError::TimedOut(Duration::from_secs(1)).is_retryable());
    }
}
