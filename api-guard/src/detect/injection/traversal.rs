//! Path traversal and local file inclusion: `../` sequences in any encoding, sensitive system
//! files, `file:` URIs, and (in the URL path) hidden files, logs and database dumps.
//!
//! The value is first folded into a canonical form: ASCII lower case, `\` and look-alike
//! slashes as `/`, `0x2e`/`0x2f`/`0x5c` spelled-out bytes and full-width dots undone, and
//! each overlong UTF-8 sequence (`%c0%ae`, which decodes to two U+FFFD) as a wildcard that
//! may stand for a dot or a slash.
//!
//! A `..` counts only as a whole path segment (`a/../b`, `=../x`, `"..\x`): `file..txt`,
//! `v1..2` and `/foo../x` are names, not traversal. Markdown relative links (`](../x.md)`)
//! are reported too: they are rare in API payloads and a traversal all the same.

use std::sync::LazyLock;

use super::{
    text::{around, needle_mask, starts_with_ci, WordIndex},
    Candidate,
};
use crate::detect::{
    finding::Finding,
    inputs::Source,
    rules::{self, Rule},
};

/// Stands for an overlong-encoded character (dot or slash) in the folded text.
const WILD: u8 = 0; // NUL never survives `normalize::decode`.

/// Sensitive files and directories, as path fragments anchored at a segment start (folded:
/// lower case, `/` separators). An entry ending in `/` matches anything below it.
const SENSITIVE: &[&str] = &[
    // Unix accounts, system configuration and process information.
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/gshadow",
    "etc/master.passwd",
    "etc/security/",
    "etc/sudoers",
    "etc/subuid",
    "etc/subgid",
    "etc/hosts",
    "etc/hostname",
    "etc/issue",
    "etc/motd",
    "etc/crontab",
    "etc/cron.d/",
    "etc/fstab",
    "etc/mtab",
    "etc/inittab",
    "etc/environment",
    "etc/profile",
    "etc/bashrc",
    "etc/resolv.conf",
    "etc/os-release",
    "etc/lsb-release",
    "etc/redhat-release",
    "etc/debian_version",
    "etc/shells",
    "etc/ssh/",
    "etc/ssl/private",
    "etc/apache2/",
    "etc/httpd/",
    "etc/nginx/",
    "etc/mysql/",
    "etc/php/",
    "etc/ld.so.preload",
    "etc/kubernetes/",
    "etc/docker/",
    "proc/self/",
    "proc/thread-self/",
    "proc/version",
    "proc/cmdline",
    "proc/cpuinfo",
    "proc/meminfo",
    "proc/interrupts",
    "proc/mounts",
    "proc/net/",
    "proc/sys/",
    "proc/sched_debug",
    "proc/kcore",
    "sys/class",
    "sys/kernel/",
    "sys/firmware/",
    "sys/devices/",
    "sys/module/",
    "sys/power/",
    "var/run/secrets/",
    "run/secrets/",
    "var/lib/mysql/",
    "var/spool/cron",
    "var/mail/",
    // Server logs: log-poisoning inclusion targets.
    "var/log/apache/",
    "var/log/apache2/",
    "var/log/httpd/",
    "var/log/nginx/",
    "var/log/auth.log",
    "var/log/secure",
    "var/log/syslog",
    "var/log/messages",
    "var/log/mail.log",
    "usr/local/apache",
    "usr/local/etc/",
    "root/.",
    // Credentials and history in home directories.
    ".ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".mysql_history",
    ".psql_history",
    ".python_history",
    ".history",
    ".bashrc",
    ".bash_profile",
    ".htpasswd",
    ".htaccess",
    ".netrc",
    ".pgpass",
    ".my.cnf",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".gitconfig",
    ".git/",
    ".svn/",
    ".hg/",
    ".aws/",
    ".azure/",
    ".gcloud/",
    ".config/gcloud",
    ".docker/",
    ".kube/",
    ".gnupg/",
    ".boto",
    ".s3cfg",
    ".env",
    // Application secrets.
    "wp-config.php",
    "web.config",
    "httpd.conf",
    "php.ini",
    "my.cnf",
    // Windows.
    "win.ini",
    "boot.ini",
    "system.ini",
    "windows/system32/",
    "windows/repair/",
    "windows/panther/",
    "winnt/",
    "system32/config/",
    "inetpub/",
    "pagefile.sys",
    "autoexec.bat",
];

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if may_match(c) {
        check_ungated(c, out);
    }
}

