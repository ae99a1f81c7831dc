//! Types that can be read from arbitrary bytes: the ring records the daemon decodes and the
//! tracepoint fields the kernel side reads.

/// A type for which every bit pattern of `size_of::<Self>()` bytes is a valid value, so it
/// can be copied out of untrusted memory (a ring buffer record, a tracepoint field), and
/// whose bytes are all initialised, so a value can be viewed as bytes.
///
/// # Safety
///
/// Implement only for types without invalid bit patterns and without padding: integers,
/// arrays of `Plain`, and `#[repr(C)]` structs whose fields are all `Plain` (no `bool`,
/// `char`, enums, references or `Option`) and whose size is asserted to be the sum of theirs.
pub unsafe trait Plain: Copy + 'static {}

macro_rules! plain_primitives {
    ($($t:ty),*) => {
        $(
            // SAFETY: every bit pattern is a valid integer.
            unsafe impl Plain for $t {}
        )*
    };
}
plain_primitives!(u8, u16, u32, u64, i8, i16, i32, i64);

// SAFETY: an array has no bytes besides its elements, each valid for any bits.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}
