//! The closing table: every measurement against the brief's goals.

use std::thread;

use integration_tests::wrk::WrkReport;

use super::breach::BreachReport;
use super::flood::{per_million, DropRun, FloodStats};
use super::prog_stats::RunStats;

pub(super) struct Summary {
    pub(super) entries: u64,
    pub(super) mode: String,
    pub(super) pass: RunStats,
    pub(super) drop: RunStats,
    pub(super) xdp: DropRun,
    pub(super) nft: DropRun,
    pub(super) generator: FloodStats,
    /// `bpftool prog run` ns per run: (pass, drop).
    pub(super) test_runs: Option<(u64, u64)>,
    pub(super) baseline: WrkReport,
    pub(super) flooded: WrkReport,
    pub(super) controlled: WrkReport,
    pub(super) breaches: Vec<BreachReport>,
}

pub(super) fn print_summary(s: &Summary) {
    let xdp_cpu = s.xdp.cpu_per_million();
    let nft_cpu = s.nft.cpu_per_million();
    let cpu_ratio = ratio(xdp_cpu, nft_cpu);
    let softirq_ratio = ratio(
        per_million(s.xdp.flood.cpu.softirq, s.xdp.dropped),
        per_million(s.nft.flood.cpu.softirq, s.nft.dropped),
    );
    let xdp_attr = s.xdp.attributed_per_million();
    let nft_attr = s.nft.attributed_per_million();
    let attr_ratio = ratio(xdp_attr, nft_attr);
    let generator_attr = per_million(s.generator.attributed(), s.generator.sent.unwrap_or(0));
    // Only meaningful while both remainders are positive (noise can make them not).
    let receive_ratio = if xdp_attr > generator_attr && nft_attr > generator_attr {
        ratio(xdp_attr - generator_attr, nft_attr - generator_attr)
    } else {
        f64::NAN
    };
    let flood_ratio = ratio(s.flooded.requests_per_sec, s.baseline.requests_per_sec);
    let control_ratio = ratio(s.controlled.requests_per_sec, s.baseline.requests_per_sec);
    let vs_control = ratio(s.flooded.requests_per_sec, s.controlled.requests_per_sec);
    let b = &s.breaches;
    let (event_med, event_text) = spread_ms(b.iter().map(|r| r.event_ms));
    let (_, unserved_text) = spread_ms(b.iter().map(|r| r.first_unserved.as_ref().map(|u| u.0)));
    let (_, timeout_text) = spread_ms(b.iter().map(|r| r.first_timeout_ms));
    let mut served: Vec<f64> = b.iter().map(|r| r.served_after_breach as f64).collect();
    served.sort_by(f64::total_cmp);
    let served_text = format!(
        "median {} ({}..{}); {} after the event",
        median(&served),
        served.first().copied().unwrap_or(f64::NAN),
        served.last().copied().unwrap_or(f64::NAN),
        b.iter().map(|r| r.served_after_event).sum::<usize>()
    );
    let rows: Vec<(String, String, &str, &str)> = vec![
        (
            format!("1 ns/packet passed ({} entries, {})", s.entries, s.mode),
            format!("{:.1} ns", s.pass.ns_per_run()),
            "<= 100 ns",
            met(s.pass.ns_per_run(), |v| v <= 100.0),
        ),
        (
            format!("1 ns/packet dropped ({} entries, {})", s.entries, s.mode),
            format!("{:.1} ns", s.drop.ns_per_run()),
            "<= 100 ns",
            met(s.drop.ns_per_run(), |v| v <= 100.0),
        ),
        (
            "1 ns/run passed, bpftool prog run (no stats)".into(),
            s.test_runs
                .map_or("-".into(), |(pass, _)| format!("{pass} ns")),
            "",
            "",
        ),
        (
            "1 ns/run dropped, bpftool prog run (no stats)".into(),
            s.test_runs
                .map_or("-".into(), |(_, drop)| format!("{drop} ns")),
            "",
            "",
        ),
        (
            "2 CPU s per 1M dropped, XDP guard".into(),
            format!("{xdp_cpu:.3} s"),
            "",
            "",
        ),
        (
            format!("2 CPU s per 1M dropped, {}", s.nft.how),
            format!("{nft_cpu:.3} s"),
            "",
            "",
        ),
        (
            "2 ratio XDP / nftables (system+softirq)".into(),
            format!("{cpu_ratio:.3}x"),
            "<= 0.5x",
            met(cpu_ratio, |v| v <= 0.5),
        ),
        (
            "2 ratio XDP / nftables (softirq only)".into(),
            format!("{softirq_ratio:.3}x"),
            "",
            "",
        ),
        (
            "2 attributed CPU s per 1M dropped, XDP / nft".into(),
            format!("{xdp_attr:.3} / {nft_attr:.3} s"),
            "",
            "",
        ),
        (
            "2 ratio XDP / nftables (attributed)".into(),
            format!("{attr_ratio:.3}x"),
            "",
            "",
        ),
        (
            "2 attributed CPU s per 1M sent, generator alone".into(),
            format!("{generator_attr:.3} s"),
            "",
            "",
        ),
        (
            "2 ratio XDP / nftables, attributed - generator".into(),
            format!("{receive_ratio:.3}x"),
            "",
            "",
        ),
        (
            "3 req/s no flood / blocked flood".into(),
            format!(
                "{:.0} / {:.0}",
                s.baseline.requests_per_sec, s.flooded.requests_per_sec
            ),
            "",
            "",
        ),
        (
            "3 ratio blocked flood / no flood".into(),
            format!("{flood_ratio:.3}"),
            ">= 0.9",
            met(flood_ratio, |v| v >= 0.9),
        ),
        (
            "3 ratio control flood / no flood".into(),
            format!("{control_ratio:.3}"),
            "",
            "",
        ),
        (
            "3 ratio blocked flood / control flood".into(),
            format!("{vs_control:.3}"),
            "",
            "",
        ),
        (
            "4 breaching request -> block event".into(),
            event_text,
            "< 10 ms",
            met(event_med, |v| v < 10.0),
        ),
        (
            "4 requests served after the breach".into(),
            served_text,
            "",
            "",
        ),
        (
            "4 breaching request -> first unserved request".into(),
            unserved_text,
            "",
            "",
        ),
        (
            "4 breaching request -> first connect timeout".into(),
            timeout_text,
            "",
            "",
        ),
    ];
    println!();
    println!("summary (goals from the brief; nothing is asserted)");
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    println!(
        "  {:<width$}  {:>vwidth$}  {:>9}  {:>4}",
        "measurement", "value", "goal", "met"
    );
    for (name, value, goal, ok) in &rows {
        println!("  {name:<width$}  {value:>vwidth$}  {goal:>9}  {ok:>4}");
    }
    println!(
        "  notes: \"CPU s\" is /proc/stat system+softirq over all CPUs during the flood (every \
         process on the host counts); \"attributed\" is hping3's own system time (its sendto \
         path plus the veth receive, XDP or nftables work run in its context) plus ksoftirqd's; \
         \"- generator\" subtracts hping3's cost when its frames die at once in a dead veth. \
         The control flood is that same generator: its share of this {}-CPU host.",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// "yes"/"no" against a goal, "-" when there is nothing to compare.
fn met(value: f64, ok: impl Fn(f64) -> bool) -> &'static str {
    if !value.is_finite() {
        "-"
    } else if ok(value) {
        "yes"
    } else {
        "no"
    }
}

/// "median (min..max, n of m runs)" of the observed values, in ms.
fn spread_ms(values: impl IntoIterator<Item = Option<f64>>) -> (f64, String) {
    let all: Vec<Option<f64>> = values.into_iter().collect();
    let mut seen: Vec<f64> = all.iter().flatten().copied().collect();
    if seen.is_empty() {
        return (f64::NAN, format!("not observed ({} runs)", all.len()));
    }
    seen.sort_by(f64::total_cmp);
    let med = median(&seen);
    let text = format!(
        "{med:.2} ms ({:.2}..{:.2}, {}/{} runs)",
        seen[0],
        seen[seen.len() - 1],
        seen.len(),
        all.len()
    );
    (med, text)
}

/// Median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_median() {
        let (med, text) = spread_ms([Some(3.0), None, Some(1.0), Some(2.0)]);
        assert_eq!(med, 2.0);
        assert_eq!(text, "2.00 ms (1.00..3.00, 3/4 runs)");
        assert!(spread_ms([None]).0.is_nan());
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }
}
