//! The progress of image transfers on a terminal, drawn from the transfer engine's events
//! ([`berth_transfer::Event`], tallied by [`berth_transfer::Tally`]): a bar of the bytes
//! moved with the images done and failed, and a line per finished image above it. Every
//! command that moves images (mirror, copy, bundle build and push, the agent) shows the same.

use std::sync::{Arc, Mutex};

use berth_transfer::{Event, EventSink, ImageStatus, Tally};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a [`Progress`] draws on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    /// The bar (stderr is a terminal, and the output is neither JSON nor quiet).
    pub bar: bool,
    /// A line per finished image (with the bar; or without one where those lines are the
    /// command's log, as the agent's).
    pub lines: bool,
}

/// The progress display of one command.
pub struct Progress {
    bar: ProgressBar,
    /// The word for a copied image, when lines are printed.
    lines: Option<&'static str>,
    images: usize,
}

impl Progress {
    /// The display of `images` images; `copied`: the word for a copied one (`imported`).
    pub fn new(images: usize, copied: &'static str, display: Display) -> Progress {
        let target = match display.bar {
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
            lines: display.lines.then_some(copied),
            images,
        }
    }

    /// The engine's event sink.
    pub fn sink(&self) -> EventSink {
        let (bar, lines, total) = (self.bar.clone(), self.lines, self.images);
        let tally = Mutex::new(Tally::default());
        Arc::new(move |e: Event| {
            let mut t = tally
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let finished = t.add(e);
            bar.set_length(t.total_bytes);
            bar.set_position(t.moved_bytes);
            let Some(f) = finished else { return };
            let (n, failed) = (t.images_done, t.images_failed);
            bar.set_message(format!("{n}/{total} images, {failed} failed"));
            if let Some(copied) = lines {
                let word = match f.status {
                    ImageStatus::Copied => copied,
                    ImageStatus::Present => "present",
                    ImageStatus::Failed => "FAILED",
                    ImageStatus::Cancelled => "cancelled",
                };
                let tail = f.error.map(|e| format!(": {e}")).unwrap_or_default();
                bar.suspend(|| eprintln!("[{n}/{total}] {word} {}{tail}", f.target));
            }
        })
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
