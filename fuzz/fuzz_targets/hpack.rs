//! The HPACK decoder on arbitrary header blocks, from a connection's start and joined
//! mid-stream: no panic, every limit holds, memory stays bounded, and while the from-start
//! decoder accepts the stream, the joined one (which joined at the very start, so it can
//! resolve everything the other resolves) emits exactly the same fields.
//!
//! Input: one byte choosing the limits, then blocks of `[len, bytes...]` (`len` bytes, or
//! what is left); a block whose `len` is 255 instead announces a SETTINGS_HEADER_TABLE_SIZE
//! taken from its next two bytes.
#![no_main]

use api_guard::http::h2::hpack::{BlockInfo, Decoder, Field, HpackError, HpackLimits};
use libfuzzer_sys::fuzz_target;

fn limits(selector: u8) -> HpackLimits {
    if selector & 1 == 0 {
        HpackLimits::default()
    } else {
        // Small limits, so that every limit is actually reached.
        HpackLimits {
            max_table_size: [0, 64, 256, 4096][usize::from(selector >> 1 & 3)],
            max_header_list_size: [40, 200, 2000, 65_536][usize::from(selector >> 3 & 3)],
            max_fields: [1, 4, 16, 256][usize::from(selector >> 5 & 3)],
        }
    }
}

type Fields = Vec<(Vec<u8>, Vec<u8>, bool)>;

fn decode(
    dec: &mut Decoder,
    block: &[u8],
    limits: &HpackLimits,
) -> Result<(Fields, BlockInfo), HpackError> {
    let mut fields = Vec::new();
    let mut list_size = 0usize;
    let info = dec.decode(block, &mut |f: Field<'_>| {
        list_size += f.name.len() + f.value.len() + 32;
        fields.push((f.name.to_vec(), f.value.to_vec(), f.sensitive));
    });
    assert!(fields.len() <= limits.max_fields);
    assert!(list_size <= limits.max_header_list_size);
    // The table (contents, at least 32 counted bytes per slot, slots grown by doubling)
    // and the scratch buffer (one field's strings).
    let bound = 4 * limits.max_table_size.max(4096) + 3 * limits.max_header_list_size + 4096;
    assert!(
        dec.retained_bytes() <= bound,
        "{} > {bound}",
        dec.retained_bytes()
    );
    let info = info?;
    assert_eq!(info.fields as usize, fields.len());
    assert!(fields.len() + info.unresolved as usize <= limits.max_fields);
    Ok((fields, info))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let limits = limits(selector);
    let mut full = Some(Decoder::new(limits));
    let mut joined = Some(Decoder::joined_mid_stream(limits));
    while let Some((&len, tail)) = rest.split_first() {
        if len == 255 {
            let setting = tail
                .get(..2)
                .map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])) * 4);
            rest = tail.get(2..).unwrap_or_default();
            for dec in [&mut full, &mut joined].into_iter().flatten() {
                dec.set_max_table_size_setting(setting);
            }
            continue;
        }
        let (block, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let a = full.as_mut().map(|d| decode(d, block, &limits));
        let b = joined.as_mut().map(|d| decode(d, block, &limits));
        if let (Some(Ok(a)), Some(b)) = (&a, &b) {
            assert_eq!(
                Some(a),
                b.as_ref().ok(),
                "joined-at-start decoder disagrees"
            );
        }
        // After an error a decoder's state is unknown: it is not used again.
        if matches!(a, Some(Err(_))) {
            full = None;
        }
        if matches!(b, Some(Err(_))) {
            joined = None;
        }
        if full.is_none() && joined.is_none() {
            return;
        }
    }
});
