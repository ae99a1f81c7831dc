//! Helpers for unit tests across modules.

/// xorshift64*: deterministic pseudo-random numbers for randomised and adversarial tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Fewer than `max` of `pieces` (not empty), joined.
    pub fn joined(&mut self, pieces: &[&str], max: u64) -> String {
        let n = self.below(max);
        (0..n).map(|_| *self.pick(pieces)).collect()
    }

    /// Fewer than `max_len` bytes: one in `one_in` from `special`, the rest `a`–`z`.
    pub fn bytes(&mut self, max_len: u64, special: &[u8], one_in: u64) -> Vec<u8> {
        let len = self.below(max_len);
        (0..len)
            .map(|_| {
                if self.below(one_in) == 0 {
                    *self.pick(special)
                } else {
                    b'a' + self.below(26) as u8
                }
            })
            .collect()
    }
}

/// The shared data directory (corpus, design notes): `API_GUARD_SHARED` if set, else
/// `../shared` beside the workspace. Panics when it is missing, so that a test needing it
/// fails rather than passing vacuously.
pub fn shared_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("API_GUARD_SHARED")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.is_dir(),
        "shared data directory {} not found: put `shared` beside the repository or set \
         API_GUARD_SHARED",
        dir.display()
    );
    dir
}