/// A necessary condition for every rule. `..`, `file:` URIs, dump and log names and hidden
/// segments need a dot, a backslash, a colon, an overlong (non-ASCII) byte or a spelled-out
/// byte (`0x2e`, which needs a `0` and an `x`). Without those the folded text is the value
/// in lower case, and what is left to find is a redirection into a temporary directory
/// (`>` and `/`), the path's `@fs` / `@id` segments, or a sensitive name without a dot,
/// which holds one of [`SENSITIVE_STEMS`]; and, as the check always did, only in a value
/// with a `/` or a `0` (whose verdicts this keeps).
fn may_match(c: &Candidate<'_>) -> bool {
    const TRIGGERS: u128 = needle_mask(b".\\:");
    const SLASHES_COLON: u128 = needle_mask(b"/\\:");
    let s = &c.bytes;
    // Folding makes a `/` or a wildcard only from a `/`, a `\\`, a spelled-out byte or a
    // non-ASCII one. Without those and a `:`, outside the URL path, the folded text is the
    // value in lower case and only a sensitive name without a `/` or a dump name can match
    // (a `..` segment needs a `/` or a wildcard after it, `file:` and `:$` a colon, a temp
    // write a `/`): see [`slashless_may_match`].
    if !(s.has_any_mask(SLASHES_COLON)
        || s.non_ascii
        || (s.has(b'0') && s.has(b'x'))
        || c.input.source == Source::Path)
    {
        return slashless_may_match(c);
    }
    if s.has_any_mask(TRIGGERS) || s.non_ascii || (s.has(b'0') && s.has(b'x')) {
        return true;
    }
    if !(s.has(b'/') || s.has(b'0')) {
        return false;
    }
    let b = c.decoded.as_bytes();
    // Every stem ends in `/` or `_` (see the tests): a value with neither (an id, a
    // phone number) is spared the stem loop.
    const STEM_ENDS: u128 = needle_mask(b"/_");
    (s.has(b'>') && s.has(b'/'))
        || (c.input.source == Source::Path && s.has(b'@'))
        || (s.has_any_mask(STEM_ENDS) && holds_stem(b))
}

/// [`may_match`] for a value whose folded text is itself in lower case, holds no `/`, no
/// wildcard and no `:`, and is not a URL path: [`find_sensitive`] can then find only a
/// [`SENSITIVE`] name without a `/` (one with a dot holds a `.` and the three bytes after
/// its first dot, see [`DOTTED_NAMES`]; one without holds a stem ending in `_`), and
/// [`is_dump_name`] a name ending in `.sql…`; and [`check_ungated`] reads on only with a `.`
/// or a `0`.
fn slashless_may_match(c: &Candidate<'_>) -> bool {
    let s = &c.bytes;
    let b = c.decoded.as_bytes();
    (s.has(b'.') && holds_dotted_name(b))
        || ((s.has(b'.') || s.has(b'0')) && s.has(b'_') && holds_stem(b))
}

/// Whether a `.` of `b` is followed (ASCII case-insensitively) by the three bytes that
/// follow the first dot of a slashless [`SENSITIVE`] name, or by `sql` (a dump name): the
/// email `a.b@example.com` has none (`.b@`, `.com` are not listed).
fn holds_dotted_name(b: &[u8]) -> bool {
    let names = &*DOTTED_NAMES;
    memchr::memchr_iter(b'.', b).any(|p| {
        b.get(p + 1..p + 4).is_some_and(|after| {
            names.first[usize::from(after[0])]
                && names
                    .trigrams
                    .iter()
                    .any(|t| t[..].eq_ignore_ascii_case(after))
        })
    })
}

/// The three bytes after the first dot of each [`SENSITIVE`] name without a `/` (every such
/// name has them, see the tests), and `sql` for the dump names; and which bytes (either
/// case) begin one of them.
struct DottedNames {
    trigrams: Vec<[u8; 3]>,
    first: [bool; 256],
}

static DOTTED_NAMES: LazyLock<DottedNames> = LazyLock::new(|| {
    let mut trigrams: Vec<[u8; 3]> = SENSITIVE
        .iter()
        .map(|e| e.as_bytes())
        .filter(|e| !e.contains(&b'/'))
        .filter_map(|e| {
            let dot = e.iter().position(|&x| x == b'.')?;
            e.get(dot + 1..dot + 4)?.try_into().ok()
        })
        .chain([*b"sql"])
        .collect();
    trigrams.sort();
    trigrams.dedup();
    let mut first = [false; 256];
    for t in &trigrams {
        first[usize::from(t[0].to_ascii_lowercase())] = true;
        first[usize::from(t[0].to_ascii_uppercase())] = true;
    }
    DottedNames { trigrams, first }
});

