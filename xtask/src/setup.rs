//! `cargo xtask setup`: install what building, running and testing api-guard need.
//! Idempotent: when everything is present it only looks, which takes well under a second.

use std::{
    collections::HashSet,
    env,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result};

use crate::util::{self, show};

/// Debian packages the integration tests and the benchmark use.
const PACKAGES: &[&str] = &[
    "iproute2",
    "curl",
    "nginx",
    "wrk",
    "procps",
    "openssl",
    "gnutls-bin",
    // bench xdp: the flood, the nftables comparison, BPF program run times.
    "hping3",
    "nftables",
    "bpftool",
    // The real-Prometheus test (tests/tests/prometheus_live.rs) runs its own server.
    "prometheus",
    // h2load, the HTTP/2 load generator (HTTP/2 benchmarks).
    "nghttp2-client",
    // The cluster tests (tests/tests/cluster.rs) start their own Redis.
    "redis-server",
    // Go TLS capture tests and the `go` bench: Debian's Go (1.19) builds tests/go/.
    "golang-go",
];

#[derive(clap::Args, Debug, Default)]
pub struct SetupArgs {
    /// Only report what is missing and what would be run (including the bpf-linker build
    /// recipe derived from the nightly toolchain); change nothing. Does not need root.
    #[arg(long)]
    pub dry_run: bool,
}

/// How much of the setup a command needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nightly `rust-src` and `bpf-linker`: enough to build. Needs no root.
    Toolchain,
    /// Also Debian packages and the tracefs/bpffs mounts: needed to run and test. Needs root.
    All,
}

/// `cargo xtask setup`.
pub fn setup(args: &SetupArgs) -> Result<()> {
    Setup::new(args.dry_run).ensure(Scope::All)
}

/// Makes sure `scope` is set up (what `build`, `run`, `test` and `bench` call first).
pub fn ensure(scope: Scope) -> Result<()> {
    Setup::new(false).ensure(scope)
}

struct Setup {
    dry_run: bool,
    changed: bool,
}

impl Setup {
    fn new(dry_run: bool) -> Self {
        Self {
            dry_run,
            changed: false,
        }
    }

    fn ensure(&mut self, scope: Scope) -> Result<()> {
        if scope == Scope::All && !self.dry_run {
            util::require_root()?;
        }
        self.rust_src()?;
        self.bpf_linker()?;
        if scope == Scope::All {
            self.packages()?;
            self.mount("tracefs", "/sys/kernel/tracing", "tracefs", "nodev")?;
            self.mount("bpffs", "/sys/fs/bpf", "bpf", "bpf")?;
            self.pypi_tools()?;
        }
        if !self.changed {
            say("everything is present");
        }
        Ok(())
    }

    /// Runs `cmds` in order to fix `what`, or in a dry run says it would.
    fn act(&mut self, what: &str, cmds: Vec<Command>) -> Result<()> {
        self.changed = true;
        if self.dry_run {
            let shown: Vec<String> = cmds.iter().map(|c| format!("`{}`", show(c))).collect();
            say(&format!(
                "{what}: missing; would run {}",
                shown.join(" then ")
            ));
            return Ok(());
        }
        say(&format!("{what}: missing"));
        for mut cmd in cmds {
            util::run(&mut cmd).with_context(|| format!("setup: could not set up {what}"))?;
        }
        Ok(())
    }

    fn rust_src(&mut self) -> Result<()> {
        const WHAT: &str = "nightly rust-src";
        let installed = util::output(Command::new("rustup").args([
            "component",
            "list",
            "--toolchain",
            "nightly",
            "--installed",
        ]));
        match installed {
            Ok(list) if list.lines().any(|l| l.trim() == "rust-src") => {
                say(&format!("{WHAT}: present"));
                Ok(())
            }
            Ok(_) => self.act(
                WHAT,
                vec![command(
                    "rustup",
                    &["component", "add", "rust-src", "--toolchain", "nightly"],
                )],
            ),
            Err(err) if !nightly_installed()? => {
                say(&format!("nightly toolchain: missing ({err:#})"));
                let install = ["toolchain", "install", "nightly", "--profile", "minimal"];
                let mut cmd = command("rustup", &install);
                cmd.args(["--component", "rust-src"]);
                self.act("nightly toolchain with rust-src", vec![cmd])
            }
            Err(err) => Err(err.context(format!("setup: checking {WHAT} failed"))),
        }
    }

