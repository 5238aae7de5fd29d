# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module is the Rust binary `redis_config` (libexec/redis_config, linked from
# plugins/modules/redis_config). ansible-doc reads this file.

DOCUMENTATION = r'''
---
module: redis_config
short_description: Validated redis.conf and sentinel.conf from shared templates, applied online
version_added: 0.1.0
description:
  - Renders C(redis.conf) or C(sentinel.conf) from the collection's templates (or your own),
    checks it the way Redis would read it, writes it atomically with the mode and owner asked
    for, and with O(apply=live) changes the running server without a restart.
  - Checks happen before anything is written. A failure leaves the existing file byte for byte
    as it was. They catch an unknown directive (with a did-you-mean), a value of the wrong kind
    (C(maxmemory lots), C(port 70000), an unknown C(maxmemory-policy)) and contradictions such as
    C(cluster-enabled) with C(replicaof). The error names the directive, the value and the line.
  - They also catch what redis-server itself only finds when it starts, and then refuses to
    start on. That is a C(user) line with an ACL rule C(ACL SETUSER) would refuse (C(notarule),
    C(+nosuchcmd), C(<password) the user does not have, C(~pattern) after C(allkeys)), a user
    defined twice, C(user) lines beside an C(aclfile), or a C(rename-command) of a command that
    does not exist (checked against the command table of Redis 7.0, or of Redis Sentinel 7.0
    for sentinel.conf). Also one directive set twice to different values, such as C(MaxMemory)
    beside C(maxmemory) (Redis reads names in any case), or a master monitored twice.
  - A key, value or list item holding a carriage return, a line feed or a NUL is refused,
    whatever O(validate) says. Such a value would end its line and write directives of its own
    (C(user default on nopass ...), an open server).
  - Secure by default. The file starts from C(bind 127.0.0.1 -::1) and C(protected-mode yes). A
    config that listens beyond loopback while the C(default) user needs no password is refused
    unless O(allow_insecure=true). That user is what a C(user default) line makes of it (such a
    line overrides C(requirepass)), else what the O(settings) C(aclfile) says (Redis recreates
    C(default) as C(on nopass) when the aclfile does not name it), else C(requirepass). ACL
    users other than C(default) do not protect the server while C(default) stays open.
  - Passwords (C(requirepass), C(masterauth) and Valkey's C(primaryauth), ACL C(user) passwords, C(sentinel auth-pass) and
    C(sentinel-pass), TLS key passphrases) never appear in the result, the diff, a backup's name
    or an error, also when given as a YAML number. This includes the old password of the file
    being replaced.
  - The templates are the same files that C(ansible.builtin.template) can render; a test keeps
    both engines byte-identical. Find them in the collection's C(roles/redis_server/templates/)
    and C(roles/redis_sentinel/templates/).
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  path:
    description:
      - The config file to write.
    type: path
    required: true
    aliases: [dest]
  template:
    description:
      - V(redis) renders C(redis.conf) from O(settings); V(sentinel) renders C(sentinel.conf) from
        O(settings) and O(monitors).
      - Also selects how the rendered file is checked when O(src) is given.
    type: str
    default: redis
    choices: [redis, sentinel]
  src:
    description:
      - A Jinja2 template on the managed host to render instead of the built-in one. It gets the
        variables C(redis_settings) (or C(sentinel_settings) and C(sentinel_monitors)).
      - With O(placeholders=true), a file with C(##KEY##) placeholders instead.
    type: path
  placeholders:
    description:
      - O(src) is an old-style template in which C(##KEY##) stands for the value of the directive
        KEY in O(settings). Case and C(_)/C(-) do not matter. A placeholder with no value is an
        error.
    type: bool
    default: false
  profile:
    description:
      - Defaults for a use case, applied before O(settings). Any directive can still be set in
        O(settings).
      - V(cache) sets C(allkeys-lru) and turns persistence off.
      - V(session) sets C(volatile-lru), AOF C(everysec) and C(notify-keyspace-events Ex) for
        expiry events.
      - V(queue) sets C(noeviction) and AOF C(everysec).
      - V(persistent) sets C(noeviction), RDB snapshots and AOF C(everysec).
    type: str
    choices: [cache, session, queue, persistent]
  settings:
    description:
      - Directive name to value, for example C(maxmemory=4gb) or C(appendonly=true) in YAML mapping form.
      - V(true) and V(false) are written as C(yes) and C(no). Sizes keep their unit in the file.
      - A list writes one line per item for directives Redis reads many times (C(save), C(user),
        C(rename-command), C(include), C(loadmodule), C(client-output-buffer-limit)), and one
        space-joined line for the others (C(bind)). An empty list for C(save) disables snapshots.
      - V(null) removes a directive that the base defaults or the profile would set.
      - For sentinel.conf, global Sentinel options are keys such as C("sentinel resolve-hostnames").
    type: dict
    default: {}
  monitors:
    description:
      - For O(template=sentinel), the masters to monitor.
      - After a failover, Sentinel rewrites C(sentinel monitor) to the new master and raises its
        config-epoch. The module then keeps Sentinel's address, with a warning, instead of
        undoing the failover.
    type: list
    elements: dict
    suboptions:
      name:
        description: Master group name.
        type: str
        required: true
      host:
        description: Address of the master.
        type: str
        required: true
      port:
        description: Port of the master.
        type: int
        default: 6379
      quorum:
        description: Sentinels that must agree the master is down.
        type: int
        default: 2
      auth_user:
        description:
          - ACL user Sentinel logs in to the master and replicas with.
          - No spaces or quotes, as for O(monitors[].auth_pass).
        type: str
      auth_pass:
        description:
          - Password Sentinel logs in with. Never printed.
          - It cannot hold a space or a quote. redis-sentinel 7.0 writes it back unquoted each
            time it rewrites its file (it does so when it starts), and could then not read its
            own file at its next start. The same goes for C(sentinel auth-user),
            C(sentinel sentinel-user) and C(sentinel sentinel-pass) in O(settings).
        type: str
      down_after_milliseconds:
        description: C(sentinel down-after-milliseconds).
        type: int
      failover_timeout:
        description: C(sentinel failover-timeout).
        type: int
      parallel_syncs:
        description: C(sentinel parallel-syncs).
        type: int
  owner:
    description: Owner of the file (name or uid).
    type: str
  group:
    description: Group of the file (name or gid).
    type: str
  mode:
    description:
      - Permissions of the file, in octal (V("0640")) or symbolic (V("u=rw,g=r,o=")) form.
        Quote octal modes in YAML.
      - The mode is set on the temporary file before it is renamed into place, so the file never
        exists with wider permissions.
    type: raw
    default: "0640"
  follow:
    description:
      - What to do when O(path) is a symlink, as in C(ansible.builtin.template).
      - V(false) replaces the link by a regular file and leaves the file it pointed to alone.
      - V(true) writes the file the link points to and keeps the link. O(mode), O(owner) and
        O(group) then apply to that file.
      - Either way, O(path) (or the file it points to) must be a regular file or not exist yet. A
        directory, FIFO, socket or device node is refused before anything is read or written.
    type: bool
    default: false
  backup:
    description:
      - Keep a copy of the file being replaced, named C(<path>.<pid>.<timestamp>~).
    type: bool
    default: false
  validate:
    description:
      - Check the rendered file before writing (directive names, value kinds and ranges, and
        contradictions).
      - The check for exposure beyond loopback is separate; see O(allow_insecure).
    type: bool
    default: true
  apply:
    description:
      - V(file) only writes the file.
      - V(live) also compares every directive with C(CONFIG GET) on the running server (reached
        with the connection options). It changes what differs with one atomic C(CONFIG SET), and
        uses C(REPLICAOF) for C(replicaof) (never with O(replication=initial)).
      - It never runs C(CONFIG REWRITE); the file stays the template's output.
      - Redis decides what needs a restart ("can't set immutable config", "can't set protected
        config"). Those directives are listed in RV(restart_reasons) and not applied.
      - C(port), C(bind), C(tls-port) and C(unixsocket) are never changed live, since that would
        move the server away from its clients. They also wait for the restart.
      - Lines Redis reads only at start are compared with the running server wherever Redis
        shows them, so a change still waiting for its restart is reported on every run until
        the restart. C(user) lines are compared with C(ACL LIST), by what each user may do
        (flags, password hashes, key and channel patterns, the commands each selector allows).
        C(rename-command) lines are compared with C(COMMAND INFO) (a command renamed away is
        absent, its new name present). C(loadmodule) lines are compared with C(MODULE LIST).
      - Redis shows nothing for C(include) lines, nor which running values came from directives
        dropped from the file. These two are compared with the file being replaced, so the
        restart they need is reported by the run that changes the file only.
      - The order is fixed. Everything is checked first, then O(backup) is made, then the live
        changes, then the file is written. If anything fails after a live change (C(REPLICAOF)
        after C(CONFIG SET), or writing the file), every live change is undone, C(REPLICAOF)
        included, and the error says so.
      - Without O(login_user), a connection without a password is tried first. A server with no
        password yet can so get its first one from this file. Then O(login_password) is used.
        When that is not set (or empty), the C(requirepass) of the file being replaced (the
        running server's) is used, or else of the new file.
    type: str
    default: file
    choices: [file, live]
  allow_insecure:
    description:
      - Allow listening beyond loopback while the C(default) user needs no password.
    type: bool
    default: false
  server_version:
    description:
      - Which server the redis.conf is for, so that its directives are checked against what that
        server reads. Redis 7.0, Redis 8.0 and Valkey 8.1 each add, rename or drop some (Valkey 8.1
        adds about 40, such as C(dual-channel-replication-enabled) and C(primaryauth)); each has a
        table of the parameters its C(CONFIG GET *) lists, checked against the real servers by the
        collection's tests.
      - V(auto) never opens a connection the module would not open anyway. With O(apply=live) the
        running server decides (its INFO C(server_name), C(valkey_version) or C(redis_version)),
        and a directive its table lacks is asked for with C(CONFIG GET) of that name, so a server
        newer than the tables still gets what it reads. Otherwise the server binary installed on
        the managed host decides (C(redis-server --version) or C(valkey-server --version), found
        on E(PATH); when both are installed, a O(path) naming C(valkey) prefers Valkey).
        Otherwise V(redis-7.0).
      - V(redis) and V(valkey) mean the newest table of each (V(redis-8.0), V(valkey-8.1)).
      - A directive the server does not read is an error naming that server and the versions
        that have it, for example C(`dual-channel-replication-enabled` is not a directive of
        Redis 7.0.15 (running at 127.0.0.1:6379); Valkey 8.1 has it). Nothing is written then.
      - A deprecated directive that the server reads but ignores (C(io-threads-do-reads) on
        Redis 8.0 and Valkey 8.1, C(dynamic-hz) on Valkey 8.1) is refused too, since the line
        would do nothing.
      - C(rename-command) is checked against that server's commands (C(COMMAND LIST) of each
        version). ACL rules in C(user) lines are checked against Redis 7.0's commands; for Redis
        8.0 and Valkey 8.1 a command that list lacks (such as C(+hgetex), C(+commandlog)) is
        taken as it is, as for a module's command.
      - Only redis.conf is checked this way; sentinel.conf keeps the Sentinel directives of
        Redis 7.0, which Redis 8.0 and Valkey 8.1 also read.
    type: str
    default: auto
    choices: [auto, redis, valkey, redis-7.0, redis-8.0, valkey-8.1]
  replication:
    description:
      - Who decides the server's C(replicaof). For redis.conf only.
      - V(managed) is the task. The file says what O(settings) says, and O(apply=live) sends
        C(REPLICAOF) when the running server differs.
      - V(initial) is the task only for the first deployment, when O(path) does not exist yet.
        Use it whenever Sentinel manages the group. After a failover, Sentinel has pointed every
        instance at the new master (C(REPLICAOF), or C(REPLICAOF NO ONE) on the promoted one)
        and made each one rewrite its own file with C(CONFIG REWRITE). A managed run would then
        demote the new master again.
      - With V(initial), once the file exists, the server's present replication wins over the
        task. With O(apply=live) that is the running server's C(INFO replication) (C(role)
        master means no C(replicaof) line; a replica keeps C(master_host) and C(master_port)).
        With O(apply=file) the module connects to no server and keeps the existing file's own
        C(replicaof) line, which Redis keeps current through C(CONFIG REWRITE). If the server
        refuses C(INFO), the file's line is used too, and RV(replication_note) says why.
      - With V(initial), C(REPLICAOF) is never sent. What the task asked for and was not applied
        is reported in RV(replication_note).
      - With V(initial), the file is compared with the existing one by what it makes Redis do,
        not byte for byte. That means directive by directive in any order, comments and the
        C(# Generated by CONFIG REWRITE) marker ignored, values compared as with C(CONFIG GET)
        (C(64mb) is C(67108864), C(Ex) is C(xE)), and a directive one file leaves out taken at
        its Redis 7.0 default. C(user) lines are compared by what each user may do (Redis'
        own C(user default) line, which C(CONFIG REWRITE) adds, matches what C(requirepass)
        gives). A file Redis rewrote that says the same is left untouched (no change). When
        something really differs, the whole file is written from the template, with the kept
        C(replicaof).
      - A file that exists but Redis could not read (unbalanced quotes) is refused with
        V(initial), since its replication is unknown. So is a O(src) template that does not
        write C(replicaof) from O(settings).
      - Run redis-server with C(UMask=0027), as the collection's systemd unit does, so that
        C(CONFIG REWRITE) keeps the file at mode 0640.
    type: str
    default: managed
    choices: [managed, initial]
attributes:
  check_mode:
    support: full
    description: Writes nothing and sets nothing; reports the same C(changed) as a real run.
  diff_mode:
    support: full
    description: >-
      Shows the file's before and after with secrets masked. With O(apply=live) it also shows
      the running server's values before and after.
notes:
  - Compares values the way Redis reports them. C(maxmemory 4gb) matches C(CONFIG GET)'s
    C(4294967296), and C(save), C(client-output-buffer-limit) and C(notify-keyspace-events) are
    normalised. A second run with the same input reports no change.
  - For sentinel.conf, the state block Sentinel appends after C(# Generated by CONFIG REWRITE) is
    kept, and the file is compared by directives, since Sentinel re-quotes some values when it
    rewrites.
  - redis-sentinel 7.0 rewrites its file with its process umask. Run it with C(UMask=0027) (as
    the collection's systemd unit does) so that rewrites keep mode 0640.
  - Settings Redis accepts but ignores for now, such as C(appendfsync) while C(appendonly) is
    C(no) (as in Debian's own redis.conf), give a warning, not an error.
  - A write killed halfway (SIGKILL, power loss) can leave a temp file C(.<name>.XXXXXX.tmp)
    beside the config file. The next run that is not in check mode removes those of the same
    file that are older than 10 seconds.
seealso:
  - module: creativeflow.redis.redis_health
'''

