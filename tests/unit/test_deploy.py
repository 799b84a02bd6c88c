"""The deployment files in deploy/: promtool, docker-compose, Kubernetes, RabbitMQ, Grafana, image.

The same checks as ``deploy/check.sh``, each also run on a broken copy to show it can
fail. Needs ``promtool`` (Debian package ``prometheus``) and ``docker-compose`` (Debian
package ``docker-compose``); no Docker daemon, cluster or broker.
"""
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from shared import yamlfiles
from tests.system import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = {"nomination": 8101, "voting": 8100, "scoring": 8102, "aggregation": 8103,
            "notification": 8104, "console": 8105}
DUMMY = "check-only-not-a-secret-0123456789"
COMPOSE_SECRETS = [
    "PINGXUAN_TOKEN_PUBLIC_KEYS", "PINGXUAN_SERVICE_PUBLIC_KEYS", "NOMINATION_SERVICE_KEY",
    "VOTING_SERVICE_KEY", "SCORING_SERVICE_KEY", "AGGREGATION_SERVICE_KEY",
    "NOTIFICATION_SERVICE_KEY", "CONSOLE_SERVICE_KEY", "GRAFANA_ADMIN_PASSWORD",
    "RABBITMQ_PASSWORD_NOMINATION",
    "RABBITMQ_PASSWORD_VOTING", "RABBITMQ_PASSWORD_SCORING", "RABBITMQ_PASSWORD_AGGREGATION",
    "RABBITMQ_PASSWORD_NOTIFICATION", "RABBITMQ_PASSWORD_CONSOLE", "RABBITMQ_PASSWORD_ADMIN_CLI",
    "RABBITMQ_PASSWORD_RPC_CLIENT", "RABBITMQ_PASSWORD_MONITORING",
    "MONGO_ROOT_PASSWORD", "MONGO_PASSWORD_NOMINATION", "MONGO_PASSWORD_VOTING",
    "MONGO_PASSWORD_SCORING", "MONGO_PASSWORD_AGGREGATION", "MONGO_PASSWORD_NOTIFICATION",
    "MONGO_PASSWORD_CONSOLE", "MONGO_PASSWORD_BACKUP",
]


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _module("deploy_check_manifests", DEPLOY / "check_manifests.py")
render = _module("deploy_render_definitions", DEPLOY / "rabbitmq" / "render_definitions.py")


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {package}")
    return path


def run(*args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def promtool(*args):
    return run(tool("promtool", "prometheus"), *args)


# --- Prometheus --------------------------------------------------------------------------

def test_prometheus_config_passes_promtool():
    result = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus-compose.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # prometheus.yml (Kubernetes) through check_manifests: Debian's promtool lacks k8s discovery.
    assert checks.kubernetes_scrape_problems(promtool=tool("promtool", "prometheus")) == []


def test_alert_rules_pass_promtool():
    result = promtool("check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass():
    result = promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("original, broken, alert", [
    ('expr: up{job="pingxuan"} == 0', 'expr: up{job="pingxuan"} == 2', "PingxuanServiceDown"),
    # A resend counted as a refusal would page on a healthy advanced_unit.
    ('outcome!~"accepted|resend"', 'outcome!="accepted"', "VoteRefusalRatioHigh"),
    ("/ sum by (category) (rate(pingxuan_votes_total[5m])) > 0.25",
     "/ sum by (category) (rate(pingxuan_votes_total[5m])) > 0.75", "VoteRefusalRatioHigh"),
    # Codes notification only queued (its SMS attempt failed) must count as not delivered.
    ('outcome=~"send_failed|send_delayed"', 'outcome="send_failed"', "OneTimeCodesNotDelivered"),
    ("(rate(pingxuan_one_time_codes_total{outcome=~\"send_failed|send_delayed\"}[5m])) > 1/60",
     "(rate(pingxuan_one_time_codes_total{outcome=~\"send_failed|send_delayed\"}[5m])) > 0",
     "OneTimeCodesNotDelivered"),
    ('{outcome=~"sent|failed"}[5m])) > 0.5', '{outcome=~"sent|failed"}[5m])) > 0.001',
     "SmsChannelFailing"),
    ('(rate(pingxuan_notifications_total{outcome="failed"}[5m])) > 1/60',
     '(rate(pingxuan_notifications_total{outcome="failed"}[5m])) > 0', "SmsChannelFailing"),
    ('expr: max(pingxuan_notification_messages{status="parked"}) > 0',
     'expr: max(pingxuan_notification_messages{status="parked"}) > 5', "NotificationsParked"),
    ('{outcome="parked"}[15m])) >= 10', '{outcome="parked"}[15m])) >= 1',
     "NotificationsParkedFast"),
])
def test_alert_unit_tests_fail_when_an_alert_is_broken(tmp_path, original, broken, alert):
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    assert original in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(original, broken))
    shutil.copy(DEPLOY / "prometheus" / "alerts_test.yml", tmp_path)
    result = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr


def test_compose_prometheus_scrapes_every_container_of_every_service_and_rabbitmq():
    config = yamlfiles.load((DEPLOY / "prometheus" / "prometheus-compose.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    asked = {name: entry["port"] for entry in jobs["pingxuan"]["dns_sd_configs"]
             for name in entry["names"]}
    assert asked == SERVICES
    assert "static_configs" not in jobs["pingxuan"]
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"
    assert jobs["rabbitmq-queues"]["params"]["vhost"] == ["pingxuan"]
    assert checks.compose_scrape_problems() == []


def test_kubernetes_prometheus_scrapes_each_pod_of_each_service():
    config = yamlfiles.load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = {job["job_name"]: job for job in config["scrape_configs"]}["pingxuan"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["pingxuan"]}}]
    voting = next(doc for _, doc in k8s_documents()
                  if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "voting")
    got = checks.scraped(job, checks.pod_targets(voting, replicas=3))
    assert sorted(address for address, _, _ in got) == [
        "10.1.6.10:8100", "10.1.6.11:8100", "10.1.6.12:8100"]
    assert {(path, labels["service"], labels["namespace"]) for _, path, labels in got} == {
        ("/metrics", "voting", "pingxuan")}
    assert len({labels["pod"] for _, _, labels in got}) == 3


