//! Builds the eBPF object (api-guard-ebpf, nightly, bpfel-unknown-none) and leaves it in
//! OUT_DIR, where `src/probes.rs` embeds it with `include_bytes_aligned!`.
use std::path::PathBuf;

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../api-guard-ebpf");
    let root = root.canonicalize().context("api-guard-ebpf directory")?;
    let root_dir = root.to_str().context("non-UTF-8 path")?;
    aya_build::build_ebpf(
        [Package {
            name: "api-guard-ebpf",
            root_dir,
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
