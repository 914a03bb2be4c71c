//! htpasswd (bcrypt) Basic auth, short-lived bearer tokens from `/token`, challenges.
//! Passwords and tokens never reach a log line or an error message.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;

use crate::config::AuthConfig;
use crate::{ApiError, RegistryError};

/// What a request wants to do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
}

/// Who is asking: a user of the htpasswd file, or anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(pub Option<String>);

struct Token {
    user: Option<String>,
    expires: Instant,
}

pub struct Auth {
    cfg: AuthConfig,
    users: HashMap<String, String>,
    /// sha256(user NUL password) of credentials that bcrypt accepted, with expiry: bcrypt
    /// costs tens of milliseconds, clients send Basic on every request.
    verified: Mutex<HashMap<String, Instant>>,
    tokens: Mutex<HashMap<String, Token>>,
}

const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Parses an htpasswd file; only bcrypt entries are accepted.
pub fn load_htpasswd(path: &Path) -> Result<HashMap<String, String>, RegistryError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
        action: "read htpasswd file",
        path: path.to_path_buf(),
        source,
    })?;
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| RegistryError::Htpasswd {
            path: path.to_path_buf(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected `user:hash`"))?;
        if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
            return Err(bad(&format!(
                "the entry for `{user}` is not bcrypt; create it with `htpasswd -B`"
            )));
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok(users)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Auth {
    pub fn new(cfg: &AuthConfig) -> Result<Auth, RegistryError> {
        let users = match &cfg.htpasswd {
            Some(p) => load_htpasswd(p)?,
            None => HashMap::new(),
        };
        Ok(Auth {
            cfg: cfg.clone(),
            users,
            verified: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// No htpasswd file: everyone may pull and push (a read-only registry has no writes).
    pub fn disabled() -> Auth {
        Auth {
            cfg: AuthConfig::default(),
            users: HashMap::new(),
            verified: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.htpasswd.is_some()
    }

    fn check_password(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            // Spend the same time as a real check, so user names cannot be probed.
            let _ = bcrypt::verify(
                password,
                "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            );
            return false;
        };
        let key = berth_store::sha256(format!("{user}\0{password}").as_bytes()).to_string();
        let now = Instant::now();
        {
            let v = self.verified.lock().expect("lock");
            if v.get(&key).is_some_and(|e| *e > now) {
                return true;
            }
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let mut v = self.verified.lock().expect("lock");
            if v.len() > 10_000 {
                v.retain(|_, e| *e > now);
            }
            v.insert(key, now + VERIFIED_TTL);
        }
        ok
    }

    /// Credentials of the request: `Ok(None)` when it has none, `Err` when they are wrong.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Option<Identity>, ()> {
        let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(None);
        };
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| ())?;
            let s = String::from_utf8(decoded).map_err(|_| ())?;
            let (user, pass) = s.split_once(':').ok_or(())?;
            if self.check_password(user, pass) {
                Ok(Some(Identity(Some(user.to_string()))))
            } else {
                Err(())
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let now = Instant::now();
            let tokens = self.tokens.lock().expect("lock");
            match tokens.get(rest.trim()) {
                Some(t) if t.expires > now => Ok(Some(Identity(t.user.clone()))),
                _ => Err(()),
            }
        } else {
            Err(())
        }
    }

    /// The challenge for a request to `scope` (e.g. `repository:team/app:pull,push`).
    pub fn challenge(&self, headers: &HeaderMap, tls: bool, scope: Option<&str>) -> String {
        if !self.cfg.token {
            return format!("Basic realm=\"{}\"", self.cfg.service);
        }
        let realm = self.cfg.realm.clone().unwrap_or_else(|| {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.contains('"'))
                .unwrap_or("localhost");
            format!("{}://{host}/token", if tls { "https" } else { "http" })
        });
        let mut c = format!("Bearer realm=\"{realm}\",service=\"{}\"", self.cfg.service);
        if let Some(s) = scope {
            c.push_str(&format!(",scope=\"{s}\""));
        }
        c
    }

    /// Whether the request may do `action` on `repo` (`None`: the registry itself).
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        tls: bool,
        repo: Option<&str>,
        action: Action,
    ) -> Result<Identity, ApiError> {
        if !self.enabled() {
            return Ok(Identity(None));
        }
        let scope = repo.map(|r| match action {
            Action::Pull => format!("repository:{r}:pull"),
            Action::Push => format!("repository:{r}:pull,push"),
        });
        let deny = |code: &'static str, msg: &str| {
            let mut e = ApiError::new(StatusCode::UNAUTHORIZED, code, msg);
            e.challenge = Some(self.challenge(headers, tls, scope.as_deref()));
            e
        };
        match self.identify(headers) {
            Err(()) => Err(deny(
                "UNAUTHORIZED",
                "authentication failed: wrong user name, password or token (an expired token: ask /token again)",
            )),
            Ok(Some(Identity(Some(u)))) => Ok(Identity(Some(u))),
            Ok(Some(Identity(None))) | Ok(None) => {
                if action == Action::Pull && self.cfg.anonymous_pull {
                    Ok(Identity(None))
                } else {
                    Err(deny(
                        "UNAUTHORIZED",
                        "authentication required: log in with a user of the registry's htpasswd file",
                    ))
                }
            }
        }
    }

    /// `/token`: a bearer token for the caller's identity.
    pub fn issue_token(
        &self,
        headers: &HeaderMap,
        tls: bool,
    ) -> Result<serde_json::Value, ApiError> {
        let user = match self.identify(headers) {
            Ok(Some(Identity(u))) => u,
            Ok(None) if !self.enabled() || self.cfg.anonymous_pull => None,
            _ => {
                let mut e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "authentication failed: the token endpoint needs the user name and password of the registry's htpasswd file",
                );
                e.challenge = Some(format!("Basic realm=\"{}\"", self.cfg.service));
                let _ = tls;
                return Err(e);
            }
        };
        let ttl = Duration::from_secs(self.cfg.token_ttl_seconds.max(1));
        let token = random_token();
        let now = Instant::now();
        {
            let mut t = self.tokens.lock().expect("lock");
            t.retain(|_, v| v.expires > now);
            t.insert(
                token.clone(),
                Token {
                    user,
                    expires: now + ttl,
                },
            );
        }
        Ok(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": ttl.as_secs(),
            "issued_at": httpdate_rfc3339(std::time::SystemTime::now()),
        }))
    }
}

/// RFC 3339 UTC time, whole seconds (for `issued_at`).
fn httpdate_rfc3339(t: std::time::SystemTime) -> String {
    let since_epoch = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    berth_oci::units::rfc3339(since_epoch).unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