/// Whether `b` holds one of [`SENSITIVE_STEMS`] anywhere, ASCII case-insensitively (as
/// `find_ci` of each stem would tell). Every stem ends in `/` or `_`, so only the bytes
/// before one of those are compared, and only where the byte just before it can end a
/// stem's letters: one table load per `/` or `_` in an ordinary value (`bottle 5/3`).
fn holds_stem(b: &[u8]) -> bool {
    let stems = &*SENSITIVE_STEMS;
    memchr::memchr2_iter(b'/', b'_', b).any(|p| {
        let upto = &b[..=p];
        p > 0
            && stems.penultimate[usize::from(b[p - 1])]
            && stems.stems.iter().any(|stem| {
                upto.len() >= stem.len()
                    && upto[upto.len() - stem.len()..].eq_ignore_ascii_case(stem)
            })
    })
}

/// [`SENSITIVE`], indexed: a segment start is compared with the few entries that begin like
/// it (the folded text is lower case, as the entries are).
static SENSITIVE_INDEX: LazyLock<WordIndex> = LazyLock::new(|| {
    let entries: Vec<&[u8]> = SENSITIVE.iter().map(|e| e.as_bytes()).collect();
    WordIndex::of(&entries)
});

/// How the [`SENSITIVE`] names without a dot begin: up to their first `/` or `_` (which
/// each has); and which bytes (either case) stand before a
/// stem's last byte, for [`holds_stem`].
struct Stems {
    stems: Vec<Vec<u8>>,
    penultimate: [bool; 256],
}

static SENSITIVE_STEMS: LazyLock<Stems> = LazyLock::new(|| {
    let stems = sensitive_stems();
    let mut penultimate = [false; 256];
    for st in &stems {
        // Every stem has a byte before its `/` or `_` (see the tests).
        if let Some(&x) = st.len().checked_sub(2).and_then(|i| st.get(i)) {
            penultimate[usize::from(x.to_ascii_lowercase())] = true;
            penultimate[usize::from(x.to_ascii_uppercase())] = true;
        }
    }
    Stems { stems, penultimate }
});

fn sensitive_stems() -> Vec<Vec<u8>> {
    let mut stems: Vec<Vec<u8>> = SENSITIVE
        .iter()
        .map(|e| e.as_bytes())
        .filter(|e| !e.contains(&b'.'))
        .map(|e| {
            let end = e
                .iter()
                .position(|&x| x == b'/' || x == b'_')
                .map_or(e.len(), |p| p + 1);
            e[..end].to_vec()
        })
        .collect();
    stems.sort();
    stems.dedup();
    stems
}

/// [`check`] without [`may_match`] (which must not change its verdicts).
pub(super) fn check_ungated(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let value = c.decoded;
    let b = value.as_bytes();
    // The original cheap exit, which `may_match` refines.
    if !b
        .iter()
        .any(|&x| matches!(x, b'.' | b'/' | b'\\' | b':' | b'0') || x >= 0x80)
    {
        return;
    }
    // Binary bodies decode to many U+FFFD: no overlong wildcards there.
    let folded = fold(b, c.input.source != Source::Body);
    let t = folded.as_slice();
    let mut report = |rule: &'static Rule, pos: usize| {
        out.push(Finding::new(
            rule,
            c.input.location(),
            around(value, pos.min(value.len())),
        ));
    };
    if let Some(p) = ntfs_stream(b) {
        report(&rules::TRAVERSAL_NTFS_STREAM, p);
        return;
    }
    // Folding only shortens the text, so positions are approximate but in range.
    let sensitive = find_sensitive(t);
    if let Some(p) = find_dotdot(t) {
        match sensitive {
            Some(_) => report(&rules::TRAVERSAL_SENSITIVE_FILE, p),
            None => report(&rules::TRAVERSAL_DOTDOT, p),
        }
        return;
    }
    if let Some(p) = find_file_uri(t) {
        report(&rules::TRAVERSAL_FILE_URI, p);
        return;
    }
    if let Some(p) = sensitive {
        report(&rules::TRAVERSAL_SENSITIVE_FILE, p);
        return;
    }
    if let Some(p) = temp_write(t) {
        report(&rules::TRAVERSAL_TEMP_WRITE, p);
        return;
    }
    if c.input.source == Source::Path {
        if let Some(p) = find_restricted_segment(t) {
            report(&rules::TRAVERSAL_RESTRICTED_FILE, p);
        }
    } else if !c.input.is_name() && is_dump_name(t) {
        report(&rules::TRAVERSAL_RESTRICTED_FILE, 0);
    }
}

