//! Where each TLS uprobe goes: an instruction the kernel emulates, wherever that can be proven.
//!
//! On x86 a uprobe replaces an instruction with `int3`; when it fires, the kernel either
//! *emulates* the original instruction (push, call, jmp, jcc, the standard nops) or runs it
//! out of line under a single-step trap. In a VM every single-step trap exits to the
//! hypervisor: here 9.3–9.7 µs per hit against 0.65–0.73 µs emulated (`PLATFORM.md`), which
//! is most of the cost of TLS capture. Debian's libssl starts `SSL_read`/`SSL_write` with
//! `sub $0x18,%rsp` (single-stepped), while both they and `SSL_read_ex`/`SSL_write_ex` call
//! one internal function (`ssl_read_internal`/`ssl_write_internal`) that starts with `push`.
//!
//! So for each file, per hooked function:
//! 1. **entry**: its first instruction (after an `endbr64`, on CET builds) is emulated: probe
//!    there, as always (node's static OpenSSL starts every function with `push %rbp`);
//! 2. **internal**: otherwise, for an OpenSSL read or write pair, find the function both call
//!    first. The proof that it takes `SSL_*_ex`'s arguments unchanged — `(ssl, buf, num,
//!    *count)`, returning > 0 on success with the count stored — is that `SSL_*_ex` reaches
//!    the call in a straight line without writing `rdi`, `rsi`, `rdx` or `rcx`; that `SSL_*`
//!    calls the very same address first confirms it is the shared implementation (OpenSSL
//!    1.1.1 and 3.x: `ssl_read_internal`/`ssl_write_internal`). One probe pair there sees
//!    both exported calls, so the exported entries are not probed (no double capture);
//! 3. **entry, single-stepped**: nothing better proven; today's entry probe, counted and
//!    listed (`status`, the startup log, `apiguard_tls_probe_sites`).
//!
//! Instructions are decoded with `iced-x86`, bounded per function; file bytes are read
//! through the same handle as the symbols. Other architectures keep entry probes (arm64
//! uprobes simulate or step out of line with no hypervisor exit per hit; not measured here).

use std::fmt;

use object::ReadRef;

use super::elf::{CodeMap, Flavor, TlsFunction, TlsFunctions};

/// How a probed function passes its data (decides the eBPF program attached).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// `(ctx, buf, count)` returning the byte count.
    Read,
    /// `(ctx, buf, count, *moved)` returning > 0 with the byte count stored.
    ReadEx,
    Write,
    WriteEx,
    /// `(ctx)`, moves no application data.
    Handshake,
    /// Go `(*Conn).Write(b []byte)` (register ABI), copied at entry.
    GoWrite,
    /// Go `(*Conn).Read(b []byte)` at entry: the buffer is remembered per goroutine ...
    GoRead,
    /// ... and copied at each of its returns (`ret`), never a uretprobe (Go moves stacks) ...
    GoReadReturn,
    /// ... or, where proven, at its one `call runtime.memmove`: the copy of decrypted bytes
    /// into `b` (`rbx` = source, `rcx` = the count `Read` returns).
    GoReadCopy,
}

impl Abi {
    /// The calling convention of an exported function probed at its entry.
    pub fn of(function: TlsFunction) -> Abi {
        match function {
            TlsFunction::SslRead | TlsFunction::GnutlsRecordRecv => Abi::Read,
            TlsFunction::SslReadEx => Abi::ReadEx,
            TlsFunction::SslWrite | TlsFunction::GnutlsRecordSend => Abi::Write,
            TlsFunction::SslWriteEx => Abi::WriteEx,
            TlsFunction::SslDoHandshake | TlsFunction::GnutlsHandshake => Abi::Handshake,
            TlsFunction::GoConnWrite => Abi::GoWrite,
            TlsFunction::GoConnRead => Abi::GoRead,
        }
    }
}

/// Why a site was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// The function's entry, on an emulated instruction.
    Entry,
    /// The internal function an exported read or write pair shares, on an emulated instruction.
    Internal,
    /// The function's entry, on an instruction the kernel single-steps (nothing better proven).
    EntrySingleStep,
    /// A Go function's stack-bound check (`jbe` to `morestack`), emulated; hits that will
    /// take the branch (the function restarts after growing its stack) are ignored.
    StackCheck,
    /// A `ret` of a Go function: single-stepped (the kernel does not emulate `ret`); used
    /// where no copy site is proven.
    Return,
    /// The `call runtime.memmove` in Go's `(*Conn).Read` that copies its result (emulated).
    ReadCopy,
}

