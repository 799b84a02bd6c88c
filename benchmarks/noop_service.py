"""A service that does nothing: the framework's own cost, the baseline of ``system_load.py``.

``voting.cast`` should cost at most a tenth more than this ``noop.cast`` (one nameko RPC),
and ``POST /api/votes`` on voting's page at most a quarter more than this one (one nameko
``@http`` request on the same web server machinery: nameko's ``WebServer``, werkzeug,
eventlet), both driven by the same client code in the same run (issue 14).

Decision: a service of its own rather than a no-op route on voting behind a benchmark flag,
so that the shipped service carries no benchmark code and no flag that could be left on.
It runs with voting's ``max_workers``; what it does not share is voting's process (its
timers, its other consumers), which makes it a slightly kinder baseline, not a harsher one.
"""
import json

from nameko.rpc import rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response


class NoopService:
    name = "noop"

    @rpc
    def cast(self, vote):
        return {"status": "accepted", "vote_id": vote.get("vote_id")}

    @rpc
    def cast_many(self, votes):
        return [{"status": "accepted", "vote_id": vote.get("vote_id")} for vote in votes]

    @http("POST", "/api/votes")
    def page_vote(self, request):
        json.loads(request.get_data(as_text=True) or "{}")  # a request is read, as voting's is
        return Response(json.dumps({"status": "accepted"}), mimetype="application/json")
