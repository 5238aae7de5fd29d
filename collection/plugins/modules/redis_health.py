# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_health` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_health.py`); ansible-doc reads
# this file. A `.yml` sidecar alone would be dropped by `ansible-doc -l` (ansible-core bug).

DOCUMENTATION = r'''
---
module: redis_health
short_description: One health verdict for a Redis server, replica, Sentinel or Cluster node
version_added: 0.1.0
description:
  - Connects to one Redis server, replica, Sentinel or Cluster node and returns an overall
    RV(status) (V(ok), V(warning) or V(critical)), a verdict and a message per check, and the
    numbers behind them (INFO parsed with numbers as numbers, replication, Sentinel and Cluster state).
  - A server that cannot be reached, or that rejects the credentials, is a V(critical) result
    with a message naming the address and the cause; with O(fail_on=critical) (the default) the
    task then fails with that message.
  - Read-only. Never reports a change. Runs the same in check mode.
  - Works the same against Redis 7.0, Redis 8.0 and Valkey 8.1 (servers and Sentinels; tested
    against each). RV(server) and the verdict name what answered, such as C(Valkey 8.1.1).
  - The same binary is a standalone checker for cron, Nagios or a container healthcheck
    (C(redis_health --host H --port P --format nagios)); it takes the password from the
    E(REDISCLI_AUTH) environment variable or C(--password-file), never from the command line,
    and exits 0, 1, 2 or 3 for OK, WARNING, CRITICAL or UNKNOWN.
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  checks:
    description:
      - Which checks to run.
      - When not set, a Sentinel gets V(ping) and V(sentinel); any other server gets V(ping),
        V(info), V(memory), V(persistence), V(replication), V(clients) and V(keyspace), plus
        V(cluster) when it runs in cluster mode.
      - V(ping) always runs, since every other check needs the connection.
    type: list
    elements: str
    choices: [ping, info, memory, persistence, replication, clients, keyspace, sentinel, cluster, pubsub]
  sentinel_master_name:
    description:
      - With the V(sentinel) check, the master group to examine. When not set, every master the
        Sentinel monitors is examined.
      - Point O(login_port) at the Sentinel (usually 26379), not at the master.
    type: str
  max_memory_percent:
    description:
      - V(warning) when used memory reaches this percentage of C(maxmemory).
      - Memory full under the C(noeviction) policy is always V(critical), since writes then fail.
    type: float
    default: 90.0
  max_replication_lag:
    description:
      - Seconds. On a master, V(warning) when a replica last acknowledged longer ago than this;
        on a replica, V(warning) when the last contact with its master is older than this.
    type: int
    default: 10
  max_clients_percent:
    description:
      - V(warning) when connected clients reach this percentage of C(maxclients).
    type: float
    default: 90.0
  min_hit_rate:
    description:
      - Percent. V(warning) when keyspace hits / (hits + misses) is below this. Not checked
        when not set, or before the first lookup.
    type: float
  min_replicas:
    description:
      - On a master, V(critical) when fewer replicas than this are connected.
    type: int
  expected_role:
    description:
      - V(critical) when the server's role is not this one (for example after an unplanned failover).
    type: str
    choices: [master, replica]
  fail_on:
    description:
      - Which verdict fails the task. V(never) only reports the verdict, for monitoring and
        C(until) loops.
    type: str
    default: critical
    choices: [critical, warning, never]
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same checks in check mode.
  diff_mode:
    support: none
    description: Never changes anything, so there is nothing to diff.
notes:
  - Connection options can be set once for all modules of the collection with
    C(module_defaults) and the group C(group/creativeflow.redis.redis).
  - The C(cluster) check connects to every reachable node with the same credentials and reports
    nodes whose view of slot owners differs from this node's.
seealso:
  - module: community.general.redis_info
    description: Returns raw INFO; needs Python and the redis library on the managed host.
'''

EXAMPLES = r'''
- name: Check the local Redis server
  creativeflow.redis.redis_health:
    login_password: "{{ redis_password }}"
  register: health

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ health.status }}: {{ health.msg }}"

- name: Wait until a replica has finished its sync from the master
  creativeflow.redis.redis_health:
    login_port: 6380
    login_password: "{{ redis_password }}"
    checks: [ping, replication]
    expected_role: replica
  register: replica
  until: replica.replication.master_link_status == 'up'
  retries: 30
  delay: 2

- name: Check Sentinel's view of a master group (quorum, replicas, other sentinels)
  creativeflow.redis.redis_health:
    login_port: 26379
    sentinel_master_name: mymaster
    checks: [ping, sentinel]

- name: Fail the play on warnings as well, with tighter thresholds
  creativeflow.redis.redis_health:
    login_host: 127.0.0.1
    login_password: "{{ redis_password }}"
    max_memory_percent: 80
    max_clients_percent: 75
    fail_on: warning

- name: Check a TLS-only server signed by a private CA
  creativeflow.redis.redis_health:
    login_host: localhost
    login_port: 6390
    tls: true
    ca_certs: /etc/redis/tls/ca.crt
    checks: [ping, info]

- name: Record a cluster node's view without failing (for a report)
  creativeflow.redis.redis_health:
    login_port: 7000
    checks: [ping, cluster]
    fail_on: never
  register: cluster_health

- name: Set the connection once for every module of the collection
  module_defaults:
    group/creativeflow.redis.redis:
      login_host: 127.0.0.1
      login_port: 6379
      login_password: "{{ redis_password }}"
  block:
    - name: Health with the group's connection options
      creativeflow.redis.redis_health:
        checks: [ping, memory, persistence]
'''

