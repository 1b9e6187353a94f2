//! The byte streams a session runs over: anything that splits into a read half and a write
//! half, so one session loop serves plain TCP, TLS, and a StartTLS upgrade alike.

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A stream the session loop reads requests from (one task) and writes responses to
/// (another).
pub trait ByteStream: Send + 'static {
    type Read: AsyncRead + Send + Unpin + 'static;
    type Write: AsyncWrite + Send + Unpin + 'static;

    fn into_halves(self) -> (Self::Read, Self::Write);

    /// The halves joined again (StartTLS upgrades the joined stream); `None` if they are not
    /// halves of one stream.
    fn unsplit(read: Self::Read, write: Self::Write) -> Option<Self>
    where
        Self: Sized;

    /// The plain TCP stream, when this stream can be upgraded to TLS in place.
    fn into_tcp(self) -> Option<TcpStream>;
}

/// Plain TCP splits without a lock between the halves.
impl ByteStream for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    fn into_halves(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }

    fn unsplit(read: OwnedReadHalf, write: OwnedWriteHalf) -> Option<TcpStream> {
        read.reunite(write).ok()
    }

    fn into_tcp(self) -> Option<TcpStream> {
        Some(self)
    }
}

/// Any other stream (a TLS session, an in-memory pipe), split through tokio's lock.
pub struct Locked<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for Locked<S> {
    type Read = ReadHalf<S>;
    type Write = WriteHalf<S>;

    fn into_halves(self) -> (ReadHalf<S>, WriteHalf<S>) {
        tokio::io::split(self.0)
    }

    fn unsplit(read: ReadHalf<S>, write: WriteHalf<S>) -> Option<Locked<S>> {
        if read.is_pair_of(&write) {
            Some(Locked(read.unsplit(write)))
        } else {
            None
        }
    }

    /// Already wrapped (a TLS session): no second upgrade.
    fn into_tcp(self) -> Option<TcpStream> {
        None
    }
}