@pytest.mark.parametrize("old, new, problem", [
    # One Service address: a replica that stops answering would hide behind the others.
    ("""    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names: [pingxuan]
""", """    static_configs:
      - targets: ["voting:8100"]
""", "job pingxuan must discover pods"),
    ("      - role: pod\n", "      - role: service\n", "job pingxuan must discover pods"),
    ("""      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_part_of]
        regex: pingxuan
        action: keep
""", "", "a pod of another application would be scraped"),
    ("""        regex: "true"
        action: keep
""", """        regex: "false"
        action: drop
""", None),
    ("      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name]\n"
     "        target_label: service\n", "", "with labels"),
    ("        regex: Pending|Succeeded|Failed|Unknown\n", "        regex: Succeeded|Failed\n",
     "a Pending voting pod is scraped"),
])
def test_kubernetes_scrape_check_catches_a_broken_discovery(tmp_path, old, new, problem):
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert old in text
    (tmp_path / "prometheus.yml").write_text(text.replace(old, new, 1))
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path)
    problems = "\n".join(checks.kubernetes_scrape_problems(
        tmp_path / "prometheus.yml", promtool=tool("promtool", "prometheus")))
    if problem is None:  # equivalent rules: nothing to report
        assert problems == ""
    else:
        assert problem in problems, problems


def test_compose_scrape_check_catches_one_address_per_service(tmp_path):
    text = (DEPLOY / "prometheus" / "prometheus-compose.yml").read_text()
    old = "      - {names: [voting], type: A, port: 8100, refresh_interval: 30s}\n"
    assert old in text
    (tmp_path / "p.yml").write_text(text.replace(old, "").replace(
        "    dns_sd_configs:\n", "    static_configs:\n      - targets: [\"voting:8100\"]\n"
        "    dns_sd_configs:\n"))
    problems = "\n".join(checks.compose_scrape_problems(tmp_path / "p.yml"))
    assert "names fixed addresses" in problems
    assert "should ask DNS for" in problems


def test_rules_and_dashboard_use_only_the_metric_names_the_readme_lists():
    assert checks.alert_problems() == []
    readme = (DEPLOY / "README.md").read_text()
    for name in checks.KNOWN_METRICS - {"up", "pingxuan:votes:rate5m"}:
        assert name.removesuffix("_bucket") in readme, name


# --- docker-compose ----------------------------------------------------------------------

def compose(tmp_path, *args, drop=(), compose_file=DEPLOY / "docker-compose.yml"):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {key: value for key, value in os.environ.items() if key not in COMPOSE_SECRETS}
    env.update({key: DUMMY for key in COMPOSE_SECRETS if key not in drop})
    return run(tool("docker-compose", "docker-compose"), "--env-file", str(env_file),
               "-f", str(compose_file), "config", *args, env=env)


