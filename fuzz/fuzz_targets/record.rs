//! The ring buffer record decoder on arbitrary bytes: a malformed record is an error, never a
//! panic, and a data payload is exactly the bytes its header claims.
#![no_main]

use std::mem::offset_of;

use api_guard::record::{decode, Event};
use api_guard_common::{DataHeader, DATA_HEADER_SIZE};
use libfuzzer_sys::fuzz_target;

const CHUNK_LEN_AT: usize = offset_of!(DataHeader, chunk_len);

fuzz_target!(|data: &[u8]| {
    if let Ok(Event::Data(event)) = decode(data) {
        let claimed = &data[CHUNK_LEN_AT..CHUNK_LEN_AT + 4];
        let claimed = u32::from_ne_bytes(claimed.try_into().unwrap()) as usize;
        assert_eq!(event.payload.len(), claimed);
        assert_eq!(
            event.payload,
            &data[DATA_HEADER_SIZE..DATA_HEADER_SIZE + claimed]
        );
    }
});
