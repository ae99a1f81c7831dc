//! api-guard's eBPF programs, built for `bpfel-unknown-none` by aya-build and embedded in the
//! daemon. One module per hook family; maps in `maps.rs`.
#![no_std]
#![no_main]
// `atomic_xadd`: the XDP guard's per-entry hit counters (core atomics lack RMW on BPF).
#![expect(
    internal_features,
    reason = "core_intrinsics: atomic_xadd for the XDP hit counters"
)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![feature(core_intrinsics)]

mod capture;
mod floor;
mod maps;
mod tls;
mod xdp;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in verified programs: the verifier rejects code that could get here.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
