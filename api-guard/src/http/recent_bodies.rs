//! Bodies the parsing thread kept lately, by length: a body that repeats one of them byte for
//! byte (a static file, a health check, a fixed error page, an unchanged list) is compared as
//! it arrives and then shared by reference, instead of copied out of the ring into a fresh
//! allocation that is freed again once analysed.
//!
//! Sharing changes no output: the shared body holds the same bytes a copy would. It also
//! stays in every core's cache, since nobody writes it: the analysis threads read (and their
//! scan caches compare) lines they already hold, not a fresh copy from the parsing core.
//!
//! The table is the parsing thread's own (a thread-local: parsing runs on one task, and the
//! replay and `detect` paths parse on their own threads), so no lock or atomic guards it.
//! Memory is bounded: at most [`super::by_length::SLOTS`] bodies of at most [`MAX_SHARED_BODY`] bytes a thread.

use std::cell::RefCell;

use bytes::Bytes;

use super::by_length::ByLength;

/// The longest body shared. Comparing costs about what copying does, so a body that differs
/// only late is paid twice; short repeated answers are where sharing pays.
pub const MAX_SHARED_BODY: usize = 4096;

thread_local! {
    static RECENT: RefCell<ByLength<Bytes>> = const { RefCell::new(ByLength::new()) };
}

/// Whether a body of `len` bytes, kept whole, may be shared.
#[must_use]
pub fn eligible(len: u64) -> bool {
    (1..=MAX_SHARED_BODY as u64).contains(&len)
}

/// The last body of `len` bytes kept by this thread: what an arriving body of that length is
/// compared with.
#[must_use]
pub fn candidate(len: usize) -> Option<Bytes> {
    RECENT.with_borrow(|recent| recent.find(len, |_| true))
}

/// Keeps a whole body that was copied (no candidate matched it) as the candidate for its
/// length, in place of the one before.
pub fn remember(body: &Bytes) {
    if !eligible(body.len() as u64) {
        return;
    }
    RECENT.with_borrow_mut(|recent| recent.keep(body));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_body_is_the_candidate_for_its_length_only() {
        let body = Bytes::from(vec![7u8; 1024]);
        remember(&body);
        let got = candidate(1024).expect("kept");
        assert_eq!(got.as_ptr(), body.as_ptr(), "shared, not copied");
        assert!(candidate(1023).is_none());
        // A later body of the same length replaces it.
        let other = Bytes::from(vec![8u8; 1024]);
        remember(&other);
        assert_eq!(candidate(1024).expect("kept"), other);
    }

    #[test]
    fn empty_and_long_bodies_are_not_kept() {
        remember(&Bytes::new());
        assert!(candidate(0).is_none());
        let long = Bytes::from(vec![1u8; MAX_SHARED_BODY + 1]);
        remember(&long);
        assert!(candidate(MAX_SHARED_BODY + 1).is_none());
        assert!(!eligible(0) && eligible(1) && !eligible(MAX_SHARED_BODY as u64 + 1));
    }
}
