"""Real servers for the notification tests: an SMTP server (aiosmtpd) and an HTTP gateway stub.

The SMTP server runs in its own process (aiosmtpd's asyncio loop does not mix
with the eventlet-patched test process); it keeps every accepted mail as a
file and refuses, with 550, any recipient whose mailbox is ``nobody``. The
gateway runs in the test process on eventlet's WSGI server and answers as told:
a script of statuses, a default, or a hang until the test ends.
"""
import email
import email.policy
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import eventlet
import eventlet.wsgi
import pytest
from eventlet.event import Event

from tests.system import free_port

SMTP_SERVER = r'''
import sys, threading
from pathlib import Path
from aiosmtpd.controller import Controller

port, outbox = int(sys.argv[1]), Path(sys.argv[2])

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0] == "nobody":
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        count = len(list(outbox.iterdir()))
        name = outbox / ("%04d.eml" % count)
        name.with_suffix(".tmp").write_bytes(envelope.original_content)
        name.with_suffix(".tmp").rename(name)
        return "250 Message accepted for delivery"

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
sys.stdin.read()          # until the test closes our stdin
controller.stop()
'''


class SmtpServer:
    """A local SMTP server in a child process; ``mails()`` are the messages it accepted."""

    def __init__(self, directory):
        self.outbox = Path(directory)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-c", SMTP_SERVER, str(self.port),
                                         str(self.outbox)], stdin=subprocess.PIPE)
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the test SMTP server did not start")
                time.sleep(0.05)

    def settings(self, **extra):
        return {"host": "127.0.0.1", "port": self.port, "sender": "pingxuan@example.cn",
                "timeout_seconds": 5, **extra}

    def mails(self):
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(self.outbox.glob("*.eml"))]

    def clear(self):
        for path in self.outbox.glob("*.eml"):
            path.unlink()

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Gateway:
    """An HTTP gateway stub on 127.0.0.1 that records each request and answers as scripted."""

    def __init__(self):
        self.requests = []
        self.script = []          # statuses for the next requests, in order
        self.default = 200
        self.hang = False
        self.released = Event()
        self.socket = eventlet.listen(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/sms"
        self.thread = eventlet.spawn(eventlet.wsgi.server, self.socket, self.app,
                                     log_output=False, debug=False)

    def app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        request = {"path": environ["PATH_INFO"], "headers": headers, "body": body,
                   "json": json.loads(body) if body else None, "status": None}
        self.requests.append(request)
        if self.hang:
            self.released.wait()
        status = request["status"] = self.script.pop(0) if self.script else self.default
        answer = ({"Code": "OK", "Message": "OK", "BizId": f"biz-{len(self.requests)}"}
                  if status == 200 else {"Code": "InternalError", "Message": "服务繁忙"})
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "application/json")])
        return [json.dumps(answer).encode("utf-8")]

    def accepted(self):
        """The requests it answered with 200 (the messages it took)."""
        return [r for r in self.requests if r["status"] == 200]

    def stop(self):
        if not self.released.ready():
            self.released.send()
        self.thread.kill()
        self.socket.close()


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory):
    server = SmtpServer(tmp_path_factory.mktemp("mail"))
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server):
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def gateway():
    stub = Gateway()
    yield stub
    stub.stop()
