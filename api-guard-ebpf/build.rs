use which::which;

/// Rebuild when bpf-linker changes (it is the linker of the bpfel target).
fn main() {
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
    // bpf-linker asks LLVM by default for its BPF-specific in-order `memcpy` expansion, which
    // also turns off the generic inline expansion of every memory intrinsic: each `memset`
    // (a struct literal's zero fields or padding, a zeroed stack array, merged into one by
    // LLVM) then became a BPF-to-BPF call of a byte-at-a-time loop, ~100 instructions per
    // data syscall entry. Without it small `memset`s and `memcpy`s are plain stores (x86's
    // JIT has no use for the in-order expansion, which is there for offload JITs).
    println!("cargo:rustc-link-arg=--disable-expand-memcpy-in-order");
}
