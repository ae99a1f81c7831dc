//! TLS visibility: uprobes on TLS library calls deliver plaintext ([`calls`]), and process
//! start/library-load tracepoints tell the daemon which new files to hook ([`discovery`]).
//! Go's `crypto/tls` is hooked by its own probes ([`go`]).

pub(crate) mod calls;
mod discovery;
mod go;

pub(crate) use calls::claim_socket;
