# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_keys` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_keys.py`); ansible-doc
# reads this file.

DOCUMENTATION = r'''
---
module: redis_keys
short_description: Count, list or delete the Redis keys that match a pattern, in batches
version_added: 0.3.0
description:
  - Finds the keys that match O(pattern) with C(SCAN) (never C(KEYS)), C(COUNT) O(batch_size)
    keys at a time, filtered by O(type) (C(SCAN TYPE)), TTL (O(persistent), O(min_ttl),
    O(max_ttl)) and idle time (O(min_idle)), the per-key filters read with one pipeline per batch.
  - O(state=present) reports them - RV(count), and the first O(limit) keys in RV(found) with
    their type, TTL and C(MEMORY USAGE) (read with one pipeline).
  - O(state=absent) deletes them with C(UNLINK), at most O(batch_size) keys per command (on a
    Cluster node one command per hash slot, pipelined), batch after batch as C(SCAN) returns them, so that no command holds the server for long (measured
    on Redis 7.0.15 on loopback - 100,000 keys deleted in batches of 1000, the longest single
    command 1 to 5 ms by C(SLOWLOG)). C(UNLINK) frees large values in a background thread.
  - A delete with a pattern that has no literal character (every character a wildcard C(*) or
    C(?) or inside a C([...]) class, such as C(*), C(**), C(?*), C([a-z]*)) matches every key,
    or nearly, and needs O(force=true). A C(\)-escaped character is literal.
  - Check mode reports what would be deleted (RV(count), RV(found)) and deletes nothing.
  - In a Redis Cluster (O(targets=auto) on a cluster node, or O(targets=masters)) every master
    is scanned, each by its own C(ROLE). A failing master that owns slots fails the task before
    anything is deleted; a failing master that owns none (the old master after a failover) and
    failing replicas are left out, the former with a warning.
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  pattern:
    description:
      - A C(SCAN MATCH) glob - C(*) any characters, C(?) one character, C([abc]) / C([a-z]) /
        C([^a]) a class, C(\) escapes the next character. For example V(session:*).
      - Must not be empty.
    type: str
    required: true
  state:
    description: V(present) counts and lists the matching keys; V(absent) deletes them.
    type: str
    default: present
    choices: [present, absent]
  type:
    description: Only keys of this type (C(SCAN TYPE)).
    type: str
    choices: [string, list, set, zset, hash, stream]
  limit:
    description:
      - How many keys RV(found) lists at most (0 to 1000000); RV(count) is the full number and
        RV(truncated) says whether the list is cut.
      - Caps only the list, not what is deleted - O(state=absent) deletes every matching key.
    type: int
    default: 100
  batch_size:
    description:
      - The C(COUNT) of each C(SCAN) and the most keys per C(UNLINK) (1 to 100000).
      - Larger batches mean fewer round trips and longer single commands.
    type: int
    default: 1000
  min_idle:
    description:
      - Only keys not read or written for at least this many seconds (C(OBJECT IDLETIME)).
      - Fails under an LFU C(maxmemory-policy), where Redis keeps no idle time.
    type: int
  persistent:
    description: V(true) - only keys without a TTL; V(false) - only keys with one. Unset - both.
    type: bool
  min_ttl:
    description: Only keys whose TTL is at least this many seconds (keys without a TTL never match).
    type: int
  max_ttl:
    description: Only keys whose TTL is at most this many seconds (keys without a TTL never match).
    type: int
  force:
    description: Allow O(state=absent) with a pattern without a literal character (see the description).
    type: bool
    default: false
  targets:
    description:
      - V(auto) - every master when O(login_host) is a Cluster node (a replica too), else the
        server itself.
      - V(host) - the server at O(login_host) only (on a Cluster node, its own slots only).
      - V(master) - the current master of the Sentinel group O(master_name); O(login_host) and
        O(login_port) are then a Sentinel's, O(login_user) / O(login_password) the master's.
      - V(masters) - every master of the Cluster O(login_host) belongs to.
      - A Cluster has only database 0 (O(login_db)).
    type: str
    default: auto
    choices: [auto, host, master, masters]
  master_name:
    description: The Sentinel group whose master O(targets=master) uses.
    type: str
  sentinel_user:
    description: The ACL user of the Sentinel itself, with O(targets=master).
    type: str
  sentinel_password:
    description:
      - The Sentinel's own password, with O(targets=master).
      - Masked in every output.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports the keys that would be deleted and deletes none.
  diff_mode:
    support: none
    description: RV(found) lists the keys found (deleted, with O(state=absent)) instead.
notes:
  - Keys whose names are not UTF-8 are counted and listed (the name as an object with
    the one key C(base64), its bytes in standard base64)
    but neither described nor deleted; the module warns about them.
  - A key written while the delete runs may or may not be deleted (C(SCAN) guarantees only the
    keys present from its start to its end). Keys are deleted as they are found, so a failure
    half-way leaves the rest; RV(deleted) in the failure says how many went.
  - O(persistent) cannot be combined with O(min_ttl) or O(max_ttl).
seealso:
  - module: creativeflow.redis.redis_command
'''

EXAMPLES = r'''
- name: Count a user's sessions in database 0
  creativeflow.redis.redis_keys:
    pattern: "session:user42:*"
    login_db: 0
    login_password: "{{ redis_password }}"
  register: sessions

- name: Clear the user's sessions
  creativeflow.redis.redis_keys:
    pattern: "session:user42:*"
    state: absent
    login_password: "{{ redis_password }}"

- name: List cache entries idle for an hour, with their size
  creativeflow.redis.redis_keys:
    pattern: "cache:*"
    login_db: 1
    min_idle: 3600
    limit: 20
    login_password: "{{ redis_password }}"

- name: Flush everything in database 9 (a pattern without a literal character needs force)
  creativeflow.redis.redis_keys:
    pattern: "*"
    state: absent
    force: true
    login_db: 9
    login_password: "{{ redis_password }}"
'''

RETURN = r'''
count:
  description: How many keys match (with O(state=absent), how many matched before the delete).
  returned: success
  type: int
  sample: 1042
found:
  description: The first O(limit) matching keys.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: The key's name; one that is not UTF-8 as an object with the one key C(base64).
      type: raw
    type:
      description: C(TYPE).
      type: str
    ttl:
      description: C(TTL) in seconds, -1 without one.
      type: int
    size:
      description: C(MEMORY USAGE) in bytes.
      type: int
    node:
      description: C(host:port) of the server that holds it.
      type: str
truncated:
  description: V(true) when RV(found) does not list every matching key.
  returned: success
  type: bool
deleted:
  description: How many keys were deleted (0 in check mode).
  returned: with O(state=absent)
  type: int
longest_unlink_ms:
  description:
    - The longest round trip of one batch's C(UNLINK) commands (one pipeline per C(SCAN) batch;
      on a Cluster node one C(UNLINK) per hash slot, as keys of several slots cannot share one),
      in milliseconds, as the module measured it.
  returned: with O(state=absent)
  type: float
nodes:
  description: Per server scanned - C(node), C(role), C(count), C(scans) (C(SCAN) calls) and C(deleted).
  returned: success
  type: list
  elements: dict
'''
