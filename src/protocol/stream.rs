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
}

/// Plain TCP splits without a lock between the halves.
impl ByteStream for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    fn into_halves(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

/// Any other stream (a TLS session, an in-memory pipe), split through tokio's lock.
pub struct Locked<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Send + 'static> ByteStream for Locked<S> {
    type Read = ReadHalf<S>;
    type Write = WriteHalf<S>;

    fn into_halves(self) -> (ReadHalf<S>, WriteHalf<S>) {
        tokio::io::split(self.0)
    }
}
