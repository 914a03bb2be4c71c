//! Image records: get, list, create or update, delete.

use std::collections::HashMap;

use berth_reference::Digest;
use containerd_client::services::v1 as api;
use containerd_client::types::Descriptor as PbDescriptor;
use tonic::Code;

use super::{Containerd, ImageRecord};
use crate::ContainerdError;

impl Containerd {
    pub async fn get_image(&self, name: &str) -> Result<Option<ImageRecord>, ContainerdError> {
        match self
            .images()
            .get(self.req(api::GetImageRequest {
                name: name.to_string(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().image.and_then(record)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ContainerdError::rpc(format!("Images.Get {name}"), s)),
        }
    }

    pub async fn list_images(&self) -> Result<Vec<ImageRecord>, ContainerdError> {
        let r = self
            .images()
            .list(self.req(api::ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::rpc("Images.List", s))?;
        Ok(r.into_inner()
            .images
            .into_iter()
            .filter_map(record)
            .collect())
    }

    /// Creates the image record, or points an existing one at `target`.
    pub async fn put_image(
        &self,
        name: &str,
        media_type: &str,
        digest: &Digest,
        size: u64,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        let image = api::Image {
            name: name.to_string(),
            labels,
            target: Some(PbDescriptor {
                media_type: media_type.to_string(),
                digest: digest.to_string(),
                size: size as i64,
                annotations: HashMap::new(),
            }),
            created_at: None,
            updated_at: None,
        };
        match self
            .images()
            .create(self.req(api::CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                self.images()
                    .update(self.req(api::UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(|s| ContainerdError::rpc(format!("Images.Update {name}"), s))?;
                Ok(())
            }
            Err(s) => Err(ContainerdError::rpc(format!("Images.Create {name}"), s)),
        }
    }

    pub async fn delete_image(&self, name: &str) -> Result<(), ContainerdError> {
        match self
            .images()
            .delete(self.req(api::DeleteImageRequest {
                name: name.to_string(),
                sync: false,
                target: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(ContainerdError::rpc(format!("Images.Delete {name}"), s)),
        }
    }
}

fn record(i: api::Image) -> Option<ImageRecord> {
    let t = i.target?;
    Some(ImageRecord {
        name: i.name,
        media_type: t.media_type,
        digest: Digest::parse(&t.digest).ok()?,
        size: t.size.max(0) as u64,
        labels: i.labels,
    })
}
