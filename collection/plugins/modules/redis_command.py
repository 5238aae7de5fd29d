# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_command` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_command.py`); ansible-doc
# reads this file.

DOCUMENTATION = r'''
---
module: redis_command
short_description: Run one Redis command on a host, a Sentinel group's master or every Cluster node
version_added: 0.3.0
description:
  - Sends one Redis command, given as an argument list (never a string that something splits,
    so nothing can be injected into it), to the server at O(login_host), to the current master of
    a Sentinel group (O(targets=master)), or to every node or every master of a Redis Cluster
    (O(targets=all_nodes), O(targets=masters)).
  - Before anything is sent, every target is asked C(COMMAND INFO) for the command (for a
    container command such as C(CONFIG SET), the subcommand). A command Redis does not know
    (misspelt, renamed by C(rename-command), from a module that is not loaded), a container
    command without its subcommand and a wrong number of arguments fail on every target alike,
    and nothing is sent.
  - B(What changes.) A command flagged C(write), C(admin) or C(may-replicate), C(PUBLISH) and
    C(SPUBLISH) (they deliver messages; Redis does not flag them), and the C(@scripting) commands
    other than C(SCRIPT EXISTS) and C(FUNCTION LIST/DUMP/STATS) count as changing. A command
    flagged C(readonly), and every other command, does not. Redis flags every admin command
    C(admin) alike, so the admin commands that only read are named by the module -
    C(CONFIG GET), C(CLIENT LIST), C(CLIENT INFO), C(SLOWLOG GET/LEN), C(LATENCY
    LATEST/HISTORY/DOCTOR/GRAPH/HISTOGRAM), C(ACL LIST/USERS/GETUSER/DRYRUN/WHOAMI/CAT),
    C(ACL LOG) without C(RESET), C(MODULE LIST), C(ROLE), C(LASTSAVE).
  - The classification sets C(changed) (see O(changed)) and decides check mode - a changing
    command is reported and not sent, any other command runs.
  - The reply is returned as JSON - nil as V(null), integers as numbers, bulk and simple strings
    as strings, arrays and sets as lists, RESP3 maps as objects, doubles as numbers (V(inf),
    V(-inf), V(nan) as strings), booleans as booleans, big numbers as strings of digits. A bulk
    string that is not UTF-8 becomes an object with the one key C(base64), its bytes in standard
    base64, so no byte is lost or replaced. An error reply fails the task with Redis' own message (an error
    inside an array, as a script can return, fails it too).
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  command:
    description:
      - The command and its arguments, one list element each, as C(redis-cli) would take them,
        e.g. V([SET, mykey, myvalue]) or V([CONFIG, GET, maxmemory]).
      - No element may hold CR, LF or NUL (refused before connecting).
      - Not run (refused before anything is sent), because they turn the connection into a
        stream without one reply or carry credentials - C(SUBSCRIBE), C(PSUBSCRIBE),
        C(SSUBSCRIBE), C(UNSUBSCRIBE), C(PUNSUBSCRIBE), C(SUNSUBSCRIBE), C(MONITOR), C(SYNC),
        C(PSYNC), C(HELLO), C(AUTH), C(QUIT), C(RESET), C(CLIENT REPLY). Use O(login_password)
        for authentication.
      - A blocking command (C(BLPOP) and the like) waits at most O(connect_timeout) for its reply.
    type: list
    elements: str
    required: true
  changed:
    description:
      - V(auto) reports C(changed) when the command is a changing one by C(COMMAND INFO) (see
        the description), whatever its reply (a C(DEL) of a missing key too); V(always) and
        V(never) report V(true) and V(false).
      - Only what is reported. Check mode still sends only the commands that do not change
        anything; to run a changing command in check mode, set the task keyword
        C(check_mode) set to V(false).
    type: str
    default: auto
    choices: [auto, always, never]
  secret_args:
    description:
      - Indexes (from 0, the command name) of O(command) elements that are secrets, such as the
        password of C([CONFIG, SET, masterauth, "{{ pw }}"]) (index V(3)).
      - Their values are masked wherever they would appear in the result, as C(no_log) options
        are. A reply is data and is masked only where it holds one of these values or a password
        of the connection options.
    type: list
    elements: int
  resp:
    description:
      - The protocol version of the connection. V(3) (C(HELLO 3) after connecting, Redis 6 and
        later) returns maps, sets, doubles and booleans as such; V(2) returns maps as flat
        lists and doubles as strings.
    type: int
    default: 3
    choices: [2, 3]
  targets:
    description:
      - V(host) - the server at O(login_host) and O(login_port).
      - V(master) - the current master of the Sentinel group O(master_name);
        O(login_host) and O(login_port) are then a Sentinel's (usually port 26379), and
        O(login_user) / O(login_password) the master's.
      - V(all_nodes) - every node of the Redis Cluster O(login_host) belongs to (masters and
        replicas), each by its own C(ROLE). A failing node fails the task before anything is
        sent.
      - V(masters) - every master of that Cluster. A failing master that owns slots fails the
        task before anything is sent; a failing master without slots (the old master after a
        failover) and failing replicas are left out, the former with a warning.
      - With several targets the command runs on them one after the other; if one fails, the
        result says where it had already run.
    type: str
    default: host
    choices: [host, master, all_nodes, masters]
  master_name:
    description: The Sentinel group whose master O(targets=master) uses.
    type: str
  sentinel_user:
    description: The ACL user of the Sentinel itself, with O(targets=master) (C(sentinel sentinel-user)).
    type: str
  sentinel_password:
    description:
      - The Sentinel's own password, with O(targets=master) (C(requirepass) in sentinel.conf).
      - Masked in every output.
    type: str
attributes:
  check_mode:
    support: full
    description: Commands that do not change anything run; changing commands are reported (RV(sent=false)) and not sent.
  diff_mode:
    support: none
    description: A command has no before and after to compare; RV(reply) is what Redis answered.
notes:
  - In a Cluster, a command that names keys must go to the master that owns their slot; sent to
    another node it fails with Redis' C(MOVED) error. Use V(targets=host) with that master, or
    M(creativeflow.redis.redis_keys) for keys by pattern.
seealso:
  - module: creativeflow.redis.redis_keys
  - module: creativeflow.redis.redis_health
'''

