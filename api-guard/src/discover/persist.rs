//! The inventory on disk: `<state_dir>/inventory.json`, so that the map of the API survives
//! restarts. Written atomically (a private temporary file, fsync, rename), so a crash leaves
//! either the old snapshot or the new one, never half of one. The directory is the daemon's
//! own (mode 0700); a snapshot that cannot be read is moved aside, not silently dropped.

use std::{
    fs::{self, OpenOptions},
    io::{self, Write as _},
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt},
    path::{Path, PathBuf},
};

use super::inventory::Inventory;

pub const SNAPSHOT_FILE: &str = "inventory.json";
/// Largest snapshot loaded (a full default inventory is far smaller).
const MAX_SNAPSHOT_BYTES: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {reason}")]
    Unsafe { path: PathBuf, reason: &'static str },
    #[error("{path} is not an inventory snapshot: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} is larger than {MAX_SNAPSHOT_BYTES} bytes")]
    TooLarge { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the state directory (mode 0700) when missing, and refuses one that other users
/// could write to: whoever can replace the snapshot can forge the inventory.
pub fn prepare_dir(dir: &Path) -> Result<(), PersistError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
    }
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
    let unsafe_dir = |reason| PersistError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory (symbolic links are refused)"));
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_dir("owned by another user"));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(unsafe_dir("writable by group or others"));
    }
    Ok(())
}

pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

/// Writes the snapshot atomically; returns its size in bytes.
pub fn save(inv: &Inventory, dir: &Path) -> Result<u64, PersistError> {
    let json = serde_json::to_vec(inv).map_err(|e| PersistError::Io {
        path: snapshot_path(dir),
        source: io::Error::other(e),
    })?;
    write_atomic(dir, SNAPSHOT_FILE, &json)
}

/// Writes `dir/name` atomically (private temporary file, fsync, rename); returns its size.
/// Other snapshots of the daemon's state (LLM usage) share it.
pub fn write_atomic(dir: &Path, name: &str, json: &[u8]) -> Result<u64, PersistError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    // A leftover from a crash is ours to replace; O_NOFOLLOW keeps a planted link from
    // redirecting the write.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&tmp)(e)),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(json)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(json.len() as u64)
}

/// Folds the snapshot in `dir` into `inv` (through its caps). `Ok(None)` when there is none;
/// [`PersistError::Corrupt`] leaves the file for [`set_aside`].
pub fn load(inv: &mut Inventory, dir: &Path) -> Result<Option<usize>, PersistError> {
    let path = snapshot_path(dir);
    let Some(bytes) = read_bounded(dir, SNAPSHOT_FILE)? else {
        return Ok(None);
    };
    inv.load_snapshot(&bytes)
        .map(Some)
        .map_err(|source| PersistError::Corrupt { path, source })
}

/// Reads `dir/name` (not through a symbolic link, at most [`MAX_SNAPSHOT_BYTES`]);
/// `Ok(None)` when there is none.
pub fn read_bounded(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, PersistError> {
    let path = dir.join(name);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let len = file.metadata().map_err(io_err(&path))?.len();
    if len > MAX_SNAPSHOT_BYTES {
        return Err(PersistError::TooLarge { path });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    io::Read::read_to_end(&mut io::Read::take(file, MAX_SNAPSHOT_BYTES), &mut bytes)
        .map_err(io_err(&path))?;
    Ok(Some(bytes))
}

/// Moves an unreadable snapshot to `inventory.json.corrupt` (replacing an older one) so the
/// next snapshot does not overwrite the evidence; returns where it went.
pub fn set_aside(dir: &Path) -> Result<PathBuf, PersistError> {
    let from = snapshot_path(dir);
    let to = dir.join(format!("{SNAPSHOT_FILE}.corrupt"));
    fs::rename(&from, &to).map_err(io_err(&from))?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::inventory::{InventoryConfig, Observation};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ag-persist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample() -> Inventory {
        let mut inv = Inventory::new(&InventoryConfig::default());
        for id in 1..=3 {
            inv.observe(&Observation {
                host: "api.example.com",
                method: "GET",
                path: &format!("/users/{id}"),
                status: Some(200),
                time: 1_700_000_000,
                ..Observation::default()
            });
        }
        inv
    }

    #[test]
    fn snapshots_round_trip_through_a_private_directory() {
        let dir = temp_dir("rt").join("state");
        prepare_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let mut empty = Inventory::new(&InventoryConfig::default());
        assert_eq!(load(&mut empty, &dir).unwrap(), None);

        let bytes = save(&sample(), &dir).unwrap();
        let meta = fs::metadata(snapshot_path(&dir)).unwrap();
        assert_eq!(
            (meta.len(), meta.permissions().mode() & 0o777),
            (bytes, 0o600)
        );
        // Saving again replaces it (the temporary file never lingers).
        save(&sample(), &dir).unwrap();
        assert!(!dir.join(".inventory.json.tmp").exists());

        let mut inv = Inventory::new(&InventoryConfig::default());
        assert_eq!(load(&mut inv, &dir).unwrap(), Some(1));
        let eps: Vec<_> = inv
            .endpoints()
            .map(|e| (e.template.as_str(), e.count))
            .collect();
        assert_eq!(eps, [("/users/{userId}", 3)]);
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn corrupt_snapshots_are_reported_and_set_aside() {
        let dir = temp_dir("corrupt");
        prepare_dir(&dir).unwrap();
        fs::write(
            snapshot_path(&dir),
            b"{\"version\":1,\"endpoints\":[{\"host\":",
        )
        .unwrap();
        let mut inv = Inventory::new(&InventoryConfig::default());
        let err = load(&mut inv, &dir).unwrap_err();
        assert!(matches!(err, PersistError::Corrupt { .. }), "{err}");
        assert!(inv.is_empty());
        let aside = set_aside(&dir).unwrap();
        assert!(aside.ends_with("inventory.json.corrupt") && aside.exists());
        assert_eq!(load(&mut inv, &dir).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unsafe_directories_are_refused() {
        let dir = temp_dir("unsafe");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        let link = temp_dir("unsafe-link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = prepare_dir(&link).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        // A planted link in place of the snapshot is not followed.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", snapshot_path(&dir)).unwrap();
        let mut inv = Inventory::new(&InventoryConfig::default());
        assert!(matches!(load(&mut inv, &dir), Err(PersistError::Io { .. })));
        fs::remove_file(&link).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
