#!/usr/bin/env bash
# Check every deployment file without Docker, a cluster or a broker (CI and before a release):
# Prometheus config and rules (promtool, from Debian's `prometheus` package), the alert
# unit tests, the compose file (`docker-compose config`, Debian's `docker-compose`), and the
# Kubernetes manifests, RabbitMQ definitions, dashboard, Dockerfile and wheel contents
# (deploy/check_manifests.py, with the project's Python). Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
failed=0

step() {
    echo "== $*"
    if ! "$@"; then
        echo "FAILED: $*" >&2
        failed=1
    fi
}

for tool in promtool docker-compose shellcheck "$PYTHON"; do
    if ! command -v "$tool" >/dev/null; then
        echo "check.sh: $tool not found (apt-get install prometheus docker-compose shellcheck; make install)" >&2
        exit 2
    fi
done

# prometheus.yml (Kubernetes) is checked by check_manifests.py: Debian's promtool is built
# without Kubernetes service discovery and refuses kubernetes_sd_configs.
step promtool check config deploy/prometheus/prometheus-compose.yml
step promtool check rules deploy/prometheus/alerts.yml
step promtool test rules deploy/prometheus/alerts_test.yml

# Dummy values for the secrets compose requires; an empty --env-file so that a real
# deploy/.env is neither needed nor read.
dummy=check-only-not-a-secret-0123456789
no_env_file=$(mktemp)
trap 'rm -f "$no_env_file"' EXIT
compose_config() {
    env PINGXUAN_TOKEN_PUBLIC_KEYS=$dummy PINGXUAN_SERVICE_PUBLIC_KEYS=$dummy \
        NOMINATION_SERVICE_KEY=$dummy VOTING_SERVICE_KEY=$dummy SCORING_SERVICE_KEY=$dummy \
        AGGREGATION_SERVICE_KEY=$dummy NOTIFICATION_SERVICE_KEY=$dummy CONSOLE_SERVICE_KEY=$dummy \
        GRAFANA_ADMIN_PASSWORD=$dummy \
        RABBITMQ_PASSWORD_NOMINATION=$dummy RABBITMQ_PASSWORD_VOTING=$dummy \
        RABBITMQ_PASSWORD_SCORING=$dummy RABBITMQ_PASSWORD_AGGREGATION=$dummy \
        RABBITMQ_PASSWORD_NOTIFICATION=$dummy RABBITMQ_PASSWORD_CONSOLE=$dummy \
        RABBITMQ_PASSWORD_ADMIN_CLI=$dummy \
        RABBITMQ_PASSWORD_RPC_CLIENT=$dummy RABBITMQ_PASSWORD_MONITORING=$dummy \
        MONGO_ROOT_PASSWORD=$dummy MONGO_PASSWORD_NOMINATION=$dummy MONGO_PASSWORD_VOTING=$dummy \
        MONGO_PASSWORD_SCORING=$dummy MONGO_PASSWORD_AGGREGATION=$dummy \
        MONGO_PASSWORD_NOTIFICATION=$dummy MONGO_PASSWORD_CONSOLE=$dummy MONGO_PASSWORD_BACKUP=$dummy \
        docker-compose --env-file "$no_env_file" -f deploy/docker-compose.yml config -q
}
step compose_config

step "$PYTHON" deploy/check_manifests.py
# The backup scripts (their behaviour against stub tools: tests/unit/test_backup.py).
step shellcheck -x -P SCRIPTDIR deploy/backup.sh deploy/restore.sh deploy/drill.sh deploy/backup/lib.sh

if [ "$failed" -ne 0 ]; then
    echo "deploy/check.sh: FAILED" >&2
    exit 1
fi
echo "deploy/check.sh: all checks passed"
