//! `cargo xtask eval`: measures the detection engine on ../shared/corpus with the real
//! `api-guard detect` command and prints recall and false-positive tables. Nothing here
//! teaches the detectors anything; the corpus only measures them.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::{setup, util};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The corpus directory (default: ../shared/corpus beside the project).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Also list up to N missed attacks and N false positives per set (for tuning).
    #[arg(long, default_value_t = 0)]
    show: usize,
    /// Configuration passed to `api-guard detect --config`.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Finding kinds that judge content (injection and protocol). Authentication and behaviour
/// findings are scored separately: the corpus' synthetic JWTs rightly fail verification.
const CONTENT_KINDS: &[&str] = &[
    "sqli",
    "xss",
    "path_traversal",
    "command_injection",
    "ssti",
    "ssrf",
    "code_injection",
    "session_fixation",
    "ldap_injection",
    "protocol",
];

/// Which finding kinds count as catching an attack of a CRS category.
fn kinds_for(category: &str) -> &'static [&'static str] {
    match category {
        "sqli" => &["sqli"],
        "xss" => &["xss"],
        "path_traversal" => &["path_traversal"],
        "command_injection" => &["command_injection"],
        "rfi" => &["ssrf", "path_traversal", "code_injection"],
        "php_injection" | "java_injection" => &["code_injection", "ssti"],
        // CRS 934 also holds its SSRF rules (934110 metadata, 934190 loopback names).
        "generic_injection" => &[
            "code_injection",
            "ssti",
            "command_injection",
            "sqli",
            "ssrf",
        ],
        "session_fixation" => &["session_fixation"],
        "protocol" => &["protocol"],
        // CRS files LDAP injection (921200) under protocol attacks.
        "protocol_attack" => &["protocol", "ldap_injection"],
        _ => CONTENT_KINDS,
    }
}

