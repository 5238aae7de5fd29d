# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_service` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_service.py`); ansible-doc reads
# this file. A `.yml` sidecar alone would be dropped by `ansible-doc -l` (ansible-core bug).

DOCUMENTATION = r'''
---
module: redis_service
short_description: Start, stop, restart or report a redis-server or redis-sentinel instance
version_added: 0.1.0
description:
  - Brings one named Redis server or Sentinel instance to O(state) and reports whether it runs,
    its pid, version, role and uptime, and the list of RV(actions) it took.
  - With O(manager=direct) the instance is a process the module starts itself
    (C(redis-server <config> --daemonize no --pidfile <pidfile>) in its own process group, so it
    outlives the task) and finds again through its pidfile.
    A start waits until the server answers C(PING) and has finished loading its dataset
    (C(INFO) C(loading:0)); so does O(state=started) when it finds the instance running but still
    loading. A stop sends C(SHUTDOWN SAVE) (see O(shutdown)) and waits until the process is gone.
  - With O(manager=direct), runs for the same instance take turns (a lock on
    C(<pidfile>.lock)); of several parallel O(state=started) runs exactly one starts the server,
    the others wait and report it running.
  - With O(manager=systemd) the module drives the units C(redis-server@<name>.service) or
    C(redis-sentinel@<name>.service) (for Valkey C(valkey-server@<name>.service) or
    C(valkey-sentinel@<name>.service), see O(flavour)) with
    C(systemctl start|stop|restart|enable|disable).
    Unit templates are in the collection's sources (C(templates/systemd/)). They use
    C(Type=notify) with C(--supervised systemd), long start/stop timeouts for loading and
    saving large datasets, C(LimitNOFILE=65535) and a hardened sandbox.
  - Errors say what went wrong and leave nothing half done where that can be avoided. A port
    already in use is detected before anything is started, and the message names the process
    holding it when it can be seen. A server that exits while starting fails the task with the
    last lines of its log (and what it printed on stderr, where Redis reports config file
    errors). A wrong password for C(SHUTDOWN) fails the task and leaves the server running.
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  name:
    description:
      - Instance name. It is the systemd unit instance (C(redis-server@<name>), or
        C(valkey-server@<name>) for Valkey), part of the
        default pidfile name, and appears in messages.
      - Letters, digits, V(-), V(_), V(.) and V(:) only.
    type: str
    required: true
  kind:
    description:
      - V(server) manages C(redis-server), V(sentinel) manages C(redis-sentinel) (C(valkey-server)
        and C(valkey-sentinel) with O(flavour) Valkey).
      - A Sentinel is always stopped with C(SHUTDOWN NOSAVE), since it has no dataset, and it keeps its
        state in its config file, which it rewrites itself.
    type: str
    default: server
    choices: [server, sentinel]
  state:
    description:
      - V(started) starts the instance unless it already runs.
      - V(stopped) stops it if it runs.
      - V(restarted) stops it if it runs and starts it again; always a change.
      - V(status) only reports; it never changes anything.
    type: str
    required: true
    choices: [started, stopped, restarted, status]
  config:
    description:
      - The C(redis.conf) or C(sentinel.conf) to start the instance with (O(manager=direct)).
      - Required when O(state) is V(started) or V(restarted).
      - Also read for where to reach the instance (C(bind), C(port), C(tls-port)), its password
        (C(requirepass)), C(pidfile) and C(logfile). See the notes for the exact rule.
      - Secrets read from it (C(requirepass), C(masterauth), Sentinel C(auth-pass), ACL C(user)
        passwords, also those of its C(aclfile), TLS key passphrases) are never returned; they are
        masked like O(login_password), also as written on their line, in every message and log tail.
      - The file is read on the managed host. C(include) files are followed (Redis 7 wildcards
        too). A line with unbalanced quotes fails the task before anything is done (Redis would
        refuse the file too); the message names the line, not its content.
      - A Sentinel needs a config file it can write (it rewrites it).
    type: path
  manager:
    description:
      - V(auto) uses systemd when systemd is the running init system (C(/run/systemd/system)
        exists) and the unit C(redis-server@<name>.service) (or C(redis-sentinel@<name>.service))
        exists; otherwise V(direct).
      - V(systemd) fails with a clear message when systemd is not running on the host.
      - V(direct) starts and stops the process itself and tracks it with O(pidfile).
    type: str
    default: auto
    choices: [auto, systemd, direct]
  enabled:
    description:
      - With systemd, enable (V(true)) or disable (V(false)) the unit so that it starts (or not)
        at boot. Not set leaves it as it is.
      - Ignored, with a warning, when the instance is managed directly.
    type: bool
  pidfile:
    description:
      - Where the pid of a directly managed instance is recorded and read. It is passed to Redis
        as C(--pidfile); Redis writes it, as the user it runs as, and removes it on a clean exit.
        The module only reads it, never through a symlink, so running it as root cannot be made
        to write somewhere else.
      - Default is the C(pidfile) directive of O(config) when it has one (relative to its C(dir)),
        else C(<directory of config>/<name>.pid).
      - A pid counts as the instance only when the server at the instance's address reports it
        (C(INFO) C(process_id) and C(config_file)), or, when nothing answers there, when C(/proc)
        shows the process listening on or naming one of the instance's ports, its config file or
        unix socket. This is checked before every signal.
      - A pidfile naming a process that is gone, a process that is not Redis, or another Redis
        that is not this instance, is stale; it is reported with a warning, never signalled, and
        removed when the instance is started.
      - The lock file C(<pidfile>.lock) is created next to it (never written to; a symlink there
        is refused). For a pidfile under C(/etc) the lock is C(/run/creativeflow.redis/<name>.lock)
        instead (for a user other than root, under E(XDG_RUNTIME_DIR) or the temp directory).
    type: path
  shutdown:
    description:
      - How a directly managed server is stopped. V(save) sends C(SHUTDOWN SAVE) (the dataset is
        written to disk even without save points), V(nosave) sends C(SHUTDOWN NOSAVE), V(default)
        sends C(SHUTDOWN), which saves only when save points are configured.
      - When C(SHUTDOWN) cannot be sent (nothing answers at the instance's address, or the address
        is served by another process), the module sends SIGTERM to the pid from the pidfile
        instead; Redis then saves only when save points are configured.
      - When Redis answers C(SHUTDOWN) with an error (for example the final save failed), the task
        fails with that error and the log tail, and the server keeps running.
    type: str
    default: save
    choices: [save, nosave, default]
  wait_timeout:
    description:
      - Seconds to wait for a start (C(PING) answers and the dataset is loaded) or a stop (the
        process is gone). Raise it for large datasets.
      - A start that is not ready in time fails the task but leaves the process running.
      - Between 0 (exclusive) and 86400 seconds.
    type: float
    default: 60.0
  force_kill_after:
    description:
      - Seconds after C(SHUTDOWN)/SIGTERM after which a directly managed process that is still
        running gets SIGKILL. Writes since its last save are then lost (a warning says so).
      - Not set never sends SIGKILL. When set, the module waits at least this long plus 5 seconds,
        even if O(wait_timeout) is shorter.
      - Between 0 and 86400 seconds.
    type: float
  binary:
    description:
      - The C(redis-server) or C(redis-sentinel) executable to start (O(manager=direct)).
      - Default is C(redis-server) (or C(redis-sentinel) for O(kind=sentinel)) found on E(PATH),
        or C(valkey-server) / C(valkey-sentinel) when O(flavour) is Valkey;
        a missing program fails with a message naming it and the E(PATH) searched.
      - A C(redis-server) or C(valkey-server) binary with O(kind=sentinel) is started with
        C(--sentinel).
    type: path
  flavour:
    description:
      - The server software, Redis or Valkey (the Linux Foundation fork of Redis, packaged by
        Debian 13 as C(valkey-server), C(valkey-sentinel) and C(valkey-tools)). It decides the
        executable started with O(manager=direct) (C(valkey-server), C(valkey-sentinel)) and the
        unit with O(manager=systemd) (C(valkey-server@<name>.service),
        C(valkey-sentinel@<name>.service)), and the config file a unit is expected to start
        (C(/etc/valkey/<name>.conf)).
      - V(auto) decides, in this order, by the file name of O(binary) (C(valkey-*) or
        C(redis-*)), by the name of the directory of O(config) (C(valkey) as in
        C(/etc/valkey/cache.conf), or C(redis)), by which of C(redis-server) and
        C(valkey-server) (C(-sentinel) for O(kind=sentinel)) is on E(PATH), Redis first when
        both are; else Redis. The result's RV(flavour) says what it resolved to.
      - Either flavour's process is recognised as a server (by its name C(redis-server),
        C(redis-sentinel), C(valkey-server) or C(valkey-sentinel)) when the module checks that a
        pidfile names this instance.
    type: str
    default: auto
    choices: [auto, redis, valkey]
    version_added: 0.4.0
  user:
    description:
      - Direct mode only. The user the server runs as when root starts it, such as V(redis); the
        process never runs as root then. Under systemd the unit's C(User=) decides.
      - A name or a numeric uid (V(0) is root). Names are looked up in C(/etc/passwd), then with
        C(getent) (LDAP, sssd); an unknown name or a uid out of range fails the task.
      - Files the server writes (pidfile, log, data) must be writable by that user.
      - Only root can start a server as another user.
    type: str
  group:
    description:
      - Direct mode only, with O(user). The group the server runs as; defaults to the user's
        primary group. A name or a numeric gid, looked up like O(user).
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Reports what a real run would do (C(changed) as a real run would set it, RV(actions)
        prefixed with C(would)) and does nothing. V(restarted) reports a change.
      - Read-only checks still run, so a port already in use fails in check mode too.
      - RV(running) and RV(pid) describe the instance as it is now.
  diff_mode:
    support: none
    description: A service state has no file content to diff.
notes:
  - "Where the module connects for C(PING), C(INFO) and C(SHUTDOWN): O(login_host) and
    O(login_port) count as given only when they differ from their defaults (C(localhost) and
    C(6379)); otherwise they come from O(config): the host is the first C(bind) address
    (a wildcard such as C(*) or C(0.0.0.0) becomes C(127.0.0.1), C(::) becomes C(::1)), the port is
    C(port), or C(tls-port) with O(tls=true) or when C(port) is C(0) (then TLS is used). With TLS,
    unset O(ca_certs) comes from C(tls-ca-cert-file), and unset client certificates from
    C(tls-client-cert-file)/C(tls-client-key-file) or C(tls-cert-file)/C(tls-key-file) when
    C(tls-auth-clients) is C(yes) (its default). When O(login_password) is not set, the config's
    C(requirepass) is used."
  - A server listening on a unix socket only (C(port 0), no C(tls-port)) can be started and
    stopped (SIGTERM) but reports no version, role or uptime.
  - The directly started process runs in its own process group with stdin and stdout on
    C(/dev/null); set C(logfile) in the config, or its log is lost. The config's C(daemonize) is
    overridden with C(--daemonize no) so that the pid is the server's.
  - Relative paths in the config (C(dir), C(logfile), C(pidfile)) are relative to the directory
    of the config file, where the module starts Redis.
  - The systemd unit templates start C(/etc/redis/<name>.conf) (server) and
    C(/etc/redis/sentinel-<name>.conf) (Sentinel); with O(manager=systemd), O(config) is only read
    to find the port and password, and a different path gives a warning.
  - With O(manager=systemd), systemd stops the unit (SIGTERM, then SIGKILL after
    C(TimeoutStopSec)); O(shutdown) and O(force_kill_after) apply to O(manager=direct) only.
  - "What was tested where: O(manager=direct) is tested against real C(redis-server) and
    C(redis-sentinel) processes (start, idempotent start, stop with C(SHUTDOWN SAVE) keeping
    100000 keys, restart, check mode, stale pidfile, a pidfile naming another instance's server,
    port in use, config error, corrupt RDB, wrong password, SIGTERM fallback, SIGKILL after
    O(force_kill_after), TLS-only server, 3 and 8 parallel starts, a server still loading a large
    dataset, a symlinked pidfile as root).
    systemd mode: command planning unit-tested; not run against a live systemd in CI."
  - Linux only (reads C(/proc)).
seealso:
  - module: creativeflow.redis.redis_health
    description: A health verdict for the instance once it runs.
  - module: ansible.builtin.systemd_service
    description: Generic systemd unit management.
'''