EXAMPLES = r'''
- name: A cache on this host, 4 GB, nothing on disk
  creativeflow.redis.redis_config:
    path: /etc/redis/cache.conf
    profile: cache
    settings:
      port: 6379
      maxmemory: 4gb
      requirepass: "{{ redis_password }}"
    owner: redis
    group: redis
    mode: "0640"

- name: Change memory limits on the running server, no restart
  creativeflow.redis.redis_config:
    path: /etc/redis/redis.conf
    profile: session
    settings:
      port: 6379
      maxmemory: 2gb
      maxmemory-policy: allkeys-lru
      requirepass: "{{ redis_password }}"
    apply: live
    login_password: "{{ redis_password }}"
  register: cfg

- name: Restart only when Redis said it cannot apply a change live
  ansible.builtin.debug:
    msg: "restart needed: {{ cfg.restart_reasons }}"
  when: cfg.restart_required

- name: A replica listening on the private network, with TLS and ACL users
  creativeflow.redis.redis_config:
    path: /etc/redis/replica.conf
    profile: persistent
    backup: true
    settings:
      bind: [127.0.0.1, 10.0.0.12]
      port: 0
      tls-port: 6380
      tls-cert-file: /etc/redis/tls/redis.crt
      tls-key-file: /etc/redis/tls/redis.key
      tls-ca-cert-file: /etc/redis/tls/ca.crt
      tls-replication: true
      replicaof: 10.0.0.11 6380
      masteruser: replicator
      masterauth: "{{ replication_password }}"
      user:
        - "default off"
        - "replicator on >{{ replication_password }} +psync +replconf +ping"
        - "app on >{{ app_password }} ~app:* +@all -@dangerous"
      rename-command: ['FLUSHALL ""', 'DEBUG ""']

- name: sentinel.conf watching one master group
  creativeflow.redis.redis_config:
    path: /etc/redis/sentinel.conf
    template: sentinel
    settings:
      port: 26379
      sentinel resolve-hostnames: true
    monitors:
      - name: mymaster
        host: 10.0.0.11
        port: 6379
        quorum: 2
        auth_pass: "{{ redis_password }}"
        down_after_milliseconds: 5000

- name: One instance of a Sentinel-managed group; a failover is never undone
  creativeflow.redis.redis_config:
    path: /etc/redis/redis.conf
    replication: initial
    settings:
      port: 6379
      bind: [127.0.0.1, 10.0.0.12]
      requirepass: "{{ redis_password }}"
      masterauth: "{{ redis_password }}"
      # Written on the first deployment only; then the server's own replication is kept.
      replicaof: 10.0.0.11 6379
    apply: live
    login_password: "{{ redis_password }}"
  register: member

- name: Say what was kept
  ansible.builtin.debug:
    msg: "{{ member.replication_note }}"

- name: "Fill an old ##KEY## template"
  creativeflow.redis.redis_config:
    path: /etc/redis/legacy.conf
    src: /etc/redis/legacy.conf.in
    placeholders: true
    settings:
      port: 6379
      maxmemory: 1gb
'''

