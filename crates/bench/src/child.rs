//! The other end of the process benchmarks: this same binary, started again with the hidden
//! `socket-child` subcommand, talking over a Unix socketpair it inherits as its stdin.
//!
//! Two protocols, chosen by `--mode`:
//! - `echo`: read a fixed [`ECHO_BYTES`]-byte message, write it back; the least a request and
//!   its reply can cost between two processes.
//! - `pages`: read a little-endian `u64` byte length, then that many bytes into a buffer kept
//!   between requests, read one `f32` from each 4 KiB page, and reply with their sum as a
//!   little-endian `f64`.
//!
//! The child exits cleanly when the socket closes, so it never outlives the benchmark.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use clap::ValueEnum;

/// The size of one `echo` message.
pub const ECHO_BYTES: usize = 16;

/// The stride of `pages`: one value is read per page.
pub const PAGE_BYTES: usize = 4096;

/// What the child does with each request.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    Echo,
    Pages,
}

/// A running child process and the parent's end of its socket.
pub struct SocketChild {
    process: Child,
    stream: Option<UnixStream>,
}

impl SocketChild {
    /// Starts this executable again as a `socket-child` in `mode`.
    pub fn spawn(mode: Mode) -> Result<Self> {
        let (ours, theirs) = UnixStream::pair().context("creating a socketpair")?;
        let exe = std::env::current_exe().context("finding the benchmark executable")?;
        let mode = mode
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();

        // The child's stdin is its end of the socket; its stdout is kept off ours, which
        // carries the results.
        let process = Command::new(exe)
            .args(["socket-child", "--mode", &mode])
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()
            .context("starting the child process")?;
        Ok(SocketChild {
            process,
            stream: Some(ours),
        })
    }

    /// The parent's end of the socket.
    pub fn stream(&mut self) -> Result<&mut UnixStream> {
        self.stream.as_mut().context("the child's socket is closed")
    }
}

impl Drop for SocketChild {
    /// Closes the socket, which makes the child exit, and reaps it.
    fn drop(&mut self) {
        drop(self.stream.take());
        let _ = self.process.wait();
    }
}

/// The child's main: serves requests on stdin's socket until it closes.
pub fn serve(mode: Mode) -> Result<()> {
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("taking stdin's descriptor")?;
    let stream = UnixStream::from(fd);
    let served = match mode {
        Mode::Echo => serve_echo(stream),
        Mode::Pages => serve_pages(stream),
    };

    // The parent closing the socket is the normal way to end.
    match served {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(()),
        other => other.context("serving the parent"),
    }
}

fn serve_echo(mut stream: UnixStream) -> io::Result<()> {
    let mut message = [0u8; ECHO_BYTES];
    loop {
        stream.read_exact(&mut message)?;
        stream.write_all(&message)?;
    }
}

fn serve_pages(mut stream: UnixStream) -> io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        // Read the length, then the bytes into the kept buffer.
        let mut length = [0u8; 8];
        stream.read_exact(&mut length)?;
        let length = usize::try_from(u64::from_le_bytes(length))
            .map_err(|_| io::Error::new(ErrorKind::InvalidData, "length does not fit memory"))?;
        buffer.resize(length, 0);
        stream.read_exact(&mut buffer)?;

        stream.write_all(&sum_pages(&buffer).to_le_bytes())?;
    }
}

/// The sum of the `f32` at the start of each 4 KiB page of `bytes` (little-endian).
pub fn sum_pages(bytes: &[u8]) -> f64 {
    bytes
        .chunks(PAGE_BYTES)
        .filter_map(|page| page.get(..4))
        .map(|value| f64::from(f32::from_le_bytes([value[0], value[1], value[2], value[3]])))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_pages_reads_the_first_value_of_each_page() {
        let mut bytes = vec![0u8; PAGE_BYTES * 2 + 2];
        bytes[..4].copy_from_slice(&1.5f32.to_le_bytes());
        bytes[PAGE_BYTES..PAGE_BYTES + 4].copy_from_slice(&2.0f32.to_le_bytes());
        bytes[PAGE_BYTES + 4..PAGE_BYTES + 8].copy_from_slice(&100.0f32.to_le_bytes());
        assert_eq!(sum_pages(&bytes), 3.5);
    }
}
