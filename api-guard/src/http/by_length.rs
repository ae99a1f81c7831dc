//! A small table of values kept by their byte length, one per slot: what the parsing thread
//! keeps to share a repeated body ([`super::recent_bodies`]) or header block
//! ([`super::headers`]) instead of making another.

/// Slots of a table (lengths differ in their low bits, which pick the slot).
pub(crate) const SLOTS: usize = 16;

pub(crate) struct ByLength<T>([Option<T>; SLOTS]);

impl<T: AsRef<[u8]> + Clone> ByLength<T> {
    pub(crate) const fn new() -> Self {
        Self([const { None }; SLOTS])
    }

    fn slot(len: usize) -> usize {
        (len ^ (len >> 4)) % SLOTS
    }

    /// The kept value of `len` bytes, if `holds` accepts it (cloned: a reference count).
    pub(crate) fn find(&self, len: usize, holds: impl FnOnce(&[u8]) -> bool) -> Option<T> {
        self.0
            .get(Self::slot(len))
            .and_then(Option::as_ref)
            .filter(|kept| kept.as_ref().len() == len && holds(kept.as_ref()))
            .cloned()
    }

    /// Keeps `value` in its length's slot, in place of the one before.
    pub(crate) fn keep(&mut self, value: &T) {
        if let Some(kept) = self.0.get_mut(Self::slot(value.as_ref().len())) {
            *kept = Some(value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_found_by_its_length_and_replaced_by_the_next_of_it() {
        let mut table = ByLength::<Vec<u8>>::new();
        table.keep(&vec![1; 10]);
        assert_eq!(table.find(10, |_| true), Some(vec![1; 10]));
        assert_eq!(table.find(10, |kept| kept[0] == 2), None);
        assert_eq!(table.find(11, |_| true), None);
        table.keep(&vec![2; 10]);
        assert_eq!(table.find(10, |_| true), Some(vec![2; 10]));
    }
}