EXAMPLES = r'''
- name: Ping the server
  creativeflow.redis.redis_command:
    command: [PING]
    login_password: "{{ redis_password }}"
  register: pong

- name: Run CONFIG GET on every node of the cluster (read-only, runs in check mode too)
  creativeflow.redis.redis_command:
    command: [CONFIG, GET, maxmemory-policy]
    targets: all_nodes
    login_port: 7000
    login_password: "{{ redis_password }}"
  register: policies

- name: Set a key on the current master of a Sentinel group
  creativeflow.redis.redis_command:
    command: [SET, "maintenance:notice", "back at 14:00", EX, "3600"]
    targets: master
    master_name: mymaster
    login_port: 26379
    login_password: "{{ redis_password }}"

- name: Count the subscribers of a channel
  creativeflow.redis.redis_command:
    command: [PUBSUB, NUMSUB, alerts]
    login_password: "{{ redis_password }}"
  register: subscribers

- name: Extend a lock's TTL without reporting a change
  creativeflow.redis.redis_command:
    command: [PEXPIRE, "lock:deploy", "30000"]
    changed: never
    login_password: "{{ redis_password }}"

- name: Give replicas a new masterauth, the password masked in the result
  creativeflow.redis.redis_command:
    command: [CONFIG, SET, masterauth, "{{ redis_password }}"]
    secret_args: [3]
    login_password: "{{ redis_password }}"
'''

RETURN = r'''
reply:
  description:
    - The reply, as JSON (see the description), when the command went to exactly one server.
  returned: when the command was sent to one target
  type: raw
  sample: {"maxmemory": "0"}
replies:
  description: Per target, in the order sent.
  returned: when the command was sent
  type: list
  elements: dict
  contains:
    node:
      description: C(host:port) of the target.
      type: str
    role:
      description: V(host), V(master) or V(replica).
      type: str
    reply:
      description: Its reply, as JSON.
      type: raw
sent:
  description: Whether the command was sent (V(false) for a changing command in check mode).
  returned: success
  type: bool
nodes:
  description: C(host:port) of every target.
  returned: success
  type: list
  elements: str
command_info:
  description: What C(COMMAND INFO) says of the command, and how the module classified it.
  returned: success
  type: dict
  contains:
    name:
      description: The command as Redis knows it (C(config|get) for a subcommand).
      type: str
    flags:
      description: Its flags (C(write), C(readonly), C(admin), ...).
      type: list
      elements: str
    acl_categories:
      description: Its ACL categories.
      type: list
      elements: str
    writes:
      description: V(true) when it counts as changing.
      type: bool
    reason:
      description: Why, in words.
      type: str
'''