/// An NTFS stream suffix: `index.php::$DATA` makes IIS and Windows file APIs open the file's
/// default stream while the name no longer ends in `.php` (source disclosure, upload filter
/// bypass); `dir:$I30:$INDEX_ALLOCATION` opens a directory as a file. The stream type is
/// spelled out, so a `$` after a colon in prose or code (`price:$5`) does not count.
fn ntfs_stream(b: &[u8]) -> Option<usize> {
    const TYPES: &[&[u8]] = &[
        b"data",
        b"index_allocation",
        b"bitmap",
        b"attribute_list",
        b"i30",
        b"reparse_point",
        b"ea",
        b"ea_information",
        b"object_id",
        b"security_descriptor",
        b"volume_information",
        b"volume_name",
        b"logged_utility_stream",
    ];
    let mut from = 0;
    while let Some(off) = b[from..].windows(2).position(|w| w == b":$") {
        let p = from + off;
        from = p + 2;
        let rest = &b[p + 2..];
        let name = rest
            .iter()
            .take_while(|x| x.is_ascii_alphanumeric() || **x == b'_')
            .count();
        let ends = rest
            .get(name)
            .is_none_or(|x| !(x.is_ascii_alphanumeric() || *x == b'_'));
        // `file:$DATA` names the unnamed stream by type; `::$DATA` likewise with the empty
        // stream name; a named stream (`file:ads:$DATA`) ends in the same `:$TYPE`.
        if ends
            && TYPES.iter().any(|t| rest[..name].eq_ignore_ascii_case(t))
            && p > 0
            && !b[p - 1].is_ascii_whitespace()
        {
            return Some(p.saturating_sub(usize::from(b[p - 1] == b':')));
        }
    }
    None
}

/// The canonical form described in the module docs.
fn fold(b: &[u8], wild: bool) -> Vec<u8> {
    let mut t = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let (out, used) = match rest[0] {
            b'\\' => (b'/', 1),
            b'0' if rest.len() >= 4 && (rest[1] == b'x' || rest[1] == b'X') => {
                match rest[2..4].to_ascii_lowercase().as_slice() {
                    b"2e" => (b'.', 4),
                    b"2f" | b"5c" => (b'/', 4),
                    _ => (b'0', 1),
                }
            }
            0xEF if rest.starts_with("\u{FFFD}\u{FFFD}".as_bytes()) => {
                (if wild { WILD } else { b'?' }, 6)
            }
            // Full-width dot and solidus, division slash, set minus.
            0xEF if rest.starts_with("\u{FF0E}".as_bytes()) => (b'.', 3),
            0xEF if rest.starts_with("\u{FF0F}".as_bytes()) => (b'/', 3),
            0xE2 if rest.starts_with("\u{2215}".as_bytes())
                || rest.starts_with("\u{2216}".as_bytes()) =>
            {
                (b'/', 3)
            }
            x => (x.to_ascii_lowercase(), 1),
        };
        t.push(out);
        i += used;
    }
    t
}

fn is_sep(x: u8) -> bool {
    x == b'/' || x == WILD
}

/// Characters after which a path segment may begin.
fn segment_boundary(x: u8) -> bool {
    matches!(
        x,
        b'/' | b'='
            | b':'
            | b';'
            | b','
            | b'"'
            | b'\''
            | b'('
            | b'<'
            | b'>'
            | b'|'
            | b'&'
            | b'`'
            | b'['
            | b'{'
            | WILD
    ) || x.is_ascii_whitespace()
}

/// The first `..` that is a whole path segment followed by a separator.
fn find_dotdot(t: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < t.len() {
        if t[i] != b'.' && t[i] != WILD {
            i += 1;
            continue;
        }
        let start = i;
        let mut real = 0;
        while i < t.len() && (t[i] == b'.' || t[i] == WILD) {
            real += usize::from(t[i] == b'.');
            i += 1;
        }
        let run = i - start;
        if run < 2 || (start > 0 && !segment_boundary(t[start - 1])) {
            continue;
        }
        // Tomcat and Jetty drop `;params` from a segment: `..;/`.
        let mut j = i;
        if t.get(j) == Some(&b';') {
            while j < t.len() && !is_sep(t[j]) && j - i < 32 {
                j += 1;
            }
        }
        match t.get(j) {
            Some(&b'/') if real > 0 || run >= 2 => return Some(start),
            // A wildcard run ending in a wildcard: overlong `..%c0%af`; ask for real dots so
            // binary noise (many U+FFFD) does not qualify.
            _ if real >= 2 && t.get(i.wrapping_sub(1)) == Some(&WILD) => return Some(start),
            _ => {}
        }
        // A run of only wildcards (`%c0%ae%c0%ae%c0%af`): at least three overlong characters
        // followed by a real segment name.
        if real == 0 && run >= 3 && t.get(i).is_some_and(|x| x.is_ascii_alphanumeric()) {
            return Some(start);
        }
    }
    None
}

