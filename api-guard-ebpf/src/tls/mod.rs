//! TLS visibility: uprobes on TLS library calls deliver plaintext ([`calls`]), and process
//! start/library-load tracepoints tell the daemon which new files to hook ([`discovery`]).

pub(crate) mod calls;
mod discovery;

pub(crate) use calls::claim_socket;
