//! `GET /v2/_catalog`: the repositories, paginated.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, query};
use crate::ApiError;
use crate::auth::Action;
use crate::response::{listing, page, with_label};

pub(crate) async fn catalog(
    AxState(st): AxState<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let r = async {
        st.auth.authorize(&headers, st.tls, None, Action::Pull)?;
        let content = st.content.clone();
        let repos = tokio::task::spawn_blocking(move || content.repositories())
            .await
            .map_err(ApiError::internal)?;
        let (page, next) = page(repos, &query(uri.query()), "/v2/_catalog")?;
        Ok::<_, ApiError>(listing(&json!({ "repositories": page }), next))
    }
    .await
    .unwrap_or_else(|e| e.into_response());
    with_label(r, "catalog")
}