def test_compose_file_passes_docker_compose_config(tmp_path):
    result = compose(tmp_path, "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_secret(tmp_path):
    result = compose(tmp_path, "-q", drop=["PINGXUAN_TOKEN_PUBLIC_KEYS"])
    assert result.returncode != 0
    assert "PINGXUAN_TOKEN_PUBLIC_KEYS" in result.stderr


def test_each_service_runs_from_the_image_with_its_own_rabbitmq_user(tmp_path):
    result = compose(tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    images = set()
    for name, port in SERVICES.items():
        service = config["services"][name]
        env = service["environment"]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        images.add(service["image"])
        assert env["SERVICE"] == name
        assert env["AMQP_URI"] == f"amqp://{name}:{DUMMY}@rabbitmq:5672/pingxuan"
        assert "replicaSet=rs0" in env["MONGO_URI"]
        assert env["PINGXUAN_TOKEN_PUBLIC_KEYS"] == env["PINGXUAN_SERVICE_PUBLIC_KEYS"] == DUMMY
        # Its own private key, no other service's and not the issuer's.
        assert [key for key in env if key.endswith("_SERVICE_KEY")] == [
            f"{name.upper()}_SERVICE_KEY"]
        assert "PINGXUAN_ISSUER_KEY" not in env and "PINGXUAN_SECRET" not in env
        assert env[f"{name.upper()}_HTTP"] == f"0.0.0.0:{port}"
        # Readiness: depends_on waits until MongoDB and RabbitMQ answer the service.
        assert service["healthcheck"]["test"] == ["CMD", "pingxuan-service", "ready"]
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert "store" in service["networks"]
    assert len(images) == 1
    assert config["networks"]["store"]["internal"] is True
    for member in ("mongo1", "mongo2", "mongo3"):
        assert "--replSet" in config["services"][member]["command"]
        assert set(config["services"][member]["networks"]) == {"store"}
    assert {"prometheus", "grafana", "rabbitmq", "mongo-init"} <= set(config["services"])


def test_compose_file_as_written_takes_secrets_from_the_environment():
    assert checks.compose_problems() == []


def test_compose_check_catches_a_literal_secret_and_a_shared_user(tmp_path):
    text = (DEPLOY / "docker-compose.yml").read_text()
    text = text.replace("VOTING_SERVICE_KEY: ${VOTING_SERVICE_KEY:?set VOTING_SERVICE_KEY}",
                        "VOTING_SERVICE_KEY: pxsk_hunter2-hunter2-hunter2\n"
                        "      SCORING_SERVICE_KEY: ${SCORING_SERVICE_KEY:?set it}", 1)
    text = text.replace("amqp://voting:${RABBITMQ_PASSWORD_VOTING",
                        "amqp://nomination:${RABBITMQ_PASSWORD_NOMINATION", 1)
    (tmp_path / "docker-compose.yml").write_text(text)
    example = tmp_path / "compose.env.example"
    example.write_text((DEPLOY / "compose.env.example").read_text()
                       .replace("GRAFANA_ADMIN_PASSWORD=", "GRAFANA_ADMIN_PASSWORD=admin"))
    problems = checks.compose_problems(tmp_path / "docker-compose.yml", example)
    assert any("VOTING_SERVICE_KEY must be" in p for p in problems), problems
    assert "voting: SCORING_SERVICE_KEY is another service's private key" in problems
    assert any(p.startswith("voting: AMQP_URI should log in as voting") for p in problems)
    assert any("GRAFANA_ADMIN_PASSWORD has a value" in p for p in problems)


def test_the_compose_replica_set_runs_with_a_keyfile_and_one_user_per_service(tmp_path):
    result = compose(tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    for member in ("mongo1", "mongo2", "mongo3"):
        service = config["services"][member]
        command = service["command"]
        assert command[command.index("--keyFile") + 1] == "/etc/mongo-keyfile/key"
        assert any(str(v).endswith(":/etc/mongo-keyfile:ro") or
                   (isinstance(v, dict) and v.get("target") == "/etc/mongo-keyfile"
                    and v.get("read_only")) for v in service["volumes"])
        assert service["depends_on"]["mongo-keyfile"]["condition"] == \
            "service_completed_successfully"
    assert config["services"]["mongo1"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == DUMMY
    assert "environment" not in config["services"]["mongo2"]  # users come by initial sync
    keyfile = config["services"]["mongo-keyfile"]
    assert keyfile["network_mode"] == "none"
    assert "chmod 400 key" in " ".join(keyfile["command"])
    for name in SERVICES:
        uri = config["services"][name]["environment"]["MONGO_URI"]
        assert uri.startswith(f"mongodb://{name}:{DUMMY}@mongo1:27017,"), uri
        assert "authSource=admin" in uri and "replicaSet=rs0" in uri
        assert config["services"]["mongo-init"]["environment"][
            f"MONGO_PASSWORD_{name.upper()}"] == DUMMY
    script = (DEPLOY / "mongo" / "init-replica-set.js").read_text()
    listed = re.search(r"const services = \[(.*?)\];", script).group(1)
    assert sorted(re.findall(r'"(\w+)"', listed)) == sorted(SERVICES)
    # Each service's user may read and write its own database and nothing else.
    assert '[{ role: "readWrite", db: `pingxuan_${service}` }]' in script
    assert 'admin.auth("root", required("MONGO_ROOT_PASSWORD"))' in script


def test_compose_check_catches_a_member_without_keyfile_and_a_borrowed_mongo_user(tmp_path):
    text = (DEPLOY / "docker-compose.yml").read_text()
    old = '"--keyFile", "/etc/mongo-keyfile/key"]'
    assert old in text
    text = text.replace(old, "]").replace(
        "mongodb://scoring:${MONGO_PASSWORD_SCORING", "mongodb://root:${MONGO_ROOT_PASSWORD", 1)
    (tmp_path / "docker-compose.yml").write_text(text)
    problems = checks.compose_problems(tmp_path / "docker-compose.yml",
                                       DEPLOY / "compose.env.example")
    for member in ("mongo1", "mongo2", "mongo3"):
        assert f"{member}: mongod must run with --keyFile (members authenticate each other, " \
               "and clients must log in)" in problems
    assert any(p.startswith("scoring: MONGO_URI should log in as its own MongoDB user") for p in
               problems)


# --- Kubernetes --------------------------------------------------------------------------

def k8s_documents(directory=DEPLOY / "k8s"):
    for path in sorted(Path(directory).glob("*.yaml")):
        for doc in yamlfiles.load_all(path.read_text()):
            yield path.name, doc


def test_k8s_manifests_parse_with_probes_limits_and_no_literal_secrets():
    kinds = {}
    for name, doc in k8s_documents():
        kinds.setdefault(doc["kind"], []).append(doc.get("metadata", {}).get("name", name))
        assert doc["kind"] != "Secret", f"{name} commits a Secret"
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            # Readiness asks the store and the broker; liveness and start-up stay cheap.
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert container["startupProbe"]["httpGet"]["path"] == "/health"
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            for entry in container.get("env", []):
                if entry["name"] in ("PINGXUAN_TOKEN_PUBLIC_KEYS", "PINGXUAN_SERVICE_PUBLIC_KEYS",
                                     f"{doc['metadata']['name'].upper()}_SERVICE_KEY",
                                     "AMQP_URI", "MONGO_URI"):
                    assert "secretKeyRef" in entry["valueFrom"]
                else:
                    assert not re.search(r"SECRET|PASSWORD|TOKEN", entry["name"])
            assert {"secretRef": {"name": f"pingxuan-{doc['metadata']['name']}"}} \
                in container["envFrom"]
    assert sorted(kinds["Deployment"]) == sorted(SERVICES)
    assert sorted(kinds["Service"]) == sorted(SERVICES)
    assert kinds["Namespace"] == ["pingxuan"] and kinds["ConfigMap"] == ["pingxuan-config"]
    assert checks.k8s_problems() == []


def test_k8s_example_secrets_hold_placeholders_only():
    examples = list((DEPLOY / "k8s" / "examples").iterdir())
    assert [p.name for p in examples] == ["secrets.example.yaml"]
    names = {doc["metadata"]["name"] for _, doc in k8s_documents(DEPLOY / "k8s" / "examples")}
    assert names == {"pingxuan-public-keys"} | {f"pingxuan-{s}" for s in SERVICES}


def test_k8s_check_catches_missing_probe_literal_secret_and_committed_secret(tmp_path):
    target = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", target)
    voting = (target / "voting.yaml").read_text()
    voting = voting.replace("          livenessProbe:", "          livenessProbeGone:")
    (target / "scoring.yaml").write_text(
        (target / "scoring.yaml").read_text().replace("path: /ready", "path: /health"))
    voting = voting.replace("""            - name: SERVICE
              value: voting""", """            - name: SERVICE
              value: voting
            - name: AMQP_URI
              value: amqp://voting:s3cret-s3cret@rabbitmq:5672/pingxuan""")
    voting = voting.replace("              memory: 512Mi\n", "", 1)
    (target / "voting.yaml").write_text(voting)
    (target / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: pingxuan}\n"
        "stringData: {VOTING_SERVICE_KEY: pxsk_abcdefabcdefabcdef}\n")
    (target / "examples" / "secrets.example.yaml").write_text(
        (target / "examples" / "secrets.example.yaml").read_text()
        .replace('"<pxsk_voting>"', '"pxsk_real-secret-value-123456"'))
    (target / "scoring.yaml").write_text((target / "scoring.yaml").read_text().replace(
        "name: SCORING_SERVICE_KEY", "name: VOTING_SERVICE_KEY").replace(
        "key: SCORING_SERVICE_KEY", "key: VOTING_SERVICE_KEY"))
    problems = "\n".join(checks.k8s_problems(target))
    assert "voting: container voting: no livenessProbe" in problems
    assert "scoring: container scoring: readinessProbe should GET /ready" in problems
    assert "env AMQP_URI has a literal value" in problems
    assert "no limits.memory" in problems
    assert "kind 'Secret' does not belong here" in problems
    assert "pingxuan-voting.VOTING_SERVICE_KEY holds a value" in problems
    assert "scoring: VOTING_SERVICE_KEY is another service's private key" in problems
    assert "scoring: no SCORING_SERVICE_KEY" in problems
    assert "kustomization.yaml" in problems  # secret.yaml is not among its resources


def k8s_copy(tmp_path):
    target = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", target)
    return target


def edit(path, old, new, count=1):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def test_every_service_has_a_disruption_budget_and_a_network_policy():
    kinds = {}
    for _, doc in k8s_documents():
        kinds.setdefault(doc["kind"], []).append(doc.get("metadata", {}).get("name"))
    assert sorted(kinds["PodDisruptionBudget"]) == sorted(SERVICES)
    assert sorted(kinds["NetworkPolicy"]) == sorted(set(SERVICES) | {"default-deny",
                                                                      "admin-cli", "backup"})
    assert checks.k8s_problems() == []


@pytest.mark.parametrize("file, old, new, problem", [
    # A budget that keeps the only replica blocks every node drain.
    ("disruption-budgets.yaml", "  maxUnavailable: 1\n", "  minAvailable: 1\n",
     "nomination: its PodDisruptionBudget allows no eviction of its 1 replica(s)"),
    ("voting.yaml", "  replicas: 2\n", "  replicas: 1\n",
     "voting: its PodDisruptionBudget allows no eviction of its 1 replica(s)"),
    ("disruption-budgets.yaml", "  minAvailable: 1\n", "  minAvailable: 0\n",
     "voting: its PodDisruptionBudget lets all 2 replicas go at once"),
    ("disruption-budgets.yaml", "      app.kubernetes.io/name: scoring\n",
     "      app.kubernetes.io/name: scorer\n",
     "scoring: needs one PodDisruptionBudget selecting its pods"),
])
def test_disruption_budget_check_catches_a_blocking_an_idle_or_a_missing_budget(
        tmp_path, file, old, new, problem):
    target = k8s_copy(tmp_path)
    edit(target / file, old, new)
    assert any(p.startswith(problem) for p in checks.k8s_problems(target)), \
        checks.k8s_problems(target)


POLICIES = "network-policies.yaml"
INGRESS_RULE = """    # The public voting page and its JSON API, through the ingress controller only.
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: ingress-nginx
          podSelector:
            matchLabels:
              app.kubernetes.io/name: ingress-nginx
      ports:
        - {protocol: TCP, port: 8100}
"""


def policy_block(text, name):
    start = text.index(f"  name: {name}\n")
    end = text.find("\n---", start)
    return start, (len(text) if end < 0 else end + 1)


def edit_policy(target, name, old, new):
    path = target / POLICIES
    text = path.read_text()
    start, end = policy_block(text, name)
    block = text[start:end]
    assert old in block, (name, old)
    path.write_text(text[:start] + block.replace(old, new, 1) + text[end:])


def test_network_check_catches_a_missing_default_deny(tmp_path):
    target = k8s_copy(tmp_path)
    edit(target / POLICIES, "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
         "  podSelector: {}\n  policyTypes: [Ingress]\n")
    assert any(p.startswith("network: no default-deny") for p in checks.k8s_problems(target))


@pytest.mark.parametrize("service, port", [("nomination", 8101), ("notification", 8104)])
def test_network_check_catches_the_ingress_controller_on_a_service_without_a_public_page(
        tmp_path, service, port):
    target = k8s_copy(tmp_path)
    edit_policy(target, service, "  egress:\n",
                INGRESS_RULE.replace("8100", str(port)) + "  egress:\n")
    assert f"network policy {service}: the ingress controller may reach {service}, which has " \
           "no public page" in checks.k8s_problems(target)


def test_network_check_catches_a_public_page_the_ingress_cannot_reach(tmp_path):
    target = k8s_copy(tmp_path)
    edit_policy(target, "voting", INGRESS_RULE, "")
    assert "voting: the ingress controller cannot reach its public page" in \
        checks.k8s_problems(target)


def test_network_check_catches_a_console_the_ingress_cannot_reach(tmp_path):
    target = k8s_copy(tmp_path)
    rule = INGRESS_RULE.replace("8100", "8105").replace(
        "The public voting page and its JSON API, through the ingress controller only.",
        "The department's web console (a page people open), through the ingress controller only.")
    edit_policy(target, "console", rule, "")
    assert "console: the ingress controller cannot reach its public page" in \
        checks.k8s_problems(target)


def test_network_check_catches_a_backup_pod_that_may_reach_rabbitmq(tmp_path):
    target = k8s_copy(tmp_path)
    edit_policy(target, "backup", "        - {protocol: TCP, port: 27017}\n",
                "        - {protocol: TCP, port: 27017}\n        - {protocol: TCP, port: 5672}\n")
    assert "network policy backup: backup may reach RabbitMQ, which it does not need" \
        in checks.k8s_problems(target)


def test_network_check_catches_a_pod_that_may_reach_mongodb_without_needing_it(tmp_path):
    target = k8s_copy(tmp_path)
    edit_policy(target, "admin-cli", "        - {protocol: TCP, port: 5671}\n",
                "        - {protocol: TCP, port: 5671}\n        - {protocol: TCP, port: 27017}\n")
    assert "network policy admin-cli: admin-cli may reach MongoDB, which it does not need" \
        in checks.k8s_problems(target)


@pytest.mark.parametrize("name, old, new, problem", [
    ("nomination", "      ports:\n        - {protocol: TCP, port: 27017}\n", "",
     "an egress rule without 'to' and 'ports' lets it reach anything"),
    ("voting", "        - ipBlock: {cidr: 192.0.2.20/30}   # MongoDB replica set\n",
     "        - ipBlock: {cidr: 0.0.0.0/0}\n", "MongoDB is reached at any address (0.0.0.0/0)"),
    ("scoring", "        - {protocol: TCP, port: 27017}\n",
     "        - {protocol: TCP, port: 27017}\n        - {protocol: TCP, port: 443}\n",
     "scoring may reach ports [443], which it does not need"),
    ("notification", "            except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ",
     "            except: [172.16.0.0/12, 192.168.0.0/16, ",
     "the way out of the cluster must be an ipBlock that excepts the private ranges"),
    ("aggregation", "        - {protocol: TCP, port: 8103}\n  egress:",
     "        - {protocol: TCP, port: 8103}\n        - {protocol: TCP, port: 9999}\n  egress:",
     "ingress on ports [8103, 9999]; only 8103 serves anything"),
])
def test_network_check_catches_a_rule_wider_than_the_pod_needs(tmp_path, name, old, new,
                                                                problem):
    target = k8s_copy(tmp_path)
    edit_policy(target, name, old, new)
    problems = checks.k8s_problems(target)
    assert any(problem in p for p in problems), problems


def test_network_check_catches_a_service_cut_off_from_prometheus_or_rabbitmq(tmp_path):
    target = k8s_copy(tmp_path)
    edit_policy(target, "notification",
                "              app.kubernetes.io/name: prometheus\n",
                "              app.kubernetes.io/name: grafana\n")
    edit_policy(target, "nomination", "        - {protocol: TCP, port: 5672}\n"
                "        - {protocol: TCP, port: 5671}\n", "        - {protocol: TCP, port: 5673}\n")
    problems = checks.k8s_problems(target)
    assert "notification: no NetworkPolicy lets it be scraped by Prometheus" in problems
    assert "nomination: no NetworkPolicy lets it reach RabbitMQ" in problems


# --- RabbitMQ ----------------------------------------------------------------------------

def definitions():
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())


def test_definitions_have_one_user_per_service_and_client_and_no_password():
    data = definitions()
    users = {user["name"]: user for user in data["users"]}
    assert set(users) == set(SERVICES) | {"admin-cli", "rpc-client", "monitoring"}
    for user in users.values():
        assert "password" not in user
        assert user["password_hash"] == ""
    assert users["monitoring"]["tags"] == ["monitoring"]
    assert {p["user"] for p in data["permissions"]} == set(users)
    assert {p["vhost"] for p in data["permissions"]} == {"pingxuan"}
    assert checks.definitions_problems() == []


def test_definitions_check_catches_a_password_and_a_wide_permission(tmp_path):
    data = definitions()
    data["users"][0]["password"] = "guest"
    data["permissions"][1]["read"] = ".*"
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(data))
    problems = "\n".join(checks.definitions_problems(path))
    assert f"user {data['users'][0]['name']}: a clear-text password is committed" in problems
    assert "is not anchored" in problems


def test_permissions_allow_what_each_nameko_service_does_and_nothing_of_the_others():
    services = checks.built_services()
    assert services, "no service package with a service.py"
    assert checks.permission_problems() == []


def test_permission_check_catches_a_service_cut_off_from_an_event_source(tmp_path):
    data = definitions()
    for entry in data["permissions"]:
        if entry["user"] == "aggregation":
            for kind in ("configure", "write", "read"):
                entry[kind] = entry[kind].replace("nomination|voting|scoring|admin",
                                                  "nomination|scoring|admin")
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(data))
    fake = type("AggregationService", (), {"name": "aggregation"})
    from nameko.events import event_handler

    fake.on_vote_cast = event_handler("voting", "vote_cast")(lambda self, payload: None)
    problems = checks.permission_problems(path, services={"aggregation": fake})
    assert "user aggregation may not read 'evt-voting-vote_cast--aggregation.on_vote_cast', " \
           "which it needs" in problems
    assert "user aggregation may not read 'voting.events', which it needs" in problems


