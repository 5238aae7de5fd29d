"""The bad-input matrix, generated from each module's argument spec.

For every module found in the collection, every option (sub-options, list items and dict values
included) gets the bad values of its type: wrong types, out-of-range and huge numbers, NaN/inf
strings, empty strings, bad choices, CR/LF/NUL, very long strings, nested garbage; plus unknown
options, an option given with its alias, protocol garbage (args files that are not one JSON object)
and hostile files (FIFO, character device, directory where a file is expected).

Each case says what must happen:
  fail    the module must answer failed: true with a msg, and change nothing. A case is `fail`
          when ansible-core's own ArgumentSpecValidator rejects the input (the oracle), or when a
          project rule does: CR/LF/NUL in any string, a non-finite or negative timeout, a port
          outside 1-65535, an int that no 64-bit integer holds, an unknown user or group, an id
          outside uid_t, an invalid mode, an empty required string.
  robust  valid by every rule here (a very long string, a huge timeout): the module may succeed
          or fail, but must answer with one JSON object and, if it fails, change nothing.
  alias   an option and its alias with different values: fail, or take the value ansible-core
          takes and warn.
A base is the valid invocation a case is derived from. `armed` bases would change something
real if the bad value were not caught (apply=live on a running server, state=stopped on a
running instance, state=started of a new one), so only `fail` cases run on them.
"""
import copy
import math

from harness import PAYLOAD, SEPARATORS, has_control, oracle

OLD_CONF = (
    "# pre-existing redis.conf: every failed run must leave these bytes\n"
    "port 7000\nbind 127.0.0.1\nrequirepass Old-Base-Secret-9\nmaxmemory 16mb\n"
)
OLD_SENTINEL = "port 26999\nsentinel monitor old 127.0.0.1 7001 1\n"
FRESH_CONF = ("port @@FRESHPORT@@\nbind 127.0.0.1\ndir @@TMP@@\nlogfile @@TMP@@/fresh.log\n"
              "pidfile @@TMP@@/fresh.pid\nsave \"\"\nappendonly no\nrequirepass Fresh-Secret-3\n")
# Loopback answers in microseconds; a short timeout keeps `tls: true` against a plain server (a
# handshake that never completes) from costing seconds per case.
SERVER_ARGS = {"login_host": "127.0.0.1", "login_port": "@@PORT@@", "login_password": "@@PW@@",
               "connect_timeout": 0.5}
SENTINEL_ARGS = {"login_host": "127.0.0.1", "login_port": "@@SPORT@@", "login_password": "@@SPW@@",
                 "connect_timeout": 0.5}


class Base:
    def __init__(self, name, args, files=None, focus=(), armed=False, server=False, fresh=False, sentinel=False):
        self.name, self.args, self.files = name, args, files or {}
        self.focus, self.armed, self.server, self.fresh = set(focus), armed, server, fresh
        self.sentinel = sentinel


