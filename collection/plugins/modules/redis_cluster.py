# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_cluster` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_cluster.py`); ansible-doc
# reads this file.

DOCUMENTATION = r'''
---
module: redis_cluster
short_description: Form, check and fix a Redis Cluster natively; ready when it returns
version_added: 0.2.0
description:
  - With O(state=present), forms a Redis Cluster from empty, cluster-enabled nodes without
    C(redis-cli). It plans masters and replicas with anti-affinity (masters spread over hosts, no
    replica on its master's host when the inventory allows it), gives the 16384 slots out evenly
    (C(CLUSTER ADDSLOTSRANGE)), gives each node its own config epoch, introduces the nodes
    (C(CLUSTER MEET)), attaches the replicas, and returns only when every node reports
    C(cluster_state:ok), every node agrees on the slot map, every cluster-bus link is up and
    every replica's link to its master is up.
  - Every wait polls (no fixed sleeps) and is bounded by O(wait_timeout). When it runs out, the
    error names the nodes that do not see each other and whether each node's cluster bus port
    (port + 10000, or the announced one) is reachable.
  - While the nodes are still empty it lowers C(cluster-node-timeout) to 1000 ms (a new master
    waits clamp(cluster-node-timeout, 500, 5000) ms before it says C(ok)) and
    C(repl-diskless-sync-delay) to 0 on masters, and puts both back afterwards, failure paths
    included.
  - Before any node is changed it checks that every node is reachable, in cluster mode, empty
    and in no other cluster, and that the replicas per master leave at least 3 masters; the
    message names the node.
  - Running it again on the formed cluster of the same nodes changes nothing.
  - Function libraries loaded on some of the nodes are loaded on every master.
  - O(state=check) reports slot coverage, agreement, open (migrating/importing) slots and failing
    nodes without changing anything. O(state=fixed) covers uncovered slots (with the master that
    holds their keys, else the one with the fewest slots) and closes open slots (finishing an
    interrupted move, or moving the keys back), never overwriting or dropping a key.
  - On a formed cluster, new empty nodes in O(nodes) join it, as replicas of masters that have
    fewer than O(replicas), otherwise as masters, which then get their share of the slots.
    Nodes in O(remove_nodes) have their slots moved away live, their replicas moved to other
    masters, and are then forgotten by every node and reset. O(rebalance=true) evens the slots
    out. Slots move with their keys (C(CLUSTER SETSLOT IMPORTING/MIGRATING), C(MIGRATE) of up to
    1000 keys per call, one worker per source master, C(SETSLOT NODE)); clients see only MOVED
    and ASK redirects. A slot left open by an interrupted run is closed by the next run.
  - Every node of the cluster must be in O(nodes) or O(remove_nodes); a node known to the cluster
    but listed in neither is an error (it may be another cluster).
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  nodes:
    description:
      - The nodes, as V(host:port) (or V([ipv6]:port)). Required with O(state=present).
      - With O(state=check) or O(state=fixed), when not set, every node that the node at
        O(login_host):O(login_port) knows.
      - The same O(login_user)/O(login_password) and TLS settings are used for every node.
    type: list
    elements: str
  replicas:
    description: Replicas per master.
    type: int
    default: 0
  state:
    description:
      - V(present) forms the cluster; V(check) reports; V(fixed) repairs slots.
    type: str
    default: present
    choices: [present, check, fixed]
  wait_timeout:
    description:
      - Seconds every wait may take at most (0 to 3600). Resharding stops between two slots
        when it runs out; the next run goes on.
    type: float
    default: 60.0
  remove_nodes:
    description:
      - Nodes (V(host:port)) to take out of the cluster, with O(state=present). Their slots move
        to the other masters first. A node already removed (empty and alone) is left alone.
      - Refused when it would remove every master, or leave a master with fewer than O(replicas)
        replicas; an unreachable node is forgotten only when it owns no slots.
    type: list
    elements: str
  rebalance:
    description:
      - Even out the slots among the masters (by O(weights)), when some master is further than
        O(threshold) percent from its share. New empty masters get slots whatever this says.
    type: bool
    default: false
  weights:
    description:
      - With O(rebalance), a weight per master (V(host:port) to a number; 1 when not listed).
      - A weight of 0 for a master that stays is refused; list it in O(remove_nodes) to drain it.
    type: dict
  threshold:
    description: With O(rebalance), the imbalance in percent below which nothing moves.
    type: float
    default: 2.0
attributes:
  check_mode:
    support: full
    description: Returns the plan (RV(plan)) or the fixes it would make, and changes nothing.
  diff_mode:
    support: none
    description: The plan is returned as RV(plan) instead.
notes:
  - The nodes need C(cluster-enabled yes); the C(creativeflow.redis.redis_cluster) role deploys them.
  - The nodes' C(masterauth) must be set when they have a password, or replicas cannot sync.
seealso:
  - module: creativeflow.redis.redis_health
'''

