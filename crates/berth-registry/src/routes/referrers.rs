//! `GET /v2/<name>/referrers/<digest>`: the manifests whose subject is a digest, as an
//! index, filtered by `artifactType`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_store::manifest;
use serde_json::json;

use super::{Ctx, parse_digest};
use crate::ApiError;
use crate::content::read_manifest;

pub(crate) async fn list(cx: &Ctx<'_>, digest: &str) -> Result<Response, ApiError> {
    let subject = parse_digest(digest)?;
    let filter = cx.query.get("artifactType").filter(|s| !s.is_empty());
    let content = &cx.st.content;
    let mut manifests = vec![];
    for (d, mt) in content.referrers(&cx.name, &subject) {
        let Ok(bytes) = read_manifest(content, &d).await else {
            continue;
        };
        let refs = manifest::references(&bytes).unwrap_or_default();
        if let Some(f) = filter
            && refs.artifact_type.as_deref() != Some(f.as_str())
        {
            continue;
        }
        let mut desc = json!({ "mediaType": mt, "digest": d.to_string(), "size": bytes.len() });
        if let Some(a) = &refs.artifact_type {
            desc["artifactType"] = json!(a);
        }
        if let Some(a) = &refs.annotations {
            desc["annotations"] = a.clone();
        }
        manifests.push(desc);
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": manifests,
    });
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, manifest::OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        r.headers_mut().insert(
            "OCI-Filters-Applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(r)
}
