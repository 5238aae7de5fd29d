# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_lua_script` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_lua_script.py`); ansible-doc
# reads this file.

DOCUMENTATION = r'''
---
module: redis_lua_script
short_description: Lua libraries as Redis Functions or cached scripts, on a host, a Sentinel group's master or a Cluster
version_added: 0.3.0
description:
  - Puts a Lua library where applications call it. With O(mode=function) (the default, Redis 7.0
    or later) the library is loaded with C(FUNCTION LOAD). Redis keeps it in its RDB and AOF,
    replicates it to every replica and keeps it across restarts; applications call it with
    C(FCALL). With O(mode=script) the code goes into the script cache with C(SCRIPT LOAD) for
    C(EVALSHA).
  - Idempotent. For functions the library's code as Redis has it (C(FUNCTION LIST LIBRARYNAME
    <name> WITHCODE)) is compared with the desired code byte for byte, and C(FUNCTION LOAD) is
    sent only when they differ. For scripts C(SCRIPT EXISTS <sha1>) decides.
  - The code is one of the collection's libraries (O(builtin), embedded in the module, so no file
    is needed on the host) or a file on the managed host (O(src)).
  - A library file for functions starts with C(#!lua name=<library>). The same file serves
    O(mode=script) too. EVAL refuses the C(#!lua) line, so the module empties that line (keeping
    its line break, so that line numbers stay those of the file) and loads the rest. The
    collection's libraries end with a small shim. When C(redis.register_function) exists
    (C(FUNCTION LOAD)) they register their functions. Otherwise (C(EVAL)/C(EVALSHA)) the first
    argument names the function to run, and the other arguments are that function's own.
  - Every target is read and planned before anything is sent. A Lua syntax error fails the task
    with Redis's message, which names the line (C(user_function:5:) for functions,
    C(user_script:5:) for scripts), followed by the line of the file.
  - Written in Rust; needs no Python or redis library on the managed host.
  - "B(rate_limiter) (library C(ratelimit)). Each function is called as
    C(FCALL <function> 1 <key> <limit> <window_ms> [<cost>]) and returns
    C([allowed (1|0), remaining, retry_after_ms (-1 when allowed), reset_ms]).
    C(remaining) is what may still pass now. C(retry_after_ms) is when a denied request would
    pass. C(reset_ms) is when the key is back to empty. A denied request is not counted.
    C(cost) defaults to 1, may be 0 to read the state, and is refused above the limit.
    The clock is the server's (C(TIME), or the key's own expiry), expiry is in milliseconds, and
    only C(KEYS[1]) is touched, so a hash tag such as C(rl:{user42}) routes it in a cluster."
  - "C(ratelimit_fixed_window): a counter that lives C(window_ms) from its window's first request.
    One string per key. Up to twice the limit can pass around a window edge."
  - "C(ratelimit_sliding_log): exact. A sorted set with one member per admitted request, unique
    even for requests in the same microsecond. Memory grows with the limit."
  - "C(ratelimit_sliding_window): the previous window's count weighted by its overlap, plus the
    current one. Approximate, one string per key."
  - "C(ratelimit_gcra): a token bucket as GCRA. One integer per key. A full bucket holds the limit
    and refills over C(window_ms), so a burst on a fresh key admits exactly the limit."
  - "B(session_operations) (library C(session)). Sessions are hashes with a TTL, and the TTL is
    given in seconds and set in milliseconds in the same atomic step.
    C(FCALL session_create 1 <key> <ttl_s> <field> <value> [...]) returns 1 when created and 0
    when the session exists already.
    C(FCALL session_update_and_extend 1 <key> <ttl_s> <field> <value> [...]) returns 1 when
    updated and the TTL reset, 0 when there is no such session (none is created).
    C(FCALL session_get_and_extend 1 <key> <ttl_s>) returns the fields and values, empty when
    absent, and resets the TTL. C(FCALL session_destroy 1 <key>) returns 1 or 0."
  - "Through EVALSHA, with the RV(sha1) this module returns, the function's name comes first:
    C(EVALSHA <sha1> 1 <key> ratelimit_gcra <limit> <window_ms> [<cost>])."
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  name:
    description:
      - With O(mode=function), the library's name. It must match the C(#!lua name=...) line of the
        code, and defaults to it. It is needed alone only to remove a library with O(state=absent)
        when no code is given. Letters, digits and underscores only, as Redis requires.
      - With O(mode=script), a label for the results. It defaults to the library name of the
        C(#!lua) line, else the file's stem.
    type: str
  src:
    description:
      - A Lua file on the managed host.
      - Mutually exclusive with O(builtin).
    type: path
  builtin:
    description:
      - One of the collection's libraries, by its file stem in the collection's C(files/lua/).
        The code is embedded in the module.
      - V(rate_limiter) is the library C(ratelimit), V(session_operations) is the library
        C(session) (see the description for their functions).
      - Mutually exclusive with O(src).
    type: str
    choices: [rate_limiter, session_operations]
  mode:
    description:
      - V(function) loads a Redis Function library (Redis 7.0 or later). It is persisted and
        replicated.
      - V(script) puts the code into the script cache for C(EVALSHA). The cache is per server, is
        not persisted or replicated, and is empty after a restart. Applications should fall back
        to C(EVAL) on a C(NOSCRIPT) error, as redis clients do.
      - A library file of your own works with V(script) only when it has the same shim as the
        collection's (see the description). Otherwise its C(redis.register_function) calls fail
        when C(EVALSHA) runs it.
    type: str
    default: function
    choices: [function, script]
  state:
    description:
      - V(present) loads the code where it is missing or differs.
      - V(absent) with O(mode=function) deletes the library (C(FUNCTION DELETE)).
      - V(absent) with O(mode=script) succeeds, unchanged, when the script is not cached. When it
        is cached, the task B(fails) and changes nothing. Redis has no command that removes one
        script, and C(SCRIPT FLUSH) would remove every cached script of every application. The
        script goes at the server's next restart, or with a C(SCRIPT FLUSH) you decide on.
    type: str
    default: present
    choices: [present, absent]
  replace:
    description:
      - With O(mode=function), what to do when the library is loaded with other code. With
        V(true) it is replaced (C(FUNCTION LOAD REPLACE)). With V(false) the task fails and
        changes nothing, because the library may belong to another application.
      - Not used with O(mode=script), where a script is known by the SHA1 of its code.
    type: bool
    default: false
  targets:
    description:
      - V(host) is the server at O(login_host)/O(login_port).
      - V(master) is the current master of the Sentinel group O(master_name). It is asked of the
        Sentinel at O(login_host)/O(login_port) (so O(login_port) is the Sentinel's, usually
        26379) with C(SENTINEL GET-MASTER-ADDR-BY-NAME). The master is then reached with the
        other connection options. The Sentinel's own credentials are O(sentinel_user) and
        O(sentinel_password), none when unset. The master must report itself a master. A
        failover in progress fails the task, which changes nothing.
      - V(cluster) is every master of the Cluster that O(login_host)/O(login_port) belongs to,
        from its C(CLUSTER NODES). Replicas get a master's functions through replication. A
        failing master fails the task, which changes nothing.
    type: str
    default: host
    choices: [host, master, cluster]
  master_name:
    description: The Sentinel group, with O(targets=master).
    type: str
  sentinel_user:
    description: The ACL user for the Sentinel, with O(targets=master).
    type: str
  sentinel_password:
    description: The Sentinel's password, with O(targets=master).
    type: str
attributes:
  check_mode:
    support: full
    description: Reads every target and reports what it would load or delete (RV(commands)); sends nothing.
  diff_mode:
    support: full
    description: The library's code before and after on each target that changes (for scripts, the code that would be cached).
notes:
  - Functions are server-wide, not per database, so O(login_db) does not matter to them.
  - Function names are global on a server. A library that registers a name another library
    already has is refused by Redis, and its message is returned.
  - Check mode cannot find Lua syntax errors. Only Redis compiles the code, and only when it loads it.
seealso:
  - module: creativeflow.redis.redis_health
  - name: Redis Functions
    description: Redis's introduction to Functions (FUNCTION LOAD, FCALL).
    link: https://redis.io/docs/latest/develop/programmability/functions-intro/
'''

