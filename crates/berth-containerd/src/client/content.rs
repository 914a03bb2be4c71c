//! The content store: info, read, streamed writes (resumable, verified by containerd),
//! labels, listing.

use std::collections::HashMap;

use berth_oci::ByteStream;
use berth_reference::Digest;
use bytes::{Bytes, BytesMut};
use containerd_client::services::v1 as api;
use futures_util::StreamExt;
use tonic::Code;

use super::{Containerd, MAX_DOCUMENT_BYTES, WRITE_CHUNK};
use crate::ContainerdError;

impl Containerd {
    /// The content's labels, or `None` when the namespace does not have it.
    pub async fn content_info(
        &self,
        digest: &Digest,
    ) -> Result<Option<HashMap<String, String>>, ContainerdError> {
        match self
            .content()
            .info(self.req(api::InfoRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(r) => Ok(Some(
                r.into_inner().info.map(|i| i.labels).unwrap_or_default(),
            )),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ContainerdError::rpc(format!("Content.Info {digest}"), s)),
        }
    }

    /// Reads small content (a manifest, index or config) whole; `None` when absent.
    pub async fn read_content(&self, digest: &Digest) -> Result<Option<Bytes>, ContainerdError> {
        let what = || format!("Content.Read {digest}");
        let mut stream = match self
            .content()
            .read(self.req(api::ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(ContainerdError::rpc(what(), s)),
        };
        let mut out = BytesMut::new();
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    out.extend_from_slice(&m.data);
                    if out.len() > MAX_DOCUMENT_BYTES {
                        return Err(ContainerdError::Image {
                            image: digest.to_string(),
                            detail: format!(
                                "content is larger than {MAX_DOCUMENT_BYTES} bytes; it is not a manifest or config"
                            ),
                        });
                    }
                }
                Ok(None) => break,
                Err(s) if s.code() == Code::NotFound => return Ok(None),
                Err(s) => return Err(ContainerdError::rpc(what(), s)),
            }
        }
        Ok(Some(out.freeze()))
    }

    /// Writes content from a stream: `Content.Write` with the expected digest and total,
    /// committed (with `labels`) only when the stream ended cleanly; containerd checks
    /// digest and size again at the commit. If the stream fails, the write is aborted and
    /// nothing is committed; the stream's error is returned as is (`Err(Ok(io))`).
    /// Content already there is not written again.
    pub async fn write_content(
        &self,
        digest: &Digest,
        size: u64,
        mut data: ByteStream,
        labels: HashMap<String, String>,
    ) -> Result<(), Result<std::io::Error, ContainerdError>> {
        let reference = format!("berth-{digest}");
        let fail = |detail: String| ContainerdError::Write {
            digest: digest.to_string(),
            detail,
        };
        // Another writer of the same blob (a concurrent image with the same layer, the
        // kubelet pulling it) holds the ref's lock until it commits or gives up: wait for it
        // as containerd's own clients do (`content.OpenWriter`: backoff from 16 ms doubling
        // to 2 s), then either the blob is there (AlreadyExists) or the ingest is ours.
        // Aborting a locked ref would break the other writer, so it is never done here.
        let base = api::WriteContentRequest {
            r#ref: reference.clone(),
            total: size as i64,
            expected: digest.to_string(),
            ..Default::default()
        };
        let mut wait = std::time::Duration::from_millis(16);
        let started = std::time::Instant::now();
        let mut session = loop {
            let (tx, rx) = tokio::sync::mpsc::channel::<api::WriteContentRequest>(2);
            // The first message opens the ingest (it must name the ref). Writing then starts
            // at offset 0 (containerd truncates what a former attempt left), so every byte
            // committed is one the engine verified in this run.
            let _ = tx
                .send(api::WriteContentRequest {
                    action: api::WriteAction::Stat as i32,
                    ..base.clone()
                })
                .await;
            let what = format!("Content.Write {digest}");
            let opened = match self
                .content()
                .write(self.req(tokio_stream::wrappers::ReceiverStream::new(rx)))
                .await
            {
                Ok(r) => {
                    let responses = r.into_inner();
                    let mut session = WriteSession {
                        tx,
                        responses,
                        what,
                    };
                    session.recv().await.map(|_| session)
                }
                Err(s) => Err(ContainerdError::rpc(what, s)),
            };
            match opened {
                Ok(session) => break session,
                // Committed meanwhile (another writer of the same blob).
                Err(e) if e.code() == Some(Code::AlreadyExists) => return Ok(()),
                Err(e) if is_locked(&e) && started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
                Err(e) => return Err(Err(e)),
            }
        };
        let result: Result<(), Result<std::io::Error, ContainerdError>> = async {
            let mut offset: u64 = 0;
            let mut buf = BytesMut::with_capacity(WRITE_CHUNK);
            let mut ended = false;
            while !ended {
                match data.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Err(Ok(e)),
                    None => ended = true,
                }
                while buf.len() >= WRITE_CHUNK || (ended && !buf.is_empty()) {
                    let n = buf.len().min(WRITE_CHUNK);
                    let part = buf.split_to(n);
                    let o = session
                        .step(api::WriteContentRequest {
                            action: api::WriteAction::Write as i32,
                            offset: offset as i64,
                            data: part.to_vec(),
                            ..base.clone()
                        })
                        .await
                        .map_err(Err)?;
                    offset += n as u64;
                    if o as u64 != offset {
                        return Err(Err(fail(format!(
                            "containerd is at offset {o} after {offset} bytes were sent"
                        ))));
                    }
                }
            }
            if offset != size {
                return Err(Err(fail(format!(
                    "the stream ended after {offset} bytes, {size} expected"
                ))));
            }
            match session
                .step(api::WriteContentRequest {
                    action: api::WriteAction::Commit as i32,
                    offset: offset as i64,
                    labels,
                    ..base.clone()
                })
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(Code::AlreadyExists) => Ok(()),
                Err(e) => Err(Err(e)),
            }
        }
        .await;
        drop(session);
        if result.is_err() {
            self.abort_write(&reference).await;
        }
        result
    }

    /// Writes small content held in memory.
    pub async fn write_bytes(
        &self,
        digest: &Digest,
        bytes: Bytes,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        let size = bytes.len() as u64;
        let stream: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        self.write_content(digest, size, stream, labels)
            .await
            .map_err(|e| match e {
                Ok(io) => ContainerdError::Write {
                    digest: digest.to_string(),
                    detail: io.to_string(),
                },
                Err(e) => e,
            })
    }

    async fn abort_write(&self, reference: &str) {
        let _ = self
            .content()
            .abort(self.req(api::AbortRequest {
                r#ref: reference.to_string(),
            }))
            .await;
    }

    /// Sets labels of content (others are kept).
    pub async fn set_content_labels(
        &self,
        digest: &Digest,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        if labels.is_empty() {
            return Ok(());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.content()
            .update(self.req(api::UpdateRequest {
                info: Some(api::Info {
                    digest: digest.to_string(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Content.Update {digest}"), s))?;
        Ok(())
    }

    /// Digests of all content in the namespace.
    pub async fn list_content(&self) -> Result<Vec<String>, ContainerdError> {
        let mut s = self
            .content()
            .list(self.req(api::ListContentRequest { filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::rpc("Content.List", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = s
            .message()
            .await
            .map_err(|s| ContainerdError::rpc("Content.List", s))?
        {
            out.extend(m.info.into_iter().map(|i| i.digest));
        }
        Ok(out)
    }
}

/// How long a write waits for another writer's lock on the same blob's ref.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// containerd's "ref ... locked" (`ErrUnavailable` from the ingest lock): another writer
/// of the same ref is active.
fn is_locked(e: &ContainerdError) -> bool {
    match e {
        ContainerdError::Rpc { code, message, .. } => {
            *code == Code::Unavailable && message.contains("locked")
        }
        _ => false,
    }
}

/// One `Content.Write` stream: containerd answers every request with one response.
struct WriteSession {
    tx: tokio::sync::mpsc::Sender<api::WriteContentRequest>,
    responses: tonic::Streaming<api::WriteContentResponse>,
    what: String,
}

impl WriteSession {
    async fn recv(&mut self) -> Result<i64, ContainerdError> {
        match self.responses.message().await {
            Ok(Some(r)) => Ok(r.offset),
            Ok(None) => Err(ContainerdError::Rpc {
                what: self.what.clone(),
                code: Code::Unavailable,
                message: "containerd closed the write stream early".into(),
            }),
            Err(s) => Err(ContainerdError::rpc(self.what.clone(), s)),
        }
    }

    async fn step(&mut self, req: api::WriteContentRequest) -> Result<i64, ContainerdError> {
        // If containerd ended the stream, sending fails and the next response carries
        // its status.
        let _ = self.tx.send(req).await;
        self.recv().await
    }
}
