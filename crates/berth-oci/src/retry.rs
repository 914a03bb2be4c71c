//! The one retry policy: bounded retries with exponential backoff and jitter. Whether an
//! error is worth another attempt is its own to say ([`crate::Fault`]).

use std::time::Duration;

/// How often and how patiently to retry a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first one included (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound of one delay (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (0-based): `base * 2^retry`, capped, with
    /// "equal jitter" (a random value between half and all of it).
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << retry.min(16));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        half + Duration::from_nanos(fastrand::u64(0..=(d - half).as_nanos() as u64))
    }

    /// The delay before retry `retry` given a server's `Retry-After` (if any), capped.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_delay),
            None => self.backoff(retry),
        }
    }
}
