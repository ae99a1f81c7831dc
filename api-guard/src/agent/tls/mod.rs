//! TLS visibility: find the files that implement TLS (libssl, libgnutls, executables with
//! OpenSSL linked in), hook each distinct file once, and name them for exchanges/metrics.
//! The kernel side (uprobes, socket correlation) is in `api-guard-ebpf/src/tls/`.

pub mod config;
pub mod elf;
pub mod golang;
pub mod hooks;
pub mod maps;
pub mod registry;
pub mod sites;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

/// Names of hooked library files by id (the uprobe attach cookie), shared by the hooking
/// thread (writer) and the connection table (reader, once per TLS connection).
#[derive(Clone, Default)]
pub struct TlsLibraries(Arc<RwLock<HashMap<u32, Arc<str>>>>);

impl TlsLibraries {
    pub fn insert(&self, id: u32, name: &str) {
        let mut names = self.0.write().unwrap_or_else(|e| e.into_inner());
        names.insert(id, Arc::from(name));
    }

    /// The file's path as its processes map it; a placeholder for an unknown id.
    pub fn name(&self, id: u32) -> Arc<str> {
        let names = self.0.read().unwrap_or_else(|e| e.into_inner());
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Arc::from(format!("library-{id}")))
    }
}

/// A fresh scratch directory for one test (`name` unique per test).
#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("api-guard-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
