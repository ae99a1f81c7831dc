//! Tumbling windows per key: counts that reset when the window ends, and report once.

use std::fmt::Write as _;

/// Distinct ids remembered per client and route in one window.
pub(super) const MAX_IDS: usize = 64;
/// Example paths quoted in a 404-burst finding.
const EXAMPLES: usize = 2;
/// Characters kept of each example path.
const EXAMPLE_CHARS: usize = 40;

#[derive(Debug, Default)]
pub(super) struct Window {
    start: u64,
    pub(super) count: u64,
    fired: bool,
}

impl Window {
    /// Starts a new window when `now` is past this one (or time went backwards).
    fn roll(&mut self, now: u64, len: u64) -> bool {
        if self.count == 0 || now < self.start || now - self.start >= len {
            *self = Self {
                start: now,
                count: 0,
                fired: false,
            };
            return true;
        }
        false
    }

    /// Counts one event; true the first time the count passes `limit` in this window.
    pub(super) fn hit(&mut self, now: u64, len: u64, limit: u64) -> bool {
        self.roll(now, len);
        self.count += 1;
        if self.count > limit && !self.fired {
            self.fired = true;
            return true;
        }
        false
    }
}

#[derive(Debug, Default)]
pub(super) struct NotFoundWindow {
    window: Window,
    examples: Vec<String>,
}

impl NotFoundWindow {
    /// Counts one 404; the finding's evidence the first time the count passes `limit`.
    pub(super) fn hit(&mut self, now: u64, len: u64, limit: u32, path: &str) -> Option<String> {
        if self.window.roll(now, len) {
            self.examples.clear();
        }
        if self.examples.len() < EXAMPLES {
            self.examples
                .push(path.chars().take(EXAMPLE_CHARS).collect());
        }
        self.window.count += 1;
        if self.window.count <= u64::from(limit) || self.window.fired {
            return None;
        }
        self.window.fired = true;
        let secs = len / 1_000_000_000;
        let mut e = format!("{} not-found answers in {secs} s, e.g.", self.window.count);
        for p in &self.examples {
            let _ = write!(e, " {p}");
        }
        Some(e)
    }
}

/// A run of ids found sequential.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) count: usize,
    pub(super) first: u64,
    pub(super) last: u64,
}

#[derive(Debug, Default)]
pub(super) struct IdWindow {
    window: Window,
    /// Distinct ids seen this window, at most [`MAX_IDS`].
    ids: Vec<u64>,
}

impl IdWindow {
    /// Records `id`; a [`Run`] the first time more than `threshold` distinct ids were seen
    /// this window and they are mostly consecutive: sorted, at least 80% of neighbouring
    /// pairs differ by at most 2. Crawling a list of records the client was given (random
    /// or sparse ids) does not look like that; counting through an id space does.
    pub(super) fn hit(&mut self, now: u64, len: u64, threshold: usize, id: u64) -> Option<Run> {
        if self.window.roll(now, len) {
            self.ids.clear();
        }
        self.window.count += 1;
        if self.window.fired || self.ids.contains(&id) {
            return None;
        }
        if self.ids.len() >= MAX_IDS {
            return None;
        }
        self.ids.push(id);
        if self.ids.len() <= threshold {
            return None;
        }
        let mut sorted = self.ids.clone();
        sorted.sort_unstable();
        let pairs = sorted.len() - 1;
        let close = sorted.windows(2).filter(|w| w[1] - w[0] <= 2).count();
        if close * 5 < pairs * 4 {
            return None;
        }
        self.window.fired = true;
        Some(Run {
            count: sorted.len(),
            first: sorted.first().copied().unwrap_or(0),
            last: sorted.last().copied().unwrap_or(0),
        })
    }
}