# Known modules: bases that reach deep (a real file to keep, a running server to leave alone).
# A module missing here still gets a base derived from its spec (generic_base).
BASES = {
    "redis_config": [
        Base("file", {"path": "@@TMP@@/redis.conf", "mode": "0640",
                      "settings": {"port": 7001, "maxmemory": "64mb", "save": ["3600 1"],
                                   "requirepass": "New-Base-Secret-8"}},
             files={"redis.conf": OLD_CONF}),
        Base("sentinel", {"path": "@@TMP@@/sentinel.conf", "template": "sentinel",
                          "settings": {"port": 26998},
                          "monitors": [{"name": "m1", "host": "127.0.0.1", "port": 7002, "quorum": 1,
                                        "auth_user": "sent", "auth_pass": "Mon-Secret-5"}]},
             files={"sentinel.conf": OLD_SENTINEL}, focus={"monitors", "template"}),
        Base("live", {"path": "@@TMP@@/redis.conf", "apply": "live",
                      "settings": {"port": "@@PORT@@", "dir": "@@SERVERDIR@@", "maxmemory": "77mb",
                                   "maxmemory-policy": "allkeys-lru", "requirepass": "@@PW@@"},
                      **SERVER_ARGS},
             files={"redis.conf": OLD_CONF}, armed=True, server=True),
    ],
    "redis_service": [
        Base("status", {"name": "rel-status", "state": "status", "config": "@@SVCCONF@@", "manager": "direct",
                        "wait_timeout": 5, "login_password": "@@PW@@", "connect_timeout": 0.5}, server=True),
        Base("stopped", {"name": "rel-stop", "state": "stopped", "config": "@@SVCCONF@@", "manager": "direct",
                         "wait_timeout": 5, "login_password": "@@PW@@", "connect_timeout": 0.5},
             armed=True, server=True),
        Base("started", {"name": "rel-fresh", "state": "started", "config": "@@TMP@@/fresh.conf",
                         "manager": "direct", "wait_timeout": 3, "pidfile": "@@TMP@@/fresh.pid"},
             files={"fresh.conf": FRESH_CONF}, focus={"user", "group"}, armed=True, fresh=True),
    ],
    "redis_health": [
        Base("server", dict(SERVER_ARGS), server=True),
    ],
    # The shared Sentinel already monitors `relm` (the shared server) exactly so: a no-op.
    "redis_sentinel": [
        Base("present", dict(SENTINEL_ARGS, monitors=[{"name": "relm", "host": "127.0.0.1", "port": "@@PORT@@",
                                                       "quorum": 1, "auth_pass": "@@PW@@"}]),
             server=True, sentinel=True),
    ],
}

# Keys to put bad values under, for free-form dict options.
DICT_KEYS = {
    ("redis_config", "settings"): ["maxmemory", "requirepass", "dir", "save", "bind", "user", "rename-command"],
}
# Free-form dicts whose values the module documents as scalars or lists of scalars.
SCALAR_DICTS = {("redis_config", "settings")}
# Options that name a file the module reads or writes: a FIFO, a device or a directory there
# must be refused.
FILE_OPTIONS = {("redis_config", "path"), ("redis_config", "src"), ("redis_service", "config")}
ACCOUNT_OPTIONS = {"owner", "group", "user"}
SAFE_CHOICES = ("status", "check", "info", "get", "query", "present", "file")
READ_ONLY_STATES = ("status", "check", "info", "get", "query")


def generic_base(name, spec):
    """A valid invocation for a module with no hint: required options filled in, a read-only
    `state` when there is one, connection options pointed at the suite's server (its Sentinel
    when the module's default port is Sentinel's)."""
    args = {}
    argspec = spec["argument_spec"]
    for opt, o in argspec.items():
        if o.get("required"):
            args[opt] = sample_value(opt, o)
        elif opt == "state" and any(c in READ_ONLY_STATES for c in o.get("choices") or []):
            args[opt] = next(c for c in READ_ONLY_STATES if c in o["choices"])
    server = "login_port" in argspec
    sentinel = server and argspec["login_port"].get("default") == 26379
    if server:
        args.update(SENTINEL_ARGS if sentinel else SERVER_ARGS)
    return [Base("generic", args, files={"existing": "pre-existing file\n"}, server=server, sentinel=sentinel)]


def sample_value(opt, o):
    choices = o.get("choices")
    if choices:
        safe = [c for c in choices if c in SAFE_CHOICES]
        return [safe[0] if safe else choices[0]] if o["type"] == "list" else (safe[0] if safe else choices[0])
    t = o.get("type", "str")
    if t == "path":
        return f"@@TMP@@/{opt}"
    return {"str": "rel", "int": 1, "float": 1.0, "bool": False, "list": [], "dict": {}, "raw": "rel"}.get(t, "rel")


def minimal_element(sub):
    return {k: sample_value(k, o) for k, o in sub.items() if o.get("required")}


def bases_for(name, spec):
    return BASES.get(name) or generic_base(name, spec)


# ---------------------------------------------------------------------------------------------
# Bad values per type
# ---------------------------------------------------------------------------------------------
LONG = "x" * 65536