impl SiteKind {
    pub const ALL: [SiteKind; 6] = [
        SiteKind::Entry,
        SiteKind::Internal,
        SiteKind::EntrySingleStep,
        SiteKind::StackCheck,
        SiteKind::Return,
        SiteKind::ReadCopy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Entry => "entry",
            SiteKind::Internal => "internal",
            SiteKind::EntrySingleStep => "entry_single_step",
            SiteKind::StackCheck => "stack_check",
            SiteKind::Return => "return",
            SiteKind::ReadCopy => "read_copy",
        }
    }
}

/// One uprobe + uretprobe pair to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The exported functions whose calls this site sees.
    pub functions: Vec<TlsFunction>,
    pub abi: Abi,
    /// File offset of the probed instruction.
    pub offset: u64,
    pub kind: SiteKind,
    /// The probed instruction's mnemonic, for logs and status.
    pub instruction: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.functions.iter().map(|f| f.symbol()).collect();
        write!(
            f,
            "{} -> {} {:#x} ({})",
            names.join("+"),
            self.kind.as_str(),
            self.offset,
            self.instruction
        )
    }
}

/// Bytes decoded from a function's entry when looking for its first call.
const MAX_DECODE_BYTES: u64 = 256;
/// Instructions decoded from a function's entry when looking for its first call.
const MAX_DECODE_INSTRUCTIONS: usize = 64;
/// Largest Go function whose returns are searched (Go 1.19's `(*Conn).Read` is ~1 KiB).
const MAX_GO_FUNCTION_BYTES: u64 = 64 << 10;
/// Most `ret` instructions probed in one Go function (1.19's `(*Conn).Read` has 7).
const MAX_GO_RETURNS: usize = 64;

/// The attach sites for a file's TLS functions: every function is seen by exactly one site.
pub fn choose<'a, R: ReadRef<'a>>(functions: &TlsFunctions, data: R) -> Vec<Site> {
    let code = Code {
        data,
        map: &functions.code,
    };
    if functions.flavor == Flavor::Go {
        return code.go_sites(functions).unwrap_or_default();
    }
    let mut sites = Vec::new();
    if cfg!(target_arch = "x86_64") && functions.flavor == Flavor::OpenSsl {
        for (plain, ex, abi) in [
            (TlsFunction::SslRead, TlsFunction::SslReadEx, Abi::ReadEx),
            (TlsFunction::SslWrite, TlsFunction::SslWriteEx, Abi::WriteEx),
        ] {
            let (Some(p), Some(e)) = (functions.offset(plain), functions.offset(ex)) else {
                continue;
            };
            if code.emulated_entry(p).is_some() && code.emulated_entry(e).is_some() {
                continue; // Both entries are cheap already.
            }
            if let Some((offset, instruction)) = code.shared_internal(p, e) {
                sites.push(Site {
                    functions: vec![plain, ex],
                    abi,
                    offset,
                    kind: SiteKind::Internal,
                    instruction,
                });
            }
        }
    }
    for &(function, offset) in &functions.offsets {
        if sites.iter().any(|s| s.functions.contains(&function)) {
            continue;
        }
        let site = match code.emulated_entry(offset) {
            Some((offset, instruction)) => (offset, SiteKind::Entry, instruction),
            None => (
                offset,
                SiteKind::EntrySingleStep,
                code.first_mnemonic(offset),
            ),
        };
        sites.push(Site {
            functions: vec![function],
            abi: Abi::of(function),
            offset: site.0,
            kind: site.1,
            instruction: site.2,
        });
    }
    sites
}

/// A file's code, readable by file offset and decodable at its virtual addresses.
struct Code<'m, R> {
    data: R,
    map: &'m CodeMap,
}

/// One decoded instruction with its raw bytes.
struct Decoded {
    instruction: iced_x86::Instruction,
    bytes: Vec<u8>,
}

