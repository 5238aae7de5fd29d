//! Scrubbing `no_log` values from a result, with Python's `remove_values` semantics.
//!
//! Ansible masks nothing for a binary module, so the module itself must make sure a secret never
//! leaves it: a string equal to a secret becomes `VALUE_SPECIFIED_IN_NO_LOG_PARAMETER`, and any
//! occurrence of a secret inside a longer string (an error message, a diff line) becomes `********`.

use serde_json::Value;
use std::collections::BTreeSet;

/// What a string that *is* a secret becomes (as in ansible-core).
pub const NO_LOG_PLACEHOLDER: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";
/// What a secret *inside* a longer string becomes.
pub const MASK: &str = "********";

/// Masks every secret in `s`. Longer secrets go first so that one secret containing another
/// is masked whole.
#[must_use]
pub fn mask_str(s: &str, secrets: &BTreeSet<String>) -> String {
    if secrets.contains(s) {
        return NO_LOG_PLACEHOLDER.to_string();
    }
    let mut ordered: Vec<&String> = secrets.iter().filter(|x| !x.is_empty()).collect();
    ordered.sort_by_key(|x| std::cmp::Reverse(x.len()));
    let mut out = s.to_string();
    for secret in ordered {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// ansible-core's `remove_values`, applied in place: a string equal to a secret becomes the
/// placeholder and secrets inside strings become `********`; a number whose Python `str()`
/// equals or contains a secret becomes the placeholder (a password `12345678` given as a YAML
/// integer is echoed back as a number: issue 8 item 3); booleans and null stay. Object keys are
/// never touched, exactly as in ansible-core: masking keys turned `redis_version` into
/// `********_version` for the password `redis`, and broke `failed`/`changed` for `a` (item 4).
pub fn remove_values(v: &mut Value, secrets: &BTreeSet<String>) {
    if secrets.is_empty() {
        return;
    }
    match v {
        Value::String(s) => *s = mask_str(s, secrets),
        Value::Number(_) => {
            let s = crate::spec::py_str(v);
            if secrets
                .iter()
                .any(|x| !x.is_empty() && s.contains(x.as_str()))
            {
                *v = Value::String(NO_LOG_PLACEHOLDER.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| remove_values(i, secrets)),
        Value::Object(m) => m.values_mut().for_each(|i| remove_values(i, secrets)),
        Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn masks_everywhere() {
        let mut v = json!({
            "msg": "AUTH hunter2 failed",
            "pw": "hunter2",
            "diff": [{"before": "requirepass hunter2\n"}],
            "hunter2": 1,
            "n": 5
        });
        // Keys stay as they are, as in ansible-core.
        remove_values(&mut v, &secrets(&["hunter2"]));
        assert_eq!(
            v,
            json!({
                "msg": "AUTH ******** failed",
                "pw": NO_LOG_PLACEHOLDER,
                "diff": [{"before": "requirepass ********\n"}],
                "hunter2": 1,
                "n": 5
            })
        );
    }

    #[test]
    fn longer_secret_wins_and_empty_is_ignored() {
        assert_eq!(
            mask_str("x abcdef y", &secrets(&["abc", "abcdef", ""])),
            "x ******** y"
        );
        assert_eq!(mask_str("plain", &secrets(&[""])), "plain");
    }

    #[test]
    fn numbers_are_masked_keys_are_not() {
        // See: issue 8 items 3 and 4.
        let mut v = json!({
            "settings": {"requirepass": 12_345_678, "port": 6379},
            "ratio": 0.5,
            "redis_version": "7.0.15",
            "failed": false,
            "changed": true,
            "list": [12_345_678, "x12345678y", true, null]
        });
        remove_values(&mut v, &secrets(&["12345678", "redis", "a", "True"]));
        assert_eq!(
            v,
            json!({
                "settings": {"requirepass": NO_LOG_PLACEHOLDER, "port": 6379},
                "ratio": 0.5,
                "redis_version": "7.0.15",
                "failed": false,
                "changed": true,
                "list": [NO_LOG_PLACEHOLDER, "x********y", true, null]
            })
        );
        // A number that merely contains a secret is masked whole, as ansible-core does.
        let mut n = json!(1_234_567_890);
        remove_values(&mut n, &secrets(&["456"]));
        assert_eq!(n, json!(NO_LOG_PLACEHOLDER));
        // Python prints 5.0 for a float 5: the secret "5.0" matches it.
        let mut f = json!(5.0);
        remove_values(&mut f, &secrets(&["5.0"]));
        assert_eq!(f, json!(NO_LOG_PLACEHOLDER));
    }
}