/// CRS files requests for backup, dump and key files (920440 restricted extensions, 920500
/// editor backups `~`) under protocol; api-guard reports them as `traversal.restricted_file`.
fn filed_as_traversal(rule: Option<u64>) -> bool {
    matches!(rule, Some(920440 | 920500))
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    setup::ensure(setup::Scope::Toolchain)?;
    let bin = util::build_agent(true)?;
    let corpus = match &args.corpus {
        Some(c) => c.clone(),
        None => util::shared_dir()?.join("corpus"),
    };
    if !corpus.join("attacks/crs.jsonl").is_file() {
        bail!("{} does not hold the evaluation corpus", corpus.display());
    }
    let work = std::env::temp_dir().join(format!("api-guard-eval-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let result = run_all(&bin, &corpus, &work, args);
    let _ = fs::remove_dir_all(&work);
    result
}

struct Run {
    /// Input lines, parsed.
    inputs: Vec<Value>,
    /// Finding kinds per input line.
    kinds: Vec<Vec<String>>,
    /// Finding severities per input line, in the order of `kinds`.
    severities: Vec<Vec<String>>,
    secs: f64,
}

fn detect(bin: &Path, input: &Path, config: Option<&Path>) -> Result<Run> {
    let text = fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let inputs: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", input.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("detect").arg("--input").arg(input);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let start = Instant::now();
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("`{}` failed: {}", util::show(&cmd), out.status);
    }
    let field_of = |l: &str, field: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
        v["findings"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| f[field].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<Vec<String>> = stdout.lines().map(|l| field_of(l, "kind")).collect();
    let severities: Vec<Vec<String>> = stdout.lines().map(|l| field_of(l, "severity")).collect();
    if kinds.len() != inputs.len() {
        bail!(
            "{} answered {} lines for {} inputs",
            input.display(),
            kinds.len(),
            inputs.len()
        );
    }
    Ok(Run {
        inputs,
        kinds,
        severities,
        secs,
    })
}

fn hit(kinds: &[String], wanted: &[&str]) -> bool {
    kinds.iter().any(|k| wanted.contains(&k.as_str()))
}

#[derive(Default)]
struct Tally {
    n: usize,
    hit: usize,
    examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, hit: bool, example: impl FnOnce() -> String, keep: usize, keep_hits: bool) {
        self.n += 1;
        if hit {
            self.hit += 1;
        }
        if hit == keep_hits && self.examples.len() < keep {
            self.examples.push(example());
        }
    }

    fn pct(&self) -> String {
        if self.n == 0 {
            return "-".into();
        }
        format!("{:.1}%", 100.0 * self.hit as f64 / self.n as f64)
    }

    fn cell(&self) -> String {
        if self.n == 0 {
            return "-".into();
        }
        format!("{} ({}/{})", self.pct(), self.hit, self.n)
    }
}

fn describe(v: &Value) -> String {
    let s = format!(
        "{} {} {} {}",
        v["id"],
        v["uri"].as_str().unwrap_or(""),
        v["headers"],
        v["body"].as_str().unwrap_or("")
    );
    s.chars().take(300).collect()
}

fn run_all(bin: &Path, corpus: &Path, work: &Path, args: &EvalArgs) -> Result<()> {
    let config = args.config.as_deref();
    let mut report = String::new();

    // CRS regression tests: recall on attacks, false positives on near-miss negatives.
    let crs = detect(bin, &corpus.join("attacks/crs.jsonl"), config)?;
    let mut recall: BTreeMap<(String, u8), (Tally, Tally)> = BTreeMap::new();
    let mut fps: BTreeMap<(String, u8), Tally> = BTreeMap::new();
    // Some benign rows send exactly the request another rule's attack row sends (a payload
    // one rule must ignore and its sibling must catch); they are tallied apart as well.
    let request_of = |v: &Value| {
        format!(
            "{}|{}|{}|{}|{}",
            v["method"], v["uri"], v["headers"], v["body"], v["encoded_request"]
        )
    };
    let attack_requests: std::collections::HashSet<String> = crs
        .inputs
        .iter()
        .filter(|v| v["expect"] == "attack")
        .map(request_of)
        .collect();
    let (mut fp_all, mut fp_distinct) = (Tally::default(), Tally::default());
    // PL1 attack rows missed, per category and CRS rule id: where a family's gap is.
    let mut missed_rules: BTreeMap<String, BTreeMap<u64, usize>> = BTreeMap::new();
    for (v, kinds) in crs.inputs.iter().zip(&crs.kinds) {
        let category = v["category"].as_str().unwrap_or("?").to_owned();
        let pl = v["paranoia_level"].as_u64().unwrap_or(1) as u8;
        let matched = hit(kinds, kinds_for(&category))
            || (filed_as_traversal(v["rule"].as_u64()) && hit(kinds, &["path_traversal"]));
        let any = hit(kinds, CONTENT_KINDS);
        if v["expect"] == "benign" {
            fp_all.add(any, String::new, 0, true);
            if !attack_requests.contains(&request_of(v)) {
                fp_distinct.add(any, String::new, 0, true);
            }
        }
        if v["expect"] == "attack" && pl == 1 && !matched {
            *missed_rules
                .entry(category.clone())
                .or_default()
                .entry(v["rule"].as_u64().unwrap_or(0))
                .or_default() += 1;
        }
        for slice in [1u8, 2] {
            if pl > slice {
                continue;
            }
            if v["expect"] == "attack" {
                let (m, a) = recall.entry((category.clone(), slice)).or_default();
                m.add(matched, || describe(v), args.show, false);
                a.add(any, String::new, 0, false);
            } else {
                fps.entry((category.clone(), slice)).or_default().add(
                    any,
                    || describe(v),
                    args.show,
                    true,
                );
            }
        }
    }
    let categories: Vec<String> = {
        let mut c: Vec<String> = recall.keys().map(|(c, _)| c.clone()).collect();
        c.dedup();
        c
    };
    writeln!(
        report,
        "\nCRS regression tests ({} rows, {:.2} s): recall = a finding of the category's kind; \
         any = any content finding; FP = content findings on the category's benign rows\n",
        crs.inputs.len(),
        crs.secs
    )?;
    writeln!(
        report,
        "{:<18} {:>22} {:>8} {:>22} {:>8} {:>20} {:>20}",
        "category", "recall PL1", "any PL1", "recall PL<=2", "any", "FP PL1", "FP PL<=2"
    )?;
    let empty = (Tally::default(), Tally::default());
    let none = Tally::default();
    for c in &categories {
        let (m1, a1) = recall.get(&(c.clone(), 1)).unwrap_or(&empty);
        let (m2, a2) = recall.get(&(c.clone(), 2)).unwrap_or(&empty);
        let f1 = fps.get(&(c.clone(), 1)).unwrap_or(&none);
        let f2 = fps.get(&(c.clone(), 2)).unwrap_or(&none);
        writeln!(
            report,
            "{:<18} {:>22} {:>8} {:>22} {:>8} {:>20} {:>20}",
            c,
            m1.cell(),
            a1.pct(),
            m2.cell(),
            a2.pct(),
            f1.cell(),
            f2.cell()
        )?;
    }
    let all_fp =
        fps.iter()
            .filter(|((_, s), _)| *s == 2)
            .fold(Tally::default(), |mut t, (_, f)| {
                t.n += f.n;
                t.hit += f.hit;
                t
            });
    writeln!(report, "{:<18} {:>96}", "benign PL<=2", all_fp.cell())?;
    writeln!(report, "{:<18} {:>96}", "benign, all PLs", fp_all.cell())?;
    writeln!(
        report,
        "{:<18} {:>96}",
        "  not an attack row",
        fp_distinct.cell()
    )?;
    writeln!(
        report,
        "\nPL1 attack rows missed, by CRS rule (rule x rows)"
    )?;
    for (c, rules) in &missed_rules {
        let list: Vec<String> = rules.iter().map(|(r, n)| format!("{r}x{n}")).collect();
        writeln!(report, "  {c:<18} {}", list.join(" "))?;
    }
    for ((c, slice), (m, _)) in &recall {
        for e in m.examples.iter().filter(|_| *slice == 1) {
            writeln!(report, "  missed {c}: {e}")?;
        }
    }
    for ((c, slice), f) in &fps {
        for e in f.examples.iter().filter(|_| *slice == 1) {
            writeln!(report, "  false positive {c}: {e}")?;
        }
    }

    // Benign API requests: content findings are false positives; auth findings are listed.
    let api = detect(bin, &corpus.join("benign/api-requests.jsonl"), config)?;
    let mut content = Tally::default();
    let mut per_template: BTreeMap<String, Tally> = BTreeMap::new();
    let mut other_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (v, kinds) in api.inputs.iter().zip(&api.kinds) {
        let fp = hit(kinds, CONTENT_KINDS);
        content.add(fp, || describe(v), args.show, true);
        per_template
            .entry(v["template"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .add(fp, String::new, 0, true);
        for k in kinds
            .iter()
            .filter(|k| !CONTENT_KINDS.contains(&k.as_str()))
        {
            *other_kinds.entry(k.clone()).or_default() += 1;
        }
    }
    writeln!(
        report,
        "\nBenign API requests ({} rows, {:.2} s): content false positives {}",
        api.inputs.len(),
        api.secs,
        content.cell()
    )?;
    let noisy: Vec<String> = per_template
        .iter()
        .filter(|(_, t)| t.hit > 0)
        .map(|(k, t)| format!("{k} {}/{}", t.hit, t.n))
        .collect();
    if !noisy.is_empty() {
        writeln!(report, "  by template: {}", noisy.join(", "))?;
    }
    writeln!(
        report,
        "  other findings (judged separately): {other_kinds:?}"
    )?;
    for e in &content.examples {
        writeln!(report, "  false positive: {e}")?;
    }

    // Text sets, each line sent as a parameter value.
    writeln!(report, "\nText sets, one request per line")?;
    let text_sets: [(&str, &str, bool, &[&str]); 5] = [
        ("benign/sentences.txt", "text", false, CONTENT_KINDS),
        ("benign/sentences.txt", "json", false, CONTENT_KINDS),
        (
            "attacks/libinjection-false-positives.txt",
            "query",
            false,
            CONTENT_KINDS,
        ),
        ("attacks/libinjection-sqli.txt", "query", true, &["sqli"]),
        ("attacks/libinjection-xss.txt", "query", true, &["xss"]),
    ];
    for (file, how, attack, kinds) in text_sets {
        let lines = fs::read(corpus.join(file))?;
        let input = work.join(format!("{}-{how}.jsonl", file.replace('/', "-")));
        write_text_requests(&lines, how, &input)?;
        let run = detect(bin, &input, config)?;
        let mut t = Tally::default();
        for (v, found) in run.inputs.iter().zip(&run.kinds) {
            t.add(hit(found, kinds), || describe(v), args.show, !attack);
        }
        let what = if attack { "recall" } else { "false positives" };
        writeln!(
            report,
            "  {:<44} as {:<5} {:>16} {:>24}   ({:.2} s)",
            file,
            how,
            what,
            t.cell(),
            run.secs
        )?;
        for e in &t.examples {
            writeln!(
                report,
                "    {}: {e}",
                if attack { "missed" } else { "flagged" }
            )?;
        }
    }
    prompt_injection(bin, corpus, work, args, &mut report)?;
    println!("{report}");
    Ok(())
}

/// Prompt injection: the in-the-wild jailbreaks (recall) and the benign sentences (false
/// positives), each sent as the user turn of an OpenAI chat request after a system prompt.
/// The detector's weights were set looking at the even-numbered jailbreaks only (see
/// api-guard/src/detect/prompt/lexicon.rs): the odd-numbered half is reported apart as the
/// held-out figure.
fn prompt_injection(
    bin: &Path,
    corpus: &Path,
    work: &Path,
    args: &EvalArgs,
    report: &mut String,
) -> Result<()> {
    let config = args.config.as_deref();
    let jail = fs::read_to_string(corpus.join("llm/jailbreak-inthewild.jsonl"))?;
    let mut prompts = Vec::new();
    for line in jail.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)?;
        let id = v["id"].as_str().unwrap_or("?").to_owned();
        prompts.push((id, v["prompt"].as_str().unwrap_or("").to_owned()));
    }
    let sentences: Vec<(String, String)> = fs::read_to_string(corpus.join("benign/sentences.txt"))?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| ((i + 1).to_string(), l.to_owned()))
        .collect();
    writeln!(
        report,
        "\nPrompt injection (kind prompt_injection), each text as messages[1].content of a chat request"
    )?;
    for (name, set, attack) in [
        ("llm/jailbreak-inthewild.jsonl", &prompts, true),
        ("benign/sentences.txt", &sentences, false),
    ] {
        let input = work.join(format!("chat-{}.jsonl", name.replace('/', "-")));
        write_chat_requests(set, &input)?;
        let run = detect(bin, &input, config)?;
        let (mut all, mut high, mut held_out) =
            (Tally::default(), Tally::default(), Tally::default());
        let mut kib = 0.0;
        for (((id, text), kinds), severities) in set.iter().zip(&run.kinds).zip(&run.severities) {
            kib += text.len() as f64 / 1024.0;
            let found = kinds.iter().position(|k| k == "prompt_injection");
            let is_high = kinds
                .iter()
                .zip(severities)
                .any(|(k, s)| k == "prompt_injection" && (s == "high" || s == "critical"));
            let example = || format!("{id}: {}", text.chars().take(200).collect::<String>());
            all.add(found.is_some(), example, args.show, !attack);
            high.add(is_high, String::new, 0, true);
            let odd = id
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n % 2 == 1);
            if attack && odd {
                held_out.add(found.is_some(), String::new, 0, true);
            }
        }
        let what = if attack { "recall" } else { "false positives" };
        writeln!(
            report,
            "  {:<34} {:<16} {:>20}   high only {:>20}   ({:.2} s, {:.1} KiB of prompts)",
            name,
            what,
            all.cell(),
            high.cell(),
            run.secs,
            kib
        )?;
        if attack {
            writeln!(
                report,
                "  {:<34} {:<16} {:>20}",
                "  held out (odd ids)",
                "recall",
                held_out.cell()
            )?;
        }
        for e in &all.examples {
            writeln!(
                report,
                "    {}: {e}",
                if attack { "missed" } else { "flagged" }
            )?;
        }
    }
    Ok(())
}

