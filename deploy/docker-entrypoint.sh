#!/bin/sh
# pingxuan-service [run|healthcheck|config]: the image's entry point.
#
#   run          run the service named by $SERVICE in the foreground (the default)
#   healthcheck  exit 0 when the service's GET /health answers {"status": "ok"} (liveness)
#   ready        exit 0 when its GET /ready answers {"status": "ready"} (MongoDB and RabbitMQ)
#   config       print the config file `run` would use
#   <other>      exec it (e.g. `pingxuan token issue ...`, `sh`)
#
# SERVICE is one of nomination, voting, scoring, aggregation, notification, console; the class
# run is services.<name>.service:<Name>Service with the config.yml installed with it
# (PINGXUAN_CONFIG overrides the file). The HTTP address (/health, /metrics, the voting
# page) is <NAME>_HTTP, by default 0.0.0.0:<the service's port> so that probes and
# Prometheus reach it from outside the container.
set -eu

port_of() {
    case "$1" in
        voting) echo 8100 ;;
        nomination) echo 8101 ;;
        scoring) echo 8102 ;;
        aggregation) echo 8103 ;;
        notification) echo 8104 ;;
        console) echo 8105 ;;
        *) return 1 ;;
    esac
}

command="${1:-run}"
case "$command" in
    run|healthcheck|ready|config) ;;
    *) exec "$@" ;;
esac

service="${SERVICE:-}"
if ! port=$(port_of "$service"); then
    echo "pingxuan-service: set SERVICE to one of nomination, voting, scoring, aggregation," \
         "notification, console (got '${service}')" >&2
    exit 64
fi

upper=$(printf '%s' "$service" | tr '[:lower:]' '[:upper:]')
http_var="${upper}_HTTP"
eval "address=\${${http_var}:-0.0.0.0:${port}}"
export "${http_var}=${address}"

case "$command" in
    healthcheck|ready)
        # The address may be 0.0.0.0:<port> (every interface): ask the loopback.
        exec python - "${address##*:}" "$command" <<'EOF'
import json, sys, urllib.request
path, wanted = {"healthcheck": ("/health", "ok"), "ready": ("/ready", "ready")}[sys.argv[2]]
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{path}", timeout=4) as reply:
        sys.exit(0 if json.load(reply).get("status") == wanted else 1)
except Exception as exc:  # refused, timed out, 5xx (not ready), not JSON
    print(f"{'unhealthy' if path == '/health' else 'not ready'}: {exc}", file=sys.stderr)
    sys.exit(1)
EOF
        ;;
esac

config="${PINGXUAN_CONFIG:-}"
if [ -z "$config" ]; then
    package=$(python -c 'import pathlib, services; print(pathlib.Path(services.__file__).parent)')
    config="${package}/${service}/config.yml"
fi
if [ "$command" = config ]; then
    echo "$config"
    exit 0
fi

class="$(printf '%s' "$upper" | cut -c1)$(printf '%s' "$service" | cut -c2-)Service"
# exec: nameko is PID 1 and gets SIGTERM itself (it finishes in-flight workers, then exits).
exec python -m shared.run_service run "services.${service}.service:${class}" --config "$config"