def string_values(o):
    out = [("empty", ""), ("long-64KiB", LONG)]
    for label, sep in SEPARATORS.items():
        out.append((f"{label}-payload", f"x{sep}{PAYLOAD}"))
    out.append(("LF-leading", f"\n{PAYLOAD}"))
    out.append(("NUL-trailing", "x\x00"))
    choices = o.get("choices")
    if choices:
        c = str(choices[0])
        out += [("bad-choice", "bogus-choice"), ("choice-upper", c.upper() + "X" if c.upper() == c else c.upper()),
                ("choice-space", f" {c}"), ("choice-LF", f"{c}\n")]
    return out


TYPE_VALUES = {
    "int": [("str-abc", "abc"), ("float-frac", 1.5), ("str-frac", "1.5"), ("list", [1]), ("dict", {"a": 1}),
            ("empty", ""), ("hex", "0x10"), ("huge-str", "9" * 30), ("huge-int", 2 ** 70), ("i64-max+1", 2 ** 63),
            ("i64-min-1", -(2 ** 63) - 1), ("nan", "nan"), ("inf", "inf"), ("exp-1e400", "1e400"),
            ("negative", -1), ("zero", 0), ("65536", 65536), ("str-LF", "12\n"), ("str-NUL", "12\x00"),
            ("nested", [[1, [2, {}]]])],
    "float": [("str-abc", "abc"), ("nan", "nan"), ("NaN", "NaN"), ("inf", "inf"), ("-Infinity", "-Infinity"),
              ("1e309", "1e309"), ("huge", 1e308), ("negative", -1), ("neg-tiny", -1e-9), ("list", [1.0]),
              ("dict", {}), ("empty", ""), ("comma", "1,5"), ("str-LF", "1\n")],
    "bool": [("maybe", "maybe"), ("int-2", 2), ("half", 0.5), ("list", [True]), ("dict", {}), ("empty", ""),
             ("str-LF", "yes\n")],
    "list": [("dict", {"a": 1}), ("nested", [[1, [2]], {"x": None}]), ("null-item", [None]),
             ("many-10000", ["x"] * 10000)],
    "dict": [("list", [1]), ("int", 5), ("garbage-str", "garbage"), ("bad-json", "{bad"),
             ("nested", {"a": {"b": [{"c": None}]}})],
    "raw": [("list", [1]), ("dict", {"a": {}}), ("LF", "0640\n"), ("NUL", "06\x0040"), ("huge", 10 ** 30),
            ("negative", -1), ("str-bad", "u=rwz"), ("empty", ""), ("digits-999", "0999")],
}
ACCOUNT_VALUES = [("unknown-name", "nosuchuser_rel_q"), ("uid-minus-1", "-1"), ("uid-2^32-1", "4294967295"),
                  ("uid-huge", "99999999999999"), ("with-colon", "root:root")]


def values_for(name, o):
    t = o.get("type", "str")
    out = list(TYPE_VALUES.get(t, []))
    if t in ("str", "path", "raw"):
        out += [x for x in string_values(o) if x[0] not in {v[0] for v in out}]
    if t in ("str", "path"):
        out += [("list", ["a"]), ("dict", {"a": 1})]
    if t == "path":
        # `~user` expansion looks the user up: with NSS modules a static binary must not crash.
        out += [("tilde-unknown-user", "~nosuchuser_rel/x"), ("tilde-root", "~root/x"), ("dollar-unset", "$NOPE/x")]
    if o.get("choices") and t not in ("str", "path", "raw"):
        out.append(("bad-choice", "bogus-choice"))
    if name in ACCOUNT_OPTIONS:
        out += ACCOUNT_VALUES
    if t == "list" and o.get("elements") in ("str", "path", None):
        for label, sep in SEPARATORS.items():
            out.append((f"item-{label}-payload", ["ok", f"x{sep}{PAYLOAD}"]))
        out.append(("item-long", [LONG]))
        if o.get("choices"):
            out += [("item-bad-choice", ["bogus-choice"]), ("csv-space", ", ".join(map(str, o["choices"][:2])))]
    if t == "list" and o.get("elements") == "dict":
        out += [("item-str", ["x"]), ("item-int", [1]), ("item-list", [[]])]
    if t == "list" and o.get("elements") == "int":
        out += [("item-abc", ["abc"])]
    out.append(("null", None))
    return out


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------
def _finite(x):
    return not isinstance(x, float) or math.isfinite(x)


