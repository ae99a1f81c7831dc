//! `api-guard floor --drain`: a step of the overhead bench's staircase between the floor
//! (empty programs) and the agent. The agent's own programs are loaded and attached by its
//! own loader (`Probes::load`, the TLS hooking thread, adoption), and one task reads the ring
//! (`capture::reader::Ring`, readiness and the drain timer as in the agent) and counts and
//! drops every record in place: no parsing, no analysis. What a workload loses with this
//! running is what capture and reading the ring cost; the difference to the agent is what
//! parsing and analysis cost.

use std::{num::NonZeroU32, path::Path, time::Duration};

use anyhow::Context as _;
use api_guard_common::Stat;
use tokio::signal::unix::SignalKind;
use tokio_util::sync::CancellationToken;

use crate::{
    capture::{self, kernel::KernelState},
    config::Config,
    probes::Probes,
    telemetry::Metrics,
    tls::{self, hooks::HookThread, TlsLibraries},
};

/// How often the connection table and tgid gate are swept, as the agent's kernel task does
/// (every 10 ticks of 1 s there).
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The configuration the drain loads its programs with: the file's (or the embedded
/// defaults) with `pid` added to `capture.pids`, as the bench's agent captures nginx's pid.
pub fn config(file: Option<&Path>, pid: Option<NonZeroU32>) -> anyhow::Result<Config> {
    let mut config = match file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(pid) = pid {
        if !config.capture.pids.contains(&pid.get()) {
            config.capture.pids.push(pid.get());
        }
    }
    Ok(config)
}

/// Records and bytes read from the ring and dropped.
#[derive(Default)]
struct Drained {
    records: u64,
    bytes: u64,
}

/// Runs until SIGTERM/SIGINT: prints `floor ready: drain, …` once attached, and at exit one
/// line `floor drained: {json}` with the records and bytes drained and the kernel's counters.
pub fn run(config: Config) -> anyhow::Result<()> {
    // The agent's runtime: two workers, the ring read on one of them as by the parsing task.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(drain(config))
}

async fn drain(config: Config) -> anyhow::Result<()> {
    use std::io::Write as _;
    let metrics = Metrics::new();
    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(SignalKind::interrupt())?;
    let mut probes = Probes::load(&config).context("loading eBPF probes")?;
    let tracepoints = probes.status.iter().filter(|s| s.attached).count();
    let ring = probes.take_events()?;
    let mut kernel = KernelState {
        stats: probes.take_stats()?,
        conns: probes.take_conns()?,
        gate: probes.take_tgid_gate()?,
    };
    let (hooks, _notifier) = HookThread::spawn(
        probes,
        config.tls.clone(),
        tls::hooks::scope_for(&config.capture),
        metrics.clone(),
        TlsLibraries::default(),
    )
    .context("starting the TLS hooking thread")?;
    let uprobes: u64 = metrics.tls.probes_attached().iter().map(|(_, n)| n).sum();
    if config.capture.adopt_existing {
        capture::adopt::adopt_existing(
            &config.capture,
            &mut kernel,
            crate::wallclock::monotonic_now_ns(),
            &metrics,
        );
    }

    let shutdown = CancellationToken::new();
    let ring = capture::reader::Ring::new(ring, config.capture.ring_buffer_bytes, metrics)
        .context("registering the ring buffer")?;
    let reader = tokio::spawn(read(ring, shutdown.clone()));

    println!("floor ready: drain, {tracepoints} tracepoints, {uprobes} uprobes");
    std::io::stdout().flush()?;
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.tick().await;
    loop {
        tokio::select! {
            _ = sweep.tick() => {
                kernel.sweep_dead();
                kernel.sweep_gate();
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    // The reader drains what the kernel submitted before stopping.
    shutdown.cancel();
    let drained = reader.await.context("the ring reading task")??;
    hooks.stop();

    let mut stats = serde_json::Map::new();
    for stat in Stat::ALL {
        let total: u64 = kernel
            .stats
            .get(&(stat as u32), 0)
            .map(|values| values.iter().sum())
            .unwrap_or(0);
        stats.insert(format!("{stat:?}"), total.into());
    }
    let report = serde_json::json!({
        "records": drained.records,
        "bytes": drained.bytes,
        "kernel": stats,
    });
    println!("floor drained: {report}");
    std::io::stdout().flush()?;
    Ok(())
}

/// The ring read as the parsing task reads it (on readiness or the drain timer, in slices,
/// a turn for the runtime between full slices), each record counted and dropped in place.
async fn read(
    mut ring: capture::reader::Ring,
    shutdown: CancellationToken,
) -> std::io::Result<Drained> {
    let mut drained = Drained::default();
    let mut count = |record: &[u8]| {
        drained.records += 1;
        drained.bytes += record.len() as u64;
    };
    loop {
        tokio::select! {
            ready = ring.wait() => {
                ready?;
                ring.read(&mut count);
            }
            () = shutdown.cancelled() => break,
        }
    }
    // What the kernel submitted before the stop.
    while ring.read_last(&mut count).full {}
    Ok(drained)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let argv = ["api-guard", "floor"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| cli.command)
    }

    #[test]
    fn drain_takes_a_pid_and_a_config_and_nothing_of_the_empty_floors() {
        let Ok(Command::Floor {
            drain,
            config,
            pid,
            tracepoints,
            tls,
            ..
        }) = parse(&["--drain", "--pid", "42", "--config", "/etc/a.toml"])
        else {
            panic!("floor --drain --pid --config must parse");
        };
        assert!(drain && !tracepoints && tls.is_none());
        assert_eq!(pid.map(NonZeroU32::get), Some(42));
        assert_eq!(config.as_deref(), Some(Path::new("/etc/a.toml")));
        // The empty programs' options are another floor.
        for other in [
            &["--drain", "--tracepoints"][..],
            &["--drain", "--raw-syscalls"],
            &["--drain", "--tls", "chosen", "--pid", "1"],
        ] {
            assert!(parse(other).is_err(), "{other:?} must be refused");
        }
        // --config belongs to --drain; the plain floors parse as before.
        assert!(parse(&["--config", "/etc/a.toml"]).is_err());
        assert!(matches!(
            parse(&["--tracepoints"]),
            Ok(Command::Floor {
                drain: false,
                tracepoints: true,
                ..
            })
        ));
    }

    #[test]
    fn the_pid_joins_the_configured_capture_pids_once() {
        let pid = NonZeroU32::new(8);
        assert_eq!(config(None, pid).unwrap().capture.pids, [8]);
        assert!(config(None, None).unwrap().capture.pids.is_empty());
        let file =
            std::env::temp_dir().join(format!("api-guard-floor-drain-{}.toml", std::process::id()));
        std::fs::write(&file, "[capture]\npids = [7]\n").unwrap();
        assert_eq!(config(Some(&file), pid).unwrap().capture.pids, [7, 8]);
        assert_eq!(
            config(Some(&file), NonZeroU32::new(7))
                .unwrap()
                .capture
                .pids,
            [7]
        );
        std::fs::remove_file(&file).unwrap();
        assert!(config(Some(&file), None).is_err(), "a missing file fails");
    }
}
