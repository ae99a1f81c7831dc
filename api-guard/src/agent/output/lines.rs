//! Where JSON lines go — exchange lines and security events alike: stdout, or a file appended
//! to (rotated by size when limits are set). A line is never split: each goes out whole in one
//! write, under stdout's lock, so the two kinds of line can share stdout.

#[cfg(test)]
use std::sync::{Arc, Mutex};
use std::{
    io::{self, Write},
    path::PathBuf,
};

use super::file::{RotatingFile, Rotation};
use crate::telemetry::Output;

/// `--exchanges` / `--events` target: `-` is stdout, anything else a file path.
#[derive(Debug, Clone)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for Destination {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(s))
        })
    }
}

/// Bytes a buffered writer holds before writing them out.
const BUFFER_BYTES: usize = 64 * 1024;

pub struct LineWriter {
    target: Target,
    /// Buffered writers collect whole lines here until [`LineWriter::flush`] or until full;
    /// unbuffered ones write and flush every line at once.
    buffer: Option<Vec<u8>>,
}

enum Target {
    Stdout(io::Stdout),
    File(RotatingFile),
    #[cfg(test)]
    Memory(Arc<Mutex<Vec<u8>>>),
}

impl LineWriter {
    /// `rotation`: `(max_file_bytes, max_files)` for a file (0 bytes: never rotated).
    pub fn open(
        destination: &Destination,
        rotation: (u64, u32),
        buffered: bool,
    ) -> io::Result<Self> {
        let target = match destination {
            Destination::Stdout => Target::Stdout(io::stdout()),
            Destination::File(path) => {
                Target::File(RotatingFile::open(path, rotation.0, rotation.1)?)
            }
        };
        Ok(Self::with_target(target, buffered))
    }

    fn with_target(target: Target, buffered: bool) -> Self {
        Self {
            target,
            buffer: buffered.then(|| Vec::with_capacity(BUFFER_BYTES)),
        }
    }

    /// A writer into memory, for tests.
    #[cfg(test)]
    pub fn memory(buffered: bool) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (
            Self::with_target(Target::Memory(buf.clone()), buffered),
            buf,
        )
    }

    /// `stdout` or `file` (the metrics' `output` label).
    pub fn label(&self) -> Output {
        match self.target {
            Target::File(_) => Output::File,
            _ => Output::Stdout,
        }
    }

    /// Writes one line (`line` ends with `\n`), or buffers it.
    pub fn write_line(&mut self, line: &[u8]) -> (io::Result<()>, Rotation) {
        let Some(buffer) = self.buffer.as_mut() else {
            return self.target.write(line);
        };
        let mut outcome = (Ok(()), Rotation::default());
        if !buffer.is_empty() && buffer.len() + line.len() > BUFFER_BYTES {
            outcome = self.flush();
        }
        if let Some(buffer) = self.buffer.as_mut() {
            buffer.extend_from_slice(line);
        }
        outcome
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> (io::Result<()>, Rotation) {
        match self.buffer.as_mut() {
            Some(buffer) if !buffer.is_empty() => {
                let outcome = self.target.write(buffer);
                // What failed to go out is dropped: memory stays bounded.
                buffer.clear();
                outcome
            }
            _ => (Ok(()), Rotation::default()),
        }
    }

    /// New rotation limits for a file.
    pub fn set_limits(&mut self, max_bytes: u64, max_files: u32) {
        if let Target::File(file) = &mut self.target {
            file.set_limits(max_bytes, max_files);
        }
    }
}

impl Target {
    /// Writes whole lines in one write and flushes.
    fn write(&mut self, lines: &[u8]) -> (io::Result<()>, Rotation) {
        match self {
            Target::Stdout(out) => {
                let mut out = out.lock();
                (
                    out.write_all(lines).and_then(|()| out.flush()),
                    Rotation::default(),
                )
            }
            Target::File(file) => file.write_line(lines),
            #[cfg(test)]
            Target::Memory(buf) => {
                buf.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(lines);
                (Ok(()), Rotation::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_lines_go_out_whole_on_flush_or_when_full() {
        let (mut w, out) = LineWriter::memory(true);
        w.write_line(b"{\"a\":1}\n").0.unwrap();
        assert!(out.lock().unwrap().is_empty());
        w.flush().0.unwrap();
        assert_eq!(&*out.lock().unwrap(), b"{\"a\":1}\n");
        let line = vec![b'x'; 1000];
        for _ in 0..100 {
            w.write_line(&[&line[..], b"\n"].concat()).0.unwrap();
        }
        // 65 lines of 1001 bytes fill the buffer; they went out together when the 66th came.
        let written = out.lock().unwrap().len() - 8;
        assert_eq!(written, 65 * 1001);
        w.flush().0.unwrap();
        assert_eq!(out.lock().unwrap().len() - 8, 100 * 1001);

        let (mut w, out) = LineWriter::memory(false);
        w.write_line(b"now\n").0.unwrap();
        assert_eq!(&*out.lock().unwrap(), b"now\n");
    }

    #[test]
    fn files_are_appended_and_dash_is_stdout() {
        let dir = std::env::temp_dir().join(format!("ag-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let dest: Destination = path.to_str().unwrap().parse().unwrap();
        let mut w = LineWriter::open(&dest, (0, 0), true).unwrap();
        assert_eq!(w.label().as_str(), "file");
        w.write_line(b"new\n").0.unwrap();
        w.flush().0.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
        assert!(matches!(
            "-".parse::<Destination>(),
            Ok(Destination::Stdout)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
