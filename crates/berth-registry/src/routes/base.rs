//! `/v2/`, `/token`, `/metrics`, and the request log and metrics around every route.

use std::time::Instant;

use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::auth::Action;
use crate::response::{RouteLabel, json_ok, with_label};

/// Records metrics and a log line for every request. An HTTP/2 request names its host in
/// `:authority`, not `Host`: it is copied to `Host`, which the auth challenge's realm uses.
pub(crate) async fn observe(
    AxState(st): AxState<Shared>,
    mut req: Request,
    next: Next,
) -> Response {
    if !req.headers().contains_key(header::HOST)
        && let Some(a) = req.uri().authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let mut res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0)
        .unwrap_or("other");
    let status = res.status().as_u16();
    st.metrics.request(method.as_str(), route, status);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, route, status, ms, "request");
    } else {
        tracing::info!(%method, %path, route, status, ms, "request");
    }
    res.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    res
}

pub(crate) async fn base(AxState(st): AxState<Shared>, headers: HeaderMap) -> Response {
    let r = match st.auth.authorize(&headers, st.tls, None, Action::Pull) {
        Ok(_) => json_ok(&serde_json::json!({})),
        Err(e) => e.into_response(),
    };
    with_label(r, "base")
}

pub(crate) async fn token(AxState(st): AxState<Shared>, headers: HeaderMap) -> Response {
    let r = match st.auth.issue_token(&headers, st.tls) {
        Ok(v) => json_ok(&v),
        Err(e) => e.into_response(),
    };
    with_label(r, "token")
}

pub(crate) async fn metrics(AxState(st): AxState<Shared>) -> Response {
    let content = st.content.clone();
    let st2 = st.clone();
    let text = tokio::task::spawn_blocking(move || st2.metrics.render(&*content))
        .await
        .unwrap_or_default();
    with_label(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        "metrics",
    )
}
