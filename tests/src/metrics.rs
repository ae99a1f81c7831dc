//! A small parser for the Prometheus text exposition format, enough to sum samples.

use std::fmt;

use anyhow::{bail, Context, Result};

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn has_labels(&self, want: &[(&str, &str)]) -> bool {
        want.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Result<Metrics> {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).with_context(|| format!("metrics line {l:?}")))
            .collect::<Result<_>>()?;
        Ok(Metrics { samples })
    }

    /// Sum of the samples named exactly `name` whose labels include all of `labels`;
    /// 0 when there are none (a counter that never moved may not be exported yet).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.has_labels(labels))
            .map(|s| s.value)
            .sum()
    }

    /// The samples named `name`, for printing.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// `name{labels} value` lines for every sample whose name starts with `prefix`.
    pub fn dump(&self, prefix: &str) -> String {
        self.samples
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .map(|s| format!("{s}\n"))
            .collect()
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        write!(f, "{}{{{}}} {}", self.name, labels.join(","), self.value)
    }
}

fn parse_sample(line: &str) -> Result<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .context("no value")?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next().context("no value")?;
    Ok(Sample {
        name,
        labels,
        value: parse_value(value)?,
    })
}

/// Parses `k="v",k2="v2"}` and returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Result<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').context("label without '='")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..]
            .strip_prefix('"')
            .context("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => bail!("unterminated escape"),
                },
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value"),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

fn parse_value(v: &str) -> Result<f64> {
    Ok(match v {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().with_context(|| format!("sample value {v:?}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP apiguard_http_requests_total Requests.
# TYPE apiguard_http_requests_total counter
apiguard_http_requests_total{role="server",method="GET",status="200"} 3
apiguard_http_requests_total{role="server",method="POST",status="200"} 2
apiguard_http_requests_total{role="client",method="GET",status="200"} 5
apiguard_capture_events_total 1234
apiguard_http_request_duration_seconds_bucket{role="server",method="GET",le="+Inf"} 3
weird{a="x\"y\\z",b="line\nbreak"} 1.5e3 1700000000000
"#;

    #[test]
    fn sums_with_label_superset() {
        let m = Metrics::parse(TEXT).unwrap();
        let req = "apiguard_http_requests_total";
        assert_eq!(m.sum(req, &[]), 10.0);
        assert_eq!(m.sum(req, &[("role", "server")]), 5.0);
        assert_eq!(
            m.sum(
                req,
                &[("role", "server"), ("method", "GET"), ("status", "200")]
            ),
            3.0
        );
        assert_eq!(m.sum(req, &[("role", "nobody")]), 0.0);
        assert_eq!(m.sum("apiguard_capture_events_total", &[]), 1234.0);
        assert_eq!(m.sum("absent_total", &[]), 0.0);
        // A prefix of a name is a different metric.
        assert_eq!(m.sum("apiguard_http_requests", &[]), 0.0);
    }

    #[test]
    fn parses_escapes_inf_and_timestamps() {
        let m = Metrics::parse(TEXT).unwrap();
        let weird = m.named("weird").next().unwrap();
        assert_eq!(weird.label("a"), Some("x\"y\\z"));
        assert_eq!(weird.label("b"), Some("line\nbreak"));
        assert_eq!(weird.value, 1500.0);
        let bucket = m
            .named("apiguard_http_request_duration_seconds_bucket")
            .next()
            .unwrap();
        assert_eq!(bucket.label("le"), Some("+Inf"));
        assert_eq!(parse_value("+Inf").unwrap(), f64::INFINITY);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Metrics::parse("metric{a=\"unterminated} 1").is_err());
        assert!(Metrics::parse("metric_without_value").is_err());
    }
}