EXAMPLES = r'''
- name: Start a Redis server from its config file and wait until its dataset is loaded
  creativeflow.redis.redis_service:
    name: cache
    state: started
    config: /etc/redis/cache.conf
  register: cache

- name: Show what runs
  ansible.builtin.debug:
    msg: "redis {{ cache.redis_version }} pid {{ cache.pid }} ({{ cache.role }}), actions: {{ cache.actions }}"

- name: Run the instance under systemd (redis-server@cache.service) and start it at boot
  creativeflow.redis.redis_service:
    name: cache
    state: started
    config: /etc/redis/cache.conf
    manager: systemd
    enabled: true

- name: Run a Valkey instance under systemd (valkey-server@cache.service)
  creativeflow.redis.redis_service:
    name: cache
    state: started
    config: /etc/valkey/cache.conf
    flavour: valkey
    manager: systemd
    enabled: true

- name: Stop without saving, killing it if it takes longer than 2 minutes
  creativeflow.redis.redis_service:
    name: scratch
    state: stopped
    config: /srv/redis/scratch/redis.conf
    shutdown: nosave
    force_kill_after: 120

- name: Restart after a config change; allow 15 minutes to load a large dataset
  creativeflow.redis.redis_service:
    name: sessions
    state: restarted
    config: /etc/redis/sessions.conf
    manager: direct
    wait_timeout: 900

- name: Start a Sentinel (its config file must be writable by Sentinel)
  creativeflow.redis.redis_service:
    name: main
    kind: sentinel
    state: started
    config: /etc/redis/sentinel-main.conf

- name: Stop a server whose ACL user for administration is not in the config file
  creativeflow.redis.redis_service:
    name: cache
    state: stopped
    config: /etc/redis/cache.conf
    login_user: admin
    login_password: "{{ redis_admin_password }}"

- name: Report whether an instance runs, without changing anything
  creativeflow.redis.redis_service:
    name: cache
    state: status
    pidfile: /run/redis/cache.pid
  register: cache_status

- name: Fail the play when it is down
  ansible.builtin.assert:
    that: cache_status.running
    fail_msg: "redis-server@cache is not running"
'''