    fn bpf_linker(&mut self) -> Result<()> {
        const WHAT: &str = "bpf-linker";
        let existing = find_bpf_linker();
        if let Some(path) = &existing {
            match bpf_linker_version(path) {
                Ok(version) => {
                    say(&format!(
                        "{WHAT}: present ({version} at {})",
                        path.display()
                    ));
                    if self.dry_run {
                        match install_plan(false) {
                            Ok((llvm, steps)) => {
                                let steps: Vec<String> = steps.iter().map(show).collect();
                                say(&format!(
                                    "{WHAT}: a rebuild would use {} (LLVM {}): `{}`",
                                    llvm.lib.display(),
                                    llvm.major,
                                    steps.join(" && ")
                                ));
                            }
                            Err(err) => say(&format!("{WHAT}: cannot derive the build: {err:#}")),
                        }
                    }
                    return Ok(());
                }
                // Typically built against an older nightly's libLLVM that is gone now.
                Err(err) => say(&format!(
                    "{WHAT}: {} does not run with the nightly toolchain ({err:#}); rebuilding it",
                    path.display()
                )),
            }
        }

        let (_, steps) =
            install_plan(existing.is_some()).context("setup: cannot build bpf-linker")?;
        self.act(WHAT, steps)?;
        if self.dry_run {
            return Ok(());
        }

        let path = find_bpf_linker()
            .context("setup: `cargo install bpf-linker` succeeded but bpf-linker is not on PATH")?;
        // The prefix symlinks make it run on its own too; check both ways it gets run.
        let version = util::output(Command::new(&path).arg("--version"))
            .and_then(|_| bpf_linker_version(&path))
            .with_context(|| format!("setup: the freshly built {} does not run", path.display()))?;
        say(&format!(
            "{WHAT}: installed ({version} at {})",
            path.display()
        ));
        Ok(())
    }

