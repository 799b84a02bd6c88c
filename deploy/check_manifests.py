"""Checks of the deployment files that need neither Docker, a cluster nor a broker.

Each ``*_problems`` function returns a list of plain-English problems (empty when
all is well), so that ``deploy/check.sh`` prints them and ``tests/unit/test_deploy.py``
asserts on them, including on broken copies to show each check can fail.

* Kubernetes manifests: kinds, probes on /health, resource requests and limits,
  non-root, secrets only through ``secretKeyRef``/``envFrom``, no Secret committed.
* RabbitMQ definitions: one user per kind of client, no password in clear, anchored
  least-privilege regexes; and those regexes against what nameko really declares,
  binds, consumes and publishes for each service class that exists (its entrypoints
  and dependencies, read from the class), for the admin CLI and for RPC clients.
* The compose file as written: secrets only as ``${VAR:?...}``, each service with its
  own RabbitMQ user; the env example naming exactly the variables compose requires.
* The Grafana dashboard's queries (through ``promtool check rules``) and the metric
  names they use; the Dockerfile's stages, user and health check; that the wheel the
  image installs carries every non-Python file of ``shared/`` and ``services/``.

Run ``python deploy/check_manifests.py`` from the repository root (the project's venv,
for nameko and PyYAML).
"""
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import warnings

import yaml

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(ROOT))

from shared import yamlfiles  # noqa: E402  (as written: no ${VAR} substitution)

#: Service name -> HTTP port (shared/cli/system.py's SERVICES).
SERVICES = {"nomination": 8101, "voting": 8100, "scoring": 8102, "aggregation": 8103,
            "notification": 8104, "console": 8105}
CLIENT_USERS = ("admin-cli", "rpc-client", "monitoring")
VHOST = "pingxuan"
NAMESPACE = "pingxuan"
#: Event sources (exchanges ``<source>.events``): the services and the admin CLI.
EVENT_SOURCES = tuple(SERVICES) + ("admin",)
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|API_?KEY|PRIVATE", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]+@")
PLACEHOLDER = re.compile(r"<[^<>]+>")
DOCUMENTATION_SUFFIXES = {".md", ".rst"}
ALLOWED_K8S_KINDS = {"Namespace", "ConfigMap", "Deployment", "Service", "Kustomization"}

# Metric names the dashboard and the alerts may use (deploy/README.md, "Metric names").
KNOWN_METRICS = {
    "up",
    "pingxuan_rpc_seconds_bucket", "pingxuan_event_handler_seconds_bucket",
    "pingxuan_errors_total", "pingxuan_votes_total", "pingxuan_vote_cast_seconds_bucket",
    "pingxuan_aggregation_event_lag_seconds_bucket", "pingxuan:votes:rate5m",
    "rabbitmq_detailed_queue_messages_ready", "rabbitmq_detailed_queue_messages_unacked",
    "rabbitmq_detailed_queue_consumers", "rabbitmq_global_messages_received_total",
    "rabbitmq_global_messages_delivered_total", "rabbitmq_global_messages_redelivered_total",
}
METRIC_NAME = re.compile(r"\b(?:pingxuan[_:]|rabbitmq_)[A-Za-z0-9_:]*|\bup\b")


def metric_name_problems(expr):
    """Metric names in ``expr`` (outside label values) that are not in ``KNOWN_METRICS``."""
    names = set(METRIC_NAME.findall(re.sub(r'"[^"]*"', '""', expr)))
    return [f"unknown metric {name!r} (deploy/README.md lists the names)"
            for name in sorted(names - KNOWN_METRICS)]


# --- Kubernetes ----------------------------------------------------------------------------

def load_yaml_documents(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yamlfiles.load_all(handle.read()) if doc is not None]