def test_permission_check_catches_a_client_allowed_an_admin_method(tmp_path):
    data = definitions()
    for entry in data["topic_permissions"]:
        if entry["user"] == "rpc-client":
            entry["write"] = entry["write"].replace("publicity_list", "publicity_list|publish")
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(data))
    problems = checks.permission_problems(path, services={})
    assert problems == ["user rpc-client may topic write on nameko-rpc 'aggregation.publish', "
                        "which it must not"]


def rabbitmq_passwords():
    return {render.password_variable(user["name"]): f"pw-{user['name']}-0123456789abcdef"
            for user in definitions()["users"]}


def test_rendered_definitions_carry_rabbitmq_sha256_hashes_of_the_given_passwords():
    passwords = rabbitmq_passwords()
    assert "RABBITMQ_PASSWORD_ADMIN_CLI" in passwords
    rendered = render.render(definitions(), passwords)
    for user in rendered["users"]:
        raw = base64.b64decode(user["password_hash"])
        salt, digest = raw[:4], raw[4:]
        password = passwords[render.password_variable(user["name"])]
        assert digest == hashlib.sha256(salt + password.encode()).digest()
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert definitions()["users"][0]["password_hash"] == ""  # the committed file is untouched


@pytest.mark.parametrize("value, message", [
    (None, "RABBITMQ_PASSWORD_VOTING is not set"),
    ("short", "at least 16 characters"),
    ("has spaces and @ signs!", "may hold only"),
])
def test_render_refuses_a_missing_or_unusable_password(tmp_path, value, message):
    env = rabbitmq_passwords()
    if value is None:
        del env["RABBITMQ_PASSWORD_VOTING"]
    else:
        env["RABBITMQ_PASSWORD_VOTING"] = value
    out = tmp_path / "definitions.json"
    result = run(sys.executable, str(DEPLOY / "rabbitmq" / "render_definitions.py"),
                 "--output", str(out), env=dict(env, PATH=os.environ.get("PATH", "")))
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()


