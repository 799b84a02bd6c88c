"""Services that do nothing: the framework's own cost, the baselines of ``system_load.py``.

Issue 14: ``voting.cast`` should cost at most a tenth more than a no-op nameko RPC, and
``POST /api/votes`` on voting's page at most a quarter more than "a no-op ``@http``
entrypoint of the same service", both driven by the same client code in the same run.

* ``VotingNoop`` is that baseline: voting's own service class (its dependency providers,
  injected into every worker, its timers and consumers, its web server and ``max_workers``)
  with ``cast``, ``cast_many`` and ``POST /api/votes`` replaced by entrypoints that read the
  request and answer without doing anything. It runs as a process of its own
  (``voting_noop``, voting's config and environment), so the shipped service carries no
  benchmark code and no flag that could be left on.
* ``NoopService`` is the bare framework (a service without dependencies), printed beside it
  for information: what voting's dependency providers cost per call is the difference.
"""
import json

from nameko.rpc import rpc as nameko_rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from services.voting.service import VotingService
from shared.entrypoints import rpc as pingxuan_rpc


def _accepted(vote):
    return {"status": "accepted", "vote_id": vote.get("vote_id") if isinstance(vote, dict) else None}


def noop_entrypoints(rpc):
    """``cast``, ``cast_many`` and ``POST /api/votes`` that read the request and do nothing,
    on the RPC entrypoint ``rpc``. Named as voting's own (``api_vote``), so that on
    ``VotingNoop`` they take their place; there they are voting's own entrypoint (one service's
    RPC methods share one queue, and two kinds of consumer on it would split its calls)."""

    class NoopEntrypoints:
        @rpc
        def cast(self, vote):
            return _accepted(vote)

        @rpc
        def cast_many(self, votes):
            return [_accepted(vote) for vote in votes]

        @http("POST", "/api/votes")
        def api_vote(self, request):
            json.loads(request.get_data(as_text=True) or "{}")  # read, as voting's request is
            return Response(json.dumps({"status": "accepted"}), mimetype="application/json")

    return NoopEntrypoints


class NoopService(noop_entrypoints(nameko_rpc)):
    """The bare framework: nameko's own RPC entrypoint, whose replies wait for a confirm."""
    name = "noop"


class VotingNoop(noop_entrypoints(pingxuan_rpc), VotingService):
    name = "voting_noop"


class NoopOnOurRpc(noop_entrypoints(pingxuan_rpc)):
    """``NoopService`` on every service's own RPC entrypoint (``shared.entrypoints.rpc``):
    against ``NoopService``, what our reply path saves per call (``benchmarks/rpc_replies.py``)."""
    name = "noop_ours"