EXAMPLES = r'''
- name: Load the collection's rate limiters as Redis Functions
  creativeflow.redis.redis_lua_script:
    builtin: rate_limiter
    login_password: "{{ redis_password }}"
  register: ratelimit

- name: Load the session library, replacing an older version of it
  creativeflow.redis.redis_lua_script:
    builtin: session_operations
    replace: true
    login_password: "{{ redis_password }}"

- name: Put the rate limiters into the script cache too, for EVALSHA
  creativeflow.redis.redis_lua_script:
    builtin: rate_limiter
    mode: script
    login_password: "{{ redis_password }}"
  register: script

- name: Show how applications call them
  ansible.builtin.debug:
    msg: >-
      FCALL ratelimit_gcra 1 rl:{user42} 100 60000 |
      EVALSHA {{ script.sha1 }} 1 rl:{user42} ratelimit_gcra 100 60000

- name: Load a library from a file on the host
  creativeflow.redis.redis_lua_script:
    src: /etc/myapp/mylib.lua
    replace: true
    login_password: "{{ redis_password }}"

- name: Load the sessions library on the current master of a Sentinel group
  creativeflow.redis.redis_lua_script:
    builtin: session_operations
    targets: master
    master_name: mymaster
    login_port: 26379
    login_password: "{{ redis_password }}"

- name: Load the rate limiters on every master of a Cluster
  creativeflow.redis.redis_lua_script:
    builtin: rate_limiter
    targets: cluster
    login_port: 7000
    login_password: "{{ redis_password }}"

- name: Remove a library
  creativeflow.redis.redis_lua_script:
    name: mylib
    state: absent
    login_password: "{{ redis_password }}"
'''

RETURN = r'''
name:
  description: The library name (O(mode=function)) or the script's label (O(mode=script)).
  returned: always
  type: str
  sample: ratelimit
mode:
  description: V(function) or V(script).
  returned: always
  type: str
functions:
  description:
    - The library's functions on the first target, sorted. After a real load these are what Redis
      registered. In check mode before the first load they are the names found in the code.
  returned: with O(mode=function)
  type: list
  elements: str
  sample: [ratelimit_fixed_window, ratelimit_gcra, ratelimit_sliding_log, ratelimit_sliding_window]
sha1:
  description: The script's SHA1, for C(EVALSHA); the same on every target.
  returned: with O(mode=script)
  type: str
  sample: 965bf62ed37599e077e4087fff37512df8b1a8f1
commands:
  description: The commands sent (in check mode, that would be sent), one per target, the code left out.
  returned: always
  type: list
  elements: str
  sample: ["127.0.0.1:6379: FUNCTION LOAD <ratelimit: builtin rate_limiter>"]
nodes:
  description: Per target.
  returned: always
  type: list
  elements: dict
  contains:
    node:
      description: C(host:port).
      type: str
    name:
      description: The library name or the script's label.
      type: str
    functions:
      description: The library's functions there (O(mode=function)).
      type: list
      elements: str
    sha1:
      description: The script's SHA1 (O(mode=script)).
      type: str
    changed:
      description: Whether this target was (or, in check mode, would be) changed.
      type: bool
'''
