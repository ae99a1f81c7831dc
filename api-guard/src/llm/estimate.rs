//! Token estimates for exchanges whose server reported no usage: about four characters per
//! token (the usual figure for English text with GPT- and Llama-family tokenizers). Always
//! flagged `estimated` where used.

use serde_json::Value;

const CHARS_PER_TOKEN: u64 = 4;

/// Tokens of `chars` characters of text (at least one for non-empty text).
pub fn tokens_of_chars(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN)
}

/// Tokens of a body of `bytes` bytes whose text could not be read (JSON syntax included).
pub fn tokens_of_bytes(bytes: u64) -> u64 {
    tokens_of_chars(bytes)
}

/// Characters of text in a JSON value: its strings, wherever they sit (message contents,
/// content parts, prompt arrays), without keys or syntax. Depth is bounded by the parser.
pub fn text_chars(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(a) => a.iter().map(text_chars).sum(),
        Value::Object(o) => o
            .iter()
            // Roles, types and ids are not prompt text.
            .filter(|(k, _)| {
                !matches!(k.as_str(), "role" | "type" | "id" | "name" | "tool_call_id")
            })
            .map(|(_, v)| text_chars(v))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_chars_a_token() {
        assert_eq!(tokens_of_chars(0), 0);
        assert_eq!(tokens_of_chars(1), 1);
        assert_eq!(tokens_of_chars(8), 2);
        let v: Value = serde_json::from_str(
            r#"[{"role":"user","content":"abcd"},{"role":"system","content":[{"type":"text","text":"éfgh"}]}]"#,
        )
        .unwrap();
        assert_eq!(text_chars(&v), 8);
    }
}