def k8s_problems(k8s_dir=DEPLOY / "k8s"):
    """Problems of the manifests applied from ``k8s_dir`` (its ``examples/`` apart)."""
    k8s_dir = Path(k8s_dir)
    problems = []
    docs = {}
    for path in sorted(k8s_dir.glob("*.y*ml")):
        try:
            docs[path.name] = load_yaml_documents(path)
        except yaml.YAMLError as exc:
            problems.append(f"{path.name}: not YAML: {exc}")
    deployments, services = {}, {}
    for name, documents in docs.items():
        for doc in documents:
            kind = doc.get("kind")
            where = f"{name}: {kind} {doc.get('metadata', {}).get('name')}"
            if kind not in ALLOWED_K8S_KINDS:
                problems.append(f"{where}: kind {kind!r} does not belong here"
                                + (" (Secrets are created with kubectl, never committed)"
                                   if kind == "Secret" else ""))
                continue
            if kind != "Kustomization" and kind != "Namespace" \
                    and doc["metadata"].get("namespace") != NAMESPACE:
                problems.append(f"{where}: not in namespace {NAMESPACE}")
            if kind == "Deployment":
                deployments[doc["metadata"]["name"]] = doc
                problems += [f"{where}: {p}" for p in deployment_problems(doc)]
            elif kind == "Service":
                services[doc["metadata"]["name"]] = doc
            elif kind == "ConfigMap":
                problems += [f"{where}: {p}" for p in configmap_problems(doc)]
            elif kind == "Kustomization":
                listed = set(doc.get("resources", []))
                expected = {n for n in docs if n != name}
                if listed != expected:
                    problems.append(f"{where}: resources {sorted(listed)} should be "
                                    f"{sorted(expected)}")
    for service, port in SERVICES.items():
        deployment, svc = deployments.get(service), services.get(service)
        if deployment is None or svc is None:
            problems.append(f"{service}: needs a Deployment and a Service named {service}")
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if env.get("SERVICE") != service:
            problems.append(f"{service}: the container must set SERVICE={service}")
        ports = [p.get("containerPort") for p in container.get("ports", [])]
        if ports != [port]:
            problems.append(f"{service}: containerPort should be {port}, not {ports}")
        if svc["spec"].get("selector") != deployment["spec"]["selector"]["matchLabels"]:
            problems.append(f"{service}: the Service selector does not match the Deployment")
        if [p.get("port") for p in svc["spec"].get("ports", [])] != [port]:
            problems.append(f"{service}: the Service should expose port {port}")
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/port") != str(port):
            problems.append(f"{service}: prometheus.io/port annotation should be {port}")
    problems += example_secret_problems(k8s_dir / "examples")
    return problems


def deployment_problems(doc):
    problems = []
    pod = doc["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken should be false (no API access needed)")
    for container in pod.get("containers", []):
        name = container.get("name")
        for probe in ("readinessProbe", "livenessProbe"):
            spec = container.get(probe)
            if not spec:
                problems.append(f"container {name}: no {probe}")
            elif spec.get("httpGet", {}).get("path") != "/health":
                problems.append(f"container {name}: {probe} should GET /health")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    problems.append(f"container {name}: no {bound}.{resource}")
        security = dict(pod_security, **container.get("securityContext", {}))
        if security.get("runAsNonRoot") is not True:
            problems.append(f"container {name}: runAsNonRoot must be true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation must be false")
        for entry in container.get("env", []):
            problems += [f"container {name}: {p}" for p in env_entry_problems(entry)]
        for source in container.get("envFrom", []):
            if not ({"configMapRef", "secretRef"} & set(source)):
                problems.append(f"container {name}: envFrom {source} is neither a ConfigMap "
                                "nor a Secret")
    return problems


def env_entry_problems(entry):
    name, value = entry.get("name", ""), entry.get("value")
    if value is None:
        source = entry.get("valueFrom", {})
        if SECRET_NAME.search(name) and "secretKeyRef" not in source:
            return [f"env {name} must come from a Secret (secretKeyRef)"]
        return []
    if SECRET_NAME.search(name) or name.endswith("_URI") or URL_WITH_PASSWORD.search(str(value)):
        return [f"env {name} has a literal value; secrets come from a Secret"]
    return []