impl<'a, 'm, R: ReadRef<'a>> Code<'m, R> {
    /// Up to `max` instructions from file offset `offset`, stopping at the section's end, at
    /// an undecodable instruction, or after a return or indirect branch.
    fn decode(&self, offset: u64, max: usize) -> Vec<Decoded> {
        use iced_x86::{Decoder, DecoderOptions, FlowControl};
        let Some(vaddr) = self.map.vaddr_of(offset) else {
            return Vec::new();
        };
        let len = self.map.room_at(offset).min(MAX_DECODE_BYTES);
        let Ok(bytes) = self.data.read_bytes_at(offset, len) else {
            return Vec::new();
        };
        let mut decoder = Decoder::with_ip(64, bytes, vaddr, DecoderOptions::NONE);
        let mut out = Vec::new();
        while decoder.can_decode() && out.len() < max {
            let start = decoder.position();
            let instruction = decoder.decode();
            if instruction.is_invalid() {
                break;
            }
            let end = decoder.position();
            let flow = instruction.flow_control();
            out.push(Decoded {
                instruction,
                bytes: bytes[start..end].to_vec(),
            });
            if matches!(
                flow,
                FlowControl::Return
                    | FlowControl::IndirectBranch
                    | FlowControl::Interrupt
                    | FlowControl::Exception
            ) {
                break;
            }
        }
        out
    }

    /// The probe site at a function's entry if the kernel emulates the instruction there
    /// (after an `endbr64`, which it does not): `(file offset, mnemonic)`.
    fn emulated_entry(&self, offset: u64) -> Option<(u64, String)> {
        let decoded = self.decode(offset, 2);
        let mut at = offset;
        let mut iter = decoded.iter();
        let mut first = iter.next()?;
        if first.instruction.mnemonic() == iced_x86::Mnemonic::Endbr64 {
            at += first.bytes.len() as u64;
            first = iter.next()?;
        }
        kernel_emulates(&first.bytes).then(|| (at, mnemonic(&first.instruction)))
    }

    fn first_mnemonic(&self, offset: u64) -> String {
        self.decode(offset, 1)
            .first()
            .map_or_else(|| "undecodable".to_string(), |d| mnemonic(&d.instruction))
    }

    /// The internal function both `plain` and `ex` (file offsets of `SSL_read` and
    /// `SSL_read_ex`, or the write pair) call first, if proven (see the module doc) and its
    /// entry is emulated: `(file offset of the site, mnemonic)`.
    fn shared_internal(&self, plain: u64, ex: u64) -> Option<(u64, String)> {
        let target = self.first_call(ex, true)?;
        if self.first_call(plain, false)? != target {
            return None;
        }
        let target = self.map.offset_of(target)?;
        if target == plain || target == ex {
            return None;
        }
        self.emulated_entry(target)
    }

    /// The target (virtual address) of the first direct call or jump reached from `entry`.
    /// With `pass_through`, the path there must be straight (no conditional branch) and must
    /// not write the argument registers `rdi`, `rsi`, `rdx`, `rcx`: the callee then receives
    /// this function's own first four arguments.
    fn first_call(&self, entry: u64, pass_through: bool) -> Option<u64> {
        use iced_x86::{FlowControl, InstructionInfoFactory, OpAccess, Register};
        let mut info = InstructionInfoFactory::new();
        for d in self.decode(entry, MAX_DECODE_INSTRUCTIONS) {
            let i = &d.instruction;
            match i.flow_control() {
                FlowControl::Call | FlowControl::UnconditionalBranch => {
                    return Some(i.near_branch_target()).filter(|&t| t != 0);
                }
                FlowControl::Next => {}
                FlowControl::ConditionalBranch if !pass_through => {}
                _ => return None,
            }
            if pass_through {
                let writes_argument = info.info(i).used_registers().iter().any(|u| {
                    matches!(
                        u.register().full_register(),
                        Register::RDI | Register::RSI | Register::RDX | Register::RCX
                    ) && !matches!(u.access(), OpAccess::Read | OpAccess::CondRead)
                });
                if writes_argument {
                    return None;
                }
            }
        }
        None
    }
}

impl<'a, 'm, R: ReadRef<'a>> Code<'m, R> {
    /// Go's `(*Conn).Write` and `.Read`: both at their stack-bound check, `Read` also at every
    /// `ret`. `None` (the file is reported unsupported) unless all of it is proven.
    fn go_sites(&self, functions: &TlsFunctions) -> Option<Vec<Site>> {
        if !cfg!(target_arch = "x86_64") {
            return None;
        }
        let go = functions.go.as_ref()?;
        let mut sites = Vec::new();
        for (function, abi) in [
            (TlsFunction::GoConnWrite, Abi::GoWrite),
            (TlsFunction::GoConnRead, Abi::GoRead),
        ] {
            let (offset, instruction) = self.go_stack_check(functions.offset(function)?)?;
            sites.push(Site {
                functions: vec![function],
                abi,
                offset,
                kind: SiteKind::StackCheck,
                instruction,
            });
        }
        if let Some(offset) = go
            .memmove
            .and_then(|memmove| self.go_read_copy(go.read.0, go.read.1, memmove))
        {
            sites.push(Site {
                functions: vec![TlsFunction::GoConnRead],
                abi: Abi::GoReadCopy,
                offset,
                kind: SiteKind::ReadCopy,
                instruction: "call".into(),
            });
            return Some(sites);
        }
        let returns = self.go_returns(go.read.0, go.read.1)?;
        sites.extend(returns.into_iter().map(|offset| Site {
            functions: vec![TlsFunction::GoConnRead],
            abi: Abi::GoReadReturn,
            offset,
            kind: SiteKind::Return,
            instruction: "ret".into(),
        }));
        Some(sites)
    }

