#!/usr/bin/env bash
# `make demo`: deploy two password-protected Redis instances (a primary and its replica) with the
# creativeflow.redis.redis_server role, every file under .demo/ (no root, no system service
# touched), then show each instance's health through Ansible and through the standalone
# nagios-style CLI. Running it again changes nothing. `make demo-stop` stops the instances.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DEMO=$REPO/.demo
export ANSIBLE_COLLECTIONS_PATH=$REPO/build/ansible_collections_install
export ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_NOCOLOR=1
export ANSIBLE_PYTHON_INTERPRETER=$REPO/.venv/bin/python
PATH=$REPO/.venv/bin:$PATH

if [[ ${1:-} == stop ]]; then
    [[ -f $DEMO/vars.yml ]] || { echo "no demo to stop"; exit 0; }
    ansible-playbook -i localhost, docs/demo/stop.yml
    exit 0
fi

mkdir -p "$DEMO"
chmod 700 "$DEMO"
# Ports and password are chosen once, so running the demo again finds the same instances.
if ! grep -qs "^demo_ports:" "$DEMO/vars.yml"; then
    read -r P1 P2 < <(python3 -c '
import socket
ports = []
while len(ports) < 2:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p not in ports and p not in (6379, 26379): ports.append(p)
print(*ports)')
    (umask 077; printf 'demo_ports: [%s, %s]\ndemo_password: "%s"\ndemo_root: "%s"\n' \
        "$P1" "$P2" "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" "$DEMO/root" > "$DEMO/vars.yml")
fi

echo "== ansible-playbook docs/demo/site.yml (the redis_server role, then redis_health)"
ansible-playbook -i localhost, docs/demo/site.yml | sed -n '/TASK \[Report\]/,$p'

PORT=$(python3 -c 'import re,sys; print(re.search(r"demo_ports: \[(\d+)", open(sys.argv[1]).read()).group(1))' "$DEMO/vars.yml")
PASSWORD=$(python3 -c 'import re,sys; print(re.search(r"demo_password: \"([^\"]+)\"", open(sys.argv[1]).read()).group(1))' "$DEMO/vars.yml")
echo
echo "== the same check as a standalone command (cron, Nagios, container healthcheck)"
MODULE=$ANSIBLE_COLLECTIONS_PATH/ansible_collections/creativeflow/redis/plugins/modules/redis_health
set +e
REDISCLI_AUTH=$PASSWORD "$MODULE" --host 127.0.0.1 --port "$PORT" --format nagios
echo "(exit code $?)"
set -e
echo
echo "Files: .demo/root (configs in etc/redis, data in var/lib/redis, logs in var/log/redis)."
echo "Run 'make demo' again: nothing changes. Stop the instances with: make demo-stop"
