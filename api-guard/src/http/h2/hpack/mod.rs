//! HPACK header decompression (RFC 7541). TEMPORARY STUB (no Huffman, full mode only) so the
//! HTTP/2 connection compiles; replaced by the real decoder.
#![allow(dead_code, unused)]

#[derive(Debug, Clone, Copy)]
pub struct HpackLimits {
    pub max_table_size: usize,
    pub max_header_list_size: usize,
    pub max_fields: usize,
}
impl Default for HpackLimits {
    fn default() -> Self {
        Self {
            max_table_size: 65_536,
            max_header_list_size: 65_536,
            max_fields: 256,
        }
    }
}
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub sensitive: bool,
}
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    pub fields: u32,
    pub unresolved: u32,
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("truncated")]
    Truncated,
    #[error("bad")]
    Bad,
}
#[derive(Debug)]
pub struct Decoder {
    dynamic: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    limits: HpackLimits,
}
const STATIC: &[(&str, &str)] = &[
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
];
impl Decoder {
    pub fn new(limits: HpackLimits) -> Self {
        Self {
            dynamic: Default::default(),
            limits,
        }
    }
    pub fn joined_mid_stream(limits: HpackLimits) -> Self {
        Self::new(limits)
    }
    pub fn set_max_table_size_setting(&mut self, _n: u32) {}
    pub fn retained_bytes(&self) -> usize {
        self.dynamic.iter().map(|(a, b)| a.len() + b.len()).sum()
    }
    fn int(b: &[u8], pos: &mut usize, bits: u8) -> Result<u64, HpackError> {
        let mask = (1u16 << bits) as u8 - 1;
        let first = *b.get(*pos).ok_or(HpackError::Truncated)? & mask;
        *pos += 1;
        if first < mask {
            return Ok(u64::from(first));
        }
        let mut v = u64::from(mask);
        let mut m = 0;
        loop {
            let x = *b.get(*pos).ok_or(HpackError::Truncated)?;
            *pos += 1;
            v += u64::from(x & 127) << m;
            m += 7;
            if x & 128 == 0 {
                return Ok(v);
            }
            if m > 28 {
                return Err(HpackError::Bad);
            }
        }
    }
    fn string(b: &[u8], pos: &mut usize) -> Result<Vec<u8>, HpackError> {
        let huff = b.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        if huff {
            return Err(HpackError::Bad);
        }
        let n = Self::int(b, pos, 7)? as usize;
        let s = b.get(*pos..*pos + n).ok_or(HpackError::Truncated)?.to_vec();
        *pos += n;
        Ok(s)
    }
    fn get(&self, i: u64) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        let i = i as usize;
        if i == 0 {
            return Err(HpackError::Bad);
        }
        if i <= STATIC.len() {
            let (n, v) = STATIC[i - 1];
            return Ok((n.into(), v.into()));
        }
        if i <= 61 {
            return Err(HpackError::Bad);
        }
        self.dynamic.get(i - 62).cloned().ok_or(HpackError::Bad)
    }
    pub fn decode(
        &mut self,
        block: &[u8],
        emit: &mut dyn FnMut(Field<'_>),
    ) -> Result<BlockInfo, HpackError> {
        let mut pos = 0;
        let mut info = BlockInfo::default();
        while pos < block.len() {
            let b = block[pos];
            let (n, v, add) = if b & 0x80 != 0 {
                let (n, v) = self.get(Self::int(block, &mut pos, 7)?)?;
                (n, v, false)
            } else if b & 0xe0 == 0x20 {
                Self::int(block, &mut pos, 5)?;
                continue;
            } else {
                let (bits, add) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let idx = Self::int(block, &mut pos, bits)?;
                let n = if idx == 0 {
                    Self::string(block, &mut pos)?
                } else {
                    self.get(idx)?.0
                };
                let v = Self::string(block, &mut pos)?;
                (n, v, add)
            };
            if add {
                self.dynamic.push_front((n.clone(), v.clone()));
            }
            info.fields += 1;
            emit(Field {
                name: &n,
                value: &v,
                sensitive: false,
            });
        }
        Ok(info)
    }
}
