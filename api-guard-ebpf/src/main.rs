//! api-guard's eBPF programs, built for `bpfel-unknown-none` by aya-build and embedded in the
//! daemon. One module per hook family; maps in `maps.rs`.
#![no_std]
#![no_main]

mod capture;
mod maps;
mod tls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in verified programs: the verifier rejects code that could get here.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