    /// The `jbe` of a Go prologue (`[lea -N(%rsp),%r12;] cmp 0x10(%r14),%rsp|%r12; jbe
    /// morestack`): reached in a straight line from the entry, with no write to the argument
    /// registers (`rax`, `rbx`, `rcx`) or the goroutine register (`r14`) before it, so the
    /// probe sees the call's arguments. The kernel emulates it; the eBPF side ignores a hit
    /// whose flags say the branch is taken (CF or ZF set), since the function then grows its
    /// stack and starts over — otherwise a `Write` would be captured twice.
    fn go_stack_check(&self, entry: u64) -> Option<(u64, String)> {
        use iced_x86::{FlowControl, InstructionInfoFactory, Mnemonic, OpAccess, Register};
        let mut info = InstructionInfoFactory::new();
        let mut at = entry;
        for d in self.decode(entry, 4) {
            let i = &d.instruction;
            if i.mnemonic() == Mnemonic::Jbe {
                return kernel_emulates(&d.bytes).then(|| (at, mnemonic(i)));
            }
            if i.flow_control() != FlowControl::Next {
                return None;
            }
            let writes = info.info(i).used_registers().iter().any(|u| {
                matches!(
                    u.register().full_register(),
                    Register::RAX | Register::RBX | Register::RCX | Register::R14 | Register::RSP
                ) && !matches!(u.access(), OpAccess::Read | OpAccess::CondRead)
            });
            if writes {
                return None;
            }
            at += d.bytes.len() as u64;
        }
        None
    }

    /// The one `call runtime.memmove` in `(*Conn).Read` (`[start, end)`): the inlined
    /// `copy(b, c.input...)` whose count is what `Read` returns (Go 1.17–1.19:
    /// `n, _ := c.input.Read(b)`, a `bytes.Reader` whose `Read` is inlined). `None` unless
    /// there is exactly one such call and the kernel emulates it; probing it costs one
    /// emulated hit per `Read` instead of a single-stepped `ret`.
    fn go_read_copy(&self, start: u64, end: u64, memmove: u64) -> Option<u64> {
        use iced_x86::{Decoder, DecoderOptions, FlowControl};
        let len = end.checked_sub(start)?;
        if len == 0 || len > MAX_GO_FUNCTION_BYTES || self.map.room_at(start) < len {
            return None;
        }
        let vaddr = self.map.vaddr_of(start)?;
        let bytes = self.data.read_bytes_at(start, len).ok()?;
        let mut decoder = Decoder::with_ip(64, bytes, vaddr, DecoderOptions::NONE);
        let mut found = None;
        while decoder.can_decode() {
            let position = decoder.position();
            let instruction = decoder.decode();
            if instruction.is_invalid() {
                return None;
            }
            if instruction.flow_control() == FlowControl::Call
                && instruction.near_branch_target() == memmove
            {
                let encoded = bytes.get(position..decoder.position())?;
                if found.is_some() || !kernel_emulates(encoded) {
                    return None;
                }
                found = Some(start + position as u64);
            }
        }
        found
    }

    /// File offsets of every `ret` in `[start, end)`, decoding linearly (Go puts no data in
    /// its text: jump tables live in read-only data). `None` if the code cannot be decoded
    /// to its end, has no `ret`, or too many.
    fn go_returns(&self, start: u64, end: u64) -> Option<Vec<u64>> {
        use iced_x86::{Decoder, DecoderOptions, Mnemonic};
        let len = end.checked_sub(start)?;
        if len == 0 || len > MAX_GO_FUNCTION_BYTES || self.map.room_at(start) < len {
            return None;
        }
        let vaddr = self.map.vaddr_of(start)?;
        let bytes = self.data.read_bytes_at(start, len).ok()?;
        let mut decoder = Decoder::with_ip(64, bytes, vaddr, DecoderOptions::NONE);
        let mut returns = Vec::new();
        while decoder.can_decode() {
            let at = start + decoder.position() as u64;
            let instruction = decoder.decode();
            if instruction.is_invalid() {
                // Go pads functions with int3; anything else undecodable is not Go code.
                return None;
            }
            if instruction.mnemonic() == Mnemonic::Ret {
                returns.push(at);
                if returns.len() > MAX_GO_RETURNS {
                    return None;
                }
            }
        }
        (!returns.is_empty()).then_some(returns)
    }
}

