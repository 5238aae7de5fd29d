# -*- coding: utf-8 -*-
# Copyright: (c) 2026, creativeflow
# MIT License (see LICENSE)
"""Action plugin of creativeflow.redis.redis_command: the module over the fast path (one remote command per
task, the binary cached on the managed host, the args on standard input), else the normal path.
Everything is in plugins/plugin_utils/fast_path.py, shared by every module of the collection."""

from __future__ import annotations

from ansible_collections.creativeflow.redis.plugins.plugin_utils.fast_path import FastPathAction


class ActionModule(FastPathAction):
    """creativeflow.redis.redis_command (see plugin_utils/fast_path.py)."""