def semantic_reasons(name, o, coerced, raw):
    """Project rules beyond ansible-core's type checks; each reason makes the case `fail`."""
    why = []
    # The coerced value: "12\n" for an int is 12 (ansible-core strips it), "x\n" for a str is not.
    if has_control(coerced):
        why.append("CR/LF/NUL in a string")
    t = o.get("type", "str")
    if t in ("int", "float") and isinstance(coerced, (int, float)) and not isinstance(coerced, bool):
        if not _finite(coerced):
            why.append("not a finite number")
        elif isinstance(coerced, int) and not -(2 ** 63) <= coerced < 2 ** 63:
            # serde_json keeps 2**63..2**64-1 as u64, which as_i64() reads as "unset".
            why.append("outside the signed 64-bit range")
        else:
            if name.endswith("port") and not 1 <= coerced <= 65535:
                why.append("port outside 1-65535")
            if ("timeout" in name or name.endswith("_after")) and coerced < 0:
                why.append("negative timeout")
            if name.endswith("_db") and coerced < 0:
                why.append("negative db")
            if name == "quorum" and coerced < 1:
                why.append("quorum below 1")
    if t == "float" and isinstance(raw, str) and raw.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
        why.append("NaN/inf")
    if t == "float" and isinstance(raw, str):
        try:
            if not math.isfinite(float(raw)):
                why.append("overflows to inf")
        except ValueError:
            pass
    if o.get("required") and t in ("str", "path") and coerced == "":
        why.append("empty required string")
    if name in ACCOUNT_OPTIONS and isinstance(coerced, str):
        v = coerced.strip()
        if v.lstrip("-").isdigit():
            if not 0 <= int(v) <= 4294967294:
                why.append("id outside uid_t/gid_t")
        elif v:
            import grp
            import pwd
            try:
                (grp.getgrnam if name == "group" else pwd.getpwnam)(v)
            except (KeyError, ValueError):
                why.append(f"no such {'group' if name == 'group' else 'user'}")
    if name == "mode" and raw is not None and not _valid_mode(raw):
        why.append("invalid mode")
    return sorted(set(why))


def _valid_mode(v):
    """Ansible's file modes: an octal number or string, or a symbolic mode."""
    import re
    if isinstance(v, bool) or isinstance(v, (list, dict)):
        return False
    if isinstance(v, int):
        return 0 <= v <= 0o7777
    if not isinstance(v, str):
        return False
    if re.fullmatch(r"0?[0-7]{1,4}", v):
        return True
    clause = r"[ugoa]*([-+=]([rwxXst]*|[ugo]))+"
    return bool(re.fullmatch(rf"{clause}(,{clause})*", v))


# ---------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------
def set_at(args, path, value, spec):
    """args with the option at path (a tuple of names and list indexes) set to value; a list of
    dicts missing from the base gets one minimal element first."""
    args = copy.deepcopy(args)
    cur, sub = args, spec
    for i, key in enumerate(path[:-1]):
        if isinstance(key, int):
            cur = cur[key]
            continue
        o = sub[key]
        if key not in cur or not isinstance(cur[key], (list, dict)):
            cur[key] = [minimal_element(o.get("options", {}))] if o.get("type") == "list" else {}
        cur = cur[key]
        if isinstance(path[i + 1], int) and not cur:
            cur.append(minimal_element(o.get("options", {})))
        sub = o.get("options", sub)
    cur[path[-1]] = value
    return args