# --- Grafana -----------------------------------------------------------------------------

def test_dashboard_queries_parse_and_cover_the_public_window():
    assert checks.dashboard_problems(promtool=tool("promtool", "prometheus")) == []
    dashboard, queries = checks.dashboard_queries()
    exprs = "\n".join(expr for _, expr in queries)
    assert "sum by (category) (rate(pingxuan_votes_total{outcome=\"accepted\"" in exprs
    assert "sum by (outcome) (rate(pingxuan_votes_total{" in exprs
    assert "sum by (outcome) (rate(pingxuan_votes_total{outcome!~\"accepted|resend\"" in exprs
    assert "histogram_quantile(0.5, sum by (le) (rate(pingxuan_vote_cast_seconds_bucket" in exprs
    assert "histogram_quantile(0.99, sum by (le) (rate(pingxuan_vote_cast_seconds_bucket" in exprs
    assert "rabbitmq_detailed_queue_messages_ready" in exprs
    assert "pingxuan_aggregation_event_lag_seconds_bucket" in exprs
    assert 'up{job="pingxuan"}' in exprs
    assert dashboard["uid"] == "pingxuan-public-window"


def test_dashboard_check_catches_an_unknown_metric_and_bad_promql(tmp_path):
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard-public-window.json").read_text())
    dashboard["panels"][1]["targets"][0]["expr"] = "sum(rate(pingxuan_vote_total[1m]))"
    dashboard["panels"][2]["targets"][0]["expr"] = "sum(rate(up[1m])"
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(dashboard))
    problems = "\n".join(checks.dashboard_problems(path, tool("promtool", "prometheus")))
    assert "unknown metric 'pingxuan_vote_total'" in problems
    assert "dashboard queries do not parse" in problems


