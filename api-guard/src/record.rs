//! Decoding of ring buffer records into events. Records are validated (kind, size) rather
//! than trusted: a malformed record is counted, never a panic. A data event borrows its
//! payload from the record, which may still be in the ring buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use api_guard_common::{
    conn_id_adopted, direct_payload_class, ConnCloseEvent, ConnOpenEvent, ConnTlsEvent, DataHeader,
    Endpoint, EventHeader, EventKind, Plain, ProcEvent, AF_INET, AF_INET6, DATA_HEADER_SIZE,
    DATA_TLS, PAIR_HEAD_MAX,
};

#[derive(Debug, Clone)]
pub enum Event<'a> {
    Open(OpenEvent),
    Data(DataEvent<'a>),
    Close(CloseEvent),
    /// The connection carries TLS; plaintext follows from the library hooks.
    Tls(TlsEvent),
    /// Process `tgid` exec'd or mapped code: rescan it for TLS libraries.
    Exec {
        tgid: u32,
    },
}

#[derive(Debug, Clone)]
pub struct TlsEvent {
    pub conn: ConnRef,
    pub ts_ns: u64,
    /// Id of the hooked library file (its attach cookie).
    pub library: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub tgid: u32,
    pub fd: u32,
    pub conn_id: u64,
}

#[derive(Debug, Clone)]
pub struct OpenEvent {
    pub conn: ConnRef,
    pub ts_ns: u64,
    pub role: u8,
    pub addr_source: u8,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    pub comm: String,
    /// The connection was established before capture started and adopted at the daemon's
    /// start: its first bytes may be anywhere in a message (false for accept/connect).
    pub joined: bool,
}

#[derive(Debug, Clone)]
pub struct DataEvent<'a> {
    pub conn: ConnRef,
    pub ts_ns: u64,
    pub dir: u8,
    pub flags: u8,
    pub gap_before: u64,
    pub gap_after: u64,
    pub payload: &'a [u8],
    /// Decrypted by a TLS library hook: the id of that library.
    pub tls_library: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct CloseEvent {
    pub conn: ConnRef,
    pub ts_ns: u64,
    pub pending_gap: [u64; 2],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    Kind(u32),
    #[error("payload length {claimed} does not match the record ({actual} bytes)")]
    Length { claimed: usize, actual: usize },
}

fn read<T: Plain>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: the length check keeps the read inside `bytes`; `T: Plain` is valid for any
    // bit pattern; `read_unaligned` copes with the ring buffer's 8-byte alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Converts a kernel endpoint; `None` for an unknown family or an unset address.
pub fn endpoint(e: &Endpoint) -> Option<SocketAddr> {
    let ip = match e.family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(e.addr[0], e.addr[1], e.addr[2], e.addr[3])),
        AF_INET6 => {
            let v6 = Ipv6Addr::from(e.addr);
            // Dual-stack sockets see IPv4 peers as ::ffff:a.b.c.d; show them as IPv4.
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, e.port))
}

fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn conn_ref(h: &EventHeader) -> ConnRef {
    ConnRef {
        tgid: h.tgid,
        fd: h.fd,
        conn_id: h.conn_id,
    }
}

