//! Address completion from /proc for connections whose tuple the kernel could not resolve
//! (e.g. `sock/inet_sock_set_state` missed the handshake): fd -> socket inode -> the row of
//! /proc/PID/net/tcp{,6} with that inode. Best effort: the socket may be gone already.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

/// (local, peer) of `fd` in process `tgid`, if it is a TCP socket that still exists.
pub fn lookup(tgid: u32, fd: u32) -> Option<(SocketAddr, SocketAddr)> {
    let link = fs::read_link(format!("/proc/{tgid}/fd/{fd}")).ok()?;
    let link = link.to_str()?;
    let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
    ["tcp", "tcp6"].iter().find_map(|table| {
        let text = fs::read_to_string(format!("/proc/{tgid}/net/{table}")).ok()?;
        text.lines().skip(1).find_map(|line| parse_row(line, inode))
    })
}

/// One row: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`
fn parse_row(line: &str, inode: &str) -> Option<(SocketAddr, SocketAddr)> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.get(9) != Some(&inode) {
        return None;
    }
    Some((parse_addr(cols.get(1)?)?, parse_addr(cols.get(2)?)?))
}

/// TCP states as in `/proc/net/tcp`'s `st` column (`include/net/tcp_states.h`).
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_LISTEN: u8 = 0x0A;

/// One socket row of `/proc/PID/net/tcp{,6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub state: u8,
    pub inode: u64,
}

/// Parses a row; `None` for the header line or anything malformed.
pub fn row(line: &str) -> Option<Row> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    Some(Row {
        local: parse_addr(cols.get(1)?)?,
        peer: parse_addr(cols.get(2)?)?,
        state: u8::from_str_radix(cols.get(3)?, 16).ok()?,
        inode: cols.get(9)?.parse().ok()?,
    })
}

/// The inode of a `socket:[N]` fd link target.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// `0100007F:1F90` (IPv4, 32-bit words in host order) or 32 hex digits for IPv6.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| {
            ip.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(Ipv4Addr::from(w.to_ne_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6_rows() {
        let v4 = "   1: 0100007F:1F90 0200007F:A0B2 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        let (l, p) = parse_row(v4, "12345").unwrap();
        assert_eq!(l.to_string(), "127.0.0.1:8080");
        assert_eq!(p.to_string(), "127.0.0.2:41138");
        assert!(parse_row(v4, "999").is_none());
        let v6 = "   0: 00000000000000000000000001000000:0050 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 777 1";
        let (l, p) = parse_row(v6, "777").unwrap();
        assert_eq!(l.to_string(), "[::1]:80");
        assert_eq!(p.to_string(), "127.0.0.1:50000");
    }

    #[test]
    fn rows_with_state_and_inode() {
        let established = "   1: 0100007F:1F90 0200007F:A0B2 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        let r = row(established).unwrap();
        assert_eq!(
            (r.local.to_string(), r.peer.to_string(), r.state, r.inode),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.2:41138".into(),
                TCP_ESTABLISHED,
                12345
            )
        );
        let listen = "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0";
        let r = row(listen).unwrap();
        assert_eq!(
            (r.local.to_string(), r.state, r.inode),
            ("[::]:8080".into(), TCP_LISTEN, 4242)
        );
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        assert_eq!(row(header), None);
        assert_eq!(socket_inode("socket:[4026532]"), Some(4_026_532));
        assert_eq!(socket_inode("pipe:[77]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse_addr("zz:zz").is_none());
        assert!(parse_addr("0100007F").is_none());
        assert!(parse_row("", "1").is_none());
    }
}
