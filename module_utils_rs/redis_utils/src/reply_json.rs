//! A Redis reply as JSON, faithfully: every RESP2 and RESP3 type has one documented form, and
//! nothing is lost silently (a bulk string that is not UTF-8 is not mangled into U+FFFD).
//!
//! | reply                     | JSON                                                   |
//! |---------------------------|--------------------------------------------------------|
//! | nil / RESP3 null          | `null`                                                 |
//! | integer                   | number                                                 |
//! | bulk / simple string      | string, or `{"base64": "..."}` when it is not UTF-8    |
//! | array, set, push          | list                                                   |
//! | RESP3 map                 | object (keys that are not strings: their JSON text)    |
//! | double                    | number; `"inf"`, `"-inf"`, `"nan"` as strings          |
//! | boolean                   | `true` / `false`                                       |
//! | big number                | string of its digits (JSON numbers lose precision)     |
//! | verbatim string           | its text (the `txt:` / `mkd:` format is dropped)       |
//! | error inside an array     | `{"error": "CODE message"}`                            |
//!
//! An error as the whole reply is not converted: it is the command's failure.
//!
//! [`crate::connection::reply_to_json`] stays as it is for the modules' own internal use.

use serde_json::{json, Map, Value as J};

/// The key of the object a bulk string that is not UTF-8 becomes.
pub const BASE64_KEY: &str = "base64";

/// `b` as standard base64 with padding (RFC 4648), for byte strings that are not UTF-8.
#[must_use]
pub fn base64(b: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = (n >> (18 - 6 * i)) & 63;
                out.push(char::from(ALPHABET[idx as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Bytes as a JSON string when they are UTF-8, else as `{"base64": ...}`.
#[must_use]
pub fn bytes_to_json(b: Vec<u8>) -> J {
    match String::from_utf8(b) {
        Ok(s) => J::String(s),
        Err(e) => json!({ BASE64_KEY: base64(e.as_bytes()) }),
    }
}

/// Redis' own words of an error reply: `CODE message`.
#[must_use]
pub fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

fn key_text(k: redis::Value) -> String {
    match to_json(k) {
        J::String(s) => s,
        other => other.to_string(),
    }
}

/// A reply as JSON, by the table in the module documentation above.
#[must_use]
pub fn to_json(v: redis::Value) -> J {
    use redis::Value as R;
    match v {
        R::Nil => J::Null,
        R::Int(i) => J::from(i),
        R::BulkString(b) => bytes_to_json(b),
        R::SimpleString(s) => J::String(s),
        R::Okay => J::String("OK".into()),
        R::Array(items) | R::Set(items) | R::Push { data: items, .. } => {
            J::Array(items.into_iter().map(to_json).collect())
        }
        R::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                m.insert(key_text(k), to_json(v));
            }
            J::Object(m)
        }
        R::Double(d) => serde_json::Number::from_f64(d).map_or_else(
            || {
                J::String(if d.is_nan() {
                    "nan".into()
                } else if d > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                })
            },
            J::Number,
        ),
        R::Boolean(b) => J::Bool(b),
        R::VerbatimString { text, .. } => J::String(text),
        R::BigNumber(n) => J::String(String::from_utf8_lossy(&n).into_owned()),
        R::Attribute { data, .. } => to_json(*data),
        R::ServerError(e) => json!({ "error": server_error_text(&e) }),
        // `redis::Value` is non-exhaustive: a future type is shown, not dropped.
        #[allow(unreachable_patterns)]
        other => J::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value as R;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn every_type_has_its_form() {
        assert_eq!(to_json(R::Nil), J::Null);
        assert_eq!(to_json(R::Int(-7)), json!(-7));
        assert_eq!(
            to_json(R::BulkString(b"caf\xc3\xa9".to_vec())),
            json!("café")
        );
        assert_eq!(
            to_json(R::BulkString(vec![0xff, 0x00, 0x61])),
            json!({"base64": "/wBh"})
        );
        assert_eq!(to_json(R::Okay), json!("OK"));
        assert_eq!(to_json(R::SimpleString("PONG".into())), json!("PONG"));
        assert_eq!(
            to_json(R::Array(vec![R::Int(1), R::Nil, R::Array(vec![])])),
            json!([1, null, []])
        );
        assert_eq!(
            to_json(R::Map(vec![
                (R::BulkString(b"a".to_vec()), R::Int(1)),
                (R::Int(2), R::Boolean(true))
            ])),
            json!({"a": 1, "2": true})
        );
        assert_eq!(to_json(R::Double(1.5)), json!(1.5));
        assert_eq!(to_json(R::Double(f64::INFINITY)), json!("inf"));
        assert_eq!(to_json(R::Double(f64::NEG_INFINITY)), json!("-inf"));
        assert_eq!(to_json(R::Set(vec![R::Int(3)])), json!([3]));
    }
}
