# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
#
# Documentation only: the module itself is the Rust binary `redis_sentinel` beside this file.
# Ansible runs the binary (an exact file-name match wins over `redis_sentinel.py`); ansible-doc
# reads this file.

DOCUMENTATION = r'''
---
module: redis_sentinel
short_description: Sentinel monitors at runtime, failovers, resets, without undoing a failover
version_added: 0.2.0
description:
  - Makes the monitors of one running Redis Sentinel what the task asks, through
    C(SENTINEL MONITOR), C(SENTINEL SET) and C(SENTINEL REMOVE), after comparing each option
    with C(SENTINEL MASTERS) (Sentinel's defaults count, so a value changed by hand is put back).
  - A monitor's O(monitors[].host) and O(monitors[].port) are its B(initial) master only. Once
    Sentinel has failed over (its config epoch is above 0, or the configured address is now one
    of the monitor's replicas), the monitor follows the promoted replica and is left alone;
    RV(notes) says so. Re-running a playbook never undoes a failover.
  - O(state=failover) runs C(SENTINEL FAILOVER) and waits, up to O(wait_timeout), until every
    Sentinel that monitors the group reports the new master and that master is a writable master;
    it returns the new address.
  - Before anything is sent, the monitor's credentials are tried on the master it will watch
    (a wrong O(monitors[].auth_pass) is an error, not a silent "master down" later), and a quorum
    larger than the Sentinels that monitor an existing group is refused.
  - Sentinel owns its config file and rewrites it after every change; this module never writes
    sentinel.conf. Use M(creativeflow.redis.redis_config) to create the file before Sentinel first
    starts.
  - Written in Rust; needs no Python or redis library on the managed host.
author:
  - Creativeflow (@creativeflow)
extends_documentation_fragment:
  - creativeflow.redis.connection
options:
  monitors:
    description:
      - The monitors this Sentinel must have, with O(state=present).
      - With O(state=absent), the monitors to remove (only their O(monitors[].name) matters).
    type: list
    elements: dict
    suboptions:
      name:
        description: The master group's name. No white space or control characters.
        type: str
        required: true
      host:
        description: The initial master's address (an IP address or a host name).
        type: str
        required: true
      port:
        description: The initial master's port.
        type: int
        default: 6379
      quorum:
        description:
          - How many Sentinels must agree that the master is down before a failover.
          - Refused when larger than the Sentinels that monitor an existing group (this one and
            the others it sees).
        type: int
        default: 2
      down_after_milliseconds:
        description: How long the master may not answer before it is considered down.
        type: int
        default: 30000
      failover_timeout:
        description: C(failover-timeout), in milliseconds.
        type: int
        default: 180000
      parallel_syncs:
        description: How many replicas resync with the new master at the same time.
        type: int
        default: 1
      auth_user:
        description: The ACL user Sentinel authenticates with to the master and replicas.
        type: str
      auth_pass:
        description:
          - The password Sentinel authenticates with to the master and replicas.
          - Sentinel never shows the one it has. It is sent when the monitor is created, and
            again only when Sentinel flags the master down while this module reaches it with this
            password, so that a correct password is not reported as a change on every run.
        type: str
  name:
    description: The monitor to act on with O(state=failover), O(state=reset) or O(state=absent).
    type: str
  state:
    description:
      - V(present) makes O(monitors) true; V(absent) removes the named monitors;
        V(failover) forces a failover of O(name) and waits for it; V(reset) runs
        C(SENTINEL RESET) for O(name) (Sentinel forgets and rediscovers its replicas and peers).
    type: str
    default: present
    choices: [present, absent, failover, reset]
  exclusive:
    description: With O(state=present), also remove every monitor not listed in O(monitors).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for a failover to complete (0 to 3600).
    type: float
    default: 60.0
  login_port:
    description: The Sentinel's port (not the master's).
    type: int
    default: 26379
attributes:
  check_mode:
    support: full
    description: Reports the commands it would send (RV(commands)) and sends none.
  diff_mode:
    support: full
    description: The changed monitors' settings before and after.
notes:
  - Sentinel's own password (C(requirepass) / C(sentinel-user) in sentinel.conf) is
    O(login_password) / O(login_user).
  - To wait for a failover, the other Sentinels are asked with the same connection options.
seealso:
  - module: creativeflow.redis.redis_config
  - module: creativeflow.redis.redis_health
'''

EXAMPLES = r'''
- name: Monitor a master group on the local Sentinel
  creativeflow.redis.redis_sentinel:
    login_port: 26379
    monitors:
      - name: mymaster
        host: 127.0.0.1
        port: 6379
        quorum: 2
        down_after_milliseconds: 5000
        failover_timeout: 60000
        auth_pass: "{{ redis_password }}"
  register: sentinel

- name: Fail the group over and wait until every Sentinel agrees
  creativeflow.redis.redis_sentinel:
    login_port: 26379
    name: mymaster
    state: failover
    wait_timeout: 30
  register: moved

- name: Remove a group
  creativeflow.redis.redis_sentinel:
    login_port: 26379
    name: oldgroup
    state: absent
'''

RETURN = r'''
commands:
  description: The Sentinel commands sent (or, in check mode, that would be sent); passwords masked.
  returned: with O(state=present) or O(state=absent)
  type: list
  elements: str
  sample: ["SENTINEL MONITOR mymaster 127.0.0.1 6379 2", "SENTINEL SET mymaster down-after-milliseconds 5000"]
notes:
  description: Monitors left as Sentinel has them, and why (a failover they follow).
  returned: with O(state=present) or O(state=absent)
  type: list
  elements: str
monitors:
  description: Per monitor after the change, as this Sentinel sees it.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The group's name.
      type: str
    master:
      description: The current master's C(host) and C(port).
      type: dict
    flags:
      description: Sentinel's flags for the master (C(master), C(s_down), C(o_down), ...).
      type: list
      elements: str
    quorum:
      description: The quorum.
      type: int
    config_epoch:
      description: Above 0 once a failover has happened.
      type: int
    replicas:
      description: The replicas, each with C(host), C(port), C(flags), C(master_link_status).
      type: list
      elements: dict
    sentinels:
      description: The other Sentinels, each with C(host), C(port), C(flags).
      type: list
      elements: dict
    ckquorum:
      description: C(SENTINEL CKQUORUM), as C(ok) (bool) and Sentinel's C(message).
      type: dict
master:
  description: The new master's C(host) and C(port).
  returned: with O(state=failover), after a real run
  type: dict
  sample: {host: 127.0.0.1, port: 6380}
old_master:
  description: The master before the failover.
  returned: with O(state=failover)
  type: dict
elapsed_seconds:
  description: How long the failover took.
  returned: with O(state=failover), after a real run
  type: float
'''
