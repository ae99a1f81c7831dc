//! api-guard: an eBPF API security agent. See README.md.

mod capture;
mod config;
mod enforce;
mod exchange;
mod http;
mod metrics;
mod pipeline;
mod probes;
mod server;
mod sink;
mod tls;
mod wallclock;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::{signal::unix::SignalKind, sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    capture::{kernel::KernelState, table::ConnTable},
    config::Config,
    metrics::Metrics,
    probes::Probes,
    sink::{ExchangeOutput, Sink},
    tls::{hooks::HookThread, TlsLibraries},
};

#[derive(Parser)]
#[command(
    name = "api-guard",
    version,
    about = "eBPF API security agent: sees every HTTP API call on this host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (needs root: loads eBPF programs). Without --config, embedded defaults apply.
    Run(RunArgs),
    /// Validate a configuration file and exit.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML configuration file; every field is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the /metrics and /healthz endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Write one JSON object per exchange to this file, or `-` for stdout.
    #[arg(long, value_name = "PATH|-")]
    exchanges: Option<ExchangeOutput>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            Config::load(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::Run(args) => {
            init_logging(args.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            runtime.block_on(run(args))
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let metrics = Metrics::new();
    let listener = server::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {}", args.metrics_addr))?;
    let sink = Sink::new(metrics.clone(), args.exchanges.as_ref())
        .context("opening the exchanges output")?;

    let mut probes = Probes::load(&config).context("loading eBPF probes")?;
    let ring = probes.take_events()?;
    let kernel = KernelState {
        stats: probes.take_stats()?,
        conns: probes.take_conns()?,
    };

    // The hooking thread owns the eBPF object from here on; stopping it detaches everything.
    let tls_libraries = TlsLibraries::default();
    let (hooks, tls_notifier) = HookThread::spawn(
        probes,
        config.tls.clone(),
        tls::hooks::scope_for(&config.capture),
        metrics.clone(),
        tls_libraries.clone(),
    )
    .context("starting the TLS hooking thread")?;

    let shutdown = CancellationToken::new();
    let batches = config
        .capture
        .channel_capacity
        .div_ceil(capture::reader::BATCH);
    let (tx, rx) = mpsc::channel(batches);
    let (untrack_tx, untrack_rx) = mpsc::channel(4096);
    let table = ConnTable::new(
        config.http.limits(),
        config.http.max_connections,
        Duration::from_secs(config.http.idle_timeout_secs),
        metrics.clone(),
        untrack_tx,
        tls_libraries.clone(),
    );
    let mut tasks = JoinSet::new();
    let reader_shutdown = shutdown.clone();
    let reader_metrics = metrics.clone();
    tasks.spawn(async move {
        if let Err(error) = capture::reader::run(ring, tx, reader_metrics, reader_shutdown).await {
            warn!(%error, "Ring buffer reader failed");
        }
    });
    tasks.spawn(pipeline::run(
        rx,
        table,
        sink,
        metrics.clone(),
        tls_notifier,
        shutdown.clone(),
    ));
    tasks.spawn(capture::kernel::run(
        kernel,
        untrack_rx,
        metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(server::serve(listener, metrics.clone(), shutdown.clone()));

    metrics.set_ready(true);
    info!(metrics = %args.metrics_addr, "api-guard running");

    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received, shutting down"),
        _ = sigterm.recv() => info!("SIGTERM received, shutting down"),
    }
    metrics.set_ready(false);
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    hooks.stop();
    info!("Detached, bye");
    Ok(())
}
