//! Finds the TLS library functions to put uprobes on, in one ELF file.
//!
//! The agent sees plaintext by hooking the TLS library's read/write calls. Those
//! live in shared libraries (`libssl.so.3`, `libgnutls.so.30`) and also in
//! executables that link OpenSSL statically (e.g. `node`), so every
//! executable file mapped by a process is a candidate. A uprobe is attached by
//! (file, *file offset*), so this module turns symbol addresses into file
//! offsets.
//!
//! Files are hostile input (anything a container ships), so parsing is bounded
//! and never panics: the file is read lazily through [`object::ReadCache`]
//! (only the ELF header, section headers, one symbol table and its string table
//! are read; no mmap, no `unsafe`), its size is capped, and so is the number of
//! symbols looked at.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use object::elf::{self, FileHeader64, SectionHeader64, Sym64};
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::read::StringTable;
use object::{LittleEndian, ReadCache, ReadRef};

use super::golang;
use super::sites::{self, Site};

/// Files larger than this are rejected without parsing (bounds memory and time).
pub const MAX_FILE_SIZE: u64 = 4 << 30;
/// At most this many symbol table entries are looked at per file (over all tables).
pub const MAX_SYMBOLS: usize = 2_000_000;
/// Files with more section headers are treated as malformed (8 MiB of headers;
/// linked executables and libraries have a few dozen).
pub const MAX_SECTIONS: usize = 1 << 17;
/// A symbol table's string table is read whole; larger ones are treated as malformed.
pub const MAX_STRTAB_SIZE: u64 = 256 << 20;

/// Which TLS library's API a file provides; it decides which eBPF programs are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    OpenSsl,
    GnuTls,
    /// Go's `crypto/tls`, compiled into a Go executable (see [`super::golang`]).
    Go,
}

/// A function the agent hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsFunction {
    SslRead,
    SslReadEx,
    SslWrite,
    SslWriteEx,
    SslDoHandshake,
    GnutlsRecordRecv,
    GnutlsRecordSend,
    GnutlsHandshake,
    /// `crypto/tls.(*Conn).Write`, found through `.gopclntab` rather than ELF symbols.
    GoConnWrite,
    GoConnRead,
}

impl TlsFunction {
    /// Every hooked function, OpenSSL first. `TlsFunctions::offsets` follows this order.
    pub const ALL: [TlsFunction; 10] = [
        TlsFunction::SslRead,
        TlsFunction::SslReadEx,
        TlsFunction::SslWrite,
        TlsFunction::SslWriteEx,
        TlsFunction::SslDoHandshake,
        TlsFunction::GnutlsRecordRecv,
        TlsFunction::GnutlsRecordSend,
        TlsFunction::GnutlsHandshake,
        TlsFunction::GoConnWrite,
        TlsFunction::GoConnRead,
    ];

    /// The unversioned ELF symbol name (what the string table holds; versions such as
    /// `@@OPENSSL_3.0.0` live in `.gnu.version`, not in the name).
    pub fn symbol(self) -> &'static str {
        match self {
            TlsFunction::SslRead => "SSL_read",
            TlsFunction::SslReadEx => "SSL_read_ex",
            TlsFunction::SslWrite => "SSL_write",
            TlsFunction::SslWriteEx => "SSL_write_ex",
            TlsFunction::SslDoHandshake => "SSL_do_handshake",
            TlsFunction::GnutlsRecordRecv => "gnutls_record_recv",
            TlsFunction::GnutlsRecordSend => "gnutls_record_send",
            TlsFunction::GnutlsHandshake => "gnutls_handshake",
            TlsFunction::GoConnWrite => golang::CONN_WRITE,
            TlsFunction::GoConnRead => golang::CONN_READ,
        }
    }

    /// The library API the function belongs to.
    pub fn flavor(self) -> Flavor {
        match self {
            TlsFunction::SslRead
            | TlsFunction::SslReadEx
            | TlsFunction::SslWrite
            | TlsFunction::SslWriteEx
            | TlsFunction::SslDoHandshake => Flavor::OpenSsl,
            TlsFunction::GnutlsRecordRecv
            | TlsFunction::GnutlsRecordSend
            | TlsFunction::GnutlsHandshake => Flavor::GnuTls,
            TlsFunction::GoConnWrite | TlsFunction::GoConnRead => Flavor::Go,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn from_symbol(name: &[u8]) -> Option<TlsFunction> {
        TlsFunction::ALL
            .into_iter()
            .find(|f| f.symbol().as_bytes() == name)
    }
}

/// What to attach in one file: its flavor, the file offset of each hooked function it
/// defines (optional ones such as `SSL_read_ex` may be missing), and where the probes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFunctions {
    pub flavor: Flavor,
    /// `(function, file offset)`, in [`TlsFunction::ALL`] order, only functions of `flavor`.
    pub offsets: Vec<(TlsFunction, u64)>,
    /// The file's code sections, to decode the functions at their addresses.
    pub code: CodeMap,
    /// The probe sites chosen for `offsets` (see [`sites::choose`]).
    pub sites: Vec<Site>,
    /// Go binaries: the version and where `(*Conn).Read` ends (its returns are probed).
    pub go: Option<GoTls>,
}

