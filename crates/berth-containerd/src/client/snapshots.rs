//! Snapshots (exists, prepare, commit, remove) and the diff service that applies a layer.

use std::collections::HashMap;

use berth_reference::Digest;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots as snap;
use containerd_client::types::{Descriptor as PbDescriptor, Mount};
use tonic::Code;

use super::Containerd;
use crate::ContainerdError;

impl Containerd {
    pub async fn snapshot_exists(&self, key: &str) -> Result<bool, ContainerdError> {
        match self
            .snapshots()
            .stat(self.req(snap::StatSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(ContainerdError::rpc(
                format!("Snapshots.Stat {key} ({})", self.opts.snapshotter),
                s,
            )),
        }
    }

    pub async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, ContainerdError> {
        let r = self
            .snapshots()
            .prepare(self.req(snap::PrepareSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels,
            }))
            .await
            .map_err(|s| {
                ContainerdError::rpc(
                    format!("Snapshots.Prepare {key} ({})", self.opts.snapshotter),
                    s,
                )
            })?;
        Ok(r.into_inner().mounts)
    }

    pub async fn commit_snapshot(
        &self,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        self.snapshots()
            .commit(self.req(snap::CommitSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                name: name.to_string(),
                key: key.to_string(),
                labels,
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Snapshots.Commit {name}"), s))?;
        Ok(())
    }

    pub async fn remove_snapshot(&self, key: &str) -> Result<(), ContainerdError> {
        self.snapshots()
            .remove(self.req(snap::RemoveSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Snapshots.Remove {key}"), s))?;
        Ok(())
    }

    /// Applies a layer to mounts; returns the digest of the uncompressed tar (the diff ID).
    pub async fn apply_layer(
        &self,
        media_type: &str,
        digest: &Digest,
        size: u64,
        mounts: Vec<Mount>,
    ) -> Result<String, ContainerdError> {
        let mut c = api::diff_client::DiffClient::new(self.channel.clone());
        let r = c
            .apply(self.req(api::ApplyRequest {
                diff: Some(PbDescriptor {
                    media_type: media_type.to_string(),
                    digest: digest.to_string(),
                    size: size as i64,
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Diff.Apply {digest}"), s))?;
        Ok(r.into_inner().applied.map(|d| d.digest).unwrap_or_default())
    }
}
