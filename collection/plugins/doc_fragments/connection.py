# -*- coding: utf-8 -*-
# Copyright (c) 2026 creativeflow
# MIT License (see LICENSE)
"""Connection options shared by every creativeflow.redis module.

The Rust side of these options is ``module_utils_rs::connection::connection_options()``; keep
the two in step (tests/test_docs.py compares each module's documentation with its binary's
argument spec, fragment included).
"""

from __future__ import annotations


class ModuleDocFragment:
    # Option names follow community.general's Redis modules, so playbooks move over unchanged.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the Redis server to connect to.
      - The modules are static binaries; host names are resolved through C(/etc/hosts) and DNS
        only, so prefer an IP address when the target resolves names through other NSS services.
    type: str
    default: localhost
  login_port:
    description:
      - TCP port of the Redis server.
      - With O(tls=true) this is the server's C(tls-port).
    type: int
    default: 6379
  login_user:
    description:
      - User name for Redis ACL authentication (Redis 6 and later).
      - When omitted and O(login_password) is set, the module authenticates as the C(default)
        user, as C(AUTH <password>) does.
    type: str
  login_password:
    description:
      - Password for authentication (C(requirepass), or the password of O(login_user)).
      - The value is never printed; the module replaces it with C(********) wherever it would
        appear in its result, messages and errors, even on failure.
    type: str
  login_db:
    description:
      - Database number to select after connecting.
    type: int
    default: 0
  tls:
    description:
      - Connect using TLS.
      - Unlike community.general's Redis modules, the default is V(false), matching Redis itself,
        which serves plain TCP unless C(tls-port) is configured.
    type: bool
    default: false
  validate_certs:
    description:
      - With O(tls=true), verify the server's certificate (against O(ca_certs), or the system's
        CA certificates when O(ca_certs) is not set).
      - Set to V(false) only for self-signed test setups; the connection is then open to
        man-in-the-middle attacks.
    type: bool
    default: true
  ca_certs:
    description:
      - Path to a PEM file of CA certificates used to verify the server's certificate when
        O(tls=true).
      - The file is read on the managed host, where the module runs.
    type: path
  client_cert_file:
    description:
      - Path to a PEM client certificate for mutual TLS (C(tls-auth-clients yes) on the server).
      - Requires O(client_key_file).
      - The file is read on the managed host, where the module runs.
    type: path
  client_key_file:
    description:
      - Path to the PEM private key of O(client_cert_file).
      - Requires O(client_cert_file).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established, and for each reply from the server.
      - Fractions are allowed, for example V(0.5).
    type: float
    default: 5.0
"""
