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

/// An error and its sources, joined with `: ` (a source whose message the text already holds
/// is left out). Network and gRPC errors keep the interesting part in their sources.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