/// The first sensitive file or directory from [`SENSITIVE`]. Only segment starts whose
/// word holds a `/`, `.` or `_` are tried, so prose costs little.
fn find_sensitive(t: &[u8]) -> Option<usize> {
    for p in 0..t.len() {
        if p > 0 && !segment_boundary(t[p - 1]) {
            continue;
        }
        let word = &t[p..];
        let word = &word[..word
            .iter()
            .position(|x| x.is_ascii_whitespace() || matches!(x, b'"' | b'\'' | b'<' | b'>'))
            .unwrap_or(word.len())];
        if word.len() < 4 || !word.iter().any(|x| matches!(x, b'/' | b'.' | b'_')) {
            continue;
        }
        // Dot-files named in prose ("in your .git/config") are mentions, not paths.
        let after_blank = p > 0 && t[p - 1].is_ascii_whitespace();
        for n in SENSITIVE_INDEX.prefixes(word) {
            // The entry, as the (lower-case) text holds it.
            let e = &word[..n];
            if after_blank && e[0] == b'.' {
                continue;
            }
            let after = word.get(n).copied();
            let whole = e.ends_with(b"/")
                || e.ends_with(b".")
                || after.is_none_or(|a| !(a.is_ascii_alphanumeric() || a == b'_'));
            if whole {
                return Some(p);
            }
        }
    }
    None
}

fn find_from(t: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || t.len() < needle.len() {
        return None;
    }
    (from..=t.len() - needle.len()).find(|&i| t[i..].starts_with(needle))
}

/// A shell redirection into a world-writable directory (`>/tmp/x`, `>> /dev/shm/y`): the
/// staging step of a dropper. The directory alone (`>/tmp`) writes nothing.
fn temp_write(t: &[u8]) -> Option<usize> {
    const DIRS: &[&[u8]] = &[b"/tmp/", b"/var/tmp/", b"/dev/shm/"];
    let mut from = 0;
    while let Some(p) = t[from..].iter().position(|&x| x == b'>').map(|p| p + from) {
        from = p + 1;
        // Arrows (`->`, `=>`) in prose are no redirections.
        if p > 0 && matches!(t[p - 1], b'-' | b'=') {
            continue;
        }
        let rest = &t[p + 1..];
        let rest = rest.strip_prefix(b">").unwrap_or(rest);
        let n = rest.iter().take_while(|x| **x == b' ').count();
        let rest = &rest[n..];
        if let Some(dir) = DIRS.iter().find(|d| rest.starts_with(d)) {
            if rest
                .get(dir.len())
                .is_some_and(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
            {
                return Some(p);
            }
        }
    }
    None
}

/// `file:/…` and `file://…` (also behind `url:` or `jar:`), not `profile:/`.
fn find_file_uri(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = find_from(t, b"file:", from) {
        from = p + 1;
        let before_ok = p == 0 || !t[p - 1].is_ascii_alphanumeric();
        if before_ok && t.get(p + 5) == Some(&b'/') {
            return Some(p);
        }
    }
    None
}

/// URL path segments that name hidden files (`/.env`, `/.git/config`, `/.aws/…`), server
/// logs or database dumps. `/.well-known/` is the one public dot-directory.
fn find_restricted_segment(t: &[u8]) -> Option<usize> {
    let mut pos = 0;
    for seg in t.split(|&x| x == b'/') {
        let start = pos;
        pos += seg.len() + 1;
        if seg.first() == Some(&b'.')
            && seg
                .get(1)
                .is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'_')
            && !starts_with_ci(seg, b".well-known")
        {
            return Some(start);
        }
        if seg == b"@fs" || is_log_or_dump(seg) {
            return Some(start);
        }
        // Vite's dev server serves virtual modules (`/@id/__x00__…`) and raw files through
        // `/@id/`: no production API has that segment in the middle of a path.
        if seg == b"@id" && pos < t.len() {
            return Some(start);
        }
    }
    None
}

