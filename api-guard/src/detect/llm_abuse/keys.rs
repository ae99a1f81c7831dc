//! What one LLM key did: its client addresses in the sharing window, its token rate against
//! its own moving average, the models it asked for. Every part has a fixed bound.

use std::net::IpAddr;

/// Largest configurable per-window limit (addresses per key, keys per client).
pub(super) const MAX_LIMIT: usize = 1024;
/// Models remembered per key; a key using more has no narrow profile and its further new
/// models are not judged.
pub(super) const MAX_MODELS: usize = 32;

pub(super) struct SpikeLimits {
    pub window: u64,
    pub baseline: u64,
    pub factor: f64,
    pub floor: u64,
}

pub(super) struct Spike {
    pub tokens: u64,
    pub average: f64,
}

#[derive(Debug)]
pub(super) struct KeyState {
    first_seen: u64,
    /// Addresses within the sharing window with when last seen; at most the limit plus one.
    clients: Vec<(IpAddr, u64)>,
    sharing_fired_at: Option<u64>,
    rate: TokenRate,
    /// Hashes of the models asked for, at most [`MAX_MODELS`].
    models: Vec<u64>,
}

impl KeyState {
    pub(super) fn new(now: u64) -> Self {
        Self {
            first_seen: now,
            clients: Vec::new(),
            sharing_fired_at: None,
            rate: TokenRate::new(now),
            models: Vec::new(),
        }
    }

    /// Records `ip`; the number of addresses the first time they exceed `max` in a window.
    pub(super) fn sharing(
        &mut self,
        ip: IpAddr,
        now: u64,
        window: u64,
        max: usize,
    ) -> Option<usize> {
        self.clients
            .retain(|&(_, seen)| now.saturating_sub(seen) < window);
        if let Some(c) = self.clients.iter_mut().find(|(a, _)| *a == ip) {
            c.1 = now;
        } else if self.clients.len() <= max {
            self.clients.push((ip, now));
        } else if let Some(oldest) = self.clients.iter_mut().min_by_key(|(_, seen)| *seen) {
            // Already over the limit: keep the newest addresses so the state stays current.
            *oldest = (ip, now);
        }
        let quiet = self
            .sharing_fired_at
            .is_some_and(|at| now.saturating_sub(at) < window);
        if self.clients.len() > max && !quiet {
            self.sharing_fired_at = Some(now);
            return Some(self.clients.len());
        }
        None
    }

    /// Adds a call's tokens; a [`Spike`] the first time in a window they pass the limits.
    pub(super) fn tokens(&mut self, now: u64, tokens: u64, l: &SpikeLimits) -> Option<Spike> {
        let learnt = now.saturating_sub(self.first_seen) >= l.baseline;
        self.rate.add(now, tokens, l, learnt)
    }

    /// Records a model; the number of models known when it is new after the learning period.
    pub(super) fn model(&mut self, now: u64, learning: u64, model: u64) -> Option<usize> {
        if self.models.contains(&model) {
            return None;
        }
        if self.models.len() >= MAX_MODELS {
            return None;
        }
        let judged = now.saturating_sub(self.first_seen) >= learning;
        let known = self.models.len();
        self.models.push(model);
        (judged && known > 0).then_some(known)
    }
}

#[cfg(test)]
impl KeyState {
    pub(super) fn clients_len(&self) -> usize {
        self.clients.len()
    }

    pub(super) fn models_len(&self) -> usize {
        self.models.len()
    }
}

/// Tokens in the current tumbling window, and the average per window of those before it:
/// a plain mean while fewer than a baseline's worth of windows have closed, then an
/// exponentially weighted one with a baseline's worth of windows as its span. Idle windows
/// count as zero, so a key dormant for hours has an average near zero.
#[derive(Debug)]
struct TokenRate {
    start: u64,
    tokens: u64,
    fired: bool,
    average: f64,
    /// Windows averaged so far, at most a baseline's worth.
    samples: u64,
}

impl TokenRate {
    fn new(now: u64) -> Self {
        Self {
            start: now,
            tokens: 0,
            fired: false,
            average: 0.0,
            samples: 0,
        }
    }

    fn add(&mut self, now: u64, tokens: u64, l: &SpikeLimits, learnt: bool) -> Option<Spike> {
        let window = l.window.max(1);
        let span = (l.baseline / window).max(1);
        // A time before the window's start (clocks of other threads) counts in the current one.
        if now >= self.start && now - self.start >= window {
            let closed = (now - self.start) / window;
            self.close(self.tokens, closed, span);
            self.start = self.start.saturating_add(closed.saturating_mul(window));
            self.tokens = 0;
            self.fired = false;
        }
        self.tokens = self.tokens.saturating_add(tokens);
        let over = self.tokens as f64 > l.factor * self.average && self.tokens >= l.floor;
        if learnt && over && !self.fired {
            self.fired = true;
            return Some(Spike {
                tokens: self.tokens,
                average: self.average,
            });
        }
        None
    }

    /// Folds `closed` windows into the average: the current one with `tokens`, the rest idle.
    fn close(&mut self, tokens: u64, closed: u64, span: u64) {
        self.sample(tokens as f64, span);
        let mut idle = closed.saturating_sub(1);
        // The mean's part: each idle window scales it by k/(k+1).
        if self.samples < span && idle > 0 {
            let k = self.samples;
            let step = idle.min(span - k);
            self.average *= k as f64 / (k + step) as f64;
            self.samples = k + step;
            idle -= step;
        }
        // The weighted part: each idle window scales it by (1 - 1/span).
        if idle > 0 {
            let keep = 1.0 - 1.0 / span as f64;
            self.average *= keep.powf(idle.min(1 << 30) as f64);
        }
    }

    fn sample(&mut self, x: f64, span: u64) {
        self.samples = (self.samples + 1).min(span);
        self.average += (x - self.average) / self.samples as f64;
    }
}
