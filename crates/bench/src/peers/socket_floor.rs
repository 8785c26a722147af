//! The `ipc` floor: a bare request and reply of a tiny message over a Unix socketpair between
//! this process and a child process.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};

use crate::child::{Mode, SocketChild, ECHO_BYTES};
use crate::scenarios::ipc::RoundTrip;

pub const NAME: &str = "socket-floor";

/// A child process that echoes fixed-size messages.
pub struct SocketFloor {
    child: SocketChild,
    sequence: u64,
}

impl SocketFloor {
    pub fn spawn() -> Result<Self> {
        Ok(SocketFloor {
            child: SocketChild::spawn(Mode::Echo)?,
            sequence: 0,
        })
    }
}

impl RoundTrip for SocketFloor {
    fn round_trip(&mut self) -> Result<()> {
        // A request carrying a sequence number, so that a stale reply is noticed.
        self.sequence += 1;
        let mut message = [0u8; ECHO_BYTES];
        message[..8].copy_from_slice(&self.sequence.to_le_bytes());

        let stream = self.child.stream()?;
        stream.write_all(&message).context("sending a request")?;
        let mut reply = [0u8; ECHO_BYTES];
        stream.read_exact(&mut reply).context("reading a reply")?;

        if reply != message {
            bail!("the child's reply does not match request {}", self.sequence);
        }
        Ok(())
    }
}
