//! `GET /v2/<name>/tags/list`, paginated (from the upstream for a pull-through).

use axum::response::Response;
use serde_json::json;

use super::Ctx;
use crate::ApiError;
use crate::response::{listing, page};

pub(crate) async fn list(cx: &Ctx<'_>) -> Result<Response, ApiError> {
    let name = &cx.name;
    let tags = match &cx.upstream {
        Some(u) => crate::proxy::tags(cx.st, u).await?,
        None => {
            let content = cx.st.content.clone();
            let repo = name.clone();
            tokio::task::spawn_blocking(move || content.tags(&repo))
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::name_unknown(name))?
        }
    };
    let (page, next) = page(tags, &cx.query, &format!("/v2/{name}/tags/list"))?;
    Ok(listing(&json!({ "name": name, "tags": page }), next))
}