def configmap_problems(doc):
    problems = []
    for key, value in (doc.get("data") or {}).items():
        if SECRET_NAME.search(key) or key.endswith("_URI") or URL_WITH_PASSWORD.search(str(value)):
            problems.append(f"{key} looks secret: it belongs in a Secret, not a ConfigMap")
    return problems


def example_secret_problems(examples_dir):
    """Example Secrets may hold placeholders ``<...>`` only, and must be named ``*.example.yaml``."""
    problems = []
    for path in sorted(Path(examples_dir).glob("*")):
        if not path.name.endswith(".example.yaml"):
            problems.append(f"examples/{path.name}: example files are named *.example.yaml")
            continue
        for doc in load_yaml_documents(path):
            if doc.get("data"):
                problems.append(f"examples/{path.name}: {doc['metadata']['name']} has base64 "
                                "data; use stringData with <placeholders>")
            for key, value in (doc.get("stringData") or {}).items():
                secret_part = _secret_part(str(value))
                if secret_part is not None and not PLACEHOLDER.fullmatch(secret_part):
                    problems.append(f"examples/{path.name}: {doc['metadata']['name']}.{key} "
                                    "holds a value, not a <placeholder>")
    return problems


def _secret_part(value):
    """The password of a URL with credentials, or the whole value when it is no URL."""
    match = re.search(r"://[^/@\s]*:([^@\s]+)@", value)
    if match:
        return match.group(1)
    return None if "://" in value else value


# --- RabbitMQ definitions ------------------------------------------------------------------

def definitions_problems(path=DEPLOY / "rabbitmq" / "definitions.json"):
    problems = []
    definitions = json.loads(Path(path).read_text(encoding="utf-8"))
    if [v.get("name") for v in definitions.get("vhosts", [])] != [VHOST]:
        problems.append(f"definitions: the one vhost should be {VHOST!r}")
    users = {u["name"]: u for u in definitions.get("users", [])}
    expected = set(SERVICES) | set(CLIENT_USERS)
    if set(users) != expected:
        problems.append(f"definitions: users {sorted(users)} should be {sorted(expected)}")
    for name, user in users.items():
        if "password" in user:
            problems.append(f"user {name}: a clear-text password is committed")
        if user.get("password_hash", "") != "":
            problems.append(f"user {name}: a password hash is committed; leave it empty "
                            "(render_definitions.py fills it from the environment)")
        tags = user.get("tags", [])
        tags = tags.split(",") if isinstance(tags, str) else tags
        wanted = ["monitoring"] if name == "monitoring" else []
        if [t for t in tags if t] != wanted:
            problems.append(f"user {name}: tags {tags} should be {wanted}")
    permissions = {}
    for entry in definitions.get("permissions", []):
        if entry.get("vhost") != VHOST:
            problems.append(f"permission of {entry.get('user')}: vhost should be {VHOST}")
        if entry.get("user") in permissions:
            problems.append(f"user {entry['user']}: two permission entries")
        permissions[entry.get("user")] = entry
        for kind in ("configure", "write", "read"):
            problems += _regex_problems(f"user {entry.get('user')} {kind}", entry.get(kind))
    for name in expected - set(permissions):
        problems.append(f"user {name}: no permissions on {VHOST}")
    for entry in definitions.get("topic_permissions", []):
        for kind in ("write", "read"):
            if entry["user"] in SERVICES and entry["exchange"] == "nameko-rpc" and kind == "write":
                continue  # a service answers to any reply queue and calls any service
            problems += _regex_problems(
                f"user {entry['user']} topic {kind} on {entry['exchange']}", entry.get(kind))
    return problems


