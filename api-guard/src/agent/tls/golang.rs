//! Go binaries: their Go version (`.go.buildinfo`) and where `crypto/tls.(*Conn).Read` and
//! `.Write` live, from the Go function table (`.gopclntab`), which `-ldflags=-s -w` keeps
//! (the runtime needs it for stack traces), so stripped binaries are found too.
//!
//! Both sections are hostile input: every offset is checked, sizes are capped, names are
//! compared in place (no allocation per function), and nothing here can panic.
//! Formats (from the Go toolchain's `debug/buildinfo` and `runtime/symtab.go`):
//! - build info: a 32-byte header `"\xff Go buildinf:"`, pointer size, flags; with flag 2
//!   (Go ≥ 1.18) the version string follows inline (uvarint length + bytes), otherwise two
//!   pointers at offset 16 lead to Go string headers `{ptr, len}` (Go 1.13–1.17);
//! - function table: magic (`0xfffffffa` Go 1.16–1.17, `0xfffffff0` 1.18–1.19, `0xfffffff1`
//!   1.20+), a header of pointer-sized words, then `nfunc + 1` function table entries
//!   `(entry, funcoff)` (`u32` offsets from the text start since 1.18, pointers before), each
//!   `funcoff` leading to a `_func` whose second field is its name's offset in the name table.

use object::elf::{FileHeader64, SectionHeader64};
use object::read::elf::{SectionHeader, SectionTable};
use object::{LittleEndian, ReadRef};

type Sections<'a, R> = SectionTable<'a, FileHeader64<LittleEndian>, R>;
type Section = SectionHeader64<LittleEndian>;
const ENDIAN: LittleEndian = LittleEndian;

/// `.gopclntab` is read whole; larger ones (binaries of many hundreds of MiB) are refused.
pub const MAX_PCLNTAB_SIZE: u64 = 256 << 20;
/// Bytes of `.go.buildinfo` read (the version comes first; module info after it is not used).
const MAX_BUILDINFO_READ: u64 = 4096;
/// Longest version string accepted (`go1.22.5 X:boringcrypto` and the like).
const MAX_VERSION_LEN: u64 = 128;
const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// The functions api-guard hooks in Go's `crypto/tls`.
pub const CONN_WRITE: &str = "crypto/tls.(*Conn).Write";
pub const CONN_READ: &str = "crypto/tls.(*Conn).Read";
/// The copy `(*Conn).Read` makes of decrypted bytes into its buffer calls it.
pub const MEMMOVE: &str = "runtime.memmove";

/// What a Go binary says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoBinary {
    /// The toolchain's version string (`go1.19.8`), if the build info could be read.
    pub version: Option<String>,
    /// Virtual address range `[start, end)` of `(*Conn).Write`, if linked in.
    pub write: Option<(u64, u64)>,
    /// Virtual address range of `(*Conn).Read`.
    pub read: Option<(u64, u64)>,
    /// Virtual address range of `runtime.memmove`.
    pub memmove: Option<(u64, u64)>,
}

impl GoBinary {
    /// `(major, minor)` of the Go version: `go1.19.8` → `(1, 19)`; `None` if unknown.
    pub fn release(&self) -> Option<(u32, u32)> {
        parse_release(self.version.as_deref()?)
    }
}

