//! The `transfer` baseline: each task writes the whole buffer through a Unix socket to a child
//! process, which reads it into memory it keeps between tasks, reads one value per 4 KiB page
//! and replies with their sum.

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::child::{Mode, SocketChild};
use crate::scenarios::transfer::Carry;

pub const NAME: &str = "socket-copy";

/// A child process that sums one value per page of the bytes it is sent.
pub struct SocketCopy {
    child: SocketChild,
    data: Arc<Vec<f32>>,
}

impl SocketCopy {
    pub fn spawn(data: Arc<Vec<f32>>) -> Result<Self> {
        Ok(SocketCopy {
            child: SocketChild::spawn(Mode::Pages)?,
            data,
        })
    }
}

impl Carry for SocketCopy {
    fn carry(&mut self) -> Result<f64> {
        let bytes: &[u8] = bytemuck::cast_slice(self.data.as_slice());
        let stream = self.child.stream()?;

        // The length, then every byte; the child reads as we write.
        stream
            .write_all(&(bytes.len() as u64).to_le_bytes())
            .context("sending the length")?;
        stream.write_all(bytes).context("sending the buffer")?;

        let mut sum = [0u8; 8];
        stream
            .read_exact(&mut sum)
            .context("reading the child's sum")?;
        Ok(f64::from_le_bytes(sum))
    }
}