def _regex_problems(label, regex):
    if regex is None:
        return [f"{label}: missing"]
    if not (regex.startswith("^") and regex.endswith("$")):
        return [f"{label}: {regex!r} is not anchored (^...$); RabbitMQ matches anywhere"]
    try:
        re.compile(regex)
    except re.error as exc:
        return [f"{label}: {regex!r} does not compile: {exc}"]
    if ".*" in regex.replace(r"\.*", ""):
        return [f"{label}: {regex!r} grants any name (.*)"]
    return []


class Access:
    """What a RabbitMQ client does, as the permissions it needs (RabbitMQ access control).

    Declaring a queue with kombu declares its exchange too; binding needs write on the
    queue, read on the exchange and, on a topic exchange, topic read for the routing key.
    """

    def __init__(self):
        self.configure, self.write, self.read = set(), set(), set()
        self.topic_write, self.topic_read = set(), set()

    def declare_exchange(self, exchange):
        self.configure.add(exchange)

    def declare_bound_queue(self, queue, exchange, routing_key):
        self.configure |= {queue, exchange}
        self.write.add(queue)
        self.read.add(exchange)
        self.topic_read.add((exchange, routing_key))

    def consume(self, queue):
        self.read.add(queue)

    def publish(self, exchange, routing_key):
        self.write.add(exchange)
        self.topic_write.add((exchange, routing_key))


SAMPLE_UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def rpc_client_access(access, client_service_name, calls):
    """A nameko RPC client: its reply queue, bound by a uuid, and the calls it publishes."""
    from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, get_rpc_exchange

    exchange = get_rpc_exchange({}).name
    reply = RPC_REPLY_QUEUE_TEMPLATE.format(client_service_name, SAMPLE_UUID)
    access.declare_bound_queue(reply, exchange, SAMPLE_UUID)
    access.consume(reply)
    for call in calls:
        access.publish(exchange, call)


def service_access(service_cls):
    """What nameko does for ``service_cls`` when it runs (from its entrypoints and dependencies)."""
    from nameko.events import BROADCAST, SERVICE_POOL, SINGLETON, EventDispatcher, EventHandler
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc, RpcProxy, get_rpc_exchange

    name = service_cls.name
    rpc_exchange = get_rpc_exchange({}).name
    access = Access()
    # Every pingxuan service may call others through ServiceRpc / the campaign fetch
    # (nameko's standalone ClusterRpcProxy) and answers to the callers' reply queues.
    rpc_client_access(access, "standalone_rpc_proxy", ["nomination.get_campaign"])
    access.publish(rpc_exchange, SAMPLE_UUID)
    for attr, value in inspect.getmembers(service_cls):
        if isinstance(value, EventDispatcher):
            access.declare_exchange(f"{name}.events")
            access.publish(f"{name}.events", "some_event")
        elif isinstance(value, RpcProxy):
            rpc_client_access(access, name, [f"{value.target_service}.some_method"])
        for entrypoint in getattr(value, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, Rpc):
                queue = RPC_QUEUE_TEMPLATE.format(name)
                access.declare_bound_queue(queue, rpc_exchange, f"{name}.*")
                access.consume(queue)
            elif isinstance(entrypoint, EventHandler):
                # The queue names of nameko/events.py EventHandler.setup.
                source, event = entrypoint.source_service, entrypoint.event_type
                if entrypoint.handler_type is SERVICE_POOL:
                    queue = f"evt-{source}-{event}--{name}.{attr}"
                elif entrypoint.handler_type is SINGLETON:
                    queue = f"evt-{source}-{event}"
                elif entrypoint.handler_type is BROADCAST:
                    queue = f"evt-{source}-{event}--{name}.{attr}-{SAMPLE_UUID.replace('-', '')}"
                access.declare_bound_queue(queue, f"{source}.events", event)
                access.consume(queue)
    return access