/// Parses `goMAJOR.MINOR` from the first word of a version string that has one
/// (`go1.21rc2`, `devel go1.22-abc`, `go1.19.8 X:boringcrypto`).
pub fn parse_release(version: &str) -> Option<(u32, u32)> {
    let word = version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("go"))?;
    let mut parts = word.splitn(2, '.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// `Ok(None)` if the file has neither Go section (not a Go binary); `Err` if a Go section is
/// malformed.
pub fn inspect<'a, R: ReadRef<'a>>(
    data: R,
    sections: &Sections<'a, R>,
) -> Result<Option<GoBinary>, String> {
    let pclntab = find(sections, &[b".gopclntab", b".data.rel.ro.gopclntab"]);
    let buildinfo = find(sections, &[b".go.buildinfo"]);
    if pclntab.is_none() && buildinfo.is_none() {
        return Ok(None);
    }
    let mut go = GoBinary {
        version: buildinfo.and_then(|s| read_version(data, sections, s)),
        ..GoBinary::default()
    };
    if let Some(section) = pclntab {
        let size = section.sh_size(ENDIAN);
        if size > MAX_PCLNTAB_SIZE {
            return Err(format!(".gopclntab too large ({size} bytes)"));
        }
        let table = data
            .read_bytes_at(section.sh_offset(ENDIAN), size)
            .map_err(|()| ".gopclntab out of bounds".to_string())?;
        let text = find(sections, &[b".text"]).map_or(0, |s| s.sh_addr(ENDIAN));
        let found = find_functions(table, text, &[CONN_WRITE, CONN_READ, MEMMOVE])?;
        go.write = found[0];
        go.read = found[1];
        go.memmove = found[2];
    }
    Ok(Some(go))
}

fn find<'a, R: ReadRef<'a>>(sections: &Sections<'a, R>, names: &[&[u8]]) -> Option<&'a Section> {
    names.iter().find_map(|name| {
        sections
            .section_by_name(ENDIAN, name)
            .map(|(_, s)| s)
            .filter(|s| s.sh_type(ENDIAN) != object::elf::SHT_NOBITS)
    })
}

/// The version string from `.go.buildinfo` (either layout), if well formed.
fn read_version<'a, R: ReadRef<'a>>(
    data: R,
    sections: &Sections<'a, R>,
    section: &Section,
) -> Option<String> {
    let len = section.sh_size(ENDIAN).min(MAX_BUILDINFO_READ);
    let info = data.read_bytes_at(section.sh_offset(ENDIAN), len).ok()?;
    if info.len() < 32 || &info[..14] != BUILDINFO_MAGIC {
        return None;
    }
    let (ptr_size, flags) = (info[14], info[15]);
    let bytes = if flags & 2 != 0 {
        let (len, used) = uvarint(&info[32..])?;
        if len > MAX_VERSION_LEN {
            return None;
        }
        let start = 32 + used;
        info.get(start..start + usize::try_from(len).ok()?)?
            .to_vec()
    } else {
        // Pointer to a Go string header `{data, len}` (little-endian only: we refuse others).
        if ptr_size != 8 || flags & 1 != 0 {
            return None;
        }
        let header_at = u64::from_le_bytes(info.get(16..24)?.try_into().ok()?);
        let header = read_vaddr(data, sections, header_at, 16)?;
        let ptr = u64::from_le_bytes(header.get(..8)?.try_into().ok()?);
        let len = u64::from_le_bytes(header.get(8..16)?.try_into().ok()?);
        if len > MAX_VERSION_LEN {
            return None;
        }
        read_vaddr(data, sections, ptr, len)?.to_vec()
    };
    let version = String::from_utf8(bytes).ok()?;
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        .then_some(version)
}

/// `len` bytes at virtual address `vaddr`, from the file-backed section containing them.
fn read_vaddr<'a, R: ReadRef<'a>>(
    data: R,
    sections: &Sections<'a, R>,
    vaddr: u64,
    len: u64,
) -> Option<&'a [u8]> {
    let section = sections.iter().find(|s| {
        let (addr, size) = (s.sh_addr(ENDIAN), s.sh_size(ENDIAN));
        s.sh_type(ENDIAN) != object::elf::SHT_NOBITS
            && addr != 0
            && vaddr >= addr
            && vaddr
                .checked_add(len)
                .is_some_and(|end| end <= addr.saturating_add(size))
    })?;
    let offset = section
        .sh_offset(ENDIAN)
        .checked_add(vaddr - section.sh_addr(ENDIAN))?;
    data.read_bytes_at(offset, len).ok()
}

/// Go's unsigned varint (`encoding/binary.Uvarint`): `(value, bytes used)`.
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Function table layouts by magic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Go 1.16–1.17: pointer-sized entries, no text start in the header.
    Go116,
    /// Go 1.18+: `u32` entry offsets from the header's text start.
    Go118,
}