    fn packages(&mut self) -> Result<()> {
        let mut wanted: Vec<&str> = PACKAGES.to_vec();
        // Any python3 will do (this machine kind has a pyenv one); install Debian's only if none.
        if util::find_on_path("python3").is_none() {
            wanted.push("python3");
        }
        // The validator venv is made with Debian's python3, which needs python3-venv.
        if !python_has_venv() {
            wanted.push("python3-venv");
        }
        let out = Command::new("dpkg-query")
            .arg("-W")
            .arg("-f=${Package}\t${Status}\n")
            .args(&wanted)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .context(
                "setup: could not run dpkg-query; the packages are installed with apt (Debian 12)",
            )?;
        // dpkg-query exits 1 when a package is unknown; its stdout still lists the others.
        let missing = missing_packages(&wanted, &String::from_utf8_lossy(&out.stdout));
        if missing.is_empty() {
            say(&format!("packages: present ({})", wanted.join(" ")));
            return Ok(());
        }
        let mut update = command("apt-get", &["update"]);
        let mut install = command("apt-get", &["install", "-y", "--no-install-recommends"]);
        install.args(&missing);
        for cmd in [&mut update, &mut install] {
            cmd.env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null());
        }
        self.act(
            &format!("packages {}", missing.join(" ")),
            vec![update, install],
        )?;
        if missing.contains(&"nginx") && !self.dry_run {
            // The package starts a system nginx on port 80; tests start their own instances.
            let stopped = Command::new("nginx")
                .args(["-s", "stop"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if stopped {
                say("nginx: stopped the service the package started (tests run their own)");
            }
        }
        if missing.contains(&"prometheus") && !self.dry_run {
            stop_prometheus_service();
        }
        Ok(())
    }

    fn mount(&mut self, what: &str, target: &str, fstype: &str, source: &str) -> Result<()> {
        let mounts = fs::read_to_string("/proc/mounts").context("setup: reading /proc/mounts")?;
        if is_mounted(&mounts, target, fstype) {
            say(&format!("{what}: mounted at {target}"));
            return Ok(());
        }
        self.act(
            what,
            vec![command("mount", &["-t", fstype, source, target])],
        )
    }
}

/// PyPI packages the tests use, pinned, all in [`tools_venv`]: the OpenAPI validator of the
/// API discovery test; for the deploy manifest tests (`tests/tests/deploy_manifests.rs`),
/// offline Kubernetes schema validation (schemas for Kubernetes 1.25 to 1.37) and Helm's own
/// Go SDK (v4) as a shared library, which renders the chart (no `helm` binary is published on
/// crates.io, PyPI or npm for Linux); for the HTTP/2, gRPC and SSE tests
/// (`tests/src/h2.rs`, `grpc.rs`, `sse.rs`), the ASGI servers hypercorn (HTTP/2 over TLS
/// with ALPN) and uvicorn (HTTP/1.1), grpcio (client and server, plaintext h2) and the
/// sans-IO `h2` library (a raw HTTP/2 client with an HPACK dynamic table).
pub const PYPI_TOOLS: &[(&str, &str)] = &[
    ("openapi-spec-validator", "0.9.0"),
    ("kubernetes-validate", "1.37.0"),
    ("helm-python-sdk", "0.2.2"),
    ("hypercorn", "0.18.0"),
    ("uvicorn", "0.55.0"),
    ("grpcio", "1.85.3"),
    ("h2", "4.4.1"),
    // Reference HPACK encoder of the decoder's differential test (api-guard http::h2::hpack).
    ("hpack", "4.2.0"),
    // LLM API tests (tests/tests/llm_live.rs): an OpenAI-compatible server and the real SDK.
    ("fastapi", "0.165.0"),
    ("openai", "3.63.0"),
    // The official Anthropic and Ollama SDKs against servers shaped like theirs
    // (tests/tests/llm_sdks.rs).
    ("anthropic", "2.10.0"),
    ("ollama", "0.6.3"),
];

/// The venv holding the validator: `<target dir>/tools/venv` (the integration tests look
/// for `bin/openapi-spec-validator` there).
pub fn tools_venv() -> Result<PathBuf> {
    Ok(util::target_dir()?.join("tools").join("venv"))
}

/// The python the venv is made with: Debian's when present (what the tests' scripts use).
fn base_python() -> PathBuf {
    let debian = Path::new("/usr/bin/python3");
    if debian.is_file() {
        debian.to_path_buf()
    } else {
        util::find_on_path("python3").unwrap_or_else(|| PathBuf::from("python3"))
    }
}

/// Whether [`base_python`] can make a venv with pip in it (Debian splits `ensurepip` out
/// into python3-venv).
fn python_has_venv() -> bool {
    Command::new(base_python())
        .args(["-c", "import venv, ensurepip"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The version of `package` installed in the venv of `python`, if any.
fn installed_version(python: &Path, package: &str) -> Option<String> {
    // `{:?}` of a plain package name is a valid python string literal.
    let script = format!("import importlib.metadata as m; print(m.version({package:?}))");
    let out = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The package starts (under systemd) a system Prometheus on port 9090; the tests run
/// their own instances on ports of their own, so stop it to keep the machine quiet.
fn stop_prometheus_service() {
    let quiet = |cmd: &mut Command| {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let stopped = if Path::new("/run/systemd/system").is_dir() {
        quiet(&mut command(
            "systemctl",
            &["is-active", "--quiet", "prometheus"],
        )) && quiet(&mut command("systemctl", &["stop", "prometheus"]))
    } else {
        let script = "/etc/init.d/prometheus";
        Path::new(script).is_file()
            && quiet(&mut command(script, &["status"]))
            && quiet(&mut command(script, &["stop"]))
    };
    if stopped {
        say("prometheus: stopped the service the package started (tests run their own)");
    }
}

impl Setup {
    /// [`PYPI_TOOLS`] at their pinned versions in [`tools_venv`] (made first if missing).
    fn pypi_tools(&mut self) -> Result<()> {
        let venv = tools_venv()?;
        let python = venv.join("bin").join("python3");
        for &(package, version) in PYPI_TOOLS {
            let what = format!("{package} {version}");
            if installed_version(&python, package).as_deref() == Some(version) {
                say(&format!("{what}: present (venv {})", venv.display()));
                continue;
            }
            let mut cmds = Vec::new();
            if !python.is_file() {
                let mut make = Command::new(base_python());
                make.args(["-m", "venv"]).arg(&venv);
                cmds.push(make);
            }
            let mut pip = Command::new(&python);
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("{package}=={version}"),
            ])
            .stdin(Stdio::null());
            cmds.push(pip);
            self.act(&format!("{what} (venv {})", venv.display()), cmds)?;
            if self.dry_run {
                continue;
            }
            let now = installed_version(&python, package);
            anyhow::ensure!(
                now.as_deref() == Some(version),
                "setup: installed {what} into {} but it reports version {now:?}",
                venv.display()
            );
            say(&format!("{what}: installed (venv {})", venv.display()));
        }
        Ok(())
    }
}

fn command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

fn say(line: &str) {
    eprintln!("[setup] {line}");
}

fn nightly_installed() -> Result<bool> {
    let list = util::output(Command::new("rustup").args(["toolchain", "list"])).context(
        "setup: rustup is required (it provides the nightly toolchain for the eBPF build)",
    )?;
    Ok(list
        .lines()
        .any(|l| l.starts_with("nightly-") || l.starts_with("nightly ")))
}

fn find_bpf_linker() -> Option<PathBuf> {
    util::find_on_path("bpf-linker").or_else(|| {
        let path = util::cargo_home().ok()?.join("bin").join("bpf-linker");
        path.is_file().then_some(path)
    })
}

/// `bpf-linker --version` run the way the eBPF build runs it: under `rustup run nightly`,
/// which puts the nightly libLLVM on the library path.
fn bpf_linker_version(path: &Path) -> Result<String> {
    let out = util::output(
        Command::new("rustup")
            .args(["run", "nightly"])
            .arg(path)
            .arg("--version"),
    )?;
    Ok(out.trim().to_owned())
}

/// How to build bpf-linker against the nightly toolchain's LLVM (PLATFORM.md's recipe):
/// `$PREFIX/lib/libLLVM.so` for the build, plus a link under the library's own name so the
/// installed binary finds it through its runpath without the toolchain's library path, then
/// `cargo install` (`--force` replaces a broken install of the same version).
fn install_plan(force: bool) -> Result<(LlvmInfo, Vec<Command>)> {
    let llvm = LlvmInfo::derive()?;
    let lib_dir = llvm_prefix_dir()?.join("lib");
    let own_name = llvm
        .lib
        .file_name()
        .context("libLLVM path has no file name")?;
    let mut steps = vec![command("mkdir", &["-p"])];
    steps[0].arg(&lib_dir);
    for name in [OsStr::new("libLLVM.so"), own_name] {
        let mut ln = command("ln", &["-sf"]);
        ln.arg(&llvm.lib).arg(lib_dir.join(name));
        steps.push(ln);
    }
    let mut install = command("cargo", &["+nightly", "install", "bpf-linker"]);
    install
        .env("LLVM_PREFIX", lib_dir.parent().unwrap_or(&lib_dir))
        .args(["--no-default-features", "--features"])
        .arg(format!("llvm-{}", llvm.major));
    if force {
        install.arg("--force");
    }
    steps.push(install);
    Ok((llvm, steps))
}

/// Where bpf-linker's build finds libLLVM (`LLVM_PREFIX`). It must outlive the build: the
/// binary keeps `$PREFIX/lib` as its runpath, so it is not under the (cleanable) target dir.
fn llvm_prefix_dir() -> Result<PathBuf> {
    let cache = match env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => util::home_dir()?.join(".cache"),
    };
    Ok(cache.join("api-guard").join("llvm"))
}

/// The nightly toolchain's own LLVM, which bpf-linker must be built against.
struct LlvmInfo {
    /// `$SYSROOT/lib/libLLVM.so.<ver>-rust-<rustc ver>` (or `libLLVM-*.so`).
    lib: PathBuf,
    major: u32,
}

impl LlvmInfo {
    fn derive() -> Result<Self> {
        let sysroot = util::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
        let lib_dir = Path::new(sysroot.trim()).join("lib");
        let names = fs::read_dir(&lib_dir)
            .with_context(|| format!("listing {}", lib_dir.display()))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok());
        let file = pick_libllvm(names)
            .with_context(|| format!("no libLLVM.so.* or libLLVM-*.so in {}", lib_dir.display()))?;
        let verbose =
            util::output(Command::new("rustc").args(["+nightly", "--version", "--verbose"]))?;
        let major = parse_llvm_major(&verbose)
            .context("`rustc +nightly --version --verbose` has no `LLVM version: N.x` line")?;
        Ok(Self {
            lib: lib_dir.join(file),
            major,
        })
    }
}

/// The real shared library among a sysroot's `lib` entries: `libLLVM.so.<ver>...` first, else
/// `libLLVM-<major>...so` (in current toolchains the latter is a small linker script).
fn pick_libllvm(names: impl IntoIterator<Item = String>) -> Option<String> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    let versioned = names.iter().find(|n| n.starts_with("libLLVM.so."));
    let dashed = || {
        names
            .iter()
            .find(|n| n.starts_with("libLLVM-") && n.ends_with(".so"))
    };
    versioned.or_else(dashed).cloned()
}

/// The LLVM major version from `rustc --version --verbose` (`LLVM version: 22.1.4` → 22).
fn parse_llvm_major(verbose: &str) -> Option<u32> {
    let version = verbose
        .lines()
        .find_map(|l| l.trim().strip_prefix("LLVM version:"))?;
    version.trim().split('.').next()?.parse().ok()
}

/// The wanted packages that `dpkg-query -W -f='${Package}\t${Status}\n'` does not report as
/// "install ok installed".
fn missing_packages<'a>(wanted: &[&'a str], dpkg_output: &str) -> Vec<&'a str> {
    let installed: HashSet<&str> = dpkg_output
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| status.trim() == "install ok installed")
        // Multi-arch packages may be listed as name:arch.
        .map(|(name, _)| name.split(':').next().unwrap_or(name))
        .collect();
    wanted
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect()
}