RETURN = r'''
path:
  description: The config file.
  returned: always
  type: str
  sample: /etc/redis/redis.conf
file_changed:
  description: Whether the file's content changed (or would, in check mode).
  returned: always
  type: bool
applied:
  description: Directives changed on the running server (O(apply=live)).
  returned: always
  type: list
  elements: str
  sample: [maxmemory, maxmemory-policy]
live_changes:
  description: Each live change as C(directive), C(before) and C(after) (secrets masked).
  returned: when O(apply=live)
  type: list
  elements: dict
  sample: [{directive: maxmemory, before: "0", after: 2gb}]
restart_required:
  description: Whether some change takes effect only after a restart.
  returned: always
  type: bool
server_version:
  description:
    - The directive table the redis.conf was checked against (RV(server_version.table)) and the
      server it stands for (RV(server_version.checked_against)), see O(server_version).
    - Not returned for sentinel.conf or with O(validate=false).
  returned: when the file is a redis.conf and O(validate=true)
  type: dict
  contains:
    table:
      description: V(redis-7.0), V(redis-8.0) or V(valkey-8.1).
      type: str
      returned: always
      sample: valkey-8.1
    checked_against:
      description: The server, as error messages name it.
      type: str
      returned: always
      sample: Valkey 8.1.1 (running at 127.0.0.1:6379)
  sample: {"table": "valkey-8.1", "checked_against": "Valkey 8.1.1 (running at 127.0.0.1:6379)"}
restart_reasons:
  description: One line per directive that needs a restart, with Redis' own reason.
  returned: always
  type: list
  elements: str
  sample: ["databases: 16 -> 32 (Redis: can't set immutable config)"]
settings:
  description: The settings the file was rendered from (base defaults, profile and O(settings)), secrets masked.
  returned: always
  type: dict
backup_file:
  description: The copy made by O(backup).
  returned: when a backup was made
  type: str
  sample: /etc/redis/redis.conf.4242.2026-11-22@10:15:00~
replication_source:
  description:
    - Where the file's C(replicaof) came from with O(replication=initial).
    - V(task) when the file did not exist yet, V(server) for C(INFO replication) of the running
      server, V(file) for the existing file's own line.
  returned: when O(replication=initial)
  type: str
  sample: server
replication_note:
  description:
    - With O(replication=initial), the replication kept and where from, what of the task's
      C(replicaof) was not applied, and the C(REPLICAOF) a managed run would have sent.
  returned: when O(replication=initial)
  type: str
  sample: >-
    kept the replication from the running server's INFO replication: the server is a replica
    of 10.0.0.12 6379; the task's replicaof (10.0.0.11 6379) is not applied (a failover is
    never undone)
msg:
  description: What was done.
  returned: always
  type: str
'''
