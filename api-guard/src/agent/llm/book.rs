//! A bounded table shared by the pipeline and the control socket, kept across restarts as a
//! JSON snapshot in the state directory: one lock, one snapshot schedule, one way to set a
//! corrupt snapshot aside, whatever the table holds (LLM usage, the egress inventory).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use api_guard::discover::persist::{self, PersistError};
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::sync::CancellationToken;

/// A table with a snapshot form.
pub trait Persisted: Send + 'static {
    /// The snapshot's file name in the state directory.
    const FILE: &'static str;
    /// What the table is, for logs ("LLM usage").
    const WHAT: &'static str;
    type Snapshot: Serialize + DeserializeOwned;

    fn snapshot(&self) -> Self::Snapshot;
    /// Folds an earlier snapshot in (through the table's bounds); returns its row count.
    fn restore(&mut self, snapshot: Self::Snapshot) -> usize;
}

pub struct Shared<B>(Arc<Mutex<B>>);

impl<B> Clone for Shared<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<B: Persisted> Shared<B> {
    pub fn new(book: B) -> Self {
        Self(Arc::new(Mutex::new(book)))
    }

    /// The table; a panic elsewhere while it was held leaves it usable (every update is a
    /// whole row).
    pub fn lock(&self) -> MutexGuard<'_, B> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the snapshot (serialised under the lock, written outside it).
    pub fn save(&self, dir: &Path) -> Result<u64, PersistError> {
        let json = serde_json::to_vec(&self.lock().snapshot()).unwrap_or_default();
        persist::write_atomic(dir, B::FILE, &json)
    }

    /// Folds an earlier snapshot in; `Ok(None)` when there is none.
    pub fn load(&self, dir: &Path) -> Result<Option<usize>, PersistError> {
        let Some(bytes) = persist::read_bounded(dir, B::FILE)? else {
            return Ok(None);
        };
        let snapshot = serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt {
            path: dir.join(B::FILE),
            source,
        })?;
        Ok(Some(self.lock().restore(snapshot)))
    }

    /// [`Self::load`], logging the outcome; a corrupt snapshot is set aside (`.corrupt`).
    pub fn load_logged(&self, dir: &Path) {
        match self.load(dir) {
            Ok(Some(rows)) => tracing::info!(table = B::WHAT, rows, "Snapshot loaded"),
            Ok(None) => {}
            Err(error @ PersistError::Corrupt { .. }) => {
                tracing::warn!(table = B::WHAT, %error, "Snapshot unreadable: set aside, starting afresh");
                let _ =
                    std::fs::rename(dir.join(B::FILE), dir.join(format!("{}.corrupt", B::FILE)));
            }
            Err(error) => tracing::warn!(table = B::WHAT, %error, "Snapshot not loaded"),
        }
    }

    /// [`Self::save`] (blocking; small), logging a failure.
    pub fn save_logged(&self, dir: &Path) {
        if let Err(error) = self.save(dir) {
            tracing::warn!(table = B::WHAT, %error, "Writing the snapshot failed");
        }
    }

    /// Writes the snapshot every `every` until shutdown (the caller writes the last one once
    /// the pipeline has stopped).
    pub async fn persist_loop(self, dir: PathBuf, every: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(every);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let (book, dir) = (self.clone(), dir.clone());
                    let _ = tokio::task::spawn_blocking(move || book.save_logged(&dir)).await;
                }
                () = shutdown.cancelled() => break,
            }
        }
    }
}
