//! The private channel between the pool and one worker process: a connected Unix stream
//! socket carrying [`wire`](super::wire) frames, and with them the descriptors of shared
//! memory segments (`SCM_RIGHTS`).
//!
//! The channel is split in two halves so that one thread can block reading while another
//! writes. Descriptors are sent with the first byte of their frame; the kernel hands them
//! to the reader when it reads that byte, so by the time a whole frame is decoded its
//! descriptors have arrived. The reader queues every descriptor it receives and gives each
//! frame as many as it announces, in order.

use std::collections::VecDeque;
use std::io::{self, BufReader, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use super::wire::{Frame, FrameDecoder, FrameEncoder, WireError};

/// The most descriptors one frame may carry (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS_PER_FRAME: usize = 253;

/// A received frame and the descriptors that came with it.
#[derive(Debug)]
pub struct Received {
    /// The frame.
    pub frame: Frame,
    /// One descriptor per attached segment of the frame, in the frame's order.
    pub fds: Vec<OwnedFd>,
}

/// Splits a connected stream into its reading and writing halves, both refusing frames
/// longer than `max_frame_len`.
pub fn split(stream: UnixStream, max_frame_len: u32) -> io::Result<(ChannelReader, ChannelWriter)> {
    let write_half = stream.try_clone()?;
    let reader = ChannelReader {
        inner: BufReader::with_capacity(
            64 << 10,
            FdReceiver {
                stream,
                fds: VecDeque::new(),
            },
        ),
        decoder: FrameDecoder::new(max_frame_len),
    };
    let writer = ChannelWriter {
        stream: write_half,
        encoder: FrameEncoder::new(max_frame_len),
    };
    Ok((reader, writer))
}

/// The reading half of a channel.
#[derive(Debug)]
pub struct ChannelReader {
    inner: BufReader<FdReceiver>,
    decoder: FrameDecoder,
}

impl ChannelReader {
    /// Reads the next frame with its descriptors; `Ok(None)` when the peer closed the
    /// channel between frames.
    pub fn recv(&mut self) -> Result<Option<Received>, WireError> {
        let Some(frame) = self.decoder.read_frame(&mut self.inner)? else {
            return Ok(None);
        };

        // Its descriptors arrived with its first byte, at the latest.
        let expected = frame.attached_fds();
        let queue = &mut self.inner.get_mut().fds;
        if queue.len() < expected {
            return Err(WireError::MissingFds {
                expected,
                received: queue.len(),
            });
        }
        let fds = queue.drain(..expected).collect();
        Ok(Some(Received { frame, fds }))
    }

    /// The socket, e.g. to shut it down from another thread.
    pub fn stream(&self) -> &UnixStream {
        &self.inner.get_ref().stream
    }

    /// Whether bytes already read from the socket wait in the buffer, so that the next
    /// [`recv`](Self::recv) may not need the socket to be readable.
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }
}

/// The writing half of a channel.
#[derive(Debug)]
pub struct ChannelWriter {
    stream: UnixStream,
    encoder: FrameEncoder,
}

impl ChannelWriter {
    /// Sends `frame` with `fds`, one per attached segment of the frame, in order.
    pub fn send(&mut self, frame: &Frame, fds: &[BorrowedFd<'_>]) -> Result<(), WireError> {
        let expected = frame.attached_fds();
        if fds.len() != expected || fds.len() > MAX_FDS_PER_FRAME {
            return Err(WireError::MissingFds {
                expected,
                received: fds.len(),
            });
        }
        let bytes = self.encoder.encode(frame)?;
        send_with_fds(&self.stream, bytes, fds)?;
        Ok(())
    }

    /// The socket, e.g. to shut it down.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

/// Writes all of `bytes`, the descriptors riding on the first chunk.
fn send_with_fds(stream: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() {
        return send_all(stream, bytes);
    }

    // The first chunk carries the descriptors; retry it until the kernel takes any byte.
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_FRAME))];
    let sent = loop {
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other(
                "descriptors do not fit the control buffer",
            ));
        }
        match sendmsg(
            stream.as_fd(),
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(sent) => break sent,
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    };

    // The rest is plain bytes.
    send_all(stream, &bytes[sent..])
}

/// Like `write_all`, but a closed peer is an error (`EPIPE`), never a `SIGPIPE`.
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::net::send(stream.as_fd(), bytes, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(sent) => bytes = &bytes[sent..],
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// The socket as a byte stream that keeps every descriptor it receives.
#[derive(Debug)]
struct FdReceiver {
    stream: UnixStream,
    fds: VecDeque<OwnedFd>,
}

impl Read for FdReceiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_FRAME))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = recvmsg(
            self.stream.as_fd(),
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;

        // Keep the descriptors, closing any other kind of control message's payload.
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) {
            return Err(io::Error::other(
                "descriptors were dropped: control buffer too small",
            ));
        }
        Ok(received.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::wire::{Message, RequestId, Run, SegmentRef};

    #[test]
    fn frames_and_descriptors_arrive_in_order() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let (_, mut writer) = split(a, 1 << 20).expect("split");
        let (mut reader, _) = split(b, 1 << 20).expect("split");
        let (spare, _other) = UnixStream::pair().expect("socketpair");

        // One frame with a descriptor, one without.
        let segment = SegmentRef {
            id: 7,
            len: 0,
            attached: true,
        };
        let run = Run {
            task: "t".into(),
            input: vec![1, 2, 3],
            segments: vec![segment],
        };
        let with_fd = Frame::new(RequestId(1), Message::Run(run));
        writer.send(&with_fd, &[spare.as_fd()]).expect("send");
        writer
            .send(&Frame::new(RequestId(1), Message::Cancel), &[])
            .expect("send");

        let first = reader.recv().expect("recv").expect("a frame");
        assert_eq!(first.frame, with_fd);
        assert_eq!(first.fds.len(), 1);
        let second = reader.recv().expect("recv").expect("a frame");
        assert_eq!(second.frame.message, Message::Cancel);
        assert!(second.fds.is_empty());
    }
}
