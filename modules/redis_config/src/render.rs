//! Rendering the shared Jinja2 templates with minijinja, configured to give the same bytes as
//! `ansible.builtin.template` (trim_blocks on, lstrip_blocks off, trailing newline kept; see
//! shared/docs/templates.md). The templates are compiled into the binary, so nothing but the
//! module itself travels to the managed host.

use serde_json::Value;

pub const REDIS_TEMPLATE: &str = include_str!("../../../templates/redis_server/redis.conf.j2");
pub const SENTINEL_TEMPLATE: &str =
    include_str!("../../../templates/redis_sentinel/sentinel.conf.j2");

/// Renders `source` with `vars` (an object of template variables).
///
/// # Errors
/// A syntax error or an undefined variable, with minijinja's line information.
pub fn render(name: &str, source: &str, vars: &Value) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template(name, source)
        .map_err(|e| format!("template {name}: {e:#}"))?;
    let tmpl = env
        .get_template(name)
        .map_err(|e| format!("template {name}: {e:#}"))?;
    tmpl.render(vars)
        .map_err(|e| format!("rendering {name}: {e:#}"))
}

/// Fills a `##KEY##` template as older shell tooling wrote them: KEY is a directive (case and
/// `_`/`-` do not matter).
///
/// # Errors
/// Placeholders with no value in `settings`, all of them named.
pub fn fill_placeholders(
    src: &str,
    settings: &serde_json::Map<String, Value>,
) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut missing = Vec::new();
    while let Some(start) = rest.find("##") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("##") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let key = &after[..end];
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            out.push_str("##");
            rest = after;
            continue;
        }
        let wanted = key.to_lowercase().replace('_', "-");
        match settings
            .iter()
            .find(|(k, _)| k.to_lowercase().replace('_', "-") == wanted)
        {
            Some((_, v)) => out.push_str(&placeholder_text(v)),
            None => missing.push(key.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "placeholders with no value in settings: {}",
            missing
                .iter()
                .map(|m| format!("##{m}##"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn placeholder_text(v: &Value) -> String {
    match v {
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(placeholder_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_fill_and_report_missing() {
        let s = json!({"port": 6380, "appendonly": true, "save": ["900 1"]});
        let s = s.as_object().cloned().unwrap_or_default();
        assert_eq!(
            fill_placeholders(
                "port ##PORT##\nappendonly ##appendonly##\nsave ##save##\n# ## not a placeholder\n",
                &s
            ),
            Ok("port 6380\nappendonly yes\nsave 900 1\n# ## not a placeholder\n".to_string())
        );
        assert_eq!(
            fill_placeholders("x ##MAXMEMORY##", &s),
            Err("placeholders with no value in settings: ##MAXMEMORY##".to_string())
        );
    }
}
