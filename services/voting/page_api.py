"""The page's JSON API (``/api/…``, documented at ``/api/openapi.json``), for the page's own
scripts and for clients written from that document.

A mixin of ``VotingService`` (nameko finds entrypoints only on the service class). The same
steps as the HTML page; a refusal is ``{error, message (Chinese), fields}`` with its status.
"""
import time

from nameko.web.handlers import http

from shared.entrypoints import json_response
from shared.errors import PingxuanError
from shared.validation import load
from services.voting import messages, openapi, schemas, web

#: Built once: building a schema costs more than loading a vote with it.
PAGE_VOTE_SCHEMA = schemas.PageVote()


def refusal(error, settings=None):
    """A refusal as the JSON API answers it."""
    body = {"error": error.exc_type, "message": messages.refusal_zh(error, settings)}
    if getattr(error, "messages", None):
        body["fields"] = error.messages
    return json_response(body, web.status_of(error))


class PageApi:
    """The JSON API's entrypoints."""

    @http("GET", "/api/openapi.json")
    def api_openapi(self, request):
        return json_response(openapi.document())

    @http("GET", "/api/campaigns/<campaign_id>/ballot")
    def api_ballot(self, request, campaign_id):
        try:
            campaign = self.campaigns.get(campaign_id)
            self._catch_up_ballot(campaign.id)
            return json_response(self._ballot_view(campaign))
        except PingxuanError as error:
            return refusal(error)

    @http("POST", "/api/codes")
    def api_send_code(self, request):
        try:
            data = load(schemas.CodeRequest(), web.json_body(request), "body")
            return json_response(self._send_code(data, self._client_ip(request)))
        except PingxuanError as error:
            return refusal(error)

    @http("POST", "/api/codes/verify")
    def api_verify(self, request):
        try:
            data = load(schemas.CodeCheck(), web.json_body(request), "body")
            return json_response(self._verify_code(data))
        except PingxuanError as error:
            return refusal(error)

    @http("POST", "/api/votes")
    def api_vote(self, request):
        started = time.perf_counter()
        try:
            data = load(PAGE_VOTE_SCHEMA, web.json_body(request), "body")
            outcome = self._resident_vote(request, data["campaign_id"], data,
                                          web.bearer(request), loaded=True)
        except PingxuanError as error:
            return refusal(error)
        finally:
            self.metrics.cast_seconds.labels("page").observe(time.perf_counter() - started)
        if outcome.error is not None:
            return refusal(outcome.error, outcome.settings)
        return json_response(outcome.reply)

    @http("GET", "/api/receipts/<receipt>")
    def api_receipt(self, request, receipt):
        try:
            return json_response(self.check_receipt(receipt))
        except PingxuanError as error:
            return refusal(error)
