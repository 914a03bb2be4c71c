//! A stream adapter that hashes bytes as they flow and refuses to deliver the last chunk
//! unless the digest (and size) match. A consumer that uploads the stream therefore never
//! sends a complete, wrong blob.

use std::pin::Pin;
use std::task::{Context, Poll};

use berth_reference::Digest;
use bytes::Bytes;
use futures_core::Stream;

use crate::Hasher;

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Why verified content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "content of {expected} has digest {actual}: the source served corrupted data; nothing was stored"
    )]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error(
        "content of {digest} is {actual} bytes, the manifest says {expected}: the source served wrong data; nothing was stored"
    )]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error(
        "cannot verify {digest}: the {alg} algorithm is not supported for verification (sha256 and sha512 are)"
    )]
    Unsupported { digest: Digest, alg: &'static str },
}

impl VerifyError {
    /// Finds a `VerifyError` inside an I/O error produced by [`VerifyingStream`].
    pub fn from_io(e: &std::io::Error) -> Option<&VerifyError> {
        e.get_ref().and_then(|i| i.downcast_ref::<VerifyError>())
    }
}

/// Wraps a byte stream: hashes it, holds back the last chunk until the end, and then
/// yields it only if digest and size match; otherwise yields an `InvalidData` error that
/// carries a [`VerifyError`]. `on_chunk` is called with the length of each chunk passed on.
pub struct VerifyingStream {
    inner: ByteStream,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: Option<u64>,
    seen: u64,
    held: Option<Bytes>,
    done: bool,
    on_chunk: Option<Box<dyn FnMut(u64) + Send>>,
}

impl VerifyingStream {
    pub fn new(
        inner: ByteStream,
        expected: Digest,
        expected_size: Option<u64>,
    ) -> Result<VerifyingStream, VerifyError> {
        Ok(VerifyingStream {
            inner,
            hasher: Some(Hasher::for_digest(&expected)?),
            expected,
            expected_size,
            seen: 0,
            held: None,
            done: false,
            on_chunk: None,
        })
    }

    /// Calls `f(len)` for every chunk handed on (for progress bars).
    pub fn on_chunk(mut self, f: impl FnMut(u64) + Send + 'static) -> VerifyingStream {
        self.on_chunk = Some(Box::new(f));
        self
    }

    pub fn boxed(self) -> ByteStream {
        Box::pin(self)
    }

    fn fail(&mut self, e: VerifyError) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.done = true;
        self.held = None;
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e,
        ))))
    }

    fn pass(&mut self, b: Bytes) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        if let Some(f) = self.on_chunk.as_mut() {
            f(b.len() as u64);
        }
        Poll::Ready(Some(Ok(b)))
    }
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    this.held = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(b))) => {
                    if b.is_empty() {
                        continue;
                    }
                    this.seen += b.len() as u64;
                    if let Some(exp) = this.expected_size
                        && this.seen > exp
                    {
                        let e = VerifyError::SizeMismatch {
                            digest: this.expected.clone(),
                            expected: exp,
                            actual: this.seen,
                        };
                        return this.fail(e);
                    }
                    if let Some(h) = this.hasher.as_mut() {
                        h.update(&b);
                    }
                    match this.held.replace(b) {
                        Some(prev) => return this.pass(prev),
                        None => continue,
                    }
                }
                Poll::Ready(None) => {
                    let actual = this.hasher.take().map(Hasher::finish);
                    if let Some(exp) = this.expected_size
                        && this.seen != exp
                    {
                        let e = VerifyError::SizeMismatch {
                            digest: this.expected.clone(),
                            expected: exp,
                            actual: this.seen,
                        };
                        return this.fail(e);
                    }
                    if let Some(actual) = actual
                        && actual != this.expected
                    {
                        let e = VerifyError::DigestMismatch {
                            expected: this.expected.clone(),
                            actual,
                        };
                        return this.fail(e);
                    }
                    this.done = true;
                    return match this.held.take() {
                        Some(b) => this.pass(b),
                        None => Poll::Ready(None),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_of;
    use futures_util::StreamExt;

    fn stream_of(parts: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            parts.into_iter().map(|p| Ok(Bytes::from_static(p))),
        ))
    }

    /// What a stream verifying `parts` against `d`, 11 bytes, yields.
    async fn verified(parts: Vec<&'static [u8]>, d: &Digest) -> Vec<Result<Bytes, std::io::Error>> {
        VerifyingStream::new(stream_of(parts), d.clone(), Some(11))
            .unwrap()
            .collect()
            .await
    }

    #[tokio::test]
    async fn passes_good_and_holds_back_last_chunk_of_bad() {
        let d = sha256_of(b"hello world");
        let out = verified(vec![b"hello", b" ", b"world"], &d).await;
        let bytes: Vec<u8> = out.into_iter().flat_map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(bytes, b"hello world");

        let out = verified(vec![b"hello", b" ", b"wOrld"], &d).await;
        // The good chunks pass, the last one never does; an error comes instead.
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap().as_ref(), b"hello");
        let err = out[2].as_ref().unwrap_err();
        assert!(matches!(
            VerifyError::from_io(err),
            Some(VerifyError::DigestMismatch { .. })
        ));
        assert!(err.to_string().contains(&d.to_string()));

        let out = verified(vec![b"hello world!"], &d).await;
        assert_eq!(out.len(), 1);
        assert!(matches!(
            VerifyError::from_io(out[0].as_ref().unwrap_err()),
            Some(VerifyError::SizeMismatch { .. })
        ));
    }
}