def admin_cli_access():
    """The ``pingxuan`` CLI: RPC to every service; token revocations (shared/cli/)."""
    access = Access()
    rpc_client_access(access, "standalone_rpc_proxy", [
        "nomination.load_campaign", "nomination.forfeits", "nomination.audit_trail",
        "aggregation.results", "aggregation.publish", "aggregation.finalize",
        "scoring.assign_panel", "scoring.close_panel", "voting.votes_page",
    ])
    access.declare_exchange("admin.events")
    for service in SERVICES:
        access.declare_bound_queue(
            f"evt-admin-token_revoked--{service}.on_token_revoked", "admin.events", "token_revoked")
    access.publish("admin.events", "token_revoked")
    return access


#: The calls township systems, voting front ends and judges' clients make (CONTRACT.md).
CLIENT_CALLS = [
    "nomination.submit", "nomination.amend", "nomination.withdraw", "nomination.get",
    "nomination.list", "nomination.get_campaign", "voting.cast", "voting.cast_many",
    "voting.ballot", "scoring.submit", "aggregation.publicity_list", "voting.health",
]


def rpc_client_access_of_contract():
    access = Access()
    rpc_client_access(access, "standalone_rpc_proxy", CLIENT_CALLS)
    return access


def refused_to_everyone_but(owner):
    """Things only ``owner`` may do, as an Access of another party that must be refused."""
    from nameko.rpc import RPC_QUEUE_TEMPLATE

    access = Access()
    access.consume(RPC_QUEUE_TEMPLATE.format(owner))
    access.publish(f"{owner}.events", "some_event")
    access.topic_read.add(("nameko-rpc", f"{owner}.*"))
    access.consume(f"evt-nomination-campaign_loaded--{owner}.on_campaign_loaded")
    return access


def _granted(permissions, user, kind, resource):
    entry = permissions.get(user)
    return bool(entry) and re.search(entry[kind], resource) is not None


def _topic_granted(topics, user, kind, exchange, routing_key):
    entry = topics.get((user, exchange))
    return entry is None or re.search(entry[kind], routing_key) is not None


def access_problems(definitions, user, access, allowed=True):
    """Problems if ``user`` may not do all of ``access`` (or, ``allowed=False``, may do any)."""
    permissions = {p["user"]: p for p in definitions["permissions"]}
    topics = {(t["user"], t["exchange"]): t for t in definitions.get("topic_permissions", [])}
    checks = [(kind, resource, _granted(permissions, user, kind, resource))
              for kind in ("configure", "write", "read")
              for resource in sorted(getattr(access, kind))]
    checks += [(f"topic {kind} on {exchange}", key,
                _topic_granted(topics, user, kind, exchange, key)
                and _granted(permissions, user, kind, exchange))
               for kind, pairs in (("write", access.topic_write), ("read", access.topic_read))
               for exchange, key in sorted(pairs)]
    if allowed:
        return [f"user {user} may not {kind} {resource!r}, which it needs"
                for kind, resource, granted in checks if not granted]
    return [f"user {user} may {kind} {resource!r}, which it must not"
            for kind, resource, granted in checks if granted]


def built_services():
    """Service name -> class, for each ``services/<name>/service.py`` that exists."""
    found = {}
    for name in SERVICES:
        if (ROOT / "services" / name / "service.py").exists():
            module = importlib.import_module(f"services.{name}.service")
            found[name] = getattr(module, f"{name.capitalize()}Service")
    return found