fn mnemonic(instruction: &iced_x86::Instruction) -> String {
    format!("{:?}", instruction.mnemonic()).to_ascii_lowercase()
}

/// Whether the x86-64 uprobe code emulates the instruction encoded by `bytes` instead of
/// single-stepping it (`arch/x86/kernel/uprobes.c`: `push_setup_xol_ops`,
/// `branch_setup_xol_ops`): `push` of a register (REX only 0x41), relative `call`/`jmp`,
/// conditional jumps (no 0x66 prefix), and the kernel's own nop encodings.
pub fn kernel_emulates(bytes: &[u8]) -> bool {
    const NOPS: [&[u8]; 8] = [
        &[0x90],
        &[0x66, 0x90],
        &[0x0f, 0x1f, 0x00],
        &[0x0f, 0x1f, 0x40, 0x00],
        &[0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
        &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    ];
    match bytes {
        [0x50..=0x57] | [0x41, 0x50..=0x57] => true,
        [0xe8 | 0xe9, _, _, _, _] | [0xeb, _] => true,
        [0x70..=0x7f, _] | [0x0f, 0x80..=0x8f, _, _, _, _] => true,
        _ => NOPS.contains(&bytes),
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::tls::elf::find_tls_functions;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
    const GNUTLS: &str = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30";
    const NODE: &str = "/usr/bin/node";

    fn sites(path: &Path) -> Vec<Site> {
        find_tls_functions(path).unwrap().unwrap().sites
    }

    fn site_of(sites: &[Site], f: TlsFunction) -> &Site {
        sites
            .iter()
            .find(|s| s.functions.contains(&f))
            .unwrap_or_else(|| panic!("no site for {f:?}: {sites:?}"))
    }

    /// `objdump -d` of the instruction at virtual address `vaddr`, independently of iced.
    fn objdump_at(path: &str, vaddr: u64) -> String {
        let out = Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(format!("--start-address={vaddr:#x}"))
            .arg(format!("--stop-address={:#x}", vaddr + 2))
            .arg(path)
            .output()
            .expect("objdump (binutils) is needed by these tests");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn vaddr(path: &str, offset: u64) -> u64 {
        find_tls_functions(Path::new(path))
            .unwrap()
            .unwrap()
            .code
            .vaddr_of(offset)
            .unwrap()
    }

    #[test]
    fn emulated_encodings() {
        for yes in [
            &[0x55][..],
            &[0x41, 0x57],
            &[0xe8, 1, 2, 3, 4],
            &[0xeb, 0x10],
            &[0x74, 0x02],
            &[0x0f, 0x84, 0, 0, 0, 0],
            &[0x0f, 0x1f, 0x44, 0x00, 0x00],
        ] {
            assert!(kernel_emulates(yes), "{yes:x?}");
        }
        for no in [
            &[0x48, 0x83, 0xec, 0x18][..], // sub $0x18,%rsp
            &[0xf3, 0x0f, 0x1e, 0xfa],     // endbr64
            &[0x48, 0x55],                 // push with REX.W: not the kernel's form
            &[0x45, 0x31, 0xc0],           // xor %r8d,%r8d
            &[0xc3],                       // ret
            &[],
        ] {
            assert!(!kernel_emulates(no), "{no:x?}");
        }
    }

    /// Debian's libssl: both pairs go to their internal function, which starts with `push`;
    /// the handshake entry is a `push` already.
    #[test]
    fn libssl3_uses_the_internal_functions() {
        let sites = sites(Path::new(LIBSSL));
        assert_eq!(sites.len(), 3, "{sites:?}");
        for (plain, ex, abi) in [
            (TlsFunction::SslRead, TlsFunction::SslReadEx, Abi::ReadEx),
            (TlsFunction::SslWrite, TlsFunction::SslWriteEx, Abi::WriteEx),
        ] {
            let site = site_of(&sites, plain);
            assert_eq!(site.kind, SiteKind::Internal, "{site}");
            assert_eq!(site.functions, vec![plain, ex]);
            assert_eq!(site.abi, abi);
            assert!(site.instruction.starts_with("push"), "{site}");
            let text = objdump_at(LIBSSL, vaddr(LIBSSL, site.offset));
            assert!(text.contains("push"), "{text}");
            // Independent check: objdump shows both exported functions calling the site.
            let functions = find_tls_functions(Path::new(LIBSSL)).unwrap().unwrap();
            for f in [plain, ex] {
                let entry = functions.offset(f).unwrap();
                let v = functions.code.vaddr_of(entry).unwrap();
                let out = Command::new("objdump")
                    .args(["-d", "--no-show-raw-insn"])
                    .arg(format!("--start-address={v:#x}"))
                    .arg(format!("--stop-address={:#x}", v + 0x50))
                    .arg(LIBSSL)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                let target = format!("call   {:x}", vaddr(LIBSSL, site.offset));
                assert!(text.contains(&target), "{f:?} does not {target}:\n{text}");
            }
        }
        let handshake = site_of(&sites, TlsFunction::SslDoHandshake);
        assert_eq!(handshake.kind, SiteKind::Entry);
        assert_eq!(handshake.abi, Abi::Handshake);
    }

    /// node links OpenSSL statically with every entry starting `push %rbp`: entries stay.
    #[test]
    fn node_static_openssl_keeps_emulated_entries() {
        let path = std::fs::canonicalize(NODE).unwrap();
        let functions = find_tls_functions(&path).unwrap().unwrap();
        assert_eq!(functions.sites.len(), functions.offsets.len());
        for site in &functions.sites {
            assert_eq!(site.kind, SiteKind::Entry, "{site}");
            assert_eq!(site.functions.len(), 1);
            assert_eq!(Some(site.offset), functions.offset(site.functions[0]));
            assert_eq!(site.abi, Abi::of(site.functions[0]));
        }
    }

    /// GnuTLS 3.7: `gnutls_record_recv` starts with `sub`, `gnutls_record_send` with `xor`
    /// and there is no `_ex` pair to prove an internal function with: single-stepped entries,
    /// reported as such.
    #[test]
    fn gnutls_falls_back_to_single_stepped_entries() {
        let sites = sites(&std::fs::canonicalize(GNUTLS).unwrap());
        assert_eq!(sites.len(), 3, "{sites:?}");
        for f in [TlsFunction::GnutlsRecordRecv, TlsFunction::GnutlsRecordSend] {
            let site = site_of(&sites, f);
            assert_eq!(site.kind, SiteKind::EntrySingleStep, "{site}");
            assert_eq!(site.abi, Abi::of(f));
        }
        assert_eq!(
            site_of(&sites, TlsFunction::GnutlsHandshake).kind,
            SiteKind::Entry
        );
    }

    fn scratch(name: &str) -> PathBuf {
        crate::tls::scratch_dir(&format!("sites-{name}"))
    }

    /// A shared library from assembly, so each case is exactly the instructions it names.
    fn library(name: &str, asm: &str) -> PathBuf {
        let dir = scratch(name);
        let src = dir.join("t.s");
        std::fs::write(&src, asm).unwrap();
        let lib = dir.join("libssl.so.3");
        let status = Command::new("cc")
            .args(["-shared", "-nostdlib", "-o"])
            .arg(&lib)
            .arg(&src)
            .status()
            .expect("a C compiler (cc) is needed by these tests");
        assert!(status.success());
        lib
    }

    /// Exported functions `SSL_read`, `SSL_read_ex`, `SSL_write`, `SSL_write_ex` with the given
    /// bodies, and local functions `internal_a` and `internal_b` starting with `push`.
    fn openssl_like(read: &str, read_ex: &str, write: &str, write_ex: &str) -> String {
        let mut s = String::from(".text\n");
        for (name, body) in [
            ("SSL_read", read),
            ("SSL_read_ex", read_ex),
            ("SSL_write", write),
            ("SSL_write_ex", write_ex),
        ] {
            s += &format!(".globl {name}\n.type {name},@function\n{name}:\n{body}\n");
        }
        s += "internal_a:\n push %rbx\n pop %rbx\n ret\n";
        s += "internal_b:\n endbr64\n push %r12\n pop %r12\n ret\n";
        s
    }

    #[test]
    fn internal_site_is_proven_or_refused() {
        let sub = " sub $0x18,%rsp\n";
        // Proven: both call internal_a, the _ex path is straight and keeps its arguments;
        // the write pair's target starts with endbr64, skipped.
        let lib = library(
            "proven",
            &openssl_like(
                &format!("{sub} mov %rsp,%rcx\n call internal_a\n add $0x18,%rsp\n ret"),
                " sub $8,%rsp\n call internal_a\n add $8,%rsp\n ret",
                &format!("{sub} test %edx,%edx\n js 1f\n call internal_b\n1: add $0x18,%rsp\n ret"),
                " sub $8,%rsp\n jmp internal_b",
            ),
        );
        let functions = find_tls_functions(&lib).unwrap().unwrap();
        let sites = &functions.sites;
        let read = site_of(sites, TlsFunction::SslRead);
        assert_eq!(read.kind, SiteKind::Internal);
        assert_eq!(read.instruction, "push");
        let write = site_of(sites, TlsFunction::SslWrite);
        assert_eq!(write.kind, SiteKind::Internal);
        assert_ne!(read.offset, write.offset);
        assert_eq!(sites.len(), 2, "{sites:?}");
        let _ = std::fs::remove_dir_all(lib.parent().unwrap());

        // Refused: the _ex function changes an argument register before the call; the plain
        // one calls another function; the _ex path branches before the call.
        let lib = library(
            "refused",
            &openssl_like(
                &format!("{sub} call internal_a\n ret"),
                " sub $8,%rsp\n mov %rdx,%rsi\n call internal_a\n ret",
                &format!("{sub} call internal_a\n ret"),
                " sub $8,%rsp\n test %rdi,%rdi\n je 1f\n call internal_b\n1: ret",
            ),
        );
        let sites = find_tls_functions(&lib).unwrap().unwrap().sites;
        assert_eq!(sites.len(), 4, "{sites:?}");
        for f in [TlsFunction::SslRead, TlsFunction::SslWrite] {
            assert_eq!(site_of(&sites, f).kind, SiteKind::EntrySingleStep);
            assert_eq!(site_of(&sites, f).instruction, "sub");
        }
        for f in [TlsFunction::SslReadEx, TlsFunction::SslWriteEx] {
            assert_eq!(site_of(&sites, f).kind, SiteKind::EntrySingleStep);
        }
        let _ = std::fs::remove_dir_all(lib.parent().unwrap());

        // Different targets for the pair: refused too.
        let lib = library(
            "mismatch",
            &openssl_like(
                &format!("{sub} call internal_b\n ret"),
                " sub $8,%rsp\n call internal_a\n ret",
                " endbr64\n push %rbp\n pop %rbp\n ret",
                " push %rbp\n pop %rbp\n ret",
            ),
        );
        let functions = find_tls_functions(&lib).unwrap().unwrap();
        let sites = &functions.sites;
        assert_eq!(
            site_of(sites, TlsFunction::SslRead).kind,
            SiteKind::EntrySingleStep
        );
        // CET entries: the probe goes after endbr64.
        let write = site_of(sites, TlsFunction::SslWrite);
        assert_eq!(write.kind, SiteKind::Entry);
        assert_eq!(
            Some(write.offset),
            functions.offset(TlsFunction::SslWrite).map(|o| o + 4)
        );
        assert_eq!(
            site_of(sites, TlsFunction::SslWriteEx).kind,
            SiteKind::Entry
        );
        let _ = std::fs::remove_dir_all(lib.parent().unwrap());
    }

    /// Builds `tests/go/<dir>` with the installed Go (`cargo xtask setup`), or `None` (with a
    /// note) where there is none.
    fn go_build(dir: &str, out: &str, flags: &[&str]) -> Option<PathBuf> {
        let go = ["go", "/usr/lib/go-1.19/bin/go"]
            .into_iter()
            .find(|g| Command::new(g).arg("version").output().is_ok())?;
        let scratch = crate::tls::scratch_dir(&format!("go-{out}"));
        let cache = std::env::temp_dir().join("api-guard-unit-gocache");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/go")
            .join(dir);
        let path = scratch.join(out);
        let status = Command::new(go)
            .current_dir(src)
            .env("GOCACHE", &cache)
            .env("GOPATH", cache.join("gopath"))
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off")
            .env("CGO_ENABLED", "0")
            .args(["build", "-o"])
            .arg(&path)
            .args(flags)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "go build {dir}");
        Some(path)
    }

    /// `nm` address of `symbol` (independently of the pclntab reader).
    fn nm_address(path: &Path, symbol: &str) -> u64 {
        let out = Command::new("nm").arg(path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.ends_with(&format!(" {symbol}")))
            .unwrap_or_else(|| panic!("{symbol} not in nm output"));
        u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
    }

    /// `ret` instructions objdump shows in `[start, end)`.
    fn objdump_rets(path: &Path, start: u64, end: u64) -> Vec<u64> {
        let out = Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(format!("--start-address={start:#x}"))
            .arg(format!("--stop-address={end:#x}"))
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("ret"))
            .map(|l| {
                let address = l.split_whitespace().next().unwrap().trim_end_matches(':');
                u64::from_str_radix(address, 16).unwrap()
            })
            .collect()
    }

    /// A real Go HTTPS program, with and without its symbol table: `(*Conn).Write`/`.Read`
    /// found through `.gopclntab` at the addresses `nm` gives (unstripped), the same in the
    /// stripped build, probes on the prologue's `jbe` and on every `ret` objdump sees in
    /// `Read`; a Go program without crypto/tls is not TLS.
    #[test]
    fn go_binaries_stripped_or_not() {
        let Some(full) = go_build("tlsapp", "tlsapp", &[]) else {
            println!("note: no Go toolchain, skipping");
            return;
        };
        let stripped = go_build("tlsapp", "tlsapp-stripped", &["-ldflags=-s -w"]).unwrap();
        let plain = go_build("plain", "plain", &[]).unwrap();
        let f = find_tls_functions(&full).unwrap().unwrap();
        let s = find_tls_functions(&stripped).unwrap().unwrap();
        assert_eq!(f.flavor, Flavor::Go);
        let go = f.go.as_ref().unwrap();
        assert!(go.version.starts_with("go1."), "{}", go.version);
        assert_eq!(s.go.as_ref().unwrap().version, go.version);
        for (function, symbol) in [
            (TlsFunction::GoConnWrite, "crypto/tls.(*Conn).Write"),
            (TlsFunction::GoConnRead, "crypto/tls.(*Conn).Read"),
        ] {
            let vaddr = f.code.vaddr_of(f.offset(function).unwrap()).unwrap();
            assert_eq!(vaddr, nm_address(&full, symbol), "{symbol}");
            // -s -w drops symbols, not code: the same function at the same place.
            assert_eq!(s.offset(function), f.offset(function), "{symbol}");
        }
        assert_eq!(s.sites, f.sites);
        let stack_checks: Vec<&Site> = f
            .sites
            .iter()
            .filter(|s| s.kind == SiteKind::StackCheck)
            .collect();
        assert_eq!(stack_checks.len(), 2, "{:?}", f.sites);
        for site in stack_checks {
            assert_eq!(site.instruction, "jbe");
            let vaddr = f.code.vaddr_of(site.offset).unwrap();
            let out = Command::new("objdump")
                .args(["-d", "--no-show-raw-insn"])
                .arg(format!("--start-address={vaddr:#x}"))
                .arg(format!("--stop-address={:#x}", vaddr + 6))
                .arg(&full)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(&format!("{vaddr:x}:\tjbe")), "{text}");
        }
        let start = f.code.vaddr_of(go.read.0).unwrap();
        let end = start + (go.read.1 - go.read.0);
        // Read's result is probed at its one call to runtime.memmove (objdump agrees).
        let copies: Vec<&Site> = f
            .sites
            .iter()
            .filter(|s| s.kind == SiteKind::ReadCopy)
            .collect();
        assert_eq!(copies.len(), 1, "{:?}", f.sites);
        assert!(!f.sites.iter().any(|s| s.kind == SiteKind::Return));
        let vaddr = f.code.vaddr_of(copies[0].offset).unwrap();
        let out = Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(format!("--start-address={start:#x}"))
            .arg(format!("--stop-address={end:#x}"))
            .arg(&full)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let memmove_calls: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("call") && l.contains("<runtime.memmove>"))
            .collect();
        assert_eq!(memmove_calls.len(), 1, "{text}");
        assert!(
            memmove_calls[0]
                .trim_start()
                .starts_with(&format!("{vaddr:x}:")),
            "{memmove_calls:?}"
        );
        // The fallback: every `ret`, as objdump sees them.
        let file = std::fs::File::open(&full).unwrap();
        let cache = object::ReadCache::new(file);
        let code = Code {
            data: &cache,
            map: &f.code,
        };
        let rets: Vec<u64> = code
            .go_returns(go.read.0, go.read.1)
            .unwrap()
            .into_iter()
            .map(|o| f.code.vaddr_of(o).unwrap())
            .collect();
        assert_eq!(rets, objdump_rets(&full, start, end));
        assert!(!rets.is_empty());
        assert!(find_tls_functions(&plain).unwrap().is_none());
        for p in [full, stripped, plain] {
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }
}
