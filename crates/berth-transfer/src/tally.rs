//! What the engine's [`Event`]s add up to, for a progress display.

use crate::{BlobOutcome, Event, ImageStatus};

/// The running totals of a copy's events: bytes to move and moved so far (a blob already at
/// the destination, or mounted there, counts as moved at once; a restarted blob's progress
/// is taken back), images finished and failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub total_bytes: u64,
    pub moved_bytes: u64,
    pub images_done: usize,
    pub images_failed: usize,
}

/// An image that finished, as [`Tally::add`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub target: String,
    pub status: ImageStatus,
    pub error: Option<String>,
}

impl Tally {
    /// Adds `event`; returns the image it finished, when it finishes one.
    pub fn add(&mut self, event: Event) -> Option<Finished> {
        match event {
            Event::ImageStarted { total_bytes, .. } => self.total_bytes += total_bytes,
            Event::BlobProgress { bytes, .. } => self.moved_bytes += bytes,
            Event::BlobRestarted { discarded, .. } => {
                self.moved_bytes = self.moved_bytes.saturating_sub(discarded)
            }
            Event::BlobDone { size, outcome, .. } if outcome != BlobOutcome::Copied => {
                self.moved_bytes += size
            }
            Event::BlobDone { .. } => {}
            Event::ImageDone {
                target,
                status,
                error,
                ..
            } => {
                self.images_done += 1;
                self.images_failed += usize::from(status == ImageStatus::Failed);
                return Some(Finished {
                    target,
                    status,
                    error,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_reference::Digest;

    #[test]
    fn bytes_and_images_add_up() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let done = |status, error: Option<&str>| Event::ImageDone {
            image: 0,
            source: "s".into(),
            target: "t".into(),
            status,
            error: error.map(String::from),
        };
        let blob = |size, outcome| Event::BlobDone {
            image: 0,
            digest: d.clone(),
            size,
            outcome,
        };
        let mut t = Tally::default();
        let started = Event::ImageStarted {
            image: 0,
            source: "s".into(),
            target: "t".into(),
            total_bytes: 100,
        };
        assert_eq!(t.add(started), None);
        let progress = |bytes| Event::BlobProgress {
            image: 0,
            digest: d.clone(),
            bytes,
        };
        t.add(progress(30));
        t.add(Event::BlobRestarted {
            image: 0,
            digest: d.clone(),
            discarded: 20,
        });
        t.add(progress(40));
        t.add(blob(40, BlobOutcome::Copied));
        t.add(blob(50, BlobOutcome::Skipped));
        assert_eq!((t.total_bytes, t.moved_bytes), (100, 100));
        let f = t.add(done(ImageStatus::Copied, None)).unwrap();
        assert_eq!((f.target.as_str(), f.status), ("t", ImageStatus::Copied));
        let f = t.add(done(ImageStatus::Failed, Some("boom"))).unwrap();
        assert_eq!(f.error.as_deref(), Some("boom"));
        assert_eq!((t.images_done, t.images_failed), (2, 1));
    }
}
