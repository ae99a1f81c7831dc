//! The agent under test: its configurations, where its guard is attached, and its drop
//! counter.

use std::net::Ipv4Addr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use integration_tests::{Agent, Netns};

use super::{AttachMode, DEFAULT_MAX_BLOCKS, DENY_BASE};

const XDP_PACKETS: &str = "apiguard_xdp_packets_total";

pub(super) fn ensure_running(agent: &mut Agent) -> Result<()> {
    ensure!(
        agent.is_running(),
        "api-guard exited during the bench:\n{}",
        agent.stderr_tail(30)
    );
    Ok(())
}

fn toml_list(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn xdp_section(ifaces: &[&str], netns: &Path, mode: AttachMode) -> String {
    let ifaces: Vec<String> = ifaces
        .iter()
        .map(|name| {
            format!(
                "{{ name = {name:?}, netns = {:?} }}",
                netns.display().to_string()
            )
        })
        .collect();
    format!(
        "[xdp]\ninterfaces = [{}]\nmode = {:?}\n",
        ifaces.join(", "),
        mode.as_str()
    )
}

/// `count` distinct addresses from 100.64.0.0 upward.
fn deny_addresses(count: u32) -> impl Iterator<Item = Ipv4Addr> {
    let base = u32::from(DENY_BASE);
    (0..count).map(move |i| Ipv4Addr::from(base + i))
}

pub(super) fn deny_config(
    nginx_pid: u32,
    ifaces: &[&str],
    netns: &Path,
    mode: AttachMode,
    entries: u32,
    blocked: Ipv4Addr,
) -> String {
    let deny = deny_addresses(entries)
        .chain([blocked])
        .map(|a| a.to_string());
    let max_blocks = DEFAULT_MAX_BLOCKS.max(entries.saturating_add(1024));
    format!(
        "[capture]\npids = [{nginx_pid}]\n{}[enforce]\nmax_blocks = {max_blocks}\ndeny = {}\n",
        xdp_section(ifaces, netns, mode),
        toml_list(deny)
    )
}

pub(super) fn breach_config(
    nginx_pid: u32,
    iface: &str,
    netns: &Path,
    mode: AttachMode,
    policy: &str,
    rate: f64,
    burst: u32,
) -> String {
    format!(
        "[capture]\npids = [{nginx_pid}]\n{}[[enforce.policies]]\nname = {policy:?}\n\
         key = \"client_ip\"\nrate = {rate:?}\nburst = {burst}\naction = \"block\"\n\
         block_secs = 60\n",
        xdp_section(&[iface], netns, mode)
    )
}

/// The guard's program on an interface, from `ip -d link show`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attachment {
    pub(super) prog_id: u32,
    /// `native`, `generic` or `offload`.
    pub(super) mode: String,
}

pub(super) fn xdp_attachment(ns: &Netns, iface: &str) -> Result<Attachment> {
    let text = ns.ip(&["-d", "link", "show", "dev", iface])?;
    parse_xdp_attachment(&text)
        .with_context(|| format!("no XDP program on {iface} in {}:\n{text}", ns.name()))
}

/// The mode is the link flag (`mtu 1500 xdp qdisc ...`: `xdp`/`xdpdrv` native, `xdpgeneric`,
/// `xdpoffload`); the program id follows `prog/xdp id` in the details (`-d`).
fn parse_xdp_attachment(ip_link: &str) -> Option<Attachment> {
    let words: Vec<&str> = ip_link.split_whitespace().collect();
    let mode = words.iter().find_map(|w| match *w {
        "xdp" | "xdpdrv" => Some("native"),
        "xdpgeneric" => Some("generic"),
        "xdpoffload" => Some("offload"),
        "xdpmulti" => Some("multi"),
        _ => None,
    })?;
    let at = words.iter().position(|w| w.starts_with("prog/xdp"))?;
    (words.get(at + 1) == Some(&"id")).then_some(())?;
    Some(Attachment {
        prog_id: words.get(at + 2)?.parse().ok()?,
        mode: mode.to_string(),
    })
}

/// Dropped packets counted by the guard, once its 250 ms refresh has caught up: two reads
/// 300 ms apart agree (at most 3 s).
pub(super) fn settled_drops(agent: &Agent) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = agent.metric(XDP_PACKETS, &[("action", "drop")])?;
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = agent.metric(XDP_PACKETS, &[("action", "drop")])?;
        if now == last || Instant::now() > deadline {
            return Ok(now as u64);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_attachment_from_ip_link() {
        let text =
            "2: agv12a@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 xdp qdisc noqueue\n    \
                    prog/xdp id 512 name xdp_guard tag b3abc8dfe700a656 jited";
        assert_eq!(
            parse_xdp_attachment(text),
            Some(Attachment {
                prog_id: 512,
                mode: "native".into()
            })
        );
        let generic = "mtu 1500 xdpgeneric qdisc\n prog/xdp id 7 name xdp_guard";
        assert_eq!(
            parse_xdp_attachment(generic).map(|a| (a.prog_id, a.mode)),
            Some((7, "generic".to_string()))
        );
        assert_eq!(parse_xdp_attachment("mtu 1500 qdisc noqueue"), None);
        assert_eq!(
            parse_xdp_attachment("mtu 1500 qdisc\n prog/xdp id 7 name xdp_guard"),
            None
        );
    }

    #[test]
    fn deny_list_and_configs() {
        let addrs: Vec<Ipv4Addr> = deny_addresses(300).collect();
        assert_eq!(addrs[0], Ipv4Addr::new(100, 64, 0, 0));
        assert_eq!(addrs[299], Ipv4Addr::new(100, 64, 1, 43));
        let config = deny_config(
            42,
            &["agv1a", "agv2a"],
            Path::new("/run/netns/bx-s-1-0"),
            AttachMode::Auto,
            2,
            Ipv4Addr::new(10, 231, 0, 6),
        );
        assert!(config.contains("pids = [42]"), "{config}");
        assert!(
            config.contains(
                "interfaces = [{ name = \"agv1a\", netns = \"/run/netns/bx-s-1-0\" }, \
                 { name = \"agv2a\", netns = \"/run/netns/bx-s-1-0\" }]"
            ),
            "{config}"
        );
        assert!(
            config.contains("deny = [\"100.64.0.0\", \"100.64.0.1\", \"10.231.0.6\"]"),
            "{config}"
        );
        assert!(config.contains("max_blocks = 131072"), "{config}");
        let breach = breach_config(
            42,
            "agv1a",
            Path::new("/run/netns/x"),
            AttachMode::Native,
            "p",
            5.0,
            5,
        );
        assert!(
            breach.contains("rate = 5.0\nburst = 5\naction = \"block\""),
            "{breach}"
        );
        assert!(breach.contains("mode = \"native\""), "{breach}");
    }
}
