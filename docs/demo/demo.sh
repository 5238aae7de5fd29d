#!/usr/bin/env bash
# `make demo`: start a password-protected redis-server in .demo/ (a local folder, no root, no
# system service touched) and show what creativeflow.redis.redis_health says about it, through
# Ansible ad hoc, a playbook, and the standalone nagios-style CLI.
# Needs the collection built and installed (`make collection`, which `make demo` runs first).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DEMO=$REPO/.demo
mkdir -p "$DEMO"
chmod 700 "$DEMO"
export ANSIBLE_COLLECTIONS_PATH=$REPO/build/ansible_collections_install
export ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_NOCOLOR=1
PATH=$REPO/.venv/bin:$PATH

# A previous demo's server is stopped by its pid first.
if [[ -f $DEMO/redis.pid ]] && kill -0 "$(cat "$DEMO/redis.pid")" 2>/dev/null; then
    kill "$(cat "$DEMO/redis.pid")"
    for _ in $(seq 50); do kill -0 "$(cat "$DEMO/redis.pid")" 2>/dev/null || break; sleep 0.1; done
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
[[ -f $DEMO/password ]] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DEMO/password")
PASSWORD=$(cat "$DEMO/password")
(umask 077; cat > "$DEMO/redis.conf" <<CONF
port $PORT
bind 127.0.0.1
protected-mode yes
requirepass $PASSWORD
daemonize yes
pidfile $DEMO/redis.pid
logfile $DEMO/redis.log
dir $DEMO
maxmemory 64mb
maxmemory-policy allkeys-lru
appendonly yes
CONF
printf 'redis_password: "%s"\nredis_port: %s\n' "$PASSWORD" "$PORT" > "$DEMO/vars.yml")
redis-server "$DEMO/redis.conf"
for _ in $(seq 100); do
    REDISCLI_AUTH=$PASSWORD redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
REDISCLI_AUTH=$PASSWORD redis-cli -p "$PORT" set demo:greeting "hello from creativeflow.redis" >/dev/null

echo "== redis-server running on 127.0.0.1:$PORT (pid $(cat "$DEMO/redis.pid")), password in .demo/password"
echo
echo "== ansible localhost -m creativeflow.redis.redis_health (ad hoc; the password travels as a variable)"
ansible localhost -c local -m creativeflow.redis.redis_health \
    -a "login_port=$PORT login_password={{ redis_password }} checks=ping,info,memory,persistence,keyspace" \
    -e "@$DEMO/vars.yml" \
  | python3 -c '
import json, sys
text = sys.stdin.read()
head, _, body = text.partition(" => ")
res = json.loads(body)
print(head)
print("status:", res["status"], "-", res["msg"])
for name, c in res["checks"].items():
    print("  %-12s %-8s %s" % (name, c["status"], c["message"]))
print("role:", res["role"], " redis_version:", res["redis_version"], " latency_ms:", res["latency_ms"])
print("keyspace:", json.dumps(res["keyspace"]))
'
echo
echo "== the same check as a standalone command (cron, Nagios, container healthcheck)"
MODULE=$ANSIBLE_COLLECTIONS_PATH/ansible_collections/creativeflow/redis/plugins/modules/redis_health
set +e
REDISCLI_AUTH=$PASSWORD "$MODULE" --port "$PORT" --format nagios
echo "(exit code $?)"
set -e
echo
echo "Stop the demo server with: kill \$(cat .demo/redis.pid)"