/// What the probes of a Go binary need beyond function offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoTls {
    /// The toolchain version from the build info (`go1.19.8`).
    pub version: String,
    /// File offsets `[start, end)` of `(*Conn).Read`'s code.
    pub read: (u64, u64),
    /// Virtual address of `runtime.memmove`, if found.
    pub memmove: Option<u64>,
}

/// Most executable sections remembered per file (linked files have a handful).
const MAX_CODE_SECTIONS: usize = 64;

/// The executable sections backed by a file: where code at a virtual address lives in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeMap(Vec<CodeSection>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CodeSection {
    vaddr: u64,
    size: u64,
    offset: u64,
}

impl CodeMap {
    fn section_at_offset(&self, offset: u64) -> Option<&CodeSection> {
        self.0
            .iter()
            .find(|s| offset >= s.offset && offset - s.offset < s.size)
    }

    /// File offset of the code at virtual address `vaddr`.
    pub fn offset_of(&self, vaddr: u64) -> Option<u64> {
        self.0
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.size)
            .map(|s| s.offset + (vaddr - s.vaddr))
    }

    /// Virtual address of the code at file offset `offset`.
    pub fn vaddr_of(&self, offset: u64) -> Option<u64> {
        self.section_at_offset(offset)
            .map(|s| s.vaddr + (offset - s.offset))
    }

    /// Bytes of code from `offset` to the end of its section.
    pub fn room_at(&self, offset: u64) -> u64 {
        self.section_at_offset(offset)
            .map_or(0, |s| s.size - (offset - s.offset))
    }
}

impl TlsFunctions {
    /// File offset of `function`, if the file defines it.
    pub fn offset(&self, function: TlsFunction) -> Option<u64> {
        self.offsets
            .iter()
            .find(|(f, _)| *f == function)
            .map(|&(_, offset)| offset)
    }
}

/// Why a file could not be inspected. Non-ELF and non-TLS files are not errors.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a regular file", path.display())]
    NotRegularFile { path: PathBuf },
    #[error("{}: file too large ({size} bytes, limit {MAX_FILE_SIZE})", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    /// Includes read errors after opening: `ReadCache` does not keep the `io::Error`.
    #[error("{}: malformed ELF: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    /// TLS code the agent recognises but cannot hook correctly (e.g. Go before the register
    /// ABI): reported, never misread.
    #[error("{}: unsupported: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
}

