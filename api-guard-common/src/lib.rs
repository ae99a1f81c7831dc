//! Types shared by the eBPF programs (`api-guard-ebpf`) and the daemon (`api-guard`).
//!
//! Every type here is `#[repr(C)]`, `Copy`, free of `bool`/`Option` and of implicit padding,
//! so that the kernel and userspace agree on the bytes. Sizes are asserted at compile time.
#![no_std]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod capture;
pub mod names;
pub mod plain;
pub mod xdp;

pub use capture::*;
pub use plain::Plain;
