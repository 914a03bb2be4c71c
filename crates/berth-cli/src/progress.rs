//! Progress on stderr while images move: on a terminal, a bar of the bytes moved with a line
//! per finished image above it; without a terminal, those lines only where they are the
//! command's log (the agent).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_transfer::{BlobOutcome, Event, EventSink, ImageStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Output;

pub struct Progress {
    bar: ProgressBar,
    /// Lines per finished image, and the word for a copied one.
    lines: Option<&'static str>,
    images: usize,
}

impl Progress {
    /// `copied`: the word for a copied image; `log`: print the lines without a terminal too.
    pub fn new(output: Output, images: usize, copied: &'static str, log: bool) -> Progress {
        let terminal =
            output == Output::Table && !crate::quiet() && std::io::stderr().is_terminal();
        let target = match terminal {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::hidden(),
        };
        let template = "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}";
        let style = ProgressStyle::with_template(template).unwrap_or(ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(Some(0), target).with_prefix("total");
        bar.set_style(style.progress_chars("=> "));
        bar.set_message(format!("0/{images} images"));
        Progress {
            bar,
            lines: (terminal || (log && !crate::quiet())).then_some(copied),
            images,
        }
    }

    /// The engine's event sink.
    pub fn sink(&self) -> EventSink {
        let (bar, lines, total) = (self.bar.clone(), self.lines, self.images);
        let (done, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
        Arc::new(move |e: Event| match e {
            Event::ImageStarted { total_bytes, .. } => bar.inc_length(total_bytes),
            Event::BlobProgress { bytes, .. } => bar.inc(bytes),
            Event::BlobRestarted { discarded, .. } => {
                bar.set_position(bar.position().saturating_sub(discarded))
            }
            Event::BlobDone { size, outcome, .. } if outcome != BlobOutcome::Copied => {
                bar.inc(size)
            }
            Event::ImageDone {
                target,
                status,
                error,
                ..
            } => {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                let bad = usize::from(status == ImageStatus::Failed);
                let f = failed.fetch_add(bad, Ordering::Relaxed) + bad;
                bar.set_message(format!("{n}/{total} images, {f} failed"));
                if let Some(copied) = lines {
                    let word = match status {
                        ImageStatus::Copied => copied,
                        ImageStatus::Present => "present",
                        ImageStatus::Failed => "FAILED",
                        ImageStatus::Cancelled => "cancelled",
                    };
                    let tail = error.map(|e| format!(": {e}")).unwrap_or_default();
                    bar.suspend(|| eprintln!("[{n}/{total}] {word} {target}{tail}"));
                }
            }
            _ => {}
        })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
