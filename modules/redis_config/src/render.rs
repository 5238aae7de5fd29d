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