/// Decodes one record; a data payload is borrowed from `record`, not copied.
pub fn decode(record: &[u8]) -> Result<Event<'_>, DecodeError> {
    let header: EventHeader = read(record)?;
    match EventKind::from_u32(header.kind) {
        Some(EventKind::ConnOpen) => {
            let e: ConnOpenEvent = read(record)?;
            Ok(Event::Open(OpenEvent {
                conn: conn_ref(&e.hdr),
                ts_ns: e.hdr.ts_ns,
                role: e.role,
                addr_source: e.addr_source,
                local: endpoint(&e.local),
                peer: endpoint(&e.peer),
                comm: comm(&e.comm),
                joined: conn_id_adopted(e.hdr.conn_id),
            }))
        }
        Some(EventKind::Data) => {
            let d: DataHeader = read(record)?;
            let claimed = d.chunk_len as usize;
            let payload = &record[DATA_HEADER_SIZE..];
            // The ring buffer pads records to 8 bytes, and a record filled in place has the
            // payload size of its class (up to `PAIR_HEAD_MAX` more if it holds two
            // segments): the payload may be followed by unused bytes.
            let room = direct_payload_class(claimed)
                .map_or(0, |class| class + PAIR_HEAD_MAX)
                .max(claimed + 8);
            if payload.len() < claimed || payload.len() > room {
                return Err(DecodeError::Length {
                    claimed,
                    actual: payload.len(),
                });
            }
            Ok(Event::Data(DataEvent {
                conn: conn_ref(&d.hdr),
                ts_ns: d.hdr.ts_ns,
                dir: d.dir,
                flags: d.flags,
                gap_before: d.gap_before,
                gap_after: d.gap_after,
                payload: &payload[..claimed],
                tls_library: (d.flags & DATA_TLS != 0).then_some(u32::from(d.library)),
            }))
        }
        Some(EventKind::ConnClose) => {
            let c: ConnCloseEvent = read(record)?;
            Ok(Event::Close(CloseEvent {
                conn: conn_ref(&c.hdr),
                ts_ns: c.hdr.ts_ns,
                pending_gap: c.pending_gap,
            }))
        }
        Some(EventKind::ConnTls) => {
            let t: ConnTlsEvent = read(record)?;
            Ok(Event::Tls(TlsEvent {
                conn: conn_ref(&t.hdr),
                ts_ns: t.hdr.ts_ns,
                library: t.library,
            }))
        }
        Some(EventKind::ProcExec) => {
            let p: ProcEvent = read(record)?;
            Ok(Event::Exec { tgid: p.hdr.tgid })
        }
        None => Err(DecodeError::Kind(header.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: Plain>(v: &T) -> Vec<u8> {
        // SAFETY: `v` is a live `T` of `size_of::<T>()` bytes, all initialised: `Plain`
        // types have no padding.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn hdr(kind: EventKind) -> EventHeader {
        EventHeader {
            kind: kind as u32,
            tgid: 7,
            tid: 8,
            fd: 9,
            conn_id: 42,
            ts_ns: 1000,
        }
    }

    #[test]
    fn decodes_data_with_payload_and_padding() {
        let d = DataHeader {
            hdr: hdr(EventKind::Data),
            gap_before: 3,
            gap_after: 0,
            call_len: 5,
            chunk_len: 5,
            dir: 1,
            flags: 0,
            library: 0,
        };
        let mut rec = bytes_of(&d);
        rec.extend_from_slice(b"hello\0\0\0");
        let Event::Data(e) = decode(&rec).unwrap() else {
            panic!("not data")
        };
        assert_eq!(e.payload, b"hello");
        assert_eq!(e.gap_before, 3);
        assert_eq!(
            e.conn,
            ConnRef {
                tgid: 7,
                fd: 9,
                conn_id: 42
            }
        );
    }

    #[test]
    fn decodes_data_filled_in_place_up_to_its_class() {
        let record = |payload: usize| {
            let d = DataHeader {
                hdr: hdr(EventKind::Data),
                gap_before: 0,
                gap_after: 0,
                call_len: 300,
                chunk_len: 300,
                dir: 1,
                flags: 0,
                library: 0,
            };
            let mut rec = bytes_of(&d);
            rec.extend(std::iter::repeat_n(b'x', 300));
            rec.resize(DATA_HEADER_SIZE + payload, 0xee);
            rec
        };
        // 300 bytes take the 384-byte class: its unused bytes are not payload, nor are the
        // up to 512 more of a two-segment record.
        for payload in [384, 896] {
            let rec = record(payload);
            let Event::Data(e) = decode(&rec).unwrap() else {
                panic!("not data")
            };
            assert_eq!(e.payload.len(), 300);
            assert!(e.payload.iter().all(|&b| b == b'x'));
        }
        // Past the class and its slack, the record is inconsistent.
        assert_eq!(
            decode(&record(904)).unwrap_err(),
            DecodeError::Length {
                claimed: 300,
                actual: 904
            }
        );
    }

    #[test]
    fn decodes_tls_records() {
        let d = DataHeader {
            hdr: hdr(EventKind::Data),
            gap_before: 0,
            gap_after: 0,
            call_len: 2,
            chunk_len: 2,
            dir: 2,
            flags: DATA_TLS,
            library: 513,
        };
        let mut rec = bytes_of(&d);
        rec.extend_from_slice(b"ok\0\0\0\0\0\0");
        let Event::Data(e) = decode(&rec).unwrap() else {
            panic!("not data")
        };
        assert_eq!(e.tls_library, Some(513));
        let t = ConnTlsEvent {
            hdr: hdr(EventKind::ConnTls),
            library: 7,
            _pad: 0,
        };
        let Event::Tls(e) = decode(&bytes_of(&t)).unwrap() else {
            panic!("not tls")
        };
        assert_eq!((e.conn.conn_id, e.library), (42, 7));
        let p = ProcEvent {
            hdr: hdr(EventKind::ProcExec),
        };
        assert!(matches!(
            decode(&bytes_of(&p)).unwrap(),
            Event::Exec { tgid: 7 }
        ));
        let mut short = bytes_of(&t);
        short.truncate(36);
        assert_eq!(decode(&short).unwrap_err(), DecodeError::Short(36));
    }

    #[test]
    fn opens_of_adopted_connections_are_joined() {
        let open = |conn_id: u64| {
            let mut h = hdr(EventKind::ConnOpen);
            h.conn_id = conn_id;
            let e = ConnOpenEvent {
                hdr: h,
                local: Endpoint::default(),
                peer: Endpoint::default(),
                comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
                role: 2,
                addr_source: 0,
                _pad: [0; 6],
            };
            let Event::Open(o) = decode(&bytes_of(&e)).unwrap() else {
                panic!("not an open")
            };
            o
        };
        // Kernel ids carry a CPU number below the adopted bit.
        let kernel = open((123_456 << 10) | 0x1ff);
        assert!(!kernel.joined);
        assert_eq!(kernel.comm, "curl");
        let adopted = open((123_456 << 10) | api_guard_common::CONN_ID_ADOPTED);
        assert!(adopted.joined);
    }

    #[test]
    fn rejects_short_and_inconsistent_records() {
        assert_eq!(decode(&[1, 0]).unwrap_err(), DecodeError::Short(2));
        let mut h = bytes_of(&hdr(EventKind::Data));
        h[0] = 99;
        assert_eq!(decode(&h).unwrap_err(), DecodeError::Kind(99));
        let d = DataHeader {
            hdr: hdr(EventKind::Data),
            gap_before: 0,
            gap_after: 0,
            call_len: 100,
            chunk_len: 100,
            dir: 1,
            flags: 0,
            library: 0,
        };
        let rec = bytes_of(&d);
        assert!(matches!(
            decode(&rec),
            Err(DecodeError::Length {
                claimed: 100,
                actual: 0
            })
        ));
    }

    #[test]
    fn v4_mapped_v6_is_shown_as_v4() {
        let mut e = Endpoint {
            family: AF_INET6,
            port: 80,
            ..Default::default()
        };
        e.addr[10] = 0xff;
        e.addr[11] = 0xff;
        e.addr[12..].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(endpoint(&e).unwrap().to_string(), "10.0.0.1:80");
        let mut v4 = Endpoint {
            family: AF_INET,
            port: 8080,
            ..Default::default()
        };
        v4.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(endpoint(&v4).unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(endpoint(&Endpoint::default()), None);
    }
}