def permission_problems(path=DEPLOY / "rabbitmq" / "definitions.json", services=None):
    """The definitions against what each client really does, and what it must not do."""
    definitions = json.loads(Path(path).read_text(encoding="utf-8"))
    services = built_services() if services is None else services
    problems = []
    for name, service_cls in services.items():
        if service_cls.name != name:
            problems.append(f"{service_cls.__name__}.name is {service_cls.name!r}, not {name!r}")
        problems += access_problems(definitions, name, service_access(service_cls))
        for other in SERVICES:
            if other != name:
                problems += access_problems(definitions, name, refused_to_everyone_but(other),
                                            allowed=False)
    problems += access_problems(definitions, "admin-cli", admin_cli_access())
    problems += access_problems(definitions, "rpc-client", rpc_client_access_of_contract())
    forbidden = Access()
    for call in ("nomination.load_campaign", "nomination.review", "nomination.disqualify",
                 "aggregation.publish", "aggregation.finalize", "aggregation.results",
                 "scoring.assign_panel", "scoring.close_panel", "voting.votes_page",
                 "notification.send_direct"):
        forbidden.topic_write.add(("nameko-rpc", call))  # admin and service-only methods
    for service in SERVICES:
        problems += access_problems(definitions, "rpc-client", refused_to_everyone_but(service),
                                    allowed=False)
        problems += access_problems(definitions, "admin-cli", refused_to_everyone_but(service),
                                    allowed=False)
    problems += access_problems(definitions, "rpc-client", forbidden, allowed=False)
    everything = admin_cli_access()
    rpc_client_access(everything, "standalone_rpc_proxy", CLIENT_CALLS)
    problems += access_problems(definitions, "monitoring", everything, allowed=False)
    return problems


# --- compose ----------------------------------------------------------------------------

def compose_problems(path=DEPLOY / "docker-compose.yml",
                     example=DEPLOY / "compose.env.example"):
    """The compose file as written (before interpolation) and its env example."""
    text = Path(path).read_text(encoding="utf-8")
    compose = yamlfiles.load(text)
    problems = []
    uncommented = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in text.splitlines())
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", uncommented))
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for key, value in env.items():
            value = str(value)
            if SECRET_NAME.search(key) and not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value):
                problems.append(f"{name}: {key} must be ${{{key}:?...}} from the environment")
            if key == "AMQP_URI":
                user = "admin-cli" if name == "admin-cli" else name
                variable = "RABBITMQ_PASSWORD_" + user.upper().replace("-", "_")
                if not value.startswith(f"amqp://{user}:${{{variable}:?") \
                        or not value.endswith(f"/{VHOST}"):
                    problems.append(f"{name}: AMQP_URI should log in as {user} with "
                                    f"${{{variable}:?...}} to vhost {VHOST}")
        if name in SERVICES:
            if env.get("SERVICE") != name:
                problems.append(f"{name}: SERVICE should be {name}")
            if "replicaSet=" not in str(env.get("MONGO_URI", "")):
                problems.append(f"{name}: MONGO_URI should name the replica set")
            if not service.get("healthcheck"):
                problems.append(f"{name}: no healthcheck")
    for name in list(SERVICES) + ["rabbitmq", "mongo1", "mongo2", "mongo3", "mongo-init",
                                  "prometheus", "grafana"]:
        if name not in compose["services"]:
            problems.append(f"compose: no service {name}")
    listed = {}
    for line in Path(example).read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Z0-9_]+)=(.*)", line.strip())
        if match:
            listed[match.group(1)] = match.group(2)
    if set(listed) != required:
        problems.append(f"{Path(example).name}: lists {sorted(listed)}, compose requires "
                        f"{sorted(required)}")
    for key, value in listed.items():
        if value:
            problems.append(f"{Path(example).name}: {key} has a value; leave secrets empty")
    return problems


# --- Grafana --------------------------------------------------------------------------------

def dashboard_queries(path=DEPLOY / "grafana" / "dashboard-public-window.json"):
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target.get("expr", "")))
    return dashboard, queries


def grafana_to_promql(expr):
    """A dashboard query with Grafana's variables replaced, as Prometheus would receive it."""
    return (expr.replace("$__rate_interval", "1m").replace("$__range", "6h")
            .replace("$__interval", "15s").replace("$category", ".*"))