EXAMPLES = r'''
- name: Form a cluster of six nodes, one replica per master
  creativeflow.redis.redis_cluster:
    nodes:
      - 10.0.0.11:7000
      - 10.0.0.11:7001
      - 10.0.0.12:7000
      - 10.0.0.12:7001
      - 10.0.0.13:7000
      - 10.0.0.13:7001
    replicas: 1
    login_password: "{{ redis_password }}"
  run_once: true

- name: Add two nodes and let them take their share of the slots
  creativeflow.redis.redis_cluster:
    nodes: "{{ groups['redis_cluster'] | product(['7000', '7001']) | map('join', ':') | list }}"
    replicas: 1
    login_password: "{{ redis_password }}"
  run_once: true

- name: Take a host's nodes out, moving their slots to the others first
  creativeflow.redis.redis_cluster:
    nodes: [10.0.0.11:7000, 10.0.0.11:7001, 10.0.0.12:7000, 10.0.0.12:7001, 10.0.0.13:7000, 10.0.0.13:7001]
    remove_nodes: [10.0.0.14:7000, 10.0.0.14:7001]
    replicas: 1
    login_password: "{{ redis_password }}"
  run_once: true

- name: Check the cluster from one node
  creativeflow.redis.redis_cluster:
    state: check
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ redis_password }}"
  register: cluster

- name: Close open slots left by an interrupted reshard
  creativeflow.redis.redis_cluster:
    state: fixed
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ redis_password }}"
  when: not cluster.consistent
'''

RETURN = r'''
plan:
  description:
    - For a new cluster, the masters, their slots and their replicas.
    - For a formed one, the nodes joining (C(join)), the slot moves with the keys in them
      (C(moves)), the replicas moving (C(replicas_moving)) and the nodes forgotten (C(forget)).
  returned: with O(state=present)
  type: dict
  sample: {masters: [{node: "10.0.0.11:7000", slots: "0-5460", slot_count: 5461, replicas: ["10.0.0.12:7001"]}], same_host_replicas: 0}
keys_moved:
  description: Keys moved between masters.
  returned: when slots moved
  type: int
consistent:
  description: All slots covered, all nodes agree, no open slot, no failing node.
  returned: except in check mode of a new cluster
  type: bool
problems:
  description: What makes the cluster inconsistent, one line each.
  returned: except in check mode of a new cluster
  type: list
  elements: str
nodes:
  description: Each node with C(node), C(id), C(role), C(master), C(slots), C(slot_count), C(keys) and C(cluster_state).
  returned: except in check mode of a new cluster
  type: list
  elements: dict
open_slots:
  description: Slots left migrating or importing, with the nodes involved.
  returned: with O(state=check) or O(state=fixed)
  type: list
  elements: dict
uncovered_slots:
  description: Slot ranges no master serves.
  returned: with O(state=check) or O(state=fixed)
  type: list
  elements: str
fixes:
  description: What O(state=fixed) did.
  returned: with O(state=fixed), when it fixed something
  type: list
  elements: str
elapsed_seconds:
  description: How long the task took.
  returned: always
  type: float
'''