/// Inspects `path` and returns the TLS functions it defines, if it is a TLS library
/// (or an executable with one linked in).
///
/// A file qualifies as [`Flavor::OpenSsl`] if it defines function symbols `SSL_read`
/// and `SSL_write`, as [`Flavor::GnuTls`] if it defines `gnutls_record_recv` and
/// `gnutls_record_send` (OpenSSL wins if both). `.dynsym` is searched first and
/// `.symtab` only if `.dynsym` does not qualify (static executables that export
/// nothing). Returns `Ok(None)` for non-ELF files, ELF files that are not 64-bit
/// little-endian for the host machine, relocatable objects, and files that do not
/// qualify; also for GnuTLS's OpenSSL compatibility shim (`libgnutls-openssl`),
/// which defines `SSL_read` on top of imported `gnutls_record_recv`: its traffic is
/// already seen by the GnuTLS hooks, and hooking both would capture it twice.
///
/// Never blocks on special files: only regular files are opened (and with
/// `O_NONBLOCK`, in case the path is swapped for a FIFO in between).
pub fn find_tls_functions(path: &Path) -> Result<Option<TlsFunctions>, ElfError> {
    let io_err = |source| ElfError::Io {
        path: path.to_owned(),
        source,
    };
    check_metadata(path, &std::fs::metadata(path).map_err(io_err)?)?;
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    check_metadata(path, &file.metadata().map_err(io_err)?)?;
    let cache = ReadCache::new(file);
    let mut functions = scan(&cache).map_err(|e| match e {
        ScanError::Malformed(reason) => ElfError::Malformed {
            path: path.to_owned(),
            reason,
        },
        ScanError::Unsupported(reason) => ElfError::Unsupported {
            path: path.to_owned(),
            reason,
        },
    })?;
    if let Some(f) = functions.as_mut() {
        f.sites = sites::choose(f, &cache);
        if f.flavor == Flavor::Go && f.sites.is_empty() {
            return Err(ElfError::Unsupported {
                path: path.to_owned(),
                reason: "crypto/tls.(*Conn) Read/Write prologue not recognised".into(),
            });
        }
    }
    Ok(functions)
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata) -> Result<(), ElfError> {
    if !meta.file_type().is_file() {
        return Err(ElfError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(ElfError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    Ok(())
}

/// `e_machine` of binaries whose code runs natively here. Foreign-arch files (e.g.
/// run through qemu-user) are rejected: their code is not executed as mapped.
#[cfg(target_arch = "x86_64")]
const HOST_MACHINE: Option<u16> = Some(elf::EM_X86_64);
#[cfg(target_arch = "aarch64")]
const HOST_MACHINE: Option<u16> = Some(elf::EM_AARCH64);
#[cfg(target_arch = "riscv64")]
const HOST_MACHINE: Option<u16> = Some(elf::EM_RISCV);
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
const HOST_MACHINE: Option<u16> = None;

/// `e_ident` layout (the `object` crate has a struct for it, not index constants).
const EI_NIDENT: u64 = 16;
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

type Header = FileHeader64<LittleEndian>;
type Section = SectionHeader64<LittleEndian>;
type Symbol = Sym64<LittleEndian>;
const ENDIAN: LittleEndian = LittleEndian;

/// A found definition: file offset, and whether it is global (preferred over a
/// local symbol of the same name).
type Found = [Option<(u64, bool)>; TlsFunction::ALL.len()];

/// Why [`scan`] rejected a file.
#[derive(Debug)]
enum ScanError {
    Malformed(String),
    Unsupported(String),
}

impl From<String> for ScanError {
    fn from(reason: String) -> Self {
        ScanError::Malformed(reason)
    }
}

/// Parses the ELF in `data`. `Err` is a malformed (not merely uninteresting) file, or TLS code
/// that cannot be hooked.
fn scan<'a, R: ReadRef<'a>>(data: R) -> Result<Option<TlsFunctions>, ScanError> {
    let Ok(ident) = data.read_bytes_at(0, EI_NIDENT) else {
        return Ok(None); // Too short to be an ELF file.
    };
    if ident[..4] != elf::ELFMAG
        || ident[EI_CLASS] != elf::ELFCLASS64
        || ident[EI_DATA] != elf::ELFDATA2LSB
    {
        return Ok(None);
    }
    let header = Header::parse(data).map_err(|e| e.to_string())?;
    if !matches!(header.e_type(ENDIAN), elf::ET_EXEC | elf::ET_DYN)
        || Some(header.e_machine(ENDIAN)) != HOST_MACHINE
    {
        return Ok(None);
    }
    let shnum = header.shnum(ENDIAN, data).map_err(|e| e.to_string())?;
    if shnum > MAX_SECTIONS {
        return Err(format!("too many sections ({shnum})").into());
    }
    let table = header.sections(ENDIAN, data).map_err(|e| e.to_string())?;
    if let Some(go) = golang::inspect(data, &table)? {
        // A Go binary without crypto/tls may still link a C TLS library (cgo): go on.
        if let Some(functions) = go_functions(go, code_map(table.iter().as_slice()))? {
            return Ok(Some(functions));
        }
    }
    let sections = header
        .section_headers(ENDIAN, data)
        .map_err(|e| e.to_string())?;

    let mut budget = MAX_SYMBOLS;
    for table_type in [elf::SHT_DYNSYM, elf::SHT_SYMTAB] {
        // ELF allows one table of each type; only the first is read, which also
        // keeps a hostile file from making us read many large string tables.
        let Some(index) = sections
            .iter()
            .position(|s| s.sh_type(ENDIAN) == table_type)
        else {
            continue;
        };
        let mut found: Found = [None; TlsFunction::ALL.len()];
        let mut imports_gnutls = false;
        scan_table(
            data,
            sections,
            index,
            &mut budget,
            &mut found,
            &mut imports_gnutls,
        )?;
        if let Some(mut result) = qualify(&found, imports_gnutls) {
            result.code = code_map(sections);
            return Ok(Some(result));
        }
    }
    Ok(None)
}

/// The hooked functions of a Go binary that links `crypto/tls` (`None` if it does not).
/// Only the register ABI (Go ≥ 1.17 on x86-64) is supported: before it, arguments live on
/// the goroutine stack and the probes would read garbage.
fn go_functions(go: golang::GoBinary, code: CodeMap) -> Result<Option<TlsFunctions>, ScanError> {
    let (Some(write), Some(read)) = (go.write, go.read) else {
        return Ok(None);
    };
    let version = go.version.clone().unwrap_or_else(|| "unknown".into());
    let unsupported = |why: &str| Err(ScanError::Unsupported(format!("Go {version}: {why}")));
    if !cfg!(target_arch = "x86_64") {
        return unsupported("Go TLS capture is implemented for x86-64 only");
    }
    match go.release() {
        Some((1, minor)) if minor >= 17 => {}
        Some(_) => return unsupported("before Go 1.17 (no register ABI)"),
        None => return unsupported("no readable build info (version unknown)"),
    }
    let offset = |vaddr| {
        code.offset_of(vaddr)
            .ok_or_else(|| ScanError::Malformed(format!("Go function at {vaddr:#x} not in code")))
    };
    let read_start = offset(read.0)?;
    let read_end = read_start.saturating_add(read.1 - read.0);
    Ok(Some(TlsFunctions {
        flavor: Flavor::Go,
        offsets: vec![
            (TlsFunction::GoConnWrite, offset(write.0)?),
            (TlsFunction::GoConnRead, read_start),
        ],
        code,
        sites: Vec::new(),
        go: Some(GoTls {
            version,
            read: (read_start, read_end),
            memmove: go.memmove.map(|(start, _)| start),
        }),
    }))
}

/// Decides the flavor from the definitions found in one kind of symbol table.
fn qualify(found: &Found, imports_gnutls: bool) -> Option<TlsFunctions> {
    let has = |f: TlsFunction| found[f.index()].is_some();
    let flavor = if has(TlsFunction::SslRead) && has(TlsFunction::SslWrite) && !imports_gnutls {
        Flavor::OpenSsl
    } else if has(TlsFunction::GnutlsRecordRecv) && has(TlsFunction::GnutlsRecordSend) {
        Flavor::GnuTls
    } else {
        return None;
    };
    let offsets = TlsFunction::ALL
        .into_iter()
        .filter(|f| f.flavor() == flavor)
        .filter_map(|f| found[f.index()].map(|(offset, _)| (f, offset)))
        .collect();
    Some(TlsFunctions {
        flavor,
        offsets,
        code: CodeMap::default(),
        sites: Vec::new(),
        go: None,
    })
}

/// The executable, file-backed sections (bounded: a hostile file gets no more).
fn code_map(sections: &[Section]) -> CodeMap {
    CodeMap(
        sections
            .iter()
            .filter(|s| {
                s.sh_type(ENDIAN) != elf::SHT_NOBITS
                    && s.sh_flags(ENDIAN) & u64::from(elf::SHF_EXECINSTR) != 0
                    && s.sh_offset(ENDIAN).checked_add(s.sh_size(ENDIAN)).is_some()
                    && s.sh_addr(ENDIAN).checked_add(s.sh_size(ENDIAN)).is_some()
            })
            .take(MAX_CODE_SECTIONS)
            .map(|s| CodeSection {
                vaddr: s.sh_addr(ENDIAN),
                size: s.sh_size(ENDIAN),
                offset: s.sh_offset(ENDIAN),
            })
            .collect(),
    )
}

/// Records the hooked functions defined in symbol table `sections[index]`.
fn scan_table<'a, R: ReadRef<'a>>(
    data: R,
    sections: &[Section],
    index: usize,
    budget: &mut usize,
    found: &mut Found,
    imports_gnutls: &mut bool,
) -> Result<(), String> {
    let table = &sections[index];
    if table.sh_type(ENDIAN) == elf::SHT_NOBITS {
        return Ok(());
    }
    let entsize = table.sh_entsize(ENDIAN);
    if entsize != 0 && entsize != std::mem::size_of::<Symbol>() as u64 {
        return Err(format!("symbol table {index}: bad entry size {entsize}"));
    }
    let strtab = usize::try_from(table.sh_link(ENDIAN))
        .ok()
        .and_then(|link| sections.get(link))
        .filter(|s| s.sh_type(ENDIAN) == elf::SHT_STRTAB)
        .ok_or_else(|| format!("symbol table {index}: bad string table link"))?;
    let strtab_size = strtab.sh_size(ENDIAN);
    if strtab_size > MAX_STRTAB_SIZE {
        return Err(format!(
            "symbol table {index}: string table too large ({strtab_size} bytes)"
        ));
    }
    // Read the string table in one go: cheaper than one read per name.
    let strings = data
        .read_bytes_at(strtab.sh_offset(ENDIAN), strtab_size)
        .map_err(|()| format!("symbol table {index}: string table out of bounds"))?;
    let strings = StringTable::new(strings, 0, strtab_size);

    let count = table.sh_size(ENDIAN) / std::mem::size_of::<Symbol>() as u64;
    let count = usize::try_from(count).unwrap_or(usize::MAX).min(*budget);
    *budget -= count;
    let symbols: &[Symbol] = data
        .read_slice_at(table.sh_offset(ENDIAN), count)
        .map_err(|()| format!("symbol table {index}: out of bounds"))?;

    for symbol in symbols {
        if symbol.st_type() != elf::STT_FUNC {
            continue;
        }
        let Ok(name) = strings.get(symbol.st_name(ENDIAN)) else {
            continue;
        };
        let Some(function) = TlsFunction::from_symbol(name) else {
            continue;
        };
        let shndx = symbol.st_shndx(ENDIAN);
        if shndx == elf::SHN_UNDEF {
            if function.flavor() == Flavor::GnuTls {
                *imports_gnutls = true;
            }
            continue;
        }
        // First definition wins, except that a global one replaces a local one.
        let global = symbol.st_bind() != elf::STB_LOCAL;
        let slot = &mut found[function.index()];
        if slot.is_some_and(|(_, was_global)| was_global || !global) {
            continue;
        }
        if let Some(offset) = file_offset(sections, shndx, symbol.st_value(ENDIAN)) {
            *slot = Some((offset, global));
        }
    }
    Ok(())
}

/// File offset of a function at virtual `address` in section `shndx`:
/// `address - sh_addr + sh_offset` (what aya's `UProbeAttachLocation` computes too).
/// `None` for anything that is not code backed by the file.
fn file_offset(sections: &[Section], shndx: u16, address: u64) -> Option<u64> {
    if address == 0 || shndx >= elf::SHN_LORESERVE {
        return None; // Absolute, common, or an extended index: not a code location.
    }
    let section = sections.get(usize::from(shndx))?;
    if section.sh_type(ENDIAN) == elf::SHT_NOBITS
        || section.sh_flags(ENDIAN) & u64::from(elf::SHF_EXECINSTR) == 0
    {
        return None;
    }
    let delta = address.checked_sub(section.sh_addr(ENDIAN))?;
    if delta >= section.sh_size(ENDIAN) {
        return None;
    }
    section.sh_offset(ENDIAN).checked_add(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::process::Command;

    const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
    const GNUTLS: &str = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30";
    const GNUTLS_OPENSSL: &str = "/usr/lib/x86_64-linux-gnu/libgnutls-openssl.so.27";
    const NODE: &str = "/usr/bin/node";

    /// A scratch directory unique to one test.
    fn scratch(name: &str) -> PathBuf {
        crate::tls::scratch_dir(&format!("elf-{name}"))
    }

    fn readelf(args: &[&str], path: &str) -> String {
        let out = Command::new("readelf")
            .args(args)
            .arg(path)
            .output()
            .expect("readelf (binutils) is needed by these tests");
        assert!(out.status.success(), "readelf {args:?} {path} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Expected file offsets computed independently of the code under test: symbol
    /// values from `readelf --dyn-syms`, mapped through the PT_LOAD segment that
    /// contains them (`readelf -l`), as the kernel maps the file.
    fn readelf_offsets(path: &str) -> HashMap<String, u64> {
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        let loads: Vec<(u64, u64, u64)> = readelf(&["-lW"], path)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|t| t.first() == Some(&"LOAD"))
            .map(|t| (hex(t[1]), hex(t[2]), hex(t[4]))) // offset, vaddr, filesz
            .collect();
        assert!(!loads.is_empty());
        let mut out = HashMap::new();
        for line in readelf(&["-W", "--dyn-syms"], path).lines() {
            let t: Vec<&str> = line.split_whitespace().collect();
            if t.len() < 8 || t[3] != "FUNC" || t[6] == "UND" {
                continue;
            }
            let name = t[7].split('@').next().unwrap();
            if TlsFunction::from_symbol(name.as_bytes()).is_none() {
                continue;
            }
            let value = hex(t[1]);
            let (offset, vaddr, _) = loads
                .iter()
                .find(|&&(_, vaddr, filesz)| vaddr <= value && value < vaddr + filesz)
                .expect("symbol in a PT_LOAD segment");
            out.entry(name.to_owned()).or_insert(value - vaddr + offset);
        }
        out
    }

    fn check_against_readelf(path: &str, flavor: Flavor, expected_count: usize) {
        let found = find_tls_functions(Path::new(path)).unwrap().unwrap();
        assert_eq!(found.flavor, flavor);
        let expected = readelf_offsets(path);
        assert_eq!(found.offsets.len(), expected_count, "{found:?}");
        assert_eq!(expected.len(), expected_count, "{expected:?}");
        for (function, offset) in &found.offsets {
            assert_eq!(function.flavor(), flavor);
            assert_eq!(
                Some(offset),
                expected.get(function.symbol()),
                "{path}: {}",
                function.symbol()
            );
        }
        // Offsets come in TlsFunction::ALL order.
        let order: Vec<usize> = found.offsets.iter().map(|(f, _)| f.index()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn libssl3_has_all_openssl_functions() {
        check_against_readelf(LIBSSL, Flavor::OpenSsl, 5);
    }

    #[test]
    fn libgnutls_has_all_gnutls_functions() {
        check_against_readelf(GNUTLS, Flavor::GnuTls, 3);
    }

    #[test]
    fn node_has_statically_linked_openssl() {
        if !Path::new(NODE).exists() {
            println!("note: {NODE} not present, skipping");
            return;
        }
        // node is ET_EXEC with .text at a vaddr != file offset: exercises the formula.
        check_against_readelf(NODE, Flavor::OpenSsl, 5);
    }

    #[test]
    fn gnutls_openssl_shim_is_not_openssl() {
        if !Path::new(GNUTLS_OPENSSL).exists() {
            println!("note: {GNUTLS_OPENSSL} not present, skipping");
            return;
        }
        assert_eq!(find_tls_functions(Path::new(GNUTLS_OPENSSL)).unwrap(), None);
    }

    #[test]
    fn plain_executables_and_importers_are_not_tls() {
        assert_eq!(find_tls_functions(Path::new("/bin/ls")).unwrap(), None);
        // /usr/bin/openssl imports SSL_read/SSL_write (undefined): not a provider.
        if Path::new("/usr/bin/openssl").exists() {
            assert_eq!(
                find_tls_functions(Path::new("/usr/bin/openssl")).unwrap(),
                None
            );
        }
    }

    #[test]
    fn symtab_fallback_and_dynsym_preference() {
        // Executables export nothing by default, so SSL_read lives only in .symtab;
        // with -rdynamic it is in .dynsym too.
        let dir = scratch("cc");
        let src = dir.join("t.c");
        std::fs::write(
            &src,
            "int SSL_read(void) { return 1; }\nint SSL_write(void) { return 2; }\n\
             int main(void) { return SSL_read() + SSL_write(); }\n",
        )
        .unwrap();
        for (name, extra) in [("plain", None), ("rdynamic", Some("-rdynamic"))] {
            let exe = dir.join(name);
            let mut cc = Command::new("cc");
            cc.arg("-O0").arg("-o").arg(&exe).arg(&src);
            cc.args(extra);
            match cc.status() {
                Ok(s) if s.success() => {}
                _ => {
                    println!("note: no C compiler, skipping");
                    return;
                }
            }
            let found = find_tls_functions(&exe).unwrap().unwrap();
            assert_eq!(found.flavor, Flavor::OpenSsl);
            assert_eq!(found.offsets.len(), 2);
            // Independent check via `nm`-like readelf -s (both tables) + segments.
            let syms = readelf(&["-sW"], exe.to_str().unwrap());
            assert!(syms.contains("SSL_read"));
            let dynsym = readelf(&["-W", "--dyn-syms"], exe.to_str().unwrap());
            assert_eq!(dynsym.contains("SSL_read"), extra.is_some());
            if extra.is_some() {
                let expected = readelf_offsets(exe.to_str().unwrap());
                assert_eq!(
                    found.offset(TlsFunction::SslRead),
                    expected.get("SSL_read").copied()
                );
            }
        }
        // Stripped of .symtab, the plain executable no longer qualifies.
        let stripped = dir.join("stripped");
        if Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(dir.join("plain"))
            .status()
            .is_ok_and(|s| s.success())
        {
            assert_eq!(find_tls_functions(&stripped).unwrap(), None);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn non_elf_inputs() {
        let dir = scratch("nonelf");
        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(find_tls_functions(&empty).unwrap(), None);

        let mut rng = XorShift(0x1234_5678_9abc_def0);
        let random: Vec<u8> = (0..65536).map(|_| rng.next() as u8).collect();
        let random_path = dir.join("random");
        std::fs::write(&random_path, &random).unwrap();
        assert_eq!(find_tls_functions(&random_path).unwrap(), None);

        // ELF magic followed by garbage: Err or None, no panic.
        let mut fake = random.clone();
        fake[..4].copy_from_slice(&elf::ELFMAG);
        fake[EI_CLASS] = elf::ELFCLASS64;
        fake[EI_DATA] = elf::ELFDATA2LSB;
        std::fs::write(&random_path, &fake).unwrap();
        assert!(!matches!(find_tls_functions(&random_path), Ok(Some(_))));

        assert!(matches!(
            find_tls_functions(&dir),
            Err(ElfError::NotRegularFile { .. })
        ));
        assert!(matches!(
            find_tls_functions(&dir.join("missing")),
            Err(ElfError::Io { .. })
        ));
        // A static archive of the library is not a loadable ELF.
        let archive = Path::new("/usr/lib/x86_64-linux-gnu/libssl.a");
        if archive.exists() {
            assert_eq!(find_tls_functions(archive).unwrap(), None);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fifo_does_not_block() {
        let dir = scratch("fifo");
        let fifo = dir.join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            println!("note: mkfifo unavailable, skipping");
            return;
        }
        // Would hang forever in open(2) if the file were opened for reading.
        assert!(matches!(
            find_tls_functions(&fifo),
            Err(ElfError::NotRegularFile { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn truncated_libssl() {
        let data = std::fs::read(LIBSSL).unwrap();
        let dir = scratch("trunc");
        let path = dir.join("libssl.so.3");
        let len = data.len();
        for size in [
            0,
            1,
            4,
            16,
            63,
            64,
            65,
            1000,
            4096,
            len / 4,
            len / 2,
            len - 4096,
            len - 1,
        ] {
            std::fs::write(&path, &data[..size]).unwrap();
            let result = find_tls_functions(&path);
            assert!(
                matches!(result, Ok(None) | Err(ElfError::Malformed { .. })),
                "size {size}: {result:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hostile_headers() {
        let good = std::fs::read(LIBSSL).unwrap();
        let set = |data: &mut Vec<u8>, at: usize, bytes: &[u8]| {
            data[at..at + bytes.len()].copy_from_slice(bytes)
        };
        // e_shnum (offset 60) = 0xffff; e_shnum = 0 with a huge extended count in
        // section 0's sh_size; e_shoff (offset 40) past the end / u64::MAX.
        let shoff = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
        let mut cases = Vec::new();
        let mut d = good.clone();
        set(&mut d, 60, &0xffffu16.to_le_bytes());
        cases.push(d);
        let mut d = good.clone();
        set(&mut d, 60, &0u16.to_le_bytes());
        set(&mut d, shoff + 32, &u64::MAX.to_le_bytes());
        cases.push(d);
        let mut d = good.clone();
        set(&mut d, 60, &0u16.to_le_bytes());
        set(&mut d, shoff + 32, &(u32::MAX as u64).to_le_bytes());
        cases.push(d);
        for bad in [u64::MAX, (good.len() as u64) + 1, (good.len() as u64) - 64] {
            let mut d = good.clone();
            set(&mut d, 40, &bad.to_le_bytes());
            cases.push(d);
        }
        for (i, case) in cases.iter().enumerate() {
            let result = scan(case.as_slice());
            assert!(!matches!(result, Ok(Some(_))), "case {i}: {result:?}");
        }
        // Every section's sh_offset/sh_size/sh_link set to extremes.
        let shnum = u16::from_le_bytes(good[60..62].try_into().unwrap()) as usize;
        for field in [24usize, 32, 40] {
            for value in [u64::MAX, u64::MAX / 2, 0] {
                let mut d = good.clone();
                for s in 0..shnum {
                    let at = shoff + s * 64 + field;
                    if field == 40 {
                        set(&mut d, at, &(value as u32).to_le_bytes());
                    } else {
                        set(&mut d, at, &value.to_le_bytes());
                    }
                }
                let _ = scan(d.as_slice());
            }
        }
    }

    #[test]
    fn random_corruption_never_panics() {
        let good = std::fs::read(LIBSSL).unwrap();
        let shoff = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
        let mut rng = XorShift(42);
        let mut data = good.clone();
        for _ in 0..2000 {
            data.copy_from_slice(&good);
            for _ in 0..1 + rng.next() % 8 {
                // Aim at the interesting parts: ELF header, section headers, .dynsym.
                let at = match rng.next() % 3 {
                    0 => (rng.next() % 64) as usize,
                    1 => shoff + (rng.next() as usize % (good.len() - shoff)),
                    _ => 0x10a8 + (rng.next() as usize % 0x6168),
                };
                data[at] = rng.next() as u8;
            }
            let _ = scan(data.as_slice());
        }
    }

    #[test]
    fn error_messages_name_the_path() {
        let err = find_tls_functions(Path::new("/nonexistent/libssl.so.3")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/libssl.so.3: "),
            "{err}"
        );
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Go before the register ABI, an unknown version and a Go binary without crypto/tls.
    #[test]
    fn go_versions() {
        let go = |version: Option<&str>| golang::GoBinary {
            version: version.map(str::to_string),
            write: Some((0x1000, 0x1100)),
            read: Some((0x1100, 0x1200)),
            memmove: None,
        };
        let code = CodeMap(vec![CodeSection {
            vaddr: 0x1000,
            size: 0x1000,
            offset: 0,
        }]);
        for old in [Some("go1.16.15"), Some("go1.8"), None] {
            match go_functions(go(old), code.clone()) {
                Err(ScanError::Unsupported(reason)) => println!("{old:?}: {reason}"),
                _ => panic!("{old:?} accepted"),
            }
        }
        let f = go_functions(go(Some("go1.17")), code.clone())
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(
            f.offsets,
            vec![
                (TlsFunction::GoConnWrite, 0),
                (TlsFunction::GoConnRead, 0x100)
            ]
        );
        assert_eq!(f.go.unwrap().read, (0x100, 0x200));
        let mut no_tls = go(Some("go1.19.8"));
        no_tls.write = None;
        assert!(matches!(go_functions(no_tls, code), Ok(None)));
    }
}
