//! The two file-system syscalls the daemon needs: which file system a path is on (cgroup2,
//! bpffs) and mounting a pseudo file system (tracefs, bpffs) that is missing.

use std::{ffi::CString, io, path::Path};

pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The `f_type` magic of the file system holding `path`.
pub fn magic(path: &Path) -> io::Result<i64> {
    let c = c_path(path)?;
    // SAFETY: statfs fills the zeroed struct for a valid NUL-terminated path.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fs.f_type as i64)
}

/// `mount -t fstype source target`.
pub fn mount(fstype: &str, source: &str, target: &Path) -> io::Result<()> {
    let bad = |_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte");
    let (fstype, source) = (
        CString::new(fstype).map_err(bad)?,
        CString::new(source).map_err(bad)?,
    );
    let target = c_path(target)?;
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
