#!/usr/bin/env bash
# Start the local RabbitMQ if it is not running, and enable the management
# plugin that nameko's pytest fixtures use (port 15672) to make a vhost per test.
set -euo pipefail

if ! rabbitmqctl -q status >/dev/null 2>&1; then
    echo "starting RabbitMQ" >&2
    rabbitmq-server -detached
fi
rabbitmqctl -q await_startup --timeout 120 >/dev/null

if ! rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1; then
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
fi
for _ in $(seq 1 120); do
    if curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.5
done
echo "RabbitMQ management API did not answer on 127.0.0.1:15672" >&2
exit 1
