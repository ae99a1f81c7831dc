//! HPACK header decompression (RFC 7541). Placeholder: the decoder lands here.
