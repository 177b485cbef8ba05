#!/usr/bin/env bash
# Run a Locust scenario headless against a running suite; writes CSV stats and an HTML report.
#   loadtests/run.sh GatewayUser http://127.0.0.1:8000 [users=20] [duration=1m] [out=loadtests/out]
# GatewayUser and RolloutUser need LOCUST_API_KEY (polyhead up prints one; it is also in var/api-key).
# Exits non-zero when any request failed.
set -euo pipefail
cd "$(dirname "$0")/.."
user="${1:?user class: GatewayUser, RolloutUser or EmbedderUser}"
host="${2:?host, e.g. http://127.0.0.1:8000}"
users="${3:-20}"
duration="${4:-1m}"
out="${5:-loadtests/out}"
if [[ "$user" != EmbedderUser && -z "${LOCUST_API_KEY:-}" && -s var/api-key ]]; then
  export LOCUST_API_KEY="$(cat var/api-key)"
fi
mkdir -p "$out"
locust="${LOCUST:-.venv/bin/locust}"
exec "$locust" -f loadtests/locustfile.py "$user" --host "$host" --headless \
  -u "$users" -r "$users" -t "$duration" --only-summary --exit-code-on-error 1 \
  --csv "$out/$user" --html "$out/$user.html"
