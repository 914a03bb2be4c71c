//! GETs from chart repositories over HTTP(S): each host's TLS settings (its CAs, or none
//! verified when `insecure`), Basic credentials sent only to the repository's own origin
//! (redirects followed by hand, so they never reach a CDN), bounded retries, bounded bodies.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_client::{ClientError, RegistryConfig, RegistryConfigs, RetryPolicy, Side};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::{StatusCode, Url, header};

/// `host[:port]` of a URL, as registry settings are keyed.
pub fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// What a GET came back with.
pub enum Got {
    Body(Bytes),
    NotFound,
    TooLarge,
}

pub struct Http {
    configs: RegistryConfigs,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    retry: RetryPolicy,
}

impl Http {
    pub fn new(configs: RegistryConfigs) -> Http {
        Http {
            configs,
            clients: Mutex::new(HashMap::new()),
            retry: RetryPolicy::default(),
        }
    }

    fn setting(&self, url: &Url) -> (String, Option<RegistryConfig>) {
        let path = url.path().trim_matches('/');
        match self.configs.select(&host_port(url), path) {
            Some((k, c)) => (k.to_string(), Some(c.clone())),
            None => (String::new(), None),
        }
    }

    /// The HTTP client for `url`: its host's settings, else (a `.tgz` the index puts on
    /// another host, a redirect) the TLS settings of the repository at `origin`.
    fn client(&self, url: &Url, origin: &Url) -> Result<reqwest::Client, ClientError> {
        let (mut key, mut cfg) = self.setting(url);
        if cfg.is_none() {
            let (k, c) = self.setting(origin);
            key = format!("{k} (TLS only)");
            cfg = c.map(|c| RegistryConfig {
                credentials: None,
                ..c
            });
        }
        let mut clients = self.clients.lock().expect("lock");
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let c = berth_client::http_client(&key, cfg.as_ref())?;
        clients.insert(key, c.clone());
        Ok(c)
    }

    fn error(&self, url: &Url, status: StatusCode, user: Option<&str>, what: &str) -> ClientError {
        let (registry, what, side) = (host_port(url), what.to_string(), Side::Charts);
        match (status, user) {
            (StatusCode::UNAUTHORIZED, Some(u)) => ClientError::CredentialsRejected {
                registry,
                username: u.to_string(),
                what,
                side,
            },
            (StatusCode::UNAUTHORIZED, None) => ClientError::AuthRequired {
                registry,
                what,
                side,
            },
            (_, user) => ClientError::Denied {
                registry,
                what,
                who: user.map_or("anonymous access".into(), |u| format!("user `{u}`")),
                side,
            },
        }
    }

    /// `GET url`, at most `max` bytes. `origin` is the repository's URL: only requests to its
    /// origin carry its credentials.
    pub async fn get(&self, url: &Url, origin: &Url, max: usize) -> Result<Got, ClientError> {
        let creds = self.setting(origin).1.and_then(|c| c.credentials);
        let what = format!("GET {url}");
        let mut url = url.clone();
        let mut hops = 0;
        let resp = loop {
            let http = self.client(&url, origin)?;
            let auth = creds.as_ref().filter(|_| same_origin(&url, origin));
            let mut attempt = 0;
            let resp = loop {
                let mut rb = http.get(url.clone());
                if let Some(c) = auth {
                    rb = rb.basic_auth(&c.username, Some(c.password.expose()));
                }
                let retry = attempt + 1 < self.retry.attempts;
                match rb.send().await {
                    Ok(r) if retry && (r.status().is_server_error() || r.status() == 429) => {}
                    Ok(r) => break r,
                    Err(e) => {
                        let err = berth_client::map_send_error(&host_port(&url), &Side::Charts, &e);
                        if !retry || !err.is_retryable() {
                            return Err(err);
                        }
                    }
                }
                tokio::time::sleep(self.retry.backoff(attempt)).await;
                attempt += 1;
            };
            if !resp.status().is_redirection() {
                break resp;
            }
            hops += 1;
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok());
            match location {
                Some(next) if hops <= 10 => url = next,
                _ => {
                    return Err(ClientError::Protocol {
                        registry: host_port(&url),
                        what,
                        detail: format!(
                            "HTTP {} without a usable Location, or more than 10 redirects",
                            resp.status()
                        ),
                    });
                }
            }
        };
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(Got::NotFound);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let user = creds.as_ref().filter(|_| same_origin(&url, origin));
            return Err(self.error(&url, status, user.map(|c| c.username.as_str()), &what));
        }
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            let detail = String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .to_string();
            return Err(ClientError::Status {
                registry: host_port(&url),
                what,
                status: status.as_u16(),
                detail: if detail.is_empty() {
                    status.to_string()
                } else {
                    detail
                },
            });
        }
        let mut body = BytesMut::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| berth_client::map_send_error(&host_port(&url), &Side::Charts, &e))?;
            if body.len() + chunk.len() > max {
                return Ok(Got::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Got::Body(body.freeze()))
    }
}