def path_label(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _net_risky(module, path, value):
    """Could this input send the module to another host or to its default port (6379)? Such
    cases only run inside the suite's private network namespace."""
    leaf = path[-1] if isinstance(path[-1], str) else ""
    return ("host" in leaf or (leaf.endswith("port") and value is None)
            or path[0] in ("config", "pidfile") or module not in BASES)


class Case:
    net_risky = False

    def __init__(self, module, base, label, args, expect, reasons, raw_text=None, setup=None, argv=None,
                 alias=None, timeout=20):
        self.module, self.base, self.label, self.args = module, base, label, args
        self.expect, self.reasons = expect, reasons
        self.raw_text, self.setup, self.argv, self.alias, self.timeout = raw_text, setup, argv, alias, timeout

    @property
    def id(self):
        return f"{self.module}:{self.base.name}:{self.label}"


def classify(module, spec, base, path, value, args):
    """(expect, reasons) for args = base with value at path."""
    errors, validated, _ = oracle(spec["argument_spec"], _tokens_neutral(args))
    reasons = [f"ansible-core: {e}" for e in errors]
    if value is None and not _required(spec["argument_spec"], path):
        # ansible-core rejects an explicit null for an option with a default or choices, but the
        # action-plugin path sends null for every unset option, so the modules read null as
        # unset (shared/docs/ansible-binary-modules.md section 5): robust, not a failure.
        return "robust", []
    # The option's own spec and its coerced value.
    sub, o, coerced = spec["argument_spec"], None, validated
    for key in path:
        if isinstance(key, int):
            coerced = coerced[key] if isinstance(coerced, list) and len(coerced) > key else None
            continue
        o = sub.get(key) if isinstance(sub, dict) else None
        coerced = coerced.get(key) if isinstance(coerced, dict) else None
        if o is None:
            break
        sub = o.get("options", {})
    if o is not None:
        reasons += semantic_reasons(path[-1], o, coerced, value)
    elif has_control(value):
        reasons.append("CR/LF/NUL in a string")
    return ("fail" if reasons else "robust"), reasons


def _required(argspec, path):
    sub, o = argspec, None
    for key in path:
        if isinstance(key, int):
            continue
        o = sub.get(key, {})
        sub = o.get("options", {})
    return bool(o and o.get("required"))


def _tokens_neutral(args):
    """The oracle sees tokens as plausible values (ports as ints)."""
    from harness import tokens_replaced
    return tokens_replaced(args, {"@@PORT@@": 7100, "@@FRESHPORT@@": 7101, "@@PW@@": "pw", "@@TMP@@": "/tmp/x",
                                  "@@SPORT@@": 7102, "@@SPW@@": "spw",
                                  "@@SVCCONF@@": "/tmp/x/redis.conf", "@@SERVERDIR@@": "/tmp/x"})


def option_paths(spec, prefix=()):
    """(path, option spec) for every option, sub-options of dicts and of list items included."""
    for name, o in spec.items():
        path = prefix + (name,)
        yield path, o
        if o.get("options"):
            inner = path + (0,) if o.get("type") == "list" else path
            yield from option_paths(o["options"], inner)


def generate(module, spec):
    """Every bad-input case of one module."""
    cases = []
    argspec = spec["argument_spec"]
    bases = bases_for(module, spec)
    primary = next((b for b in bases if not b.armed), bases[0])
    for base in bases:
        for path, o in option_paths(argspec):
            top = path[0]
            home = next((b for b in bases if top in b.focus), primary)
            if base is not home and not base.armed:
                continue
            values = values_for(path[-1], o)
            if (module, top) in DICT_KEYS and len(path) == 1:
                values = [v for v in values if v[0] not in ("nested",)] + dict_values(module, top)
            spec_only_done = False
            for label, value in values:
                if value is None and path[-1] not in base.args and len(path) == 1 and not o.get("required"):
                    continue  # null for an option the base does not set is the base itself
                args = set_at(base.args, path, value, argspec)
                expect, reasons = classify(module, spec, base, path, value, args)
                if (module, top) in SCALAR_DICTS and label.startswith("nested"):
                    expect, reasons = "fail", reasons + ["nested value in a dict of scalars"]
                if base.armed and expect != "fail":
                    continue
                if base.armed and all(r.startswith("ansible-core:") for r in reasons):
                    # Type and choice errors come from the one shared validator, before any
                    # module code: one per option shows it runs first on an armed base too.
                    # The project's own rules (CR/LF, ranges, accounts) are module code, and
                    # each of those runs there.
                    if spec_only_done:
                        continue
                    spec_only_done = True
                c = Case(module, base, f"{path_label(path)}={label}", args, expect, reasons)
                c.net_risky = _net_risky(module, path, value)
                cases.append(c)
        cases += structural_cases(module, spec, base)
    cases += protocol_cases(module, primary)
    cases += file_cases(module, spec, primary, bases)
    return cases


def dict_values(module, top):
    out = []
    for key in DICT_KEYS[(module, top)]:
        for label, sep in SEPARATORS.items():
            out.append((f"{key}-{label}-payload", {key: f"x{sep}{PAYLOAD}"}))
            out.append((f"{key}-item-{label}-payload", {key: ["3600 1", f"x{sep}{PAYLOAD}"]}))
            out.append((f"key-{key}-{label}-payload", {f"{key}{sep}{PAYLOAD}": "1"}))
        out.append((f"{key}-nested-dict", {key: {"a": [1]}}))
        out.append((f"{key}-nested-list", {key: [["a"]]}))
        out.append((f"{key}-long", {key: LONG}))
    out.append(("key-empty", {"": "x"}))
    out.append(("nested-garbage", {"a": {"b": [{"c": None}]}}))
    return out


def structural_cases(module, spec, base):
    """Unknown options and option+alias pairs."""
    out = []
    argspec = spec["argument_spec"]
    args = dict(base.args, bogus_rel_option=1)
    out.append(Case(module, base, "unknown-option", args, "fail", ["ansible-core: unsupported parameter"]))
    for path, o in option_paths(argspec):
        if o.get("options") and o.get("type") in ("dict", "list"):
            inner = path + (0, "bogus_rel_sub") if o["type"] == "list" else path + ("bogus_rel_sub",)
            a = set_at(base.args, inner, 1, argspec)
            out.append(Case(module, base, f"{path_label(path)}.unknown-suboption", a, "fail",
                            ["ansible-core: unsupported sub-parameter"]))
        if base.armed:
            continue
        for alias in o.get("aliases") or []:
            if len(path) != 1:
                continue
            name = path[0]
            mine = base.args.get(name, sample_value(name, o))
            other = _other_value(mine)
            a = dict(base.args)
            a[name], a[alias] = mine, other
            out.append(Case(module, base, f"{name}+alias-{alias}-different", a, "alias", [],
                            alias=(name, alias)))
            a2 = dict(base.args)
            a2[name], a2[alias] = mine, mine
            out.append(Case(module, base, f"{name}+alias-{alias}-same", a2, "robust", []))
    return out


def _other_value(v):
    if isinstance(v, str):
        return v + ".alias" if "@@TMP@@" in v else v + "-alias"
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    return v


def protocol_cases(module, base):
    """Args files that are not one JSON object, and argv that names none."""
    deep = '{"a": ' + "[" * 100000 + "]" * 100000 + "}"
    texts = [("args-empty-file", ""), ("args-json-array", "[1, 2]"), ("args-null", "null"),
             ("args-truncated", '{"path": "x"'), ("args-not-utf8", b"\xff\xfe{\x00}"),
             ("args-trailing-junk", '{"a": 1} {"b": 2}'), ("args-nested-100000", deep),
             ("args-key=value", "path=/tmp/x state=present")]
    out = [Case(module, base, label, None, "fail", ["not one JSON object"], raw_text=t) for label, t in texts]
    out.append(Case(module, base, "argv-missing-file", None, "fail", ["no args file"], argv=["@@TMP@@/missing.json"]))
    out.append(Case(module, base, "argv-directory", None, "fail", ["args file is a directory"], argv=["@@TMP@@"]))
    return out


def file_cases(module, spec, primary, bases):
    """A FIFO, a character device and a directory where a path option expects a file."""
    out = []
    for path, o in option_paths(spec["argument_spec"]):
        if o.get("type") != "path" or len(path) != 1:
            continue
        name = path[0]
        home = next((b for b in bases if name in b.focus), primary)
        must = (module, name) in FILE_OPTIONS
        for kind in ("fifo", "chardev", "dir"):
            args = dict(home.args)
            args[name] = f"@@TMP@@/special-{kind}"
            expect = "fail" if must else "robust"
            c = Case(module, home, f"{name}={kind}", args, expect,
                     [f"{name} is a {kind}"] if must else [], setup=kind, timeout=3)
            c.net_risky = _net_risky(module, path, None)
            out.append(c)
    return out
