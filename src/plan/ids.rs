//! Content-hash ids. An id is the BLAKE3 hash of the canonical JSON of everything that determines an
//! output, plus pimsweep's numerics version, so ids are stable across machines and invocations and change
//! exactly when a result would.

use serde_json::Value;

/// Bumped whenever a change to pimsweep's numerics would change a stored result: old results then no
/// longer match any run of a new plan and are recomputed.
pub const NUMERICS_VERSION: u32 = 1;

/// Hex digits kept from the hash (64 bits: collisions are negligible for any sweep).
const ID_LEN: usize = 16;

/// JSON with object keys sorted at every level, whatever serde_json's map ordering is in this build.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The id of a canonical parameter document.
pub fn content_id(value: &Value) -> String {
    let hash = blake3::hash(canonical_json(value).as_bytes());
    hash.to_hex()[..ID_LEN].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a = json!({"b": 1, "a": {"y": 2.5, "x": [1, 2]}});
        let b = json!({"a": {"x": [1, 2], "y": 2.5}, "b": 1});
        assert_eq!(canonical_json(&a), r#"{"a":{"x":[1,2],"y":2.5},"b":1}"#);
        assert_eq!(content_id(&a), content_id(&b));
        assert_eq!(content_id(&a).len(), 16);
    }

    #[test]
    fn equal_floats_spelled_differently_agree() {
        assert_eq!(content_id(&json!({"lr": 2e-5})), content_id(&json!({"lr": 0.00002})));
        assert_ne!(content_id(&json!({"lr": 2e-5})), content_id(&json!({"lr": 3e-5})));
    }
}
