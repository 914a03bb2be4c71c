//! What an error at a crate seam says about itself, so that one retry policy can read it
//! without knowing where it came from.

use crate::VerifyError;

/// An error that knows whether trying the same operation again may help, and whether it is
/// a content verification failure (which no retry of the same source fixes).
pub trait Fault: std::error::Error + Send + Sync + 'static {
    /// Whether trying again may succeed (connection trouble, 5xx, a busy peer).
    fn is_retryable(&self) -> bool;

    /// The verification failure behind this error, if it is one.
    fn verify_error(&self) -> Option<&VerifyError> {
        None
    }
}

/// An error and its sources as one line, each cause once: a source whose message the text
/// so far already holds (an error that prints its source and also returns it from
/// `source()`) is not repeated. How every error chain is shown to a user.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !m.is_empty() && !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot bind 127.0.0.1:5000: {source}")]
    struct Bind {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("berth serve")]
    struct Outer(#[source] Bind);

    #[test]
    fn each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let m = io.to_string();
        let e = Outer(Bind { source: io });
        let s = super::error_chain(&e);
        assert_eq!(s, format!("berth serve: cannot bind 127.0.0.1:5000: {m}"));
        assert_eq!(s.matches(&m).count(), 1);
    }
}
