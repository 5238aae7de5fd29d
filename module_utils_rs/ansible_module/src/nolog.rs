//! Scrubbing `no_log` values from a result, with Python's `remove_values` semantics.
//!
//! Ansible masks nothing for a binary module, so the module itself must make sure a secret never
//! leaves it: a string equal to a secret becomes `VALUE_SPECIFIED_IN_NO_LOG_PARAMETER`, and any
//! occurrence of a secret inside a longer string (an error message, a diff line) becomes `********`.

use serde_json::{Map, Value};
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

/// Masks every secret anywhere in `v`: strings, object keys, nested arrays and objects.
pub fn remove_values(v: &mut Value, secrets: &BTreeSet<String>) {
    if secrets.is_empty() {
        return;
    }
    match v {
        Value::String(s) => *s = mask_str(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|i| remove_values(i, secrets)),
        Value::Object(m) => {
            let old = std::mem::take(m);
            let mut new = Map::with_capacity(old.len());
            for (k, mut val) in old {
                remove_values(&mut val, secrets);
                let key = if secrets
                    .iter()
                    .any(|s| !s.is_empty() && k.contains(s.as_str()))
                {
                    mask_str(&k, secrets)
                } else {
                    k
                };
                new.insert(key, val);
            }
            *m = new;
        }
        _ => {}
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
        remove_values(&mut v, &secrets(&["hunter2"]));
        assert_eq!(
            v,
            json!({
                "msg": "AUTH ******** failed",
                "pw": NO_LOG_PLACEHOLDER,
                "diff": [{"before": "requirepass ********\n"}],
                NO_LOG_PLACEHOLDER: 1,
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
}
