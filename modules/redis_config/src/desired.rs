//! The desired state: the file the template renders from the request, read back the way Redis
//! reads it and refused if Redis would refuse it (or if it would leave the server open).

use crate::conf::{self, Dialect, Line};
use crate::input::Request;
use crate::render;
use crate::replication::Replication;
use crate::target::Target;
use ansible_module::{Module, ModuleError};
use serde_json::{json, Value};

/// The rendered, validated config.
#[derive(Clone, Debug)]
pub struct Desired {
    /// The template's output: the part of the file this module manages.
    pub rendered: String,
    /// The whole file to write: `rendered`, and for sentinel.conf the state block Sentinel
    /// appended to the current file.
    pub text: String,
    /// `rendered`, parsed.
    pub lines: Vec<Line>,
    /// The file being replaced, parsed (`None` when there is none, or Redis could not read it).
    pub old_lines: Option<Vec<Line>>,
    /// Whether the content differs from the current file (for sentinel.conf: the directives
    /// Sentinel reads, since Sentinel re-quotes values when it rewrites its file; with
    /// `replication: initial`, what the files make Redis do, set by the caller once the running
    /// server's command table is known).
    pub content_changed: bool,
    /// `replication: initial`: the file is compared by what it says ([`crate::compare`]), so a
    /// directive dropped from it only counts when its value was not Redis' default.
    pub by_directives: bool,
    /// Warnings for the result, given once the desired state is final (a run of
    /// `replication: initial` may render twice).
    pub warnings: Vec<String>,
}

impl Desired {
    /// Renders and checks. Every secret of the current file and of the rendered one is
    /// registered with `m.add_secret` before any check can quote a line.
    ///
    /// # Errors
    /// Rendering fails, or the result is not a config Redis would read as meant.
    pub fn build(m: &Module, req: &Request, target: &Target) -> Result<Desired, ModuleError> {
        if let Some(t) = &target.old_text {
            for s in conf::secrets_of_text(t) {
                m.add_secret(&s);
            }
        }
        let old_lines = target.old_text.as_deref().and_then(|t| conf::parse(t).ok());
        let mut monitors = req.monitors.clone();
        keep_failed_over_masters(m, &mut monitors, old_lines.as_deref());

        let rendered = render_request(req, &monitors)?;
        for s in conf::secrets_of_text(&rendered) {
            m.add_secret(&s);
        }
        let lines = parse_rendered(&rendered)?;
        conf::refuse_control_chars(&lines).map_err(ModuleError::new)?;
        let mut warnings = Vec::new();
        if req.validate {
            conf::validate_lines_against(&lines, req.dialect, &req.against)
                .map_err(ModuleError::new)?;
            conf::validate_file_on(&lines, req.dialect, req.against.version)
                .map_err(ModuleError::new)?;
            warnings = conf::check_contradictions(&lines, req.dialect).map_err(ModuleError::new)?;
        }
        if !req.allow_insecure {
            conf::check_security(&lines, req.dialect).map_err(ModuleError::new)?;
        }

        // Sentinel's generated block (its state) is kept; only our part is compared.
        let old = target.old_text.as_deref();
        let text = match (req.dialect, old) {
            (Dialect::Sentinel, Some(old)) => {
                let (_, generated) = conf::split_generated(old);
                if generated.is_empty() {
                    rendered.clone()
                } else {
                    format!("{}\n\n{generated}", rendered.trim_end_matches('\n'))
                }
            }
            _ => rendered.clone(),
        };
        let content_changed = match (req.dialect, old) {
            (_, None) => true,
            // The link itself is replaced by a file, whatever it points to.
            _ if target.replaces_link => true,
            (Dialect::Sentinel, Some(old)) => {
                !conf::same_directives(conf::split_generated(old).0, &rendered)
            }
            (Dialect::Redis, Some(old)) => old != rendered,
        };
        Ok(Desired {
            rendered,
            text,
            lines,
            old_lines,
            content_changed,
            by_directives: req.replication == Replication::Initial,
            warnings,
        })
    }
}

fn render_request(req: &Request, monitors: &[Value]) -> Result<String, ModuleError> {
    let (name, source) = match &req.src {
        Some(src) => (
            src.clone(),
            ansible_module::files::read_regular_file(std::path::Path::new(src), "src")
                .map_err(|e| ModuleError::new(e.0))?,
        ),
        None => match req.dialect {
            Dialect::Redis => ("redis.conf.j2".into(), render::REDIS_TEMPLATE.to_string()),
            Dialect::Sentinel => (
                "sentinel.conf.j2".into(),
                render::SENTINEL_TEMPLATE.to_string(),
            ),
        },
    };
    if req.placeholders {
        return render::fill_placeholders(&source, &req.settings).map_err(ModuleError::new);
    }
    let vars = match req.dialect {
        Dialect::Redis => json!({ "redis_settings": req.settings }),
        Dialect::Sentinel => {
            json!({ "sentinel_settings": req.settings, "sentinel_monitors": monitors })
        }
    };
    render::render(&name, &source, &vars).map_err(ModuleError::new)
}

/// Parses the rendered text; a line Redis could not read is named with its secrets masked.
fn parse_rendered(rendered: &str) -> Result<Vec<Line>, ModuleError> {
    conf::parse(rendered).map_err(|_| {
        let (n, bad) = rendered
            .lines()
            .enumerate()
            .find(|(_, l)| !l.trim().starts_with('#') && conf::split_args(l.trim()).is_none())
            .map_or((0, String::new()), |(i, l)| (i + 1, conf::mask_secrets(l.trim())));
        ModuleError::new(format!(
            "rendered config, line {n}: unbalanced quotes (or a quote not followed by a space): `{bad}`"
        ))
    })
}

/// Keeps Sentinel's view of a master after a failover: Sentinel rewrites `sentinel monitor` to
/// the new master and bumps its config-epoch; writing the old address back would undo the
/// failover on the next Sentinel restart.
fn keep_failed_over_masters(m: &Module, monitors: &mut [Value], old: Option<&[Line]>) {
    let Some(old) = old else { return };
    for mon in monitors.iter_mut() {
        let Some(name) = mon["name"].as_str().map(str::to_string) else {
            continue;
        };
        let epoch = old
            .iter()
            .find(|l| {
                l.name == "sentinel"
                    && l.args.len() == 3
                    && l.args[0] == "config-epoch"
                    && l.args[1] == name
            })
            .and_then(|l| l.args[2].parse::<u64>().ok())
            .unwrap_or(0);
        let current = old.iter().find(|l| {
            l.name == "sentinel" && l.args.len() == 5 && l.args[0] == "monitor" && l.args[1] == name
        });
        if let (Some(cur), true) = (current, epoch > 0) {
            let (host, port) = (cur.args[2].clone(), cur.args[3].parse::<i64>().unwrap_or(0));
            if mon["host"].as_str() != Some(host.as_str()) || mon["port"].as_i64() != Some(port) {
                m.warn(format!(
                    "Sentinel has failed over {name} to {host}:{port} (config-epoch {epoch}); keeping that address instead of {}:{} so the failover is not undone",
                    mon["host"].as_str().unwrap_or("?"),
                    mon["port"]
                ));
                mon["host"] = json!(host);
                mon["port"] = json!(port);
            }
        }
    }
}