fn is_mounted(proc_mounts: &str, target: &str, fstype: &str) -> bool {
    proc_mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(target) && fields.next() == Some(fstype)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_from_rustc_verbose() {
        let verbose = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\n\
                       host: x86_64-unknown-linux-gnu\nrelease: 1.97.0-nightly\nLLVM version: 22.1.4\n";
        assert_eq!(parse_llvm_major(verbose), Some(22));
        assert_eq!(parse_llvm_major("LLVM version: 9.0.1"), Some(9));
        assert_eq!(parse_llvm_major("rustc 1.0\nrelease: 1.0"), None);
    }

    #[test]
    fn libllvm_prefers_the_versioned_library() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick_libllvm(names(&[
                "librustc_driver-b5a965480ee51f9a.so",
                "libLLVM-22-rust-1.97.0-nightly.so",
                "libLLVM.so.22.1-rust-1.97.0-nightly",
                "rustlib",
            ]))
            .as_deref(),
            Some("libLLVM.so.22.1-rust-1.97.0-nightly")
        );
        assert_eq!(
            pick_libllvm(names(&["libLLVM-17-rust-1.75.0-nightly.so", "rustlib"])).as_deref(),
            Some("libLLVM-17-rust-1.75.0-nightly.so")
        );
        assert_eq!(pick_libllvm(names(&["librustc_driver-1.so"])), None);
    }

    #[test]
    fn missing_packages_from_dpkg_query() {
        let out = "curl\tinstall ok installed\nnginx\tdeinstall ok config-files\n\
                   iproute2:amd64\tinstall ok installed\n";
        assert_eq!(
            missing_packages(&["iproute2", "curl", "nginx", "wrk"], out),
            vec!["nginx", "wrk"]
        );
    }

    #[test]
    fn mounts_match_target_and_type() {
        let mounts = "sysfs /sys sysfs rw 0 0\nnodev /sys/kernel/tracing tracefs rw 0 0\n";
        assert!(is_mounted(mounts, "/sys/kernel/tracing", "tracefs"));
        assert!(!is_mounted(mounts, "/sys/fs/bpf", "bpf"));
        assert!(!is_mounted(mounts, "/sys", "tracefs"));
    }
}
