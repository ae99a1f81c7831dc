//! Which BPF programs, links and maps a process holds, and whether they still exist.
//! Used to prove the daemon leaves nothing loaded after it exits (no bpftool needed).

use std::collections::BTreeSet;
use std::fs;
use std::io;

use anyhow::{Context, Result};

/// Kernel object ids held through a process's file descriptors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BpfObjects {
    pub progs: BTreeSet<u32>,
    pub links: BTreeSet<u32>,
    pub maps: BTreeSet<u32>,
}

impl BpfObjects {
    pub fn is_empty(&self) -> bool {
        self.progs.is_empty() && self.links.is_empty() && self.maps.is_empty()
    }
}

fn fdinfo_id(info: &str, key: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// Scans /proc/<pid>/fd for `anon_inode:bpf-prog`, `bpf_link` and `bpf-map` descriptors
/// and reads their ids from fdinfo. A link also contributes the program it holds.
pub fn held_by(pid: u32) -> Result<BpfObjects> {
    let mut objs = BpfObjects::default();
    let dir = format!("/proc/{pid}/fd");
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let entry = entry?;
        let Ok(target) = fs::read_link(entry.path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy();
        let fd = entry.file_name().to_string_lossy().into_owned();
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
            continue;
        };
        match target.as_ref() {
            "anon_inode:bpf-prog" => objs.progs.extend(fdinfo_id(&info, "prog_id:")),
            "anon_inode:bpf_link" => {
                objs.links.extend(fdinfo_id(&info, "link_id:"));
                objs.progs.extend(fdinfo_id(&info, "prog_id:"));
            }
            "anon_inode:bpf-map" => objs.maps.extend(fdinfo_id(&info, "map_id:")),
            _ => {}
        }
    }
    Ok(objs)
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;

/// The `*_GET_FD_BY_ID` member of `union bpf_attr`.
#[repr(C)]
struct GetFdById {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

fn exists(cmd: libc::c_long, id: u32) -> Result<bool> {
    let attr = GetFdById {
        id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: attr is a valid bpf_attr prefix of the size we pass; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            &attr as *const GetFdById,
            std::mem::size_of::<GetFdById>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
        unsafe { libc::close(fd as libc::c_int) };
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOENT) => Ok(false),
        _ => Err(err).with_context(|| format!("bpf(cmd {cmd}, id {id})")),
    }
}

pub fn prog_exists(id: u32) -> Result<bool> {
    exists(BPF_PROG_GET_FD_BY_ID, id)
}

pub fn link_exists(id: u32) -> Result<bool> {
    exists(BPF_LINK_GET_FD_BY_ID, id)
}

pub fn map_exists(id: u32) -> Result<bool> {
    exists(BPF_MAP_GET_FD_BY_ID, id)
}

/// The subset of `objs` the kernel still has.
pub fn still_loaded(objs: &BpfObjects) -> Result<BpfObjects> {
    let mut left = BpfObjects::default();
    for &id in &objs.progs {
        if prog_exists(id)? {
            left.progs.insert(id);
        }
    }
    for &id in &objs.links {
        if link_exists(id)? {
            left.links.insert(id);
        }
    }
    for &id in &objs.maps {
        if map_exists(id)? {
            left.maps.insert(id);
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_parsing() {
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1\nlink_type:\tperf\nlink_id:\t7\nprog_tag:\tabc\nprog_id:\t42\n";
        assert_eq!(fdinfo_id(info, "link_id:"), Some(7));
        assert_eq!(fdinfo_id(info, "prog_id:"), Some(42));
        assert_eq!(fdinfo_id(info, "map_id:"), None);
    }
}
