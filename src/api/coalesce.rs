//! A ureq transport that sends each request in one piece.
//!
//! ureq writes a request's headers and its body with separate `transmit_output` calls. With
//! TCP_NODELAY neither waits for Nagle, but every post still costs two writes and two segments.
//! This wrapper holds small writes back and sends them together when ureq starts waiting for
//! the response (or when enough has gathered), so a `/next` or a post of a small response
//! leaves as one `write`. Large bodies pass through in buffer-sized writes.
//!
//! This uses ureq's `unversioned` transport API, which is outside semver; `Cargo.toml` pins
//! ureq to an exact version for that reason.

use std::fmt;

use ureq::Error;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// Writes smaller than this in total are held until the request is complete.
const HOLD_BELOW: usize = 64 * 1024;

/// Wraps whatever transport the previous connector in the chain made.
#[derive(Debug, Default)]
pub struct CoalescingConnector;

impl<In: Transport> Connector<In> for CoalescingConnector {
    type Out = Coalescing<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|inner| Coalescing { inner, held: Vec::new() }))
    }
}

/// A transport whose small writes are held back until ureq reads the response.
pub struct Coalescing<T> {
    inner: T,
    held: Vec<u8>,
}

impl<T: Transport> Coalescing<T> {
    /// Sends everything held, in pieces the size of the inner output buffer.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), Error> {
        let mut sent = 0;
        while sent < self.held.len() {
            let output = self.inner.buffers().output();
            let n = output.len().min(self.held.len() - sent);
            output[..n].copy_from_slice(&self.held[sent..sent + n]);
            self.inner.transmit_output(n, timeout)?;
            sent += n;
        }
        self.held.clear();
        Ok(())
    }
}

impl<T: Transport> Transport for Coalescing<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        if self.held.is_empty() && amount >= HOLD_BELOW {
            return self.inner.transmit_output(amount, timeout);
        }
        let written = &self.inner.buffers().output()[..amount];
        self.held.extend_from_slice(written);
        if self.held.len() >= HOLD_BELOW {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush(timeout)?;
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush(timeout)?;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

impl<T: fmt::Debug> fmt::Debug for Coalescing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescing")
            .field("inner", &self.inner)
            .field("held", &self.held.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ureq::unversioned::transport::LazyBuffers;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    use super::*;

    /// Records every transmitted piece.
    #[derive(Debug)]
    struct Recorder {
        buffers: LazyBuffers,
        sent: Vec<Vec<u8>>,
    }

    impl Transport for Recorder {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), Error> {
            let piece = self.buffers.output()[..amount].to_vec();
            self.sent.push(piece);
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn timeout() -> NextTimeout {
        NextTimeout {
            after: UreqDuration::from(Duration::from_secs(1)),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        }
    }

    fn write(t: &mut Coalescing<Recorder>, bytes: &[u8]) {
        t.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        t.transmit_output(bytes.len(), timeout()).unwrap();
    }

    fn transport() -> Coalescing<Recorder> {
        let inner = Recorder { buffers: LazyBuffers::new(1024, 128 * 1024), sent: Vec::new() };
        Coalescing { inner, held: Vec::new() }
    }

    #[test]
    fn headers_and_a_small_body_leave_in_one_write() {
        let mut t = transport();
        write(&mut t, b"POST /x HTTP/1.1\r\ncontent-length: 2\r\n\r\n");
        write(&mut t, b"ok");
        assert!(t.inner.sent.is_empty(), "nothing is sent before the response is awaited");
        t.await_input(timeout()).unwrap();
        assert_eq!(t.inner.sent, vec![b"POST /x HTTP/1.1\r\ncontent-length: 2\r\n\r\nok".to_vec()]);
    }

    #[test]
    fn a_large_body_passes_through_in_full_buffers() {
        let mut t = transport();
        write(&mut t, b"head");
        let chunk = vec![7u8; 128 * 1024];
        write(&mut t, &chunk);
        write(&mut t, &chunk);
        t.maybe_await_input(timeout()).unwrap();
        let total: usize = t.inner.sent.iter().map(Vec::len).sum();
        assert_eq!(total, 4 + 2 * chunk.len());
        assert!(t.inner.sent.iter().all(|p| p.len() <= 128 * 1024));
        assert_eq!(&t.inner.sent[0][..4], b"head");
    }
}