/// Logs, backups editors and admins leave behind (`.bak`, `.old`, `.orig`, `index.php~`),
/// database files and dumps (`.sql`, `.db`, `.sqlite`, Redis `dump.rdb`), and certbot's
/// private key (`privkey.pem`), also archived.
fn is_log_or_dump(seg: &[u8]) -> bool {
    const SUFFIXES: &[&[u8]] = &[
        b".log",
        b".bak",
        b".swp",
        b".sql",
        b".old",
        b".orig",
        b".save",
        b".db",
        b".sqlite",
        b".sqlite3",
        b".rdb",
        b".mdb",
    ];
    let lower = seg.to_ascii_lowercase();
    let seg = &lower[..];
    // `name.ext~`: an editor's backup copy, served as text instead of run.
    if seg.len() > 2 && seg.ends_with(b"~") && seg[..seg.len() - 1].contains(&b'.') {
        return true;
    }
    if seg == b"privkey.pem" {
        return true;
    }
    const ARCHIVES: &[&[u8]] = &[
        b"", b".gz", b".zip", b".bz2", b".xz", b".tar", b".tgz", b".7z",
    ];
    SUFFIXES.iter().any(|s| {
        ARCHIVES.iter().any(|a| {
            let n = s.len() + a.len();
            seg.len() > n && seg.ends_with(a) && seg[..seg.len() - a.len()].ends_with(s)
        })
    })
}