fn word(table: &[u8], at: usize, size: usize) -> Result<u64, String> {
    let bytes = at
        .checked_add(size)
        .and_then(|end| table.get(at..end))
        .ok_or_else(|| format!(".gopclntab: read at {at} out of bounds"))?;
    Ok(match size {
        4 => u64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        _ => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            u64::from_le_bytes(b)
        }
    })
}

fn to_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!(".gopclntab: offset {v} out of range"))
}

/// Address ranges of the functions named `wanted` in function table `table` (`None` for
/// those absent). `text` is the `.text` address, used when the header's text start is 0
/// (position-independent builds relocate it at run time).
pub fn find_functions(
    table: &[u8],
    text: u64,
    wanted: &[&str],
) -> Result<Vec<Option<(u64, u64)>>, String> {
    let magic = word(table, 0, 4)?;
    let layout = match magic {
        0xffff_fffa => Layout::Go116,
        0xffff_fff0 | 0xffff_fff1 => Layout::Go118,
        _ => return Err(format!(".gopclntab: unknown magic {magic:#x}")),
    };
    let ptr = usize::from(*table.get(7).ok_or(".gopclntab: short header")?);
    if ptr != 8 || table.get(4..6) != Some(&[0, 0]) {
        return Err(format!(".gopclntab: unsupported pointer size {ptr}"));
    }
    let field = |i: usize| word(table, 8 + i * ptr, ptr);
    let nfunc = to_usize(field(0)?)?;
    let (text_start, names_at, pcln_at) = match layout {
        Layout::Go116 => (0, field(2)?, field(6)?),
        Layout::Go118 => (field(2)?, field(3)?, field(7)?),
    };
    let text_start = if text_start == 0 { text } else { text_start };
    let names = table
        .get(to_usize(names_at)?..)
        .ok_or(".gopclntab: name table out of bounds")?;
    let pcln = table
        .get(to_usize(pcln_at)?..)
        .ok_or(".gopclntab: function table out of bounds")?;
    let entry_size = match layout {
        Layout::Go116 => 2 * ptr,
        Layout::Go118 => 8,
    };
    // Every entry must fit: this bounds nfunc by the section size.
    let needed = nfunc
        .checked_add(1)
        .and_then(|n| n.checked_mul(entry_size))
        .ok_or(".gopclntab: function count overflows")?;
    if needed > pcln.len() {
        return Err(format!(".gopclntab: {nfunc} functions do not fit"));
    }
    let entry = |i: usize| -> Result<u64, String> {
        match layout {
            Layout::Go116 => word(pcln, i * entry_size, ptr),
            Layout::Go118 => Ok(text_start.saturating_add(word(pcln, i * entry_size, 4)?)),
        }
    };
    let mut found = vec![None; wanted.len()];
    for i in 0..nfunc {
        let funcoff = match layout {
            Layout::Go116 => word(pcln, i * entry_size + ptr, ptr)?,
            Layout::Go118 => word(pcln, i * entry_size + 4, 4)?,
        };
        // `_func`: entry (pointer, or u32 offset since 1.18), then `nameoff int32`.
        let nameoff_at = to_usize(funcoff)?.saturating_add(match layout {
            Layout::Go116 => ptr,
            Layout::Go118 => 4,
        });
        let Ok(nameoff) = word(pcln, nameoff_at, 4) else {
            continue;
        };
        let Some(name) = names.get(to_usize(nameoff)?..) else {
            continue;
        };
        for (slot, want) in found.iter_mut().zip(wanted) {
            // The name must end right after the wanted text (a NUL), not merely start with it.
            if slot.is_none()
                && name.starts_with(want.as_bytes())
                && name.get(want.len()) == Some(&0)
            {
                let (start, end) = (entry(i)?, entry(i + 1)?);
                if start < end {
                    *slot = Some((start, end));
                }
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Go 1.18+ table with functions `names` at text offsets 0x100 * (i + 1), each 0x80 long.
    fn table_118(names: &[&str], text_start: u64) -> Vec<u8> {
        let nfunc = names.len();
        let mut name_table = Vec::new();
        let mut nameoffs = Vec::new();
        for n in names {
            nameoffs.push(name_table.len() as u32);
            name_table.extend_from_slice(n.as_bytes());
            name_table.push(0);
        }
        let header_len = 8 + 8 * 8;
        let names_at = header_len;
        let pcln_at = names_at + name_table.len();
        let ftab_len = (nfunc + 1) * 8;
        let mut out = Vec::new();
        out.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 1, 8]);
        for v in [
            nfunc as u64,
            0,
            text_start,
            names_at as u64,
            0,
            0,
            0,
            pcln_at as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_table);
        let mut funcs = Vec::new();
        for (i, nameoff) in nameoffs.iter().enumerate() {
            let entryoff = 0x100 * (i as u32 + 1);
            let funcoff = (ftab_len + funcs.len()) as u32;
            out.extend_from_slice(&entryoff.to_le_bytes());
            out.extend_from_slice(&funcoff.to_le_bytes());
            funcs.extend_from_slice(&entryoff.to_le_bytes());
            funcs.extend_from_slice(&nameoff.to_le_bytes());
        }
        let end = 0x100 * nfunc as u32 + 0x80;
        out.extend_from_slice(&end.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&funcs);
        out
    }

    #[test]
    fn finds_exact_names_only() {
        let t = table_118(
            &[
                "main.main",
                "crypto/tls.(*Conn).Writer",
                "crypto/tls.(*Conn).Write",
                "crypto/tls.(*Conn).Read",
            ],
            0x40_0000,
        );
        let found = find_functions(&t, 0, &[CONN_WRITE, CONN_READ, "absent"]).unwrap();
        assert_eq!(
            found,
            vec![
                Some((0x40_0300, 0x40_0400)),
                Some((0x40_0400, 0x40_0480)),
                None
            ]
        );
        // Text start 0 in the header (PIE): `.text` is used.
        let t = table_118(&["a", "crypto/tls.(*Conn).Read"], 0);
        let found = find_functions(&t, 0x1000, &[CONN_READ]).unwrap();
        assert_eq!(found, vec![Some((0x1200, 0x1280))]);
    }

    #[test]
    fn hostile_tables_are_errors_not_panics() {
        let good = table_118(&["crypto/tls.(*Conn).Read", "x"], 0x1000);
        for len in 0..good.len() {
            let _ = find_functions(&good[..len], 0, &[CONN_READ]);
        }
        let mut bad = good.clone();
        bad[0] = 0x12;
        assert!(find_functions(&bad, 0, &[CONN_READ]).is_err());
        let mut huge = good.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(find_functions(&huge, 0, &[CONN_READ]).is_err());
        // Random bytes everywhere after the magic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut t = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 8 + (seed as usize) % (t.len() - 8);
                t[at] = (seed >> 32) as u8;
            }
            let _ = find_functions(&t, 0, &[CONN_READ, CONN_WRITE]);
        }
    }

    #[test]
    fn releases() {
        assert_eq!(parse_release("go1.19.8"), Some((1, 19)));
        assert_eq!(parse_release("go1.21rc2"), Some((1, 21)));
        assert_eq!(parse_release("go1.22.5 X:boringcrypto"), Some((1, 22)));
        assert_eq!(parse_release("devel go1.23-4f3c1b0 Fri"), Some((1, 23)));
        assert_eq!(parse_release("go1"), None);
        assert_eq!(parse_release("gox.y"), None);
        assert_eq!(parse_release(""), None);
    }

    #[test]
    fn uvarints() {
        assert_eq!(uvarint(&[8]), Some((8, 1)));
        assert_eq!(uvarint(&[0x80, 1]), Some((128, 2)));
        assert_eq!(uvarint(&[0x80; 11]), None);
        assert_eq!(uvarint(&[]), None);
    }
}