def dashboard_problems(path=DEPLOY / "grafana" / "dashboard-public-window.json", promtool="promtool"):
    dashboard, queries = dashboard_queries(path)
    problems = []
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append("dashboard: needs a uid and a title")
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("dashboard: panel ids repeat")
    for panel in dashboard["panels"]:
        if panel["type"] != "row" and not panel.get("targets"):
            problems.append(f"panel {panel['title']!r}: no query")
    for title, expr in queries:
        if not expr:
            problems.append(f"panel {title!r}: an empty query")
        problems += [f"panel {title!r}: {p}" for p in metric_name_problems(expr)]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(queries)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(rules, handle)
    try:
        result = subprocess.run([promtool, "check", "rules", handle.name],
                                capture_output=True, text=True)
    finally:
        Path(handle.name).unlink()
    if result.returncode != 0:
        problems.append("dashboard queries do not parse:\n" + result.stdout + result.stderr)
    return problems


def alert_problems(path=DEPLOY / "prometheus" / "alerts.yml"):
    """Alert and recording rules use only the documented metric names; alerts are labelled."""
    problems = []
    for group in yamlfiles.load(Path(path).read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            problems += [f"rule {name}: {p}" for p in metric_name_problems(rule["expr"])]
            if "alert" in rule:
                if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
                    problems.append(f"alert {name}: severity should be warning or critical")
                if not {"summary", "description"} <= set(rule.get("annotations", {})):
                    problems.append(f"alert {name}: needs a summary and a description")
    return problems


# --- image ----------------------------------------------------------------------------------

def dockerfile_problems(path=DEPLOY / "Dockerfile"):
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    problems = []
    stages = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    if len(stages) < 2:
        problems.append("Dockerfile: should be multi-stage (a builder and a runtime stage)")
    final = instructions[stages[-1]:] if stages else instructions
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problems.append("Dockerfile: the runtime stage must switch to a non-root USER")
    if not any(line.upper().startswith("HEALTHCHECK ") for line in final):
        problems.append("Dockerfile: no HEALTHCHECK in the runtime stage")
    if not any("pip wheel" in line for line in instructions[:stages[-1]] if stages):
        problems.append("Dockerfile: the builder stage should build wheels (pip wheel)")
    for line in instructions:
        if re.match(r"(ENV|ARG)\s", line, re.I) and SECRET_NAME.search(line):
            problems.append(f"Dockerfile: {line!r} puts a secret in the image")
    return problems


def package_data_problems(root=ROOT):
    """Files under shared/ and services/ that the wheel (hence the image) would not carry."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        shutil.copy(root / "pyproject.toml", source)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in ("shared", "services"):
            shutil.copytree(root / package, source / package, ignore=ignore)
        result = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()",
             "-q", "build_py", "--build-lib", str(Path(tmp) / "lib")],
            cwd=source, capture_output=True, text=True)
        if result.returncode != 0:
            return [f"setuptools build_py failed: {result.stderr.strip()[-2000:]}"]
        built = {p.relative_to(Path(tmp) / "lib") for p in (Path(tmp) / "lib").rglob("*")
                 if p.is_file()}
        for path in sorted((source / "shared").rglob("*")) + sorted((source / "services").rglob("*")):
            if path.suffix in DOCUMENTATION_SUFFIXES:
                continue  # read by people, not by the running service
            if path.is_file() and path.relative_to(source) not in built:
                problems.append(f"the wheel lacks {path.relative_to(source)}: add its pattern "
                                "(e.g. \"*.j2\") to [tool.setuptools.package-data] in pyproject.toml")
    return problems


def all_problems():
    sections = [
        ("kubernetes", k8s_problems),
        ("rabbitmq definitions", definitions_problems),
        ("rabbitmq permissions vs nameko", permission_problems),
        ("compose file", compose_problems),
        ("grafana dashboard", dashboard_problems),
        ("alert rules", alert_problems),
        ("Dockerfile", dockerfile_problems),
        ("wheel contents", package_data_problems),
    ]
    found = {}
    for title, check in sections:
        try:
            found[title] = check()
        except Exception as exc:  # a check that cannot run is a failure, said plainly
            found[title] = [f"check failed: {type(exc).__name__}: {exc}"]
    return found


def main():
    sys.path.insert(0, str(ROOT))
    failed = False
    for title, problems in all_problems().items():
        print(f"{title}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  - {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
