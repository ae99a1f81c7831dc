//! `cargo xtask bench overhead --stairs`: the staircase from the floor to the agent. Each
//! step adds one part of the agent's work on top of the one before — the floor (empty
//! programs on the agent's hooks), `drain` (the agent's own programs, its loader and ring
//! reader, records dropped unparsed: `api-guard floor --drain`), `parse` (the agent with its
//! analysis off: capture and parsing) and the agent — so what each part costs the workload
//! is the difference between two steps measured in the same rounds.
//!
//! Besides req/s, each step's CPU is accounted per request: nginx's (BPF programs included),
//! the load generator's, the agent's (or the drain process's) and the whole machine's busy
//! time (`/proc/stat`: every process on the host, so only meaningful on a quiet machine).
//! A ratio goal `r` (against the floor, as the goals are set, or against no agent) leaves
//! `base × (1/r − 1)` of added work per request, for the base that bounds the rate: nginx's
//! CPU when its one process saturates a core, nginx + wrk's (or the machine's busy time) when
//! the cores are the limit. Both models' budgets and predicted
//! ratios are printed, to be compared with the measured ratios.

use anyhow::{Context, Result};

/// One step's medians over the rounds (µs and ns are per completed request).
pub struct Step {
    pub label: &'static str,
    pub rps: f64,
    pub to_off: f64,
    pub to_floor: f64,
    pub nginx_us: f64,
    pub wrk_us: f64,
    /// The agent's or the drain process's CPU (NaN for the floors and no agent).
    pub process_us: f64,
    pub busy_us: f64,
    pub bpf_ns: f64,
    /// Exchanges captured (agent) or records drained (drain), summed over the rounds.
    pub items: Option<u64>,
    /// Kernel and userspace capture drops (truncated calls excluded), summed.
    pub drops: Option<u64>,
}

/// Busy CPU seconds of the whole machine so far: every `/proc/stat` "cpu" time but idle and
/// iowait.
pub fn busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    busy_of(line)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice` (guest time is
/// already in user and nice).
fn busy_of(line: &str) -> Result<f64> {
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("parsing the /proc/stat cpu line")?;
    let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    Ok(busy as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// CPU seconds of this process's waited-for children so far: the load generator's, read
/// around its run (nothing else is waited for meanwhile).
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Added work per request a ratio goal leaves, for a load that costs `base_us` per request
/// at the reference step when throughput is CPU-bound: `base × (1 / ratio − 1)`.
pub fn budget_us(base_us: f64, ratio: f64) -> f64 {
    base_us * (1.0 / ratio - 1.0)
}

fn cell(x: f64, precision: usize) -> String {
    if x.is_finite() {
        format!("{x:.precision$}")
    } else {
        "-".to_string()
    }
}

fn count(x: Option<u64>) -> String {
    x.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// Prints the staircase, what each step adds, and the goals' budgets. `steps` starts with
/// the run without the agent, then the steps from the floor up.
pub fn print(case: &str, cores: usize, steps: &[Step]) {
    println!();
    println!("{case} staircase (medians per round; us and ns per completed request):");
    println!(
        "  {:<10} {:>8} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10} {:>6}",
        "step",
        "req/s",
        "to off",
        "to floor",
        "nginx us",
        "wrk us",
        "proc us",
        "busy us",
        "bpf ns",
        "exch/recs",
        "drops"
    );
    for s in steps {
        println!(
            "  {:<10} {:>8.0} {:>7.3} {:>8} {:>8.2} {:>7.2} {:>8} {:>8.2} {:>8} {:>10} {:>6}",
            s.label,
            s.rps,
            s.to_off,
            cell(s.to_floor, 3),
            s.nginx_us,
            s.wrk_us,
            cell(s.process_us, 2),
            s.busy_us,
            cell(s.bpf_ns, 0),
            count(s.items),
            count(s.drops)
        );
    }
    let Some((off, rest)) = steps.split_first() else {
        return;
    };
    println!(
        "  what each step adds to the one below (us of CPU per request; ratio points to off):"
    );
    let mut below = off;
    for s in rest {
        let or_zero = |x: f64| if x.is_finite() { x } else { 0.0 };
        println!(
            "    {:<10} ratio {:+.3}  nginx {:+6.2}  bpf {:+6.2}  process {:+6.2}  busy {:+6.2}",
            s.label,
            s.to_off - below.to_off,
            s.nginx_us - below.nginx_us,
            (or_zero(s.bpf_ns) - or_zero(below.bpf_ns)) / 1000.0,
            or_zero(s.process_us) - or_zero(below.process_us),
            s.busy_us - below.busy_us
        );
        below = s;
    }
    let base = off.nginx_us + off.wrk_us;
    let saturated = cores as f64 * 1e6 / off.rps;
    println!(
        "  goals without the agent: {:.0} req/s, nginx + wrk {base:.2} us per request, busy \
         {:.2} ({cores} cores at this rate: {saturated:.2})",
        off.rps, off.busy_us
    );
    // The goals are set against the floor (api-guard / floor); against no agent for reference.
    for (name, below) in [("the floor", rest.first()), ("no agent", Some(off))] {
        let Some(b) = below else { continue };
        for goal in [0.90, 0.85] {
            println!(
                "    {goal:.2} of {name} leaves per request {:.2} us of added work on nginx's \
                 CPU, {:.2} on nginx + wrk's, {:.2} on the machine's busy time",
                budget_us(b.nginx_us, goal),
                budget_us(b.nginx_us + b.wrk_us, goal),
                budget_us(b.busy_us, goal)
            );
        }
    }
    let predicted = |name: &str, of: &dyn Fn(&Step) -> f64| {
        let cells: Vec<String> = rest
            .iter()
            .map(|s| format!("{} {:.3}", s.label, of(off) / of(s)))
            .collect();
        println!(
            "    {name} predicts the ratios to off: {}",
            cells.join(", ")
        );
    };
    predicted("nginx's CPU", &|s| s.nginx_us);
    // The agent's (or drain's) CPU competes for the same cores.
    let or_zero = |x: f64| if x.is_finite() { x } else { 0.0 };
    predicted("nginx + wrk + agent CPU", &|s| {
        s.nginx_us + s.wrk_us + or_zero(s.process_us)
    });
    predicted("busy time", &|s| s.busy_us);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_counts_all_but_idle_and_iowait() {
        let hz = clock_ticks();
        let busy = busy_of("cpu  100 10 50 1000 20 5 7 3 40 0").unwrap();
        assert!((busy - 175.0 / hz).abs() < 1e-9);
        assert!(busy_of("cpu  x").is_err());
        assert!(busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn budgets_of_the_goals() {
        assert!((budget_us(9.0, 0.90) - 1.0).abs() < 1e-9);
        assert!((budget_us(17.0, 0.85) - 3.0).abs() < 1e-9);
        assert_eq!(budget_us(5.0, 1.0), 0.0);
    }
}
