//! Prometheus text exposition, written by hand.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    pub bytes_served: AtomicU64,
    pub bytes_received: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub upstream_errors: AtomicU64,
    storage: Mutex<Option<(Instant, u64, u64)>>,
}

impl Metrics {
    pub fn request(&self, method: &str, route: &'static str, status: u16) {
        *self
            .requests
            .lock()
            .expect("lock")
            .entry((method.to_string(), route, status))
            .or_default() += 1;
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self, content: &dyn crate::ReadOnlyContent) -> String {
        let (bytes, blobs) = {
            let mut s = self.storage.lock().expect("lock");
            match *s {
                Some((at, b, c)) if at.elapsed() < Duration::from_secs(30) => (b, c),
                _ => {
                    let (b, c) = content.usage();
                    *s = Some((Instant::now(), b, c));
                    (b, c)
                }
            }
        };
        let mut o = String::new();
        o.push_str("# HELP berth_http_requests_total HTTP requests by method, route and status.\n");
        o.push_str("# TYPE berth_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().expect("lock").iter() {
            let _ = writeln!(
                o,
                "berth_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        let counters = [
            (
                "berth_bytes_served_total",
                "Blob and manifest bytes sent to clients.",
                &self.bytes_served,
            ),
            (
                "berth_bytes_received_total",
                "Blob and manifest bytes received from clients.",
                &self.bytes_received,
            ),
            (
                "berth_cache_hits_total",
                "Pull-through requests served from the store.",
                &self.cache_hits,
            ),
            (
                "berth_cache_misses_total",
                "Pull-through requests fetched from an upstream.",
                &self.cache_misses,
            ),
            (
                "berth_upstream_errors_total",
                "Failed upstream requests.",
                &self.upstream_errors,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP berth_storage_bytes Bytes of stored blobs.\n# TYPE berth_storage_bytes gauge\nberth_storage_bytes {bytes}"
        );
        let _ = writeln!(
            o,
            "# HELP berth_storage_blobs Number of stored blobs.\n# TYPE berth_storage_blobs gauge\nberth_storage_blobs {blobs}"
        );
        o
    }
}