/// One chat completion request per text: a system prompt, then the text as the user turn.
fn write_chat_requests(texts: &[(String, String)], out: &Path) -> Result<()> {
    let mut lines = String::new();
    for (id, text) in texts {
        let body = json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": text},
            ],
        })
        .to_string();
        let v = json!({
            "id": id,
            "method": "POST",
            "uri": "/v1/chat/completions",
            "headers": [["Host", "api.example.com"], ["Content-Type", "application/json"]],
            "body": body,
        });
        lines.push_str(&v.to_string());
        lines.push('\n');
    }
    fs::write(out, lines)?;
    Ok(())
}

/// One request per text line: as a query value (`query`: the line is already in query form,
/// as libinjection's sets are; `text`: prose, fully URL-encoded) or as a JSON string field.
fn write_text_requests(lines: &[u8], how: &str, out: &Path) -> Result<()> {
    let mut text = String::new();
    for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let line = String::from_utf8_lossy(line);
        let v = match how {
            "query" | "text" => json!({
                "id": i + 1,
                "method": "GET",
                "uri": format!("/search?q={}", query_safe(&line, how == "text")),
                "headers": [["Host", "example.com"]],
                "body": "",
            }),
            _ => json!({
                "id": i + 1,
                "method": "POST",
                "uri": "/api/notes",
                "headers": [["Host", "example.com"], ["Content-Type", "application/json"]],
                "body": json!({"text": line}).to_string(),
            }),
        };
        text.push_str(&v.to_string());
        text.push('\n');
    }
    fs::write(out, text)?;
    Ok(())
}

/// Percent-encodes what cannot stand in a query string (space, `#`, controls, non-ASCII);
/// with `all`, also the query's own delimiters and `%`, so prose arrives as written.
fn query_safe(s: &str, all: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'%' | b'&' | b'=' | b'+' | b';' if all => {
                let _ = write!(out, "%{b:02X}");
            }
            b' ' => out.push('+'),
            b'#' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^' => {
                let _ = write!(out, "%{b:02X}");
            }
            0..=0x20 | 0x7f..=0xff => {
                let _ = write!(out, "%{b:02X}");
            }
            _ => out.push(b as char),
        }
    }
    out
}
