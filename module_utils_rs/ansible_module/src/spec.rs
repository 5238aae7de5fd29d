//! Argument specs with AnsibleModule's semantics.
//!
//! Ansible validates nothing for binary modules: unknown options, wrong types and values outside
//! `choices` all reach the binary unchanged, and ad-hoc `-a 'port=7001 tls=yes'` sends every value
//! as a string. So each module declares a [`Spec`] and [`validate`] applies the same steps, in the
//! same order and with the same messages, as `ArgumentSpecValidator.validate` in ansible-core:
//! aliases, unsupported options, no_log values, mutually_exclusive, required, types, choices,
//! required_together / required_one_of / required_if / required_by, defaults, then sub-options.
//!
//! One deliberate difference: an option given as `null` counts as absent. Python counts the key's
//! presence; for a binary module, whose unset options are simply absent, a templated `null` means
//! "not set" to every user we have asked.

use serde_json::{Map, Number, Value};
use std::collections::BTreeSet;
use std::fmt;

/// The type of an option, as named in Ansible's argument specs and module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    Str,
    Int,
    Float,
    Bool,
    Path,
    List,
    Dict,
    Raw,
}

impl ArgType {
    /// The name Ansible uses for the type (`type: int` in DOCUMENTATION).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ArgType::Str => "str",
            ArgType::Int => "int",
            ArgType::Float => "float",
            ArgType::Bool => "bool",
            ArgType::Path => "path",
            ArgType::List => "list",
            ArgType::Dict => "dict",
            ArgType::Raw => "raw",
        }
    }
}

/// One option of a module.
#[derive(Clone, Debug)]
pub struct Opt {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
    pub default: Option<Value>,
    pub choices: Vec<Value>,
    pub aliases: Vec<&'static str>,
    pub no_log: bool,
    pub elements: Option<ArgType>,
    /// Sub-options of a `dict`, or of each element of a `list` with `elements: dict`.
    pub options: Option<Spec>,
    /// The value may hold line breaks (otherwise CR, LF and NUL are refused).
    pub multiline: bool,
}

impl Opt {
    #[must_use]
    pub fn new(name: &'static str, ty: ArgType) -> Self {
        Opt {
            name,
            ty,
            required: false,
            default: None,
            choices: Vec::new(),
            aliases: Vec::new(),
            no_log: false,
            elements: None,
            options: None,
            multiline: false,
        }
    }
    #[must_use]
    pub fn str(name: &'static str) -> Self {
        Self::new(name, ArgType::Str)
    }
    #[must_use]
    pub fn int(name: &'static str) -> Self {
        Self::new(name, ArgType::Int)
    }
    #[must_use]
    pub fn float(name: &'static str) -> Self {
        Self::new(name, ArgType::Float)
    }
    #[must_use]
    pub fn bool(name: &'static str) -> Self {
        Self::new(name, ArgType::Bool)
    }
    #[must_use]
    pub fn path(name: &'static str) -> Self {
        Self::new(name, ArgType::Path)
    }
    #[must_use]
    pub fn list(name: &'static str, elements: ArgType) -> Self {
        let mut o = Self::new(name, ArgType::List);
        o.elements = Some(elements);
        o
    }
    #[must_use]
    pub fn dict(name: &'static str) -> Self {
        Self::new(name, ArgType::Dict)
    }
    #[must_use]
    pub fn raw(name: &'static str) -> Self {
        Self::new(name, ArgType::Raw)
    }
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    #[must_use]
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    #[must_use]
    pub fn choices<V: Into<Value> + Clone>(mut self, c: &[V]) -> Self {
        self.choices = c.iter().cloned().map(Into::into).collect();
        self
    }
    #[must_use]
    pub fn aliases(mut self, a: &[&'static str]) -> Self {
        self.aliases = a.to_vec();
        self
    }
    /// Lets a str/path value hold CR and LF (and NUL): for text that is not a single line.
    #[must_use]
    pub fn multiline(mut self) -> Self {
        self.multiline = true;
        self
    }
    #[must_use]
    pub fn no_log(mut self) -> Self {
        self.no_log = true;
        self
    }
    #[must_use]
    pub fn options(mut self, spec: Spec) -> Self {
        self.options = Some(spec);
        self
    }
}

/// `required_if`: when `key == value`, the options in `requirements` must be set (all of them, or
/// at least one when `any`).
#[derive(Clone, Debug)]
pub struct RequiredIf {
    pub key: &'static str,
    pub value: Value,
    pub requirements: Vec<&'static str>,
    pub any: bool,
}

/// A module's (or a sub-option's) whole argument spec.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub options: Vec<Opt>,
    pub mutually_exclusive: Vec<Vec<&'static str>>,
    pub required_together: Vec<Vec<&'static str>>,
    pub required_one_of: Vec<Vec<&'static str>>,
    pub required_if: Vec<RequiredIf>,
    pub required_by: Vec<(&'static str, Vec<&'static str>)>,
}

