"""Checks of the deployment files that need neither Docker, a cluster nor a broker.

Each ``*_problems`` function returns a list of plain-English problems (empty when
all is well), so that ``deploy/check.sh`` prints them and ``tests/unit/test_deploy.py``
asserts on them, including on broken copies to show each check can fail.

* Kubernetes manifests: kinds, probes (readiness on /ready, liveness on /health), resource requests and limits,
  non-root, secrets only through ``secretKeyRef``/``envFrom``, no Secret committed; a
  PodDisruptionBudget per service that neither blocks a drain nor protects nothing; the
  NetworkPolicies against who may reach whom (deploy/README.md, "Security: the network").
* Prometheus: the Kubernetes scrape config's relabelling run on the Deployments' pods (each
  replica its own target), the compose one asking DNS for every container.
* RabbitMQ definitions: one user per kind of client, no password in clear, anchored
  least-privilege regexes; and those regexes against what nameko really declares,
  binds, consumes and publishes for each service class that exists (its entrypoints
  and dependencies, read from the class), for the admin CLI and for RPC clients.
* The compose file as written: secrets only as ``${VAR:?...}``, each service with its
  own RabbitMQ and MongoDB user, the replica set's members with a keyFile; the env
  example naming exactly the variables compose requires.
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
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|API_?KEY|PRIVATE|"
                         r"(?:SERVICE|ISSUER)_KEY$", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]+@")
PLACEHOLDER = re.compile(r"<[^<>]+>")
DOCUMENTATION_SUFFIXES = {".md", ".rst"}
ALLOWED_K8S_KINDS = {"Namespace", "ConfigMap", "Deployment", "Service", "Kustomization",
                     "PodDisruptionBudget", "NetworkPolicy"}

# --- who may talk to whom (k8s/network-policies.yaml; deploy/README.md, "Security") ---------
NAME_LABEL = "app.kubernetes.io/name"
#: NetworkPolicy peers by what they are; a peer not listed here is a problem.
PROMETHEUS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                   "podSelector": {"matchLabels": {NAME_LABEL: "prometheus"}}}
INGRESS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                "podSelector": {"matchLabels": {NAME_LABEL: "ingress-nginx"}}}
DNS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
#: The pages people open: the voting page (voting), the 公示 page (aggregation), the
#: judge's page (scoring: judges score from their phones with a personal link) and the
#: department's web console (console).
PUBLIC_PAGES = {"voting", "aggregation", "scoring", "console"}
#: Which pods may reach each backend, by the ports they listen on.
BACKEND_PORTS = {"RabbitMQ": {5672, 5671}, "MongoDB": {27017}, "DNS": {53}}
MAY_REACH = {"RabbitMQ": set(SERVICES) | {"admin-cli"}, "MongoDB": set(SERVICES) | {"backup"},
             "DNS": set(SERVICES) | {"admin-cli", "backup"}}
#: The pods that may have a NetworkPolicy: the services, an admin CLI pod, a backup pod.
POLICY_COMPONENTS = set(SERVICES) | {"admin-cli", "backup"}
#: Outside the cluster (the SMS gateway over HTTPS, SMTP): notification only.
EXTERNAL_PORTS = {443, 465, 587}
MAY_REACH_OUTSIDE = {"notification"}
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}

# Metric names the dashboard and the alerts may use (deploy/README.md, "Metric names").
KNOWN_METRICS = {
    "up",
    "pingxuan_rpc_seconds_bucket", "pingxuan_event_handler_seconds_bucket",
    "pingxuan_errors_total", "pingxuan_events_total", "pingxuan_votes_total", "pingxuan_vote_cast_seconds_bucket",
    "pingxuan_aggregation_event_lag_seconds_bucket", "pingxuan:votes:rate5m",
    "pingxuan_one_time_codes_total", "pingxuan_notifications_total",
    "pingxuan_notification_messages",
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
    deployments, services, budgets, policies = {}, {}, [], []
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
            elif kind == "PodDisruptionBudget":
                budgets.append(doc)
            elif kind == "NetworkPolicy":
                policies.append(doc)
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
        problems += [f"{service}: {p}" for p in key_problems(service, container.get("env", []))]
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
    problems += disruption_budget_problems(budgets, deployments)
    problems += network_policy_problems(policies)
    problems += example_secret_problems(k8s_dir / "examples")
    return problems


def disruption_budget_problems(budgets, deployments):
    """One PodDisruptionBudget per service, selecting its pods, that neither blocks nor is idle.

    A budget that keeps the only replica blocks every node drain; one that lets every
    replica go protects nothing.
    """
    problems = []
    for service in SERVICES:
        deployment = deployments.get(service)
        if deployment is None:
            continue
        labels = deployment["spec"]["selector"]["matchLabels"]
        mine = [b for b in budgets if b["spec"].get("selector", {}).get("matchLabels") == labels]
        if len(mine) != 1:
            problems.append(f"{service}: needs one PodDisruptionBudget selecting its pods "
                            f"({labels}), has {len(mine)}")
            continue
        spec, replicas = mine[0]["spec"], deployment["spec"].get("replicas", 1)
        bounds = {"minAvailable", "maxUnavailable"} & set(spec)
        if len(bounds) != 1 or any(not isinstance(spec[b], int) for b in bounds):
            problems.append(f"{service}: its PodDisruptionBudget needs minAvailable or "
                            "maxUnavailable as a number of pods (one of them)")
            continue
        left_at_most = replicas - spec["maxUnavailable"] if "maxUnavailable" in spec \
            else spec["minAvailable"]
        if left_at_most >= replicas:
            problems.append(f"{service}: its PodDisruptionBudget allows no eviction of its "
                            f"{replicas} replica(s): every node drain would block")
        elif replicas > 1 and left_at_most < 1:
            problems.append(f"{service}: its PodDisruptionBudget lets all {replicas} replicas "
                            "go at once: it protects nothing")
    return problems


def network_policy_problems(policies):
    """The namespace denies by default; each pod may reach only what its job needs.

    In: Prometheus to each service's HTTP port, the ingress controller to the pages
    people open (voting, 公示, the judge's, the department's console) only. Out: DNS; RabbitMQ for the services and the admin CLI; MongoDB for the
    services only; the world outside the cluster (SMS, SMTP) for notification only.
    """
    problems = []
    if not any(_selects_everything(p) and set(p["spec"].get("policyTypes", [])) >=
               {"Ingress", "Egress"} and not p["spec"].get("ingress")
               and not p["spec"].get("egress") for p in policies):
        problems.append("network: no default-deny NetworkPolicy (podSelector {}, Ingress and "
                        "Egress, no rules): pods without a policy could reach anything")
    reached = {}
    for policy in policies:
        name, spec = policy["metadata"]["name"], policy["spec"]
        if _selects_everything(policy):
            if spec.get("ingress") or spec.get("egress"):
                problems.append(f"network policy {name}: opens every pod of the namespace")
            continue
        component = spec["podSelector"].get("matchLabels", {}).get(NAME_LABEL)
        if component not in POLICY_COMPONENTS:
            problems.append(f"network policy {name}: selects {component!r}, not a pingxuan pod")
            continue
        if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
            problems.append(f"network policy {name}: policyTypes should be Ingress and Egress")
        where = f"network policy {name}"
        problems += _ingress_problems(where, component, spec.get("ingress") or [],
                                      reached.setdefault(component, set()))
        problems += _egress_problems(where, component, spec.get("egress") or [],
                                     reached[component])
    for service in SERVICES:
        for needed in ("Prometheus", "RabbitMQ", "MongoDB", "DNS"):
            if needed not in reached.get(service, set()):
                problems.append(f"{service}: no NetworkPolicy lets it "
                                + ("be scraped by Prometheus" if needed == "Prometheus"
                                   else f"reach {needed}"))
    for page in sorted(PUBLIC_PAGES):
        if "ingress controller" not in reached.get(page, set()):
            problems.append(f"{page}: the ingress controller cannot reach its public page")
    return problems


def _selects_everything(policy):
    return not policy["spec"].get("podSelector", {}).get("matchLabels")


def _rule_ports(rule):
    return {port.get("port") for port in rule.get("ports") or []}


def _ingress_problems(where, component, rules, reached):
    problems = []
    own_port = SERVICES.get(component)
    for rule in rules:
        peers, ports = rule.get("from"), _rule_ports(rule)
        if not peers or not ports:
            problems.append(f"{where}: an ingress rule without 'from' and 'ports' lets "
                            "anyone in, on any port")
            continue
        if ports != {own_port}:
            problems.append(f"{where}: ingress on ports {sorted(ports, key=str)}; only "
                            f"{own_port} serves anything")
        for peer in peers:
            if peer == PROMETHEUS_PEER:
                reached.add("Prometheus")
            elif peer == INGRESS_PEER and component in PUBLIC_PAGES:
                reached.add("ingress controller")
            elif peer == INGRESS_PEER:
                problems.append(f"{where}: the ingress controller may reach {component}, "
                                "which has no public page")
            else:
                problems.append(f"{where}: ingress from {peer}, neither Prometheus nor the "
                                "ingress controller")
    return problems


def _egress_problems(where, component, rules, reached):
    problems = []
    for rule in rules:
        peers, ports = rule.get("to"), _rule_ports(rule)
        if not peers or not ports:
            problems.append(f"{where}: an egress rule without 'to' and 'ports' lets it "
                            "reach anything")
            continue
        for backend, backend_ports in BACKEND_PORTS.items():
            if not ports & backend_ports:
                continue
            if component not in MAY_REACH[backend]:
                problems.append(f"{where}: {component} may reach {backend}, which it "
                                "does not need")
            elif backend == "DNS" and any(peer != DNS_PEER for peer in peers):
                problems.append(f"{where}: DNS goes to kube-dns only")
            elif backend != "DNS" and any(
                    peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in peers):
                problems.append(f"{where}: {backend} is reached at any address (0.0.0.0/0)")
            else:
                reached.add(backend)
        outside = ports - set().union(*BACKEND_PORTS.values())
        if not outside:
            continue
        if component not in MAY_REACH_OUTSIDE or not outside <= EXTERNAL_PORTS:
            problems.append(f"{where}: {component} may reach ports {sorted(outside)}, "
                            "which it does not need")
            continue
        for peer in peers:
            block = peer.get("ipBlock")
            if block is None or not PRIVATE_RANGES <= set(block.get("except", [])):
                problems.append(f"{where}: the way out of the cluster must be an ipBlock "
                                f"that excepts the private ranges {sorted(PRIVATE_RANGES)}, "
                                "so it cannot reach pods or the backends")
    return problems


#: The HTTP path each probe of a service container must ask.
PROBE_PATHS = {"startupProbe": "/health", "readinessProbe": "/ready", "livenessProbe": "/health"}


def deployment_problems(doc):
    problems = []
    pod = doc["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken should be false (no API access needed)")
    for container in pod.get("containers", []):
        name = container.get("name")
        # Readiness asks MongoDB and RabbitMQ (/ready); liveness and start-up stay local
        # (/health), so that an outage of either takes pods out of service, not restarts them.
        for probe, path in PROBE_PATHS.items():
            spec = container.get(probe)
            if not spec:
                problems.append(f"container {name}: no {probe}")
            elif spec.get("httpGet", {}).get("path") != path:
                problems.append(f"container {name}: {probe} should GET {path}")
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


def key_problems(service, env):
    """A service is given public keys and its own private key, from its own Secret, no other."""
    problems = []
    names = {entry.get("name"): entry for entry in env}
    own = f"{service.upper()}_SERVICE_KEY"
    for name in names:
        if name.endswith("_SERVICE_KEY") and name != own:
            problems.append(f"{name} is another service's private key")
        if name in ("PINGXUAN_ISSUER_KEY", "PINGXUAN_SECRET"):
            problems.append(f"{name}: the issuer's key stays with the operator")
    for name in ("PINGXUAN_TOKEN_PUBLIC_KEYS", "PINGXUAN_SERVICE_PUBLIC_KEYS", own):
        if name not in names:
            problems.append(f"no {name}")
    source = names.get(own, {}).get("valueFrom", {}).get("secretKeyRef", {})
    if own in names and source.get("name") != f"pingxuan-{service}":
        problems.append(f"{own} must come from the Secret pingxuan-{service}")
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

    def declare_dead_lettering_queue(self, queue, exchange, routing_key):
        """A bound queue with a dead-letter exchange: RabbitMQ also asks for read on the
        queue and write on the dead-letter exchange."""
        self.declare_bound_queue(queue, exchange, routing_key)
        self.read.add(queue)
        self.write.add(exchange)

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

    from shared import handlers
    from shared.handlers import ReliableEventHandler

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
                if isinstance(entrypoint, ReliableEventHandler):
                    # shared/handlers.py: the service's retry exchange, where its handler
                    # queue, retry queue (dead-lettering back) and parking queue are bound.
                    exchange = handlers.retry_exchange_name(name)
                    retry, parked = handlers.retry_queue_name(queue), handlers.parking_queue_name(name)
                    access.declare_exchange(exchange)
                    access.declare_bound_queue(queue, exchange, queue)
                    access.declare_dead_lettering_queue(retry, exchange, retry)
                    access.declare_bound_queue(parked, exchange, parked)
                    access.write.add(exchange)  # retries and parked events are published there
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
    from shared.handlers import parking_queue_name, retry_exchange_name

    for service in SERVICES:
        # ``pingxuan events parked`` / ``replay`` (shared/cli/events.py).
        exchange, parked = retry_exchange_name(service), parking_queue_name(service)
        access.declare_bound_queue(parked, exchange, parked)
        access.consume(parked)
        access.write.add(exchange)
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
        if name not in SERVICES and "PINGXUAN_ISSUER_KEY" in env:
            problems.append(f"{name}: PINGXUAN_ISSUER_KEY in the compose file; mount the key file")
        if name in SERVICES:
            problems += [f"{name}: {p}" for p in key_problems(
                name, [{"name": key, "valueFrom": {"secretKeyRef": {"name": f"pingxuan-{name}"}}}
                       for key in env])]
            if env.get("SERVICE") != name:
                problems.append(f"{name}: SERVICE should be {name}")
            mongo_uri = str(env.get("MONGO_URI", ""))
            if "replicaSet=" not in mongo_uri:
                problems.append(f"{name}: MONGO_URI should name the replica set")
            if not mongo_uri.startswith(f"mongodb://{name}:${{MONGO_PASSWORD_{name.upper()}:?"):
                problems.append(f"{name}: MONGO_URI should log in as its own MongoDB user "
                                f"{name} with ${{MONGO_PASSWORD_{name.upper()}:?...}}")
        if name in ("mongo1", "mongo2", "mongo3"):
            command = service.get("command") or []
            if "--keyFile" not in command:
                problems.append(f"{name}: mongod must run with --keyFile (members authenticate "
                                "each other, and clients must log in)")
            if not service.get("healthcheck"):
                problems.append(f"{name}: no healthcheck")
    for name in list(SERVICES) + ["rabbitmq", "mongo1", "mongo2", "mongo3", "mongo-init",
                                  "mongo-keyfile", "prometheus", "grafana"]:
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


# --- Prometheus: what each scrape config really scrapes -------------------------------------

def relabel(labels, configs):
    """Prometheus's relabelling (actions replace, keep, drop) of one target; ``None`` if dropped.

    Regexes are anchored at both ends, as Prometheus anchors them (RE2 and Python agree on
    the expressions used here).
    """
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(labels.get(name, "")
                                                   for name in config.get("source_labels", []))
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", config.get("replacement", "$1"))
            result = match.expand(replacement)
            if result:
                labels[config["target_label"]] = result
            else:
                labels.pop(config["target_label"], None)
        elif action not in ("replace", "keep", "drop"):
            raise ValueError(f"relabel action {action!r} is not simulated here")
    return labels


def _label_name(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def pod_targets(deployment, replicas=None, phase="Running"):
    """The targets Prometheus's pod discovery makes of a Deployment's pods: one per container port."""
    template = deployment["spec"]["template"]
    name = deployment["metadata"]["name"]
    targets = []
    for index in range(replicas or deployment["spec"].get("replicas", 1)):
        ip = f"10.1.{len(name)}.{index + 10}"
        meta = {"__meta_kubernetes_namespace": deployment["metadata"].get("namespace", ""),
                "__meta_kubernetes_pod_name": f"{name}-5d8f9c-{index}",
                "__meta_kubernetes_pod_ip": ip, "__meta_kubernetes_pod_phase": phase,
                "__metrics_path__": "/metrics", "__scheme__": "http"}
        for key, value in (template["metadata"].get("labels") or {}).items():
            meta[f"__meta_kubernetes_pod_label_{_label_name(key)}"] = str(value)
        for key, value in (template["metadata"].get("annotations") or {}).items():
            meta[f"__meta_kubernetes_pod_annotation_{_label_name(key)}"] = str(value)
        for container in template["spec"]["containers"]:
            for port in container.get("ports") or [{"containerPort": None}]:
                number = port.get("containerPort")
                targets.append(dict(meta, __address__=f"{ip}:{number}" if number else ip,
                                    __meta_kubernetes_pod_container_name=container["name"]))
    return targets


def scraped(job, targets):
    """``(address, path, labels without __)`` of each target the job keeps."""
    kept = []
    for target in targets:
        labels = relabel(target, job.get("relabel_configs") or [])
        if labels is not None:
            kept.append((labels["__address__"], labels.get("__metrics_path__"),
                         {k: v for k, v in labels.items() if not k.startswith("__")}))
    return kept


def kubernetes_scrape_problems(path=DEPLOY / "prometheus" / "prometheus.yml",
                               k8s_dir=DEPLOY / "k8s", promtool="promtool"):
    """The Kubernetes config scrapes every pod of every service by pod discovery, and no other.

    Debian's promtool is built without Kubernetes discovery, so the rest of the file is
    checked by promtool with the discovery blocks replaced by static ones.
    """
    config = yamlfiles.load(Path(path).read_text(encoding="utf-8"))
    problems = []
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    job = jobs.get("pingxuan")
    if job is None:
        return [f"{Path(path).name}: no job pingxuan"]
    sd = job.get("kubernetes_sd_configs") or []
    if job.get("static_configs") or len(sd) != 1 or sd[0].get("role") != "pod":
        problems.append(f"{Path(path).name}: job pingxuan must discover pods "
                        "(kubernetes_sd_configs, role pod), not name addresses")
    elif sd[0].get("namespaces", {}).get("names") != [NAMESPACE]:
        problems.append(f"{Path(path).name}: pod discovery should watch namespace {NAMESPACE} only")
    deployments = {doc["metadata"]["name"]: doc
                   for file in sorted(Path(k8s_dir).glob("*.yaml"))
                   for doc in load_yaml_documents(file) if doc.get("kind") == "Deployment"}
    for service, deployment in sorted(deployments.items()):
        replicas = max(deployment["spec"].get("replicas", 1), 2)
        got = scraped(job, pod_targets(deployment, replicas))
        port = SERVICES.get(service)
        expected = {f"10.1.{len(service)}.{index + 10}:{port}" for index in range(replicas)}
        if {address for address, _, _ in got} != expected or len(got) != replicas:
            problems.append(f"{Path(path).name}: {service}'s {replicas} pods should be scraped "
                            f"each at its own address {sorted(expected)}, got "
                            f"{sorted(a for a, _, _ in got)}")
            continue
        for address, metrics_path, labels in got:
            if metrics_path != "/metrics" or labels.get("service") != service \
                    or not labels.get("pod"):
                problems.append(f"{Path(path).name}: {service} pod {address} is scraped at "
                                f"{metrics_path} with labels {labels}; want /metrics, "
                                f"service={service} and its pod")
        if scraped(job, pod_targets(deployment, 1, phase="Pending")):
            problems.append(f"{Path(path).name}: a Pending {service} pod is scraped")
    strangers = [("not annotated", {"prometheus.io/scrape": "false"}, "pingxuan"),
                 ("another application", None, "someone-else")]
    sample = next(iter(deployments.values()), None)
    for what, annotations, part_of in strangers if sample else []:
        other = json.loads(json.dumps(sample))
        template = other["spec"]["template"]["metadata"]
        template["labels"]["app.kubernetes.io/part-of"] = part_of
        if annotations:
            template["annotations"] = dict(template.get("annotations") or {}, **annotations)
        if scraped(job, pod_targets(other, 1)):
            problems.append(f"{Path(path).name}: a pod of {what} would be scraped")
    for other in config.get("scrape_configs", []):
        if other.pop("kubernetes_sd_configs", None):
            other["static_configs"] = [{"targets": ["discovered-by-kubernetes:1"]}]
    config["rule_files"] = [str(Path(path).parent / name) for name in config.get("rule_files", [])]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(config, handle)
    try:
        result = subprocess.run([promtool, "check", "config", handle.name],
                                capture_output=True, text=True)
    finally:
        Path(handle.name).unlink()
    if result.returncode != 0:
        problems.append(f"{Path(path).name} (discovery replaced by static targets) does not "
                        "pass promtool:\n" + result.stdout + result.stderr)
    return problems


def compose_scrape_problems(path=DEPLOY / "prometheus" / "prometheus-compose.yml",
                            compose=DEPLOY / "docker-compose.yml"):
    """The compose config asks Docker's DNS for every container of each service, on its port."""
    config = yamlfiles.load(Path(path).read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    job = jobs.get("pingxuan") or {}
    problems = []
    if job.get("static_configs"):
        problems.append(f"{Path(path).name}: job pingxuan names fixed addresses; with more "
                        "than one container per service only one would be scraped")
    wanted = {service: port for service, port in SERVICES.items()}
    found = {}
    for entry in job.get("dns_sd_configs") or []:
        if entry.get("type", "SRV") != "A":
            problems.append(f"{Path(path).name}: dns_sd_configs should ask A records")
        for name in entry.get("names", []):
            found[name] = entry.get("port")
    if found != wanted:
        problems.append(f"{Path(path).name}: job pingxuan should ask DNS for {wanted}, asks {found}")
    for service, port in found.items():
        labels = relabel({"__address__": f"172.18.0.9:{port}", "__meta_dns_name": service},
                         job.get("relabel_configs") or [])
        if labels is None or labels.get("service") != service:
            problems.append(f"{Path(path).name}: {service}'s containers are not labelled "
                            f"service={service}")
    command = " ".join(yamlfiles.load(Path(compose).read_text(encoding="utf-8"))
                       ["services"]["prometheus"].get("command", []))
    if f"--config.file=/etc/prometheus/{Path(path).name}" not in command:
        problems.append(f"compose: prometheus should run with {Path(path).name}")
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
        ("prometheus on kubernetes", kubernetes_scrape_problems),
        ("prometheus on compose", compose_scrape_problems),
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
