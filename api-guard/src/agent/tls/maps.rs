//! Process discovery from `/proc`: which files each process executes code from.
//!
//! Every executable file-backed mapping is a candidate for TLS hooks (a shared
//! TLS library, or an executable with one linked in). Files are identified by
//! `(dev, inode)` as the kernel reports them in `/proc/PID/maps`, so one file
//! mapped by many processes, or seen through different container paths, is
//! inspected once.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// `/proc/PID/maps` is read up to this size; a process with more mappings than that
/// (roughly 80k lines) has its remaining mappings ignored.
pub const MAX_MAPS_SIZE: u64 = 8 << 20;

/// One executable file mapped into a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    /// The path as in `/proc/PID/maps`, in the process's mount namespace, without
    /// the ` (deleted)` suffix. Raw: the kernel's `\012` escape for a newline in a
    /// name is not decoded, and non-UTF-8 bytes were replaced, so such paths will
    /// not open (`(dev, inode)` still identifies the file).
    pub path: String,
    /// Device in the kernel's `st_dev` encoding (equal to `MetadataExt::dev()` of the file).
    pub dev: u64,
    pub inode: u64,
    /// The file was unlinked (or replaced, e.g. by a package upgrade) after it was
    /// mapped; `path` may now name another file or none.
    pub deleted: bool,
}

const DELETED_SUFFIX: &str = " (deleted)";

/// Executable file-backed mappings in the text of one `/proc/PID/maps`, deduplicated
/// by `(dev, inode)` in order of first appearance.
///
/// Skipped: non-executable mappings, anonymous ones (inode 0), pseudo paths such as
/// `[vdso]`/`[stack]`/`[anon:...]` (anything not starting with `/`), memfd
/// (`/memfd:...`, no file to open by path) and shared anonymous memory
/// (`/dev/zero`). Malformed lines are ignored.
pub fn exec_mappings(maps: &str) -> Vec<MappedFile> {
    let mut out: Vec<MappedFile> = Vec::new();
    for line in maps.lines() {
        let Some(file) = parse_line(line) else {
            continue;
        };
        if !out
            .iter()
            .any(|f| f.dev == file.dev && f.inode == file.inode)
        {
            out.push(file);
        }
    }
    out
}