def test_grafana_provisioning_points_at_prometheus_and_the_mounted_dashboards(tmp_path):
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yamlfiles.load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yamlfiles.load((provisioning / "dashboards" / "pingxuan.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    config = yaml.safe_load(compose(tmp_path).stdout)
    mounts = [str(v) for v in config["services"]["grafana"]["volumes"]]
    assert any(f"{path}/dashboard-public-window.json" in mount for mount in mounts), mounts


# --- the image ---------------------------------------------------------------------------

def test_dockerfile_is_multi_stage_non_root_with_a_health_check():
    assert checks.dockerfile_problems() == []


def test_dockerfile_check_catches_a_root_image(tmp_path):
    text = (DEPLOY / "Dockerfile").read_text().replace("USER 10001:10001", "")
    (tmp_path / "Dockerfile").write_text(text + "ENV PINGXUAN_SECRET=abc\n")
    problems = checks.dockerfile_problems(tmp_path / "Dockerfile")
    assert "Dockerfile: the runtime stage must switch to a non-root USER" in problems
    assert any("puts a secret in the image" in p for p in problems)


@pytest.fixture
def fake_python(tmp_path):
    """A ``python`` that answers ``-c`` with the real one and otherwise prints how it was run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python"
    stub.write_text(f"""#!/bin/sh
if [ "$1" = "-c" ] || [ "$1" = "-" ]; then exec {sys.executable} "$@"; fi
echo "ARGS $*"
env | grep '_HTTP=' | sort
""")
    stub.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_entrypoint_runs_the_service_named_by_SERVICE(fake_python, service):
    env = dict(os.environ, SERVICE=service, PATH=f"{fake_python}:{os.environ['PATH']}")
    env.pop(f"{service.upper()}_HTTP", None)
    result = run("sh", str(DEPLOY / "docker-entrypoint.sh"), env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    config = ROOT / "services" / service / "config.yml"
    assert lines[0] == (f"ARGS -m shared.run_service run services.{service}.service:"
                        f"{service.capitalize()}Service --config {config}")
    assert f"{service.upper()}_HTTP=0.0.0.0:{SERVICES[service]}" in lines


def test_entrypoint_refuses_an_unknown_service():
    result = run("sh", str(DEPLOY / "docker-entrypoint.sh"), env=dict(os.environ, SERVICE="vote"))
    assert result.returncode == 64
    assert "set SERVICE to one of" in result.stderr


HEALTH_SERVER = """
import http.server, json, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": sys.argv[2]}).encode()
        self.send_response(200 if self.path == (sys.argv[3:] or ["/health"])[0] else 404)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def entrypoint_check(command, status, route="/health"):
    """Run ``pingxuan-service <command>`` against a stub service answering ``route``."""
    port = free_port()
    env = dict(os.environ, SERVICE="scoring", SCORING_HTTP=f"0.0.0.0:{port}")
    server = None
    if status is not None:
        server = subprocess.Popen([sys.executable, "-c", HEALTH_SERVER, str(port), status, route])
    try:
        if server is not None:
            for _ in range(50):  # until the stub server listens (no sleep-based waiting on events)
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
        return run("sh", str(DEPLOY / "docker-entrypoint.sh"), command, env=env)
    finally:
        if server is not None:
            server.kill()
            server.wait()


@pytest.mark.parametrize("status, healthy", [("ok", True), ("starting", False), (None, False)])
def test_entrypoint_healthcheck_asks_the_service_health_route(status, healthy):
    result = entrypoint_check("healthcheck", status)
    assert (result.returncode == 0) is healthy, result.stderr


@pytest.mark.parametrize("route, status, ready", [
    ("/ready", "ready", True), ("/ready", "not ready", False), ("/health", "ready", False),
    ("/ready", None, False)])
def test_entrypoint_ready_asks_the_service_ready_route(route, status, ready):
    """Compose's healthcheck is readiness: only a service whose /ready says so passes."""
    result = entrypoint_check("ready", status, route)
    assert (result.returncode == 0) is ready, result.stderr


def test_the_wheel_the_image_installs_carries_every_file_the_services_read():
    """pip installs the project from a wheel: files outside package-data are missing there."""
    assert checks.package_data_problems() == []