/// A whole value naming a database dump (`backup.sql.gz`): what a download or include
/// parameter is probed with.
fn is_dump_name(t: &[u8]) -> bool {
    t.len() <= 128
        && !t.iter().any(|x| x.is_ascii_whitespace())
        && (t.ends_with(b".sql")
            || [
                b".sql.gz" as &[u8],
                b".sql.zip",
                b".sql.bz2",
                b".sql.xz",
                b".sql.tar.gz",
            ]
            .iter()
            .any(|s| t.ends_with(s)))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::detect::{Kind, Severity};

    fn run(source: Source, name: &str, value: &str) -> Vec<Finding> {
        super::super::run_check(check, source, name, value)
    }

    fn rule(source: Source, value: &str) -> Option<&'static str> {
        let f = run(source, "p", value);
        assert!(f.len() <= 1, "{f:?}");
        f.first().map(|f| {
            assert_eq!(f.kind, Kind::PathTraversal);
            f.rule_id
        })
    }

    #[test]
    fn sensitive_entries_are_indexed() {
        for e in SENSITIVE {
            assert!(e.len() >= 2 && *e == e.to_ascii_lowercase(), "{e}");
            let mut word = e.as_bytes().to_vec();
            word.extend_from_slice(b"x");
            assert!(SENSITIVE_INDEX.prefixes(&word).any(|n| n == e.len()), "{e}");
        }
    }

    #[test]
    fn sensitive_stems_cover_the_dotless_names() {
        for e in SENSITIVE.iter().filter(|e| !e.contains('.')) {
            assert!(
                SENSITIVE_STEMS
                    .stems
                    .iter()
                    .any(|st| e.as_bytes().starts_with(st)),
                "{e}"
            );
        }
        assert!(SENSITIVE_STEMS
            .stems
            .iter()
            .all(|st| st.len() >= 2 && (st.ends_with(b"/") || st.ends_with(b"_"))));
    }

    /// [`holds_stem`] finds a stem exactly where searching for each stem does: random values
    /// made of every stem, its pieces and noise around `/` and `_`, in both cases.
    #[test]
    fn stem_table_keeps_every_stem_search() {
        use super::super::{keywords::random_values, text::find_ci};
        let stems: Vec<&[u8]> = SENSITIVE_STEMS.stems.iter().map(|s| &s[..]).collect();
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "/", "_", "//", "a", "c", "d", "s", "t", "0", "5", " ", ".", "-", "\\", "e", "et",
            "etc", "proc", "sy", "windows", "win", "nt", "system3", "32", "id", "authorized",
            "Stainless steel water bottle 5/3", "SKU-5-0003", "é",
        ];
        let (mut hits, mut total) = (0, 0);
        for v in random_values(0x57e1_1ab1_e5ee_d5ee, &stems, PIECES) {
            let searched = stems.iter().any(|st| find_ci(&v, st).is_some());
            assert_eq!(
                holds_stem(&v),
                searched,
                "{:?}",
                String::from_utf8_lossy(&v)
            );
            hits += usize::from(searched);
            total += 1;
        }
        assert!(
            hits > total / 10 && hits < total * 9 / 10,
            "{hits} of {total}"
        );
    }

    #[test]
    fn slashless_dotted_names_have_three_bytes_after_their_dot() {
        for e in SENSITIVE.iter().filter(|e| !e.contains('/')) {
            if let Some(dot) = e.find('.') {
                assert!(e.len() >= dot + 4, "{e}");
                assert!(DOTTED_NAMES
                    .trigrams
                    .contains(&e.as_bytes()[dot + 1..dot + 4].try_into().unwrap()));
            }
        }
    }

    /// The slashless gate ([`slashless_may_match`]) never changes a verdict: 240,000 random
    /// values built from every sensitive name (whole, cut short, in both cases), dump names,
    /// benign dotted values and noise, from every source, get the same findings from
    /// [`check`] and [`check_ungated`]; the slashless ones are gated often and flagged often.
    #[test]
    fn slashless_gate_keeps_every_verdict() {
        #[rustfmt::skip]
        const NOISE: &[&str] = &[
            "a", "x", "X", "0", "5", ".", ".", "..", "_", "-", " ", "@", "#", "~", ";", "=", "'",
            "\"", "<", ">", "&", "$", "!", ",", "(", "/", "\\", ":", "0x2e", "0X2F", "%2e",
            "%00", "\0", "é", "\u{ff0e}", "\u{fffd}\u{fffd}", "sql", ".sql", ".SQL.gz", ".gz",
            "backup", "dump", "siobhan.obrien5@example.com", "example.com", "wait. #5",
            "Please leave the parcel at the door; ring twice & wait.", "v1.2", "file", "env",
            "conf", "com", "ini", "bash", "hist", "id", "rsa", "keys", "git", "my", "cnf", "php",
            "wp-config", "web", "boot", "win", "system", "pagefile", "autoexec", ".bat",
        ];
        const SOURCES: &[Source] = &Source::ALL;
        let names: Vec<String> = SENSITIVE
            .iter()
            .flat_map(|e| {
                let cut = &e[..e.len() - 1];
                [e.to_string(), e.to_ascii_uppercase(), cut.to_string()]
            })
            .collect();
        let mut rng = crate::testutil::Rng(0x51a5_41e5_5ea7_0001);
        let (mut gated, mut flagged_slashless) = (0usize, 0usize);
        for round in 0..240_000 {
            let len = 1 + rng.below(6) as usize;
            let v: String = (0..len)
                .map(|_| {
                    if rng.below(3) == 0 {
                        names[rng.below(names.len() as u64) as usize].as_str()
                    } else {
                        NOISE[rng.below(NOISE.len() as u64) as usize]
                    }
                })
                .collect();
            let source = SOURCES[round % SOURCES.len()];
            let checks = (
                check as super::super::Check,
                check_ungated as super::super::Check,
            );
            super::super::assert_gate_keeps_findings(source, &v, checks, |c, found| {
                let s = &c.bytes;
                let slashless = !(s.has_any_mask(needle_mask(b"/\\:"))
                    || s.non_ascii
                    || (s.has(b'0') && s.has(b'x'))
                    || source == Source::Path);
                if slashless {
                    gated += usize::from(!slashless_may_match(c));
                    flagged_slashless += usize::from(!found.is_empty());
                }
            });
        }
        // Enough of both for the comparison to mean something.
        assert!(gated > 20_000, "{gated}");
        assert!(flagged_slashless > 5_000, "{flagged_slashless}");
    }

    #[test]
    fn ordinary_dotted_values_skip_the_fold() {
        let input = |v: &'static str| crate::detect::inputs::Input {
            source: Source::Json,
            name: std::borrow::Cow::Borrowed("q"),
            value: std::borrow::Cow::Borrowed(v),
        };
        for v in [
            "siobhan.obrien5@example.com",
            "Please leave the parcel at the door; ring twice & wait. #5",
            "v1.2.3",
        ] {
            let i = input(v);
            assert!(!may_match(&Candidate::new(&i, v)), "{v}");
        }
        for v in [
            "my .env",
            "dump.SQL",
            "x.htaccess",
            "id_rsa.pub",
            "boot.ini",
        ] {
            let i = input(v);
            assert!(may_match(&Candidate::new(&i, v)), "{v}");
        }
    }

    #[test]
    fn dotdot_in_every_encoding() {
        for v in [
            "../../../srv/data",
            "..\\..\\boot",
            "..%2f..%2fx",
            "%2e%2e/%2e%2e/x",
            "%252e%252e%252fx",
            "....//....//x",
            "..%5c..%5cx",
            "x=..;/admin",
            "0x2e0x2e0x2fsecret",
            "%c0%ae%c0%ae/x",
            "..%c0%afx",
            "%u002e%u002e%u2215x",
            "..\u{FF0F}x",
            "../x%00.png",
        ] {
            assert_eq!(rule(Source::Query, v), Some("traversal.dotdot"), "{v}");
        }
        let f = run(Source::Path, "", "/static/../../etc/passwd");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule_id, "traversal.sensitive_file");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].location, "path");
        let f = run(Source::Query, "file", "..%2F..%2Fwindows/win.ini");
        assert_eq!(f[0].rule_id, "traversal.sensitive_file");
        assert_eq!(f[0].location, "query:file");
    }

    #[test]
    fn sensitive_files_and_uris() {
        for v in [
            "/etc/passwd",
            "/etc/shadow",
            "/proc/self/environ",
            "C:\\Windows\\System32\\drivers\\etc\\hosts",
            "c:/boot.ini",
            "cat /root/.bash_history",
            "~/.ssh/id_rsa",
            // Absolute paths without `../` reach the file as well; logs are inclusion targets.
            "/var/log/apache2/access.log",
            "/var/log/nginx/error.log",
            "/var/log/auth.log",
            "C:\\Windows\\win.ini",
        ] {
            assert_eq!(
                rule(Source::Query, v),
                Some("traversal.sensitive_file"),
                "{v}"
            );
        }
        assert_eq!(
            rule(Source::Query, "file:///var/www/x"),
            Some("traversal.file_uri")
        );
        assert_eq!(
            rule(Source::Json, "jar:file:/a.jar!/b"),
            Some("traversal.file_uri")
        );
        assert_eq!(
            rule(Source::Query, "backup.sql.gz"),
            Some("traversal.restricted_file")
        );
    }

    #[test]
    fn restricted_path_segments() {
        for p in [
            "/.env",
            "/.git/config",
            "/app/.aws/credentials",
            "/wp-content/debug.log",
            "/db.sql.zip",
            "/get/foo.bak",
            "/get/site.OLD",
            "/get/dump.rdb",
            "/data/app.sqlite3",
            "/index.php~",
            "/index.php~/foo/bar/",
            "/etc/letsencrypt/live/example.com/privkey.pem",
        ] {
            assert!(rule(Source::Path, p).is_some(), "{p}");
        }
        for p in [
            "/.well-known/openid-configuration",
            "/v1.2/file..txt",
            "/get/foo../1234",
            "/get/..foo",
            "/get/..",
            "/jquery.history.min.js",
            "/api/v1/users/42/profile",
            "/static/app.min.js",
            "/users/~alice/",
            "/v1/db/tables",
            "/certs/ca.pem",
            "/docs/old/readme",
        ] {
            assert_eq!(rule(Source::Path, p), None, "{p}");
        }
    }

    #[test]
    fn temp_dir_writes_and_dev_server_routes() {
        for v in [">/tmp/stage.sh", "x; echo a >> /dev/shm/k", "1>/var/tmp/.x"] {
            assert_eq!(rule(Source::Query, v), Some("traversal.temp_write"), "{v}");
        }
        for v in [
            ">/tmp",
            "a -> /tmp/out",
            "build => /tmp/x",
            "see /tmp/readme",
        ] {
            assert_eq!(rule(Source::Query, v), None, "{v}");
        }
        assert_eq!(
            rule(Source::Path, "/@id/__x00__virtual:mod"),
            Some("traversal.restricted_file")
        );
        assert_eq!(rule(Source::Path, "/users/@id"), None);
        assert_eq!(rule(Source::Path, "/users/@idris/posts"), None);
    }

    #[test]
    fn ntfs_alternate_data_streams() {
        for v in [
            "index.php::$DATA",
            "web.config::$data",
            "shell.asp:$DATA",
            "uploads:$I30:$INDEX_ALLOCATION",
            "secret.txt:hidden:$DATA",
        ] {
            assert_eq!(rule(Source::Query, v), Some("traversal.ntfs_stream"), "{v}");
        }
        assert_eq!(
            rule(Source::Path, "/index.php::$DATA"),
            Some("traversal.ntfs_stream")
        );
        for v in [
            "price:$5",
            "total: $DATA",
            "a::$dataset",
            "let x = y::$default;",
            "key:$data_dir",
        ] {
            assert_eq!(rule(Source::Query, v), None, "{v}");
        }
    }

    #[test]
    fn benign_values() {
        for v in [
            "1.2.3",
            "version 10.2.3 released...",
            "email me at a@b.com",
            "price: $5",
            "100%",
            "https://example.com/webhook",
            "See the docs at docs/install.md",
            "Wait... what?",
            "profile:/home",
            "the /etc directory holds configuration",
            "passwd reset requested",
            "/home/app/reports/q3.pdf",
            "/var/log is where logs go",
            "history.history",
            "stored in your .git/config file",
        ] {
            assert_eq!(rule(Source::Json, v), None, "{v}");
        }
        let noise = "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}/\u{FFFD}\u{FFFD}";
        assert_eq!(rule(Source::Body, noise), None);
    }
}