impl Spec {
    #[must_use]
    pub fn new(options: Vec<Opt>) -> Self {
        Spec {
            options,
            ..Spec::default()
        }
    }
    #[must_use]
    pub fn mutually_exclusive(mut self, terms: &[&'static str]) -> Self {
        self.mutually_exclusive.push(terms.to_vec());
        self
    }
    #[must_use]
    pub fn required_together(mut self, terms: &[&'static str]) -> Self {
        self.required_together.push(terms.to_vec());
        self
    }
    #[must_use]
    pub fn required_one_of(mut self, terms: &[&'static str]) -> Self {
        self.required_one_of.push(terms.to_vec());
        self
    }
    #[must_use]
    pub fn required_if(
        mut self,
        key: &'static str,
        value: impl Into<Value>,
        requirements: &[&'static str],
        any: bool,
    ) -> Self {
        self.required_if.push(RequiredIf {
            key,
            value: value.into(),
            requirements: requirements.to_vec(),
            any,
        });
        self
    }
    #[must_use]
    pub fn required_by(mut self, key: &'static str, requirements: &[&'static str]) -> Self {
        self.required_by.push((key, requirements.to_vec()));
        self
    }
    /// Looks an option up by its canonical name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The spec as JSON in the shape of an Ansible `argument_spec`, used to check that the
    /// module's documentation says the same thing.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for o in &self.options {
            let mut m = Map::new();
            m.insert("type".into(), o.ty.name().into());
            m.insert("required".into(), o.required.into());
            m.insert("default".into(), o.default.clone().unwrap_or(Value::Null));
            if !o.choices.is_empty() {
                m.insert("choices".into(), Value::Array(o.choices.clone()));
            }
            if !o.aliases.is_empty() {
                m.insert("aliases".into(), o.aliases.clone().into());
            }
            if let Some(e) = o.elements {
                m.insert("elements".into(), e.name().into());
            }
            if o.no_log {
                m.insert("no_log".into(), true.into());
            }
            if let Some(sub) = &o.options {
                m.insert("options".into(), sub.to_json());
            }
            out.insert(o.name.into(), Value::Object(m));
        }
        Value::Object(out)
    }
}

/// Why validation failed. `unsupported` tells the caller to prefix Ansible's
/// "Unsupported parameters for (name) module:".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub msg: String,
    pub unsupported: bool,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for SpecError {}

/// The outcome of a successful validation.
#[derive(Clone, Debug, Default)]
pub struct Validated {
    /// Every option of the spec under its canonical name; `null` when unset and without default.
    pub params: Map<String, Value>,
    /// Values of `no_log` options, as strings, to scrub from every output.
    pub no_log_values: BTreeSet<String>,
    pub warnings: Vec<String>,
}

/// Validates `input` against `spec` the way AnsibleModule does.
///
/// # Errors
/// The first problem found, worded as ansible-core words it.
pub fn validate(spec: &Spec, input: &Map<String, Value>) -> Result<Validated, SpecError> {
    let mut out = Validated::default();
    out.params = validate_level(spec, input, &[], &mut out.no_log_values, &mut out.warnings)?;
    Ok(out)
}

fn with_context(msg: String, ctx: &[String]) -> String {
    if ctx.is_empty() {
        msg
    } else {
        format!("{msg} found in {}", ctx.join(" -> "))
    }
}

fn is_set(params: &Map<String, Value>, key: &str) -> bool {
    params.get(key).is_some_and(|v| !v.is_null())
}

fn count_set(terms: &[&str], params: &Map<String, Value>) -> usize {
    terms.iter().filter(|t| is_set(params, t)).count()
}

fn fail(msg: String, ctx: &[String]) -> SpecError {
    SpecError {
        msg: with_context(msg, ctx),
        unsupported: false,
    }
}

#[allow(clippy::too_many_lines)]
fn validate_level(
    spec: &Spec,
    input: &Map<String, Value>,
    ctx: &[String],
    no_log_values: &mut BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> Result<Map<String, Value>, SpecError> {
    let mut params = input.clone();

    // Aliases: the value moves to the canonical name.
    for o in &spec.options {
        for alias in &o.aliases {
            // As ansible-core's `_handle_aliases`: the alias's value wins (the last alias set,
            // in declaration order), with a warning when the option was set as well.
            if let Some(v) = params.remove(*alias) {
                if let Some(replaced) = params.insert(o.name.to_string(), v) {
                    warnings.push(with_context(
                        format!("Both option {} and its alias {alias} are set.", o.name),
                        ctx,
                    ));
                    // The value that lost is still a secret of the invocation.
                    if o.no_log {
                        collect_no_log(&replaced, no_log_values);
                    }
                }
            }
        }
    }

    let unsupported: Vec<&String> = params.keys().filter(|k| spec.get(k).is_none()).collect();
    if !unsupported.is_empty() {
        let mut names: Vec<String> = unsupported
            .iter()
            .map(|k| {
                if ctx.is_empty() {
                    (*k).clone()
                } else {
                    format!("{}.{k}", ctx.join("."))
                }
            })
            .collect();
        names.sort();
        let mut supported: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
        supported.sort_unstable();
        let mut aliases: Vec<&str> = spec
            .options
            .iter()
            .flat_map(|o| o.aliases.clone())
            .collect();
        aliases.sort_unstable();
        let mut s = supported.join(", ");
        if !aliases.is_empty() {
            s.push_str(&format!(" ({})", aliases.join(", ")));
        }
        return Err(SpecError {
            msg: format!("{}. Supported parameters include: {s}.", names.join(", ")),
            unsupported: true,
        });
    }

    for o in spec.options.iter().filter(|o| o.no_log) {
        if let Some(v) = params.get(o.name) {
            collect_no_log(v, no_log_values);
        }
    }

    for terms in &spec.mutually_exclusive {
        if count_set(terms, &params) > 1 {
            return Err(fail(
                format!("parameters are mutually exclusive: {}", terms.join("|")),
                ctx,
            ));
        }
    }

    // Defaults that are not null are in place before `required` and the cross-option checks,
    // as in ansible-core (`_set_defaults(..., set_default=False)`).
    for o in &spec.options {
        if !is_set(&params, o.name) {
            if let Some(d) = o.default.as_ref().filter(|d| !d.is_null()) {
                params.insert(o.name.to_string(), d.clone());
                if o.no_log {
                    collect_no_log(d, no_log_values);
                }
            }
        }
    }

    let mut missing: Vec<&str> = spec
        .options
        .iter()
        .filter(|o| o.required && !is_set(&params, o.name))
        .map(|o| o.name)
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(fail(
            format!("missing required arguments: {}", missing.join(", ")),
            ctx,
        ));
    }

    for o in &spec.options {
        let Some(v) = params.get(o.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let coerced = coerce(o.ty, v).map_err(|e| {
            fail(
                format!(
                    "argument '{}' is of type {} and we were unable to convert to {}: {e}",
                    o.name,
                    py_type_name(v),
                    o.ty.name()
                ),
                ctx,
            )
        })?;
        let coerced = match (o.ty, o.elements, coerced) {
            (ArgType::List, Some(el), Value::Array(items)) => {
                let mut conv = Vec::with_capacity(items.len());
                for item in &items {
                    conv.push(coerce(el, item).map_err(|e| {
                        fail(
                            format!(
                                "Elements value for option '{}' is of type {} and we were unable to convert to {}: {e}",
                                o.name,
                                py_type_name(item),
                                el.name()
                            ),
                            ctx,
                        )
                    })?);
                }
                Value::Array(conv)
            }
            (_, _, c) => c,
        };
        params.insert(o.name.to_string(), coerced);
    }

    for o in spec.options.iter().filter(|o| !o.choices.is_empty()) {
        let Some(v) = params.get(o.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let choices_str = o.choices.iter().map(py_str).collect::<Vec<_>>().join(", ");
        if let Value::Array(items) = v {
            let bad: Vec<String> = items
                .iter()
                .filter(|i| !o.choices.contains(i))
                .map(py_str)
                .collect();
            if !bad.is_empty() {
                return Err(fail(
                    format!(
                        "value of {} must be one or more of: {choices_str}. Got no match for: {}",
                        o.name,
                        bad.join(", ")
                    ),
                    ctx,
                ));
            }
        } else if !o.choices.contains(v) {
            return Err(fail(
                format!(
                    "value of {} must be one of: {choices_str}, got: {}",
                    o.name,
                    py_str(v)
                ),
                ctx,
            ));
        }
    }

    for terms in &spec.required_together {
        let n = count_set(terms, &params);
        if n > 0 && n < terms.len() {
            return Err(fail(
                format!("parameters are required together: {}", terms.join(", ")),
                ctx,
            ));
        }
    }
    for terms in &spec.required_one_of {
        if count_set(terms, &params) == 0 {
            return Err(fail(
                format!("one of the following is required: {}", terms.join(", ")),
                ctx,
            ));
        }
    }
    for r in &spec.required_if {
        if params.get(r.key) != Some(&r.value) {
            continue;
        }
        let missing: Vec<&str> = r
            .requirements
            .iter()
            .copied()
            .filter(|k| !is_set(&params, k))
            .collect();
        let violated = if r.any {
            missing.len() == r.requirements.len()
        } else {
            !missing.is_empty()
        };
        if violated {
            return Err(fail(
                format!(
                    "{} is {} but {} of the following are missing: {}",
                    r.key,
                    py_str(&r.value),
                    if r.any { "any" } else { "all" },
                    missing.join(", ")
                ),
                ctx,
            ));
        }
    }
    for (key, reqs) in &spec.required_by {
        if !is_set(&params, key) {
            continue;
        }
        let missing: Vec<&str> = reqs
            .iter()
            .copied()
            .filter(|k| !is_set(&params, k))
            .collect();
        if !missing.is_empty() {
            return Err(fail(
                format!(
                    "missing parameter(s) required by '{key}': {}",
                    missing.join(", ")
                ),
                ctx,
            ));
        }
    }

    // No option value of type str or path (or such a list element) may hold CR, LF or NUL:
    // they end up in redis.conf lines, Redis commands, file names or messages, where a line
    // break splits one directive into two (issue 8: an injected `user default nopass`). An
    // option that really takes several lines says so with `Opt::multiline()`.
    for o in spec.options.iter().filter(|o| !o.multiline) {
        let is_text = |ty: Option<ArgType>| matches!(ty, Some(ArgType::Str | ArgType::Path));
        let bad = match params.get(o.name) {
            Some(Value::String(s)) if is_text(Some(o.ty)) => s.contains(['\r', '\n', '\0']),
            Some(Value::Array(items)) if o.ty == ArgType::List && is_text(o.elements) => items
                .iter()
                .any(|i| i.as_str().is_some_and(|s| s.contains(['\r', '\n', '\0']))),
            _ => false,
        };
        if bad {
            return Err(fail(
                format!(
                    "argument '{}' contains a line break (CR or LF) or a NUL byte, which no option of this module accepts",
                    o.name
                ),
                ctx,
            ));
        }
    }

    // Every option appears in the result, null when unset.
    let mut ordered = Map::new();
    for o in &spec.options {
        let v = params.remove(o.name).unwrap_or(Value::Null);
        ordered.insert(o.name.to_string(), v);
    }

    for o in &spec.options {
        let Some(sub) = &o.options else { continue };
        let mut sub_ctx = ctx.to_vec();
        sub_ctx.push(o.name.to_string());
        let v = ordered.get(o.name).cloned().unwrap_or(Value::Null);
        let validated = match v {
            Value::Object(m) => {
                Value::Object(validate_level(sub, &m, &sub_ctx, no_log_values, warnings)?)
            }
            Value::Array(items) => {
                let mut conv = Vec::with_capacity(items.len());
                for item in items {
                    let Value::Object(m) = item else {
                        return Err(fail(
                            format!("Elements value for option '{}' must be a dict", o.name),
                            ctx,
                        ));
                    };
                    conv.push(Value::Object(validate_level(
                        sub,
                        &m,
                        &sub_ctx,
                        no_log_values,
                        warnings,
                    )?));
                }
                Value::Array(conv)
            }
            other => other,
        };
        ordered.insert(o.name.to_string(), validated);
    }
    Ok(ordered)
}

/// ansible-core's `_return_datastructure_name`: strings, numbers (as Python prints them) and
/// the scalars inside containers; never booleans, null or empty strings.
fn collect_no_log(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Null | Value::Bool(_) => {}
        Value::Array(items) => items.iter().for_each(|i| collect_no_log(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_no_log(i, out)),
        other => {
            let s = py_str(other);
            if !s.is_empty() {
                out.insert(s);
            }
        }
    }
}

/// Python's `type(value).__name__` for a JSON value, as Ansible's messages print it.
fn py_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str(value)`: what Ansible prints for a value in a message or a string conversion.
#[must_use]
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => py_float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Python's `repr(float)`: the shortest round-trip digits (as Rust's), positional between 1e-4
/// and 1e16 with a `.0` on whole numbers, otherwise `1e+30` / `1.5e-05` style.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let s = format!("{f}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn py_repr_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Converts one value to `ty` with ansible-core's `check_type_*` rules.
///
/// # Errors
/// The reason, worded as ansible-core's `TypeError` text.
pub fn coerce(ty: ArgType, v: &Value) -> Result<Value, String> {
    match ty {
        ArgType::Raw => Ok(v.clone()),
        ArgType::Str => Ok(match v {
            Value::String(_) => v.clone(),
            other => Value::String(py_str(other)),
        }),
        ArgType::Path => {
            let s = match v {
                Value::String(s) => s.clone(),
                other => py_str(other),
            };
            Ok(Value::String(expand_path(&s)))
        }
        ArgType::Int => coerce_int(v),
        ArgType::Float => coerce_float(v),
        ArgType::Bool => coerce_bool(v),
        ArgType::List => match v {
            Value::Array(_) => Ok(v.clone()),
            Value::String(s) => Ok(Value::Array(
                s.split(',').map(|p| Value::String(p.to_string())).collect(),
            )),
            Value::Number(_) => Ok(Value::Array(vec![Value::String(py_str(v))])),
            other => Err(format!(
                "<class '{}'> cannot be converted to a list",
                py_type_name(other)
            )),
        },
        ArgType::Dict => match v {
            Value::Object(_) => Ok(v.clone()),
            Value::String(s) => parse_dict_string(s),
            other => Err(format!(
                "<class '{}'> cannot be converted to a dict",
                py_type_name(other)
            )),
        },
    }
}

/// The zero of every run of Unicode decimal digits (category Nd) that Python's `int()` and
/// `float()` accept: "１２" is 12 to ansible-core, so it is here too.
const UNICODE_ZEROS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// A number as Python reads it: surrounding (Unicode) white space trimmed, every Unicode
/// decimal digit as its ASCII digit, underscores between digits dropped.
fn python_number_text(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| *c != '_')
        .map(|c| {
            let u = u32::from(c);
            UNICODE_ZEROS
                .iter()
                .find(|z| (**z..**z + 10).contains(&u))
                .and_then(|z| char::from_digit(u - z, 10))
                .unwrap_or(c)
        })
        .collect()
}

/// `Decimal(text)` when it is a whole number, exactly (no float rounding): "7.0", "1e3",
/// "2.564053882609754e+16", "9000000000000000.0".
fn decimal_integer(t: &str) -> Option<i128> {
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all: String = format!("{int_part}{frac_part}");
    let point = i64::try_from(int_part.len()).ok()? + i64::from(exp);
    let len = i64::try_from(all.len()).ok()?;
    let (whole, rest) = if point <= 0 {
        ("", all.as_str())
    } else if point >= len {
        (all.as_str(), "")
    } else {
        all.split_at(usize::try_from(point).ok()?)
    };
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let zeros = usize::try_from((point - len).max(0)).ok()?;
    if zeros > 40 {
        return None;
    }
    let text = format!("{whole}{}", "0".repeat(zeros));
    let v: i128 = if text.is_empty() {
        0
    } else {
        text.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn int_value(i: i128) -> Option<Value> {
    if let Ok(v) = i64::try_from(i) {
        return Some(Value::Number(Number::from(v)));
    }
    u64::try_from(i)
        .ok()
        .map(|v| Value::Number(Number::from(v)))
}

fn coerce_int(v: &Value) -> Result<Value, String> {
    let bad = |v: &Value| {
        let repr = match v {
            Value::String(s) => py_repr_str(s),
            other => py_str(other),
        };
        format!("\"{repr}\" cannot be converted to an int")
    };
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Python accepts 1.0 but not 1.5 (the decimal part must be zero).
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.8e19 {
                #[allow(clippy::cast_possible_truncation)]
                int_value(f as i128).ok_or_else(|| bad(v))
            } else {
                Err(bad(v))
            }
        }
        // bool is a subclass of int in Python.
        Value::Bool(b) => Ok(Value::Number(Number::from(i64::from(*b)))),
        Value::String(s) => {
            let t = python_number_text(s);
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::Number(Number::from(i)));
            }
            // Decimal("1e3") == 1000 and Decimal("7.0") == 7 are accepted by ansible-core.
            decimal_integer(&t)
                .and_then(int_value)
                .ok_or_else(|| bad(v))
        }
        other => Err(bad(other)),
    }
}

fn coerce_float(v: &Value) -> Result<Value, String> {
    let err = || {
        format!(
            "<class '{}'> cannot be converted to a float",
            py_type_name(v)
        )
    };
    let f = match v {
        Value::Number(n) => n.as_f64().ok_or_else(err)?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => python_number_text(s).parse::<f64>().map_err(|_| err())?,
        _ => return Err(err()),
    };
    Number::from_f64(f).map(Value::Number).ok_or_else(err)
}

const BOOLEANS_TRUE: [&str; 6] = ["y", "yes", "on", "1", "true", "t"];
const BOOLEANS_FALSE: [&str; 6] = ["n", "no", "off", "0", "false", "f"];

fn coerce_bool(v: &Value) -> Result<Value, String> {
    let normalized = match v {
        Value::Bool(b) => return Ok(Value::Bool(*b)),
        Value::String(s) => s.trim().to_lowercase(),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => "1".into(),
            Some(0.0) => "0".into(),
            _ => n.to_string(),
        },
        other => {
            return Err(format!(
                "<class '{}'> cannot be converted to a bool",
                py_type_name(other)
            ))
        }
    };
    if BOOLEANS_TRUE.contains(&normalized.as_str()) {
        Ok(Value::Bool(true))
    } else if BOOLEANS_FALSE.contains(&normalized.as_str()) {
        Ok(Value::Bool(false))
    } else {
        Err(format!(
            "The value '{}' is not a valid boolean. Valid booleans include: 0, 1, 'true', '0', 'f', 'yes', 'no', 't', 'y', 'false', 'n', 'off', '1', 'on'",
            py_str(v)
        ))
    }
}

/// `k1=v1, k2=v2` or `k1=v1 k2=v2` (quotes and backslash escapes honoured), or a JSON object.
fn parse_dict_string(s: &str) -> Result<Value, String> {
    if s.starts_with('{') {
        return match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err("unable to evaluate string as dictionary".into()),
        };
    }
    if !s.contains('=') {
        return Err("dictionary requested, could not parse JSON or key=value".into());
    }
    let mut fields = Vec::new();
    let mut buf = String::new();
    let mut quote: Option<char> = None;
    let mut escape = false;
    for c in s.trim().chars() {
        if escape {
            buf.push(c);
            escape = false;
        } else if c == '\\' {
            escape = true;
        } else if quote.is_none() && (c == '\'' || c == '"') {
            quote = Some(c);
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == ',' || c == ' ') {
            if !buf.is_empty() {
                fields.push(std::mem::take(&mut buf));
            }
        } else {
            buf.push(c);
        }
    }
    if !buf.is_empty() {
        fields.push(buf);
    }
    let mut m = Map::new();
    for f in fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(
                "unable to evaluate string in the \"key=value\" format as dictionary".into(),
            );
        };
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(Value::Object(m))
}

/// `os.path.expanduser(os.path.expandvars(s))`: `$VAR`/`${VAR}` expanded when set (left as they
/// are otherwise), then a leading `~` or `~user`.
#[must_use]
pub fn expand_path(s: &str) -> String {
    let vars = expand_vars(s);
    let Some(rest) = vars.strip_prefix('~') else {
        return vars;
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Through crate::accounts, never glibc's getpwnam: in a static binary that crashes for a
    // name NSS must look up elsewhere (`~unknownuser` was a SIGSEGV).
    let home = if user.is_empty() {
        std::env::var("HOME").ok().or_else(|| {
            crate::accounts::user(&nix::unistd::getuid().as_raw().to_string())
                .ok()
                .map(|u| u.home.to_string_lossy().into_owned())
        })
    } else {
        crate::accounts::user(user)
            .ok()
            .map(|u| u.home.to_string_lossy().into_owned())
    };
    match home {
        Some(h) => format!("{}{tail}", h.trim_end_matches('/')),
        None => vars,
    }
}

fn expand_vars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match (name.is_empty(), std::env::var(name)) {
            (false, Ok(val)) => {
                out.push_str(&val);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn sample() -> Spec {
        Spec::new(vec![
            Opt::str("login_host")
                .default("localhost")
                .aliases(&["host"]),
            Opt::int("login_port").default(6379),
            Opt::str("login_password").no_log(),
            Opt::str("login_user"),
            Opt::bool("tls").default(false),
            Opt::float("ratio"),
            Opt::path("ca_certs"),
            Opt::list("checks", ArgType::Str).choices(&["ping", "info", "memory"]),
            Opt::str("fail_on")
                .default("critical")
                .choices(&["critical", "warning", "never"]),
            Opt::dict("extra"),
            Opt::raw("anything"),
        ])
    }

    fn ok(spec: &Spec, input: Value) -> Map<String, Value> {
        match validate(spec, &obj(input)) {
            Ok(v) => v.params,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn err(spec: &Spec, input: Value) -> String {
        match validate(spec, &obj(input)) {
            Ok(v) => panic!("expected an error, got {:?}", v.params),
            Err(e) => e.msg,
        }
    }

    #[test]
    fn coercion_table() {
        let cases: Vec<(ArgType, Value, Result<Value, ()>)> = vec![
            (ArgType::Int, json!("7001"), Ok(json!(7001))),
            (ArgType::Int, json!(" 12 "), Ok(json!(12))),
            (ArgType::Int, json!(7.0), Ok(json!(7))),
            (ArgType::Int, json!("1e3"), Ok(json!(1000))),
            (ArgType::Int, json!("1.5"), Err(())),
            (ArgType::Int, json!(1.5), Err(())),
            (ArgType::Int, json!("abc"), Err(())),
            (ArgType::Int, json!([1]), Err(())),
            (ArgType::Float, json!("0.5"), Ok(json!(0.5))),
            (ArgType::Float, json!(2), Ok(json!(2.0))),
            (ArgType::Float, json!("x"), Err(())),
            (ArgType::Bool, json!("yes"), Ok(json!(true))),
            (ArgType::Bool, json!("YES"), Ok(json!(true))),
            (ArgType::Bool, json!("On"), Ok(json!(true))),
            (ArgType::Bool, json!("1"), Ok(json!(true))),
            (ArgType::Bool, json!(1), Ok(json!(true))),
            (ArgType::Bool, json!("y"), Ok(json!(true))),
            (ArgType::Bool, json!("t"), Ok(json!(true))),
            (ArgType::Bool, json!("TRUE"), Ok(json!(true))),
            (ArgType::Bool, json!("no"), Ok(json!(false))),
            (ArgType::Bool, json!("off"), Ok(json!(false))),
            (ArgType::Bool, json!("N"), Ok(json!(false))),
            (ArgType::Bool, json!(0), Ok(json!(false))),
            (ArgType::Bool, json!("False"), Ok(json!(false))),
            (ArgType::Bool, json!("maybe"), Err(())),
            (ArgType::Bool, json!(2), Err(())),
            (ArgType::Bool, json!([]), Err(())),
            (ArgType::Str, json!(5), Ok(json!("5"))),
            (ArgType::Str, json!(true), Ok(json!("True"))),
            (ArgType::Str, json!(1.0), Ok(json!("1.0"))),
            (ArgType::List, json!("a,b"), Ok(json!(["a", "b"]))),
            (ArgType::List, json!("a"), Ok(json!(["a"]))),
            (ArgType::List, json!(3), Ok(json!(["3"]))),
            (ArgType::List, json!({"a": 1}), Err(())),
            (
                ArgType::Dict,
                json!("a=1, b=2"),
                Ok(json!({"a": "1", "b": "2"})),
            ),
            (
                ArgType::Dict,
                json!("a=1 b='x y'"),
                Ok(json!({"a": "1", "b": "x y"})),
            ),
            (ArgType::Dict, json!("{\"a\": 1}"), Ok(json!({"a": 1}))),
            (ArgType::Dict, json!("a=1, b"), Err(())),
            (ArgType::Dict, json!("plain"), Err(())),
            (ArgType::Raw, json!([1, "x"]), Ok(json!([1, "x"]))),
        ];
        for (ty, input, want) in cases {
            let got = coerce(ty, &input).map_err(|_| ());
            assert_eq!(got, want, "coerce({}, {input})", ty.name());
        }
    }

    #[test]
    fn path_expands_home_and_vars() {
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(expand_path("~/x"), format!("{home}/x"));
        assert_eq!(expand_path("$HOME/y"), format!("{home}/y"));
        assert_eq!(expand_path("${HOME}/z"), format!("{home}/z"));
        assert_eq!(
            expand_path("/a/$NO_SUCH_VAR_XYZ/b"),
            "/a/$NO_SUCH_VAR_XYZ/b"
        );
        assert_eq!(expand_path("/plain"), "/plain");
    }

    #[test]
    fn adhoc_strings_are_coerced_and_defaults_filled() {
        let p = ok(
            &sample(),
            json!({"login_port": "7001", "tls": "yes", "host": "10.0.0.1"}),
        );
        assert_eq!(p["login_port"], json!(7001));
        assert_eq!(p["tls"], json!(true));
        assert_eq!(p["login_host"], json!("10.0.0.1"));
        assert_eq!(p["fail_on"], json!("critical"));
        assert_eq!(p["login_user"], Value::Null);
        assert!(!p.contains_key("host"));
    }

    #[test]
    fn messages_match_ansible_core() {
        let s = sample();
        assert_eq!(
            err(&s, json!({"login_port": "notaport"})),
            "argument 'login_port' is of type str and we were unable to convert to int: \"'notaport'\" cannot be converted to an int"
        );
        assert!(err(&s, json!({"tls": "maybe"})).starts_with(
            "argument 'tls' is of type str and we were unable to convert to bool: The value 'maybe' is not a valid boolean."
        ));
        assert_eq!(
            err(&s, json!({"fail_on": "sometimes"})),
            "value of fail_on must be one of: critical, warning, never, got: sometimes"
        );
        assert_eq!(
            err(&s, json!({"checks": "ping,bogus"})),
            "value of checks must be one or more of: ping, info, memory. Got no match for: bogus"
        );
        let e = validate(&s, &obj(json!({"foo": 1}))).err();
        assert_eq!(
            e,
            Some(SpecError {
                msg: "foo. Supported parameters include: anything, ca_certs, checks, extra, fail_on, login_host, login_password, login_port, login_user, ratio, tls (host).".into(),
                unsupported: true
            })
        );
    }

    #[test]
    fn required_and_null_is_absent() {
        let s = Spec::new(vec![Opt::str("name").required(), Opt::int("port")]);
        assert_eq!(err(&s, json!({})), "missing required arguments: name");
        assert_eq!(
            err(&s, json!({"name": null})),
            "missing required arguments: name"
        );
        assert_eq!(ok(&s, json!({"name": "a"}))["port"], Value::Null);
    }

    #[test]
    fn mutually_exclusive() {
        let s = Spec::new(vec![Opt::str("a"), Opt::str("b"), Opt::str("c")])
            .mutually_exclusive(&["a", "b"]);
        ok(&s, json!({}));
        ok(&s, json!({"a": "1"}));
        ok(&s, json!({"b": "1", "c": "x"}));
        ok(&s, json!({"a": "1", "b": null}));
        assert_eq!(
            err(&s, json!({"a": "1", "b": "2"})),
            "parameters are mutually exclusive: a|b"
        );
    }

    #[test]
    fn required_together() {
        let s = Spec::new(vec![Opt::str("cert"), Opt::str("key"), Opt::str("x")])
            .required_together(&["cert", "key"]);
        ok(&s, json!({}));
        ok(&s, json!({"x": "1"}));
        ok(&s, json!({"cert": "c", "key": "k"}));
        assert_eq!(
            err(&s, json!({"cert": "c"})),
            "parameters are required together: cert, key"
        );
        assert_eq!(
            err(&s, json!({"key": "k"})),
            "parameters are required together: cert, key"
        );
    }

    #[test]
    fn required_together_counts_defaults_like_ansible() {
        let s = Spec::new(vec![Opt::str("a").default("x"), Opt::str("b")])
            .required_together(&["a", "b"]);
        assert_eq!(err(&s, json!({})), "parameters are required together: a, b");
    }

    #[test]
    fn required_one_of() {
        let s = Spec::new(vec![Opt::str("a"), Opt::str("b")]).required_one_of(&["a", "b"]);
        assert_eq!(err(&s, json!({})), "one of the following is required: a, b");
        ok(&s, json!({"b": "1"}));
        ok(&s, json!({"a": "1", "b": "1"}));
    }

    #[test]
    fn required_if_all_and_any() {
        let s = Spec::new(vec![
            Opt::str("state").choices(&["present", "absent"]),
            Opt::str("path"),
            Opt::str("src"),
            Opt::str("content"),
        ])
        .required_if("state", "present", &["path"], false)
        .required_if("state", "present", &["src", "content"], true);
        ok(&s, json!({"state": "absent"}));
        ok(&s, json!({}));
        assert_eq!(
            err(&s, json!({"state": "present", "src": "x"})),
            "state is present but all of the following are missing: path"
        );
        assert_eq!(
            err(&s, json!({"state": "present", "path": "/p"})),
            "state is present but any of the following are missing: src, content"
        );
        ok(
            &s,
            json!({"state": "present", "path": "/p", "content": "c"}),
        );
    }

    #[test]
    fn required_by() {
        let s = Spec::new(vec![Opt::str("a"), Opt::str("b")]).required_by("a", &["b"]);
        ok(&s, json!({}));
        ok(&s, json!({"b": "x"}));
        assert_eq!(
            err(&s, json!({"a": "x"})),
            "missing parameter(s) required by 'a': b"
        );
    }

    #[test]
    fn suboptions_validate_with_context() {
        let sub = Spec::new(vec![
            Opt::str("name").required(),
            Opt::int("port").default(1),
            Opt::str("secret").no_log(),
        ]);
        let s = Spec::new(vec![Opt::list("nodes", ArgType::Dict).options(sub.clone())]);
        let p = ok(
            &s,
            json!({"nodes": [{"name": "a", "port": "7"}, {"name": "b"}]}),
        );
        assert_eq!(
            p["nodes"],
            json!([{"name": "a", "port": 7, "secret": null}, {"name": "b", "port": 1, "secret": null}])
        );
        assert_eq!(
            err(&s, json!({"nodes": [{"port": 2}]})),
            "missing required arguments: name found in nodes"
        );
        assert_eq!(
            err(&s, json!({"nodes": [{"name": "a", "bogus": 1}]})),
            "nodes.bogus. Supported parameters include: name, port, secret."
        );
        let d = Spec::new(vec![Opt::dict("conn").options(sub)]);
        let v = validate(
            &d,
            &obj(json!({"conn": {"name": "x", "secret": "hunter2"}})),
        )
        .map_err(|e| e.msg);
        assert!(v.is_ok_and(|v| v.no_log_values.contains("hunter2")));
    }

    #[test]
    fn no_log_values_collected_from_input_and_aliases() {
        let s = Spec::new(vec![Opt::str("login_password")
            .no_log()
            .aliases(&["password"])]);
        let v = validate(&s, &obj(json!({"password": "s3cret"}))).map_err(|e| e.msg);
        assert!(v.is_ok_and(|v| v.no_log_values.contains("s3cret")));
    }

    #[test]
    fn alias_and_name_both_set_warns() {
        // See: issue 8 item 21. ansible-core's _handle_aliases assigns the alias's value over
        // the option's, and warns.
        let v =
            validate(&sample(), &obj(json!({"login_host": "a", "host": "b"}))).map_err(|e| e.msg);
        assert!(v
            .as_ref()
            .is_ok_and(|v| v.params["login_host"] == json!("b")));
        assert_eq!(
            v.map(|v| v.warnings).unwrap_or_default(),
            vec!["Both option login_host and its alias host are set.".to_string()]
        );
        // Two aliases: the last one declared wins, and each one after the first warns.
        let s = Spec::new(vec![Opt::str("password").aliases(&["pw", "pass"]).no_log()]);
        let v = validate(
            &s,
            &obj(json!({"pw": "one", "pass": "two", "password": "zero"})),
        )
        .map_err(|e| e.msg);
        let v = v.expect("valid");
        assert_eq!(v.params["password"], json!("two"));
        assert_eq!(v.warnings.len(), 2);
        for s in ["zero", "one", "two"] {
            assert!(v.no_log_values.contains(s), "{s} not masked");
        }
    }

    #[test]
    fn list_elements_are_coerced() {
        let s = Spec::new(vec![Opt::list("ports", ArgType::Int)]);
        assert_eq!(ok(&s, json!({"ports": "1,2"}))["ports"], json!([1, 2]));
        assert_eq!(
            err(&s, json!({"ports": ["x"]})),
            "Elements value for option 'ports' is of type str and we were unable to convert to int: \"'x'\" cannot be converted to an int"
        );
    }

    #[test]
    fn floats_print_as_python_does() {
        for (f, want) in [
            (1e30, "1e+30"),
            (-1.0, "-1.0"),
            (0.5, "0.5"),
            (1.5e-5, "1.5e-05"),
            (1e16, "1e+16"),
            (123_456.0, "123456.0"),
            (0.0001, "0.0001"),
            (2.5e300, "2.5e+300"),
        ] {
            assert_eq!(py_str(&json!(f)), want, "{f}");
        }
    }

    #[test]
    fn line_breaks_and_nul_are_refused_in_text_options() {
        // See: issue 8 item 1 (and the adversarial suite: CR/LF/NUL in options a run does not
        // even use, such as ca_certs).
        let s = Spec::new(vec![
            Opt::str("host"),
            Opt::path("ca"),
            Opt::list("names", ArgType::Str),
            Opt::str("body").multiline(),
        ]);
        for bad in [
            json!({"host": "a\nb"}),
            json!({"ca": "/x\r"}),
            json!({"names": ["ok", "b\u{0}"]}),
        ] {
            assert!(
                err(&s, bad.clone()).contains("contains a line break"),
                "{bad}"
            );
        }
        assert_eq!(
            ok(&s, json!({"body": "two\nlines"}))["body"],
            json!("two\nlines")
        );
    }

    #[test]
    fn numbers_as_python_reads_them() {
        let s = Spec::new(vec![Opt::int("n"), Opt::float("f")]);
        assert_eq!(
            ok(&s, json!({"n": "9000000000000000.0"}))["n"],
            json!(9_000_000_000_000_000_i64)
        );
        assert_eq!(
            ok(&s, json!({"n": "2.564053882609754e+16"}))["n"],
            json!(25_640_538_826_097_540_i64)
        );
        assert_eq!(ok(&s, json!({"n": "\u{ff11}\u{ff12}"}))["n"], json!(12));
        assert_eq!(ok(&s, json!({"n": "\u{0663}"}))["n"], json!(3));
        assert_eq!(ok(&s, json!({"n": "1e3"}))["n"], json!(1000));
        assert!(err(&s, json!({"n": "1.5"})).contains("cannot be converted to an int"));
        assert!(err(&s, json!({"n": "1e-3"})).contains("cannot be converted to an int"));
        assert_eq!(ok(&s, json!({"f": "\u{ff11}.5"}))["f"], json!(1.5));
    }
}
