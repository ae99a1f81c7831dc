//! The value decoders on arbitrary text: no panic, and decoding never grows the input
//! beyond what the escapes can produce.
#![no_main]

use api_guard::detect::{inputs::percent_decode, normalize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let decoded = normalize::decode(&text);
    // Each escape shrinks or keeps its bytes, except `%uXXXX`/`\uXXXX`/entities that
    // produce up to 4 UTF-8 bytes from at least 4 input bytes.
    assert!(decoded.len() <= text.len() * 3 / 2 + 4);
    let once = percent_decode(&text, true);
    assert!(once.len() <= text.len() * 3 + 4);
});