RETURN = r'''
status:
  description: Overall verdict, the worst of the checks.
  returned: always
  type: str
  sample: ok
address:
  description: The C(host:port) that was checked.
  returned: always
  type: str
  sample: 127.0.0.1:6379
msg:
  description:
    - One line saying what is wrong, or that all is well. It starts with the server's flavour and
      version (C(Valkey 8.1.1 at ...), C(Redis 8.0.2 at ...)), or C(Redis at ...) when the server
      could not be asked.
  returned: always
  type: str
  sample: "Redis 7.0.15 at 127.0.0.1:6380 is critical: replication (critical): master link to 127.0.0.1:6379 is down for 42s"
checks:
  description: Per check, its C(status) (ok/warning/critical) and a C(message).
  returned: always
  type: dict
  sample:
    ping: {status: ok, message: PONG in 0.4 ms}
    memory: {status: ok, message: "1.2 MiB of maxmemory 256.0 MiB used (0.5%), policy allkeys-lru"}
latency_ms:
  description: Time to connect, authenticate and get the PING answer, in milliseconds.
  returned: when the server answered
  type: float
  sample: 0.42
role:
  description: V(master), V(replica) or V(sentinel).
  returned: when the server answered
  type: str
  sample: master
redis_version:
  description:
    - The server's C(redis_version) from INFO. Valkey reports C(7.2.4) there, for clients that
      check it; see RV(server) for its own version.
  returned: when the server answered
  type: str
  sample: 7.0.15
server:
  description: What answered, Redis or Valkey (a Sentinel of either included), and its version.
  returned: when the server answered
  type: dict
  contains:
    flavour:
      description: V(redis) or V(valkey) (INFO C(server_name:valkey) or a C(valkey_version) field).
      type: str
      returned: always
      sample: valkey
    version:
      description: The server's own version (C(valkey_version) on Valkey, C(redis_version) on Redis).
      type: str
      returned: always
      sample: 8.1.1
    redis_version:
      description: C(redis_version) as reported (on Valkey its compatibility version).
      type: str
      returned: always
      sample: 7.2.4
  sample: {flavour: valkey, version: 8.1.1, redis_version: 7.2.4}
info:
  description:
    - Every field of C(INFO) (default sections) in one flat dict. Numbers are numbers;
      C(k=v,k=v) fields such as C(db0) and C(slave0) are dicts.
  returned: when the server answered
  type: dict
  sample: {redis_version: 7.0.15, used_memory: 1041184, db0: {keys: 3, expires: 0, avg_ttl: 0}}
replication:
  description:
    - On a master, C(connected_replicas), C(master_repl_offset) and C(replicas), each with
      C(ip), C(port), C(state), C(offset), C(lag) (seconds since its last ack) and
      C(offset_lag_bytes).
    - On a replica, C(master_host), C(master_port), C(master_link_status), C(master_last_io_seconds_ago),
      C(master_sync_in_progress), C(master_link_down_since_seconds), C(slave_repl_offset).
  returned: with the replication check
  type: dict
  sample:
    role: master
    connected_replicas: 1
    master_repl_offset: 5210
    replicas: [{ip: 127.0.0.1, port: 6380, state: online, offset: 5210, lag: 0, offset_lag_bytes: 0}]
keyspace:
  description: Total C(keys), C(expires), C(hits), C(misses), C(hit_rate) (percent), C(evicted_keys), C(expired_keys).
  returned: with the keyspace check
  type: dict
sentinel:
  description:
    - C(masters), per master group name, with C(address), C(flags), C(quorum), C(ckquorum)
      (C(ok) and the Sentinel's C(message)), C(replicas) and C(sentinels) as Sentinel knows them.
  returned: with the sentinel check, on a Sentinel
  type: dict
cluster:
  description:
    - C(cluster_state), C(slots_assigned), C(slots_ok), C(slots_pfail), C(slots_fail),
      C(known_nodes), C(size), C(current_epoch), C(nodes) (id, address, flags, link_state, slots),
      C(nodes_disagreeing) (nodes whose view of slot owners differs from this node's),
      C(nodes_unreachable) and C(nodes_failing).
  returned: with the cluster check, on a cluster node
  type: dict
pubsub:
  description: C(channels) (name to subscriber count, at most 1000), C(channel_count), C(truncated), C(patterns).
  returned: with the pubsub check
  type: dict
'''
