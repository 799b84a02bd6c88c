"""Start the whole system with ``pingxuan up`` in isolation, for end-to-end and browser tests.

Each run gets its own RabbitMQ vhost (made through the management API), its own
PINGXUAN_HOME and free HTTP ports, so it never meets another run's services.
"""
import os
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests

from shared.cli import SERVICES

ROOT = Path(__file__).resolve().parents[1]
MANAGEMENT = "http://127.0.0.1:15672/api"
GUEST = ("guest", "guest")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def isolated_vhost():
    """A fresh vhost with full rights for guest; its AMQP URI."""
    vhost = f"pxtest-{uuid.uuid4().hex[:10]}"
    requests.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/permissions/{vhost}/guest", auth=GUEST, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        requests.delete(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST, timeout=10)


class System:
    """A running system: ``pingxuan(*args)`` runs the CLI against it; ``http(service)`` is its address."""

    def __init__(self, amqp_uri, home, extra_env=None):
        self.env = dict(os.environ, AMQP_URI=amqp_uri, PINGXUAN_HOME=str(home))
        # The run's own keys, made by `pingxuan up` in its home: none from the calling shell.
        for variable in [v for v in self.env if v.endswith("_SERVICE_KEY")] + [
                "PINGXUAN_SECRET", "PINGXUAN_ISSUER_KEY", "PINGXUAN_TOKEN_PUBLIC_KEYS",
                "PINGXUAN_SERVICE_PUBLIC_KEYS", "PINGXUAN_CLOCK_ANCHOR"]:
            self.env.pop(variable, None)
        for name, (variable, _) in SERVICES.items():
            self.env[variable] = f"127.0.0.1:{free_port()}"
        self.env.update(extra_env or {})
        self.amqp_uri = amqp_uri

    def http(self, service):
        return self.env[SERVICES[service][0]]

    def pingxuan(self, *args, check=True, timeout=180):
        done = subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(
                f"pingxuan {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def token(self, role, name, unit=None):
        args = ["token", "issue", "--role", role, "--name", name] + (["--unit", unit] if unit else [])
        return self.pingxuan(*args).stdout.strip().splitlines()[-1]


@contextmanager
def running_system(home, amqp_uri=None, extra_env=None):
    """``pingxuan up`` (in a fresh vhost unless ``amqp_uri`` is given); ``pingxuan down`` after."""
    if amqp_uri is None:
        with isolated_vhost() as uri, running_system(home, uri, extra_env) as system:
            yield system
        return
    system = System(amqp_uri, home, extra_env)
    system.up = system.pingxuan("up")
    try:
        yield system
    finally:
        system.pingxuan("down", check=False)