RETURN = r'''
running:
  description: Whether the instance runs after the task (in check mode, whether it runs now).
  returned: always
  type: bool
  sample: true
pid:
  description: Process id of the running instance (the unit's C(MainPID) with systemd); C(null) when not running.
  returned: always
  type: int
  sample: 41237
uptime_in_seconds:
  description: C(uptime_in_seconds) from C(INFO); C(null) when not running or not reachable.
  returned: always
  type: int
  sample: 3
redis_version:
  description:
    - The running server's C(redis_version) from C(INFO); C(null) when not running or not reachable.
    - Valkey reports the Redis version it is compatible with here (C(7.2.4) for Valkey 8); its own
      version is RV(valkey_version).
  returned: always
  type: str
  sample: 7.0.15
valkey_version:
  description: C(valkey_version) from C(INFO) of a running Valkey; C(null) for Redis, or when not running or not reachable.
  returned: always
  type: str
  sample: 8.1.1
flavour:
  description: V(redis) or V(valkey), what O(flavour) resolved to.
  returned: always
  type: str
  sample: valkey
port:
  description: The TCP port the running server listens on (INFO tcp_port), which differs from the config file's after a port change until the restart.
  returned: when the server answers
  type: int
  sample: 6379
role:
  description: V(master), V(replica) or V(sentinel); C(null) when not running or not reachable.
  returned: always
  type: str
  sample: master
manager:
  description: How the instance was managed, V(direct) or V(systemd) (what V(auto) resolved to).
  returned: always
  type: str
  sample: direct
actions:
  description:
    - What the module did, in order. In check mode, what it would do (prefixed with C(would)).
  returned: always
  type: list
  elements: str
  sample: ["SHUTDOWN SAVE", "started pid 41237"]
msg:
  description: One line saying what happened.
  returned: always
  type: str
  sample: "redis-server@cache restarted (pid 41200 → 41237)"
name:
  description: The instance name.
  returned: always
  type: str
  sample: cache
kind:
  description: V(server) or V(sentinel).
  returned: always
  type: str
  sample: server
config:
  description: The config file's absolute path; C(null) when not given.
  returned: always
  type: str
  sample: /etc/redis/cache.conf
address:
  description: The C(host:port) the module talks to (see the notes); C(null) when the instance has no TCP port.
  returned: always
  type: str
  sample: 127.0.0.1:6380
pidfile:
  description: The pidfile used.
  returned: with manager=direct
  type: str
  sample: /run/redis/cache.pid
unit:
  description: The systemd unit.
  returned: with manager=systemd
  type: str
  sample: redis-server@cache.service
enabled:
  description: Whether the unit is enabled.
  returned: with manager=systemd
  type: bool
  sample: true
active_state:
  description: The unit's C(systemctl is-active) state after the task.
  returned: with manager=systemd
  type: str
  sample: active
'''
