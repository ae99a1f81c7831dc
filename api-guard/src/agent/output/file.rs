//! The events file with size-based rotation done by the writer: before a line would take the
//! file past `max_file_bytes`, `events.jsonl.N-1` → `.N` … `events.jsonl` → `.1` (the oldest
//! is deleted), then a new `events.jsonl` is opened. A line is never split across files.

use std::{
    ffi::OsString,
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use tracing::warn;

pub struct RotatingFile {
    path: PathBuf,
    /// `None` after a failed reopen; every write tries again.
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    /// Rotate before the file would exceed this; grows by `max_bytes` after a failed rotation
    /// so a persistent failure is not retried (and logged) on every line.
    limit: u64,
    max_bytes: u64,
    max_files: u32,
}

/// What a write did besides writing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    pub rotated: bool,
    pub failed: bool,
}

fn open(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, max_files: u32) -> io::Result<Self> {
        let (file, size) = open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            limit: max_bytes,
            max_bytes,
            max_files,
        })
    }

    pub fn set_limits(&mut self, max_bytes: u64, max_files: u32) {
        self.max_bytes = max_bytes;
        self.limit = max_bytes;
        self.max_files = max_files;
    }

    /// `events.jsonl.N`.
    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Writes one whole line (one `write_all`), rotating first when needed.
    pub fn write_line(&mut self, line: &[u8]) -> (io::Result<()>, Rotation) {
        let mut rotation = Rotation::default();
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size.saturating_add(len) > self.limit {
            match self.rotate() {
                Ok(()) => rotation.rotated = true,
                Err(error) => {
                    rotation.failed = true;
                    self.limit = self.size.saturating_add(self.max_bytes);
                    warn!(path = %self.path.display(), %error, "Rotating the events file failed");
                }
            }
        }
        if self.file.is_none() {
            match open(&self.path) {
                Ok((file, size)) => {
                    self.file = Some(file);
                    self.size = size;
                }
                Err(e) => return (Err(e), rotation),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return (Err(io::ErrorKind::NotFound.into()), rotation);
        };
        let result = file.write_all(line).and_then(|()| file.flush());
        if result.is_ok() {
            self.size += len;
        }
        (result, rotation)
    }

    fn rotate(&mut self) -> io::Result<()> {
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        if self.max_files == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            ignore_missing(std::fs::remove_file(self.numbered(self.max_files)))?;
            for n in (1..self.max_files).rev() {
                ignore_missing(std::fs::rename(self.numbered(n), self.numbered(n + 1)))?;
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        // The old file is complete; from here on the writer is the new file (or none, until a
        // reopen succeeds).
        self.file = None;
        self.size = 0;
        self.limit = self.max_bytes;
        let (file, size) = open(&self.path)?;
        self.file = Some(file);
        self.size = size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                assert!(
                    text.is_empty() || text.ends_with('\n'),
                    "split line in {text:?}"
                );
                text.lines().map(str::to_string).collect()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ag-rotate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn rotates_by_size_keeps_max_files_and_never_splits_lines() {
        let dir = tempdir("size");
        let path = dir.join("events.jsonl");
        // Each line is 10 bytes; 25-byte files hold two lines.
        let mut f = RotatingFile::open(&path, 25, 3).unwrap();
        let mut rotations = 0;
        for i in 0..11 {
            let line = format!("{{\"n\":{i:03}}}\n");
            assert_eq!(line.len(), 10);
            let (result, rotation) = f.write_line(line.as_bytes());
            result.unwrap();
            assert!(!rotation.failed);
            rotations += u32::from(rotation.rotated);
        }
        // 11 lines → files of 2,2,2,2,2,1: 5 rotations, the two oldest files deleted.
        assert_eq!(rotations, 5);
        let n = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(lines(&path), n(&["{\"n\":010}"]));
        assert_eq!(
            lines(&dir.join("events.jsonl.1")),
            n(&["{\"n\":008}", "{\"n\":009}"])
        );
        assert_eq!(
            lines(&dir.join("events.jsonl.2")),
            n(&["{\"n\":006}", "{\"n\":007}"])
        );
        assert_eq!(
            lines(&dir.join("events.jsonl.3")),
            n(&["{\"n\":004}", "{\"n\":005}"])
        );
        assert!(!dir.join("events.jsonl.4").exists());

        // A line longer than the limit gets a file of its own.
        let long = format!("{}\n", "x".repeat(40));
        f.write_line(long.as_bytes()).0.unwrap();
        assert_eq!(lines(&path), vec!["x".repeat(40)]);
        assert_eq!(lines(&dir.join("events.jsonl.1")), n(&["{\"n\":010}"]));

        // 0 = never rotate.
        f.set_limits(0, 3);
        for _ in 0..10 {
            let (r, rotation) = f.write_line(b"0123456789\n");
            r.unwrap();
            assert_eq!(rotation, Rotation::default());
        }
        assert_eq!(lines(&path).len(), 11);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn existing_file_size_counts_and_max_files_zero_discards() {
        let dir = tempdir("zero");
        let path = dir.join("events.jsonl");
        std::fs::write(&path, "0123456789\n0123456789\n").unwrap();
        let mut f = RotatingFile::open(&path, 30, 0).unwrap();
        let (r, rotation) = f.write_line(b"abcdefghij\n");
        r.unwrap();
        assert!(rotation.rotated);
        assert_eq!(lines(&path), vec!["abcdefghij".to_string()]);
        assert!(!dir.join("events.jsonl.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_rotation_keeps_writing_and_backs_off() {
        let dir = tempdir("fail");
        let path = dir.join("events.jsonl");
        let mut f = RotatingFile::open(&path, 15, 2).unwrap();
        f.write_line(b"0123456789\n").0.unwrap();
        // `.2` is a non-empty directory: removing the oldest file fails.
        std::fs::create_dir_all(dir.join("events.jsonl.2").join("x")).unwrap();
        let (r, rotation) = f.write_line(b"abcdefghij\n");
        r.unwrap();
        assert!(rotation.failed && !rotation.rotated);
        // Not retried on the very next line (limit grew by max_bytes)…
        let (r, rotation) = f.write_line(b"ABC\n");
        r.unwrap();
        assert_eq!(rotation, Rotation::default());
        assert_eq!(lines(&path).len(), 3);
        // …and once the obstacle is gone, rotation resumes.
        std::fs::remove_dir_all(dir.join("events.jsonl.2")).unwrap();
        let (r, rotation) = f.write_line(b"klmnopqrst\n");
        r.unwrap();
        assert!(rotation.rotated);
        assert_eq!(lines(&path), vec!["klmnopqrst".to_string()]);
        assert_eq!(lines(&dir.join("events.jsonl.1")).len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