/// Parses `start-end perms offset major:minor inode   path`. The path is the rest of
/// the line after the padding, so it may contain spaces.
fn parse_line(line: &str) -> Option<MappedFile> {
    let mut rest = line;
    let mut field = || {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        let (value, tail) = rest.split_at(end);
        rest = tail;
        value
    };
    let _range = field();
    let perms = field();
    let _offset = field();
    let dev = field();
    let inode = field();
    let path = rest.trim_start_matches(' ');

    if perms.as_bytes().get(2) != Some(&b'x') {
        return None;
    }
    let inode: u64 = inode.parse().ok()?;
    if inode == 0 || !path.starts_with('/') {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(DELETED_SUFFIX) {
        Some(path) => (path, true),
        None => (path, false),
    };
    if path.starts_with("/memfd:") || path == "/dev/zero" {
        return None;
    }
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some(MappedFile {
        path: path.to_owned(),
        dev: makedev(major, minor),
        inode,
        deleted,
    })
}

/// The kernel's `st_dev` encoding of `major:minor` (glibc's `makedev`), in safe code.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

/// Host-visible path of `path` as process `pid` sees it: `<proc_root>/<pid>/root<path>`.
///
/// Works across mount namespaces (containers) as long as the process lives. Paths
/// from `/proc/PID/maps` contain no symlinks, but the file tree belongs to the
/// process and may change under us. Comparing the opened file's `(dev, inode)`
/// with the mapping's catches that on ext4/xfs, but on overlayfs (container
/// rootfs) and btrfs subvolumes `stat` may legitimately report a different
/// identity than `/proc/PID/maps`, so treat a mismatch as "verify", not "reject".
pub fn host_path(proc_root: &Path, pid: u32, path: &str) -> PathBuf {
    let mut full: OsString = proc_root.join(pid.to_string()).join("root").into();
    if !path.starts_with('/') {
        full.push("/");
    }
    full.push(path);
    full.into()
}

/// PIDs of all processes: the numeric entries of `proc_root` (sorted).
pub fn list_pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let name = name.to_str()?;
            // `parse` alone would accept "+1".
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            name.parse().ok()
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Executable files mapped by `pid` (see [`exec_mappings`]). A process that has
/// exited is `Ok(vec![])`; kernel threads and zombies have no mappings either.
/// Other errors (e.g. permission denied) are returned.
pub fn process_exec_files(proc_root: &Path, pid: u32) -> io::Result<Vec<MappedFile>> {
    let path = proc_root.join(pid.to_string()).join("maps");
    let mut bytes = Vec::new();
    let read = std::fs::File::open(&path)
        .and_then(|file| file.take(MAX_MAPS_SIZE).read_to_end(&mut bytes));
    match read {
        Ok(_) => {}
        Err(e) if gone(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    if bytes.len() as u64 >= MAX_MAPS_SIZE {
        // Drop the line cut by the limit.
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
    }
    Ok(exec_mappings(&String::from_utf8_lossy(&bytes)))
}

/// Errors that mean the process exited while we looked.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const SAMPLE: &str = "\
55d0c8a00000-55d0c8a02000 r--p 00000000 fd:01 1311                       /usr/bin/app
55d0c8a02000-55d0c8a08000 r-xp 00002000 fd:01 1311                       /usr/bin/app
55d0c8c00000-55d0c8c21000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f1000000000-7f1000010000 r-xp 00000000 00:00 0                          [anon:jit]
7f2000000000-7f2000100000 r-xp 00000000 103:02 2621                      /usr/lib/x86_64-linux-gnu/libssl.so.3
7f2000100000-7f2000200000 r--p 00100000 103:02 2621                      /usr/lib/x86_64-linux-gnu/libssl.so.3
7f2000200000-7f2000300000 r-xp 00200000 103:02 2621                      /usr/lib/x86_64-linux-gnu/libssl.so.3
7f3000000000-7f3000001000 r-xp 00000000 00:2a 77                         /opt/My App/lib tls.so
7f4000000000-7f4000001000 r-xp 00000000 08:11 99                         /tmp/old lib.so (deleted)
7f5000000000-7f5000001000 r-xp 00000000 00:01 4242                       /memfd:wasm (deleted)
7f6000000000-7f6000001000 rwxs 00000000 00:01 5151                       /dev/zero (deleted)
7f7000000000-7f7000001000 r-xp 00000000 00:05 0                          /weird/zero-inode
7f8000000000-7f8000001000 r-xp 00000000 fd:01 1311                       /proc/1/root/usr/bin/app
7f9000000000-7f9000001000 r-xp 00000000 fd:01 1312                       relative/path
7fa000000000-7fa000001000 r-xp 00000000 1000:100000 7                    /big/dev
garbage line
7fb000000000-7fb000001000 r-xp 00000000 zz:01 8                          /bad/dev
7fc000000000-7fc000001000 r-xp 00000000 fd:01 notanumber                 /bad/inode
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
7ffe00000000-7ffe00021000 rw-p 00000000 00:00 0                          [stack]
";

    fn file(path: &str, dev: u64, inode: u64, deleted: bool) -> MappedFile {
        MappedFile {
            path: path.to_owned(),
            dev,
            inode,
            deleted,
        }
    }

    #[test]
    fn parses_synthetic_maps() {
        assert_eq!(
            exec_mappings(SAMPLE),
            vec![
                file("/usr/bin/app", makedev(0xfd, 1), 1311, false),
                file(
                    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                    makedev(0x103, 2),
                    2621,
                    false
                ),
                file("/opt/My App/lib tls.so", makedev(0, 0x2a), 77, false),
                file("/tmp/old lib.so", makedev(8, 0x11), 99, true),
                file("/big/dev", makedev(0x1000, 0x100000), 7, false),
            ]
        );
        assert_eq!(exec_mappings(""), vec![]);
    }

    #[test]
    fn makedev_matches_glibc() {
        assert_eq!(makedev(0xfd, 1), 0xfd01);
        assert_eq!(makedev(8, 0x11), 0x811);
        assert_eq!(makedev(0, 0x2a), 0x2a);
        assert_eq!(makedev(0x103, 2), 0x10302);
        assert_eq!(makedev(0x1000, 0x10_0000), 0x1001_0000_0000);
        for (major, minor) in [
            (0xfd, 1),
            (0x103, 0x1234),
            (0xfff, 0xfffff),
            (0x1000, 0x10_0000),
            (u32::MAX, u32::MAX),
            (0, 0),
        ] {
            assert_eq!(makedev(major, minor), libc::makedev(major, minor));
        }
    }

    #[test]
    fn host_path_joins_under_root() {
        let proc_root = Path::new("/proc");
        assert_eq!(
            host_path(proc_root, 42, "/usr/lib/libssl.so.3"),
            PathBuf::from("/proc/42/root/usr/lib/libssl.so.3")
        );
        assert_eq!(
            host_path(proc_root, 7, "/opt/My App/x"),
            PathBuf::from("/proc/7/root/opt/My App/x")
        );
        // Never escapes to the host root, even for a path without a leading '/'.
        assert_eq!(
            host_path(Path::new("/host/proc"), 7, "x"),
            PathBuf::from("/host/proc/7/root/x")
        );
    }

    #[test]
    fn own_executable_dev_and_inode_match_stat() {
        let proc_root = Path::new("/proc");
        let pid = std::process::id();
        let files = process_exec_files(proc_root, pid).unwrap();
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        let meta = std::fs::metadata(&exe).unwrap();
        let mapped = files
            .iter()
            .find(|f| Path::new(&f.path) == exe)
            .unwrap_or_else(|| panic!("{} not in {files:?}", exe.display()));
        assert!(!mapped.deleted);
        assert_eq!((mapped.dev, mapped.inode), (meta.dev(), meta.ino()));
        // Opened through /proc/PID/root, as the agent does for other namespaces.
        let via_root = std::fs::metadata(host_path(proc_root, pid, &mapped.path)).unwrap();
        assert_eq!((mapped.dev, mapped.inode), (via_root.dev(), via_root.ino()));
        // Every mapped library that still exists agrees too (libc at least).
        let mut checked = 0;
        for f in files.iter().filter(|f| !f.deleted) {
            if let Ok(m) = std::fs::metadata(host_path(proc_root, pid, &f.path)) {
                assert_eq!((f.dev, f.inode), (m.dev(), m.ino()), "{}", f.path);
                checked += 1;
            }
        }
        assert!(checked >= 2, "{files:?}");
    }

    #[test]
    fn lists_pids() {
        let pids = list_pids(Path::new("/proc")).unwrap();
        assert!(pids.contains(&std::process::id()));
        assert!(pids.contains(&1));
        assert!(pids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn fake_proc_root() {
        let root = std::env::temp_dir().join(format!("api-guard-tls-maps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for name in ["1", "22", "self", "+3", "4a", "007"] {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        std::fs::write(root.join("net"), "").unwrap();
        assert_eq!(list_pids(&root).unwrap(), vec![1, 7, 22]);

        std::fs::write(root.join("22").join("maps"), SAMPLE).unwrap();
        assert_eq!(process_exec_files(&root, 22).unwrap().len(), 5);
        // Vanished process / no maps file.
        assert_eq!(process_exec_files(&root, 1).unwrap(), vec![]);
        assert_eq!(process_exec_files(&root, 999_999).unwrap(), vec![]);

        // Over the size limit: the line cut in the middle is dropped, the rest parsed.
        let line = "7f00-7f01 r-xp 00000000 fd:01 1000 /lib/a.so\n";
        let mut big = String::new();
        while (big.len() as u64) < MAX_MAPS_SIZE - 20 {
            big.push_str(line);
        }
        big.push_str("7f00-7f01 r-xp 00000000 fd:01 2000 /lib/cut-here-by-the-limit.so\n");
        std::fs::write(root.join("1").join("maps"), &big).unwrap();
        let files = process_exec_files(&root, 1).unwrap();
        assert_eq!(
            files,
            vec![file("/lib/a.so", makedev(0xfd, 1), 1000, false)]
        );

        assert!(list_pids(&root.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn vanished_real_process() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process_exec_files(Path::new("/proc"), pid).unwrap(), vec![]);
    }
}
