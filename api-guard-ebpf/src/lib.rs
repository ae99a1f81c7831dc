//! Host-side stub so `api-guard` can name this crate as a build dependency (which makes cargo
//! rebuild the daemon when the eBPF sources change). The programs live in `main.rs`.
#![no_std]
