"""The voting page for residents (``/``): server-rendered HTML, no JavaScript needed.

A mixin of ``VotingService`` (nameko finds entrypoints only on the service class): each
entrypoint reads the form, calls the service's casting and one-time-code steps, and renders
``page.py``'s templates; a refusal is the page again with its words (``messages.py``).
"""
import time
import uuid

from nameko.web.handlers import http

from shared.errors import PingxuanError, ValidationError
from shared.timeutil import parse_iso
from shared.validation import load, mainland_mobile, require_id
from services.voting import domain, messages, page, schemas, web

SESSION_COOKIE = "pxv"
SIZE_COOKIE = "pxsize"


class ResidentPage:
    """The public page's entrypoints and rendering."""

    @http("GET", "/")
    def page_index(self, request):
        now = self.now()
        campaigns = []
        for document in self.store.known_campaigns():
            try:
                campaigns.append(page.campaign_view(self.campaigns.get(document["id"]), now))
            except PingxuanError:
                continue
        return web.html(page.render("index", campaigns=campaigns, large=_large(request),
                                    publicity=page.publicity_base(self.config)),
                        cookies=_size_cookie(request))

    @http("GET", "/static/<name>")
    def page_static(self, request, name):
        return page.static_file(name)

    @http("GET", "/campaigns/<campaign_id>")
    def page_campaign(self, request, campaign_id):
        notice = {"1": ("验证成功，现在可以投票了。", "ok"), "0": ("已退出验证。", "ok")}.get(
            request.args.get("verified", ""))
        message, kind = notice or (None, None)
        return self._render_campaign(request, campaign_id, message=message, kind=kind)

    @http("POST", "/campaigns/<campaign_id>/code")
    def page_send_code(self, request, campaign_id):
        try:
            form = web.form_body(request)
            data = load(schemas.CodeRequest(), {"campaign_id": campaign_id,
                                                "mobile": form.get("mobile")}, "body")
            sent = self._send_code(data, self._client_ip(request))
        except PingxuanError as error:
            return self._render_campaign(request, campaign_id, error=error)
        return self._render_campaign(
            request, campaign_id, code_sent=True, mobile=data["mobile"], masked=sent["mobile"],
            message=f"验证码已发送到 {sent['mobile']}，请查看短信。", kind="ok")

    @http("POST", "/campaigns/<campaign_id>/verify")
    def page_verify(self, request, campaign_id):
        form = {}
        try:
            form = web.form_body(request)
            session = self._verify_code(load(schemas.CodeCheck(), {
                "campaign_id": campaign_id, "mobile": form.get("mobile"),
                "code": form.get("code")}, "body"))
        except PingxuanError as error:
            # A wrong or expired code keeps the code form; a lock or bad number starts again.
            mobile = form.get("mobile") if isinstance(form.get("mobile"), str) else ""
            digits = mainland_mobile(mobile)
            keep = bool(digits) and isinstance(error, ValidationError) and \
                "code" in error.messages
            return self._render_campaign(
                request, campaign_id, error=error, code_sent=keep,
                mobile=digits if keep else "",
                masked=domain.mask_mobile(digits) if keep else "")
        return web.redirect(f"/campaigns/{campaign_id}?verified=1", cookies=[
            (SESSION_COOKIE, session["session"],
             int(domain.SESSION_TTL.total_seconds()))])

    @http("POST", "/campaigns/<campaign_id>/leave")
    def page_leave(self, request, campaign_id):
        return web.redirect(f"/campaigns/{require_id(campaign_id, 'campaign_id')}?verified=0",
                            cookies=[(SESSION_COOKIE, "", 0)])

    @http("POST", "/campaigns/<campaign_id>/vote")
    def page_vote(self, request, campaign_id):
        started = time.perf_counter()
        try:
            form = web.form_body(request)
            outcome = self._resident_vote(request, campaign_id, form,
                                          request.cookies.get(SESSION_COOKIE))
        except PingxuanError as error:
            return self._render_campaign(request, campaign_id, error=error)
        finally:
            self.metrics.cast_seconds.labels("page").observe(time.perf_counter() - started)
        if outcome.error is not None:
            return self._render_campaign(request, campaign_id, error=outcome.error,
                                         settings=outcome.settings)
        return self._render_campaign(request, campaign_id, receipt=outcome.reply,
                                     message="投票成功！", kind="ok")

    @http("GET", "/receipts")
    def page_receipt(self, request):
        code = (request.args.get("code") or "").strip().upper()
        if not code:
            return web.html(page.render("receipt", code="", large=_large(request)))
        try:
            status = self.check_receipt(code)
        except PingxuanError as error:
            return web.html(page.render("receipt", code=code, kind="error",
                                        message=messages.receipt_refusal_zh(error),
                                        large=_large(request)), web.status_of(error))
        campaign = self.campaigns.get(status["campaign_id"])
        view = dict(status, category_name=domain.category_name_zh(status["category"]),
                    cast_at_local=page.local_time(self.store.by_receipt(code)["cast_at"],
                                                  campaign.timezone),
                    void_at_local=(page.local_time(parse_iso(status["void"]["at"]),
                                                   campaign.timezone)
                                   if status.get("void") else None))
        return web.html(page.render("receipt", code=code, status=view,
                                    large=_large(request)))

    def _render_campaign(self, request, campaign_id, error=None, settings=None, receipt=None,
                         message=None, kind=None, **context):
        try:
            campaign = self.campaigns.get(campaign_id)
        except PingxuanError:
            return web.html(page.render("index", campaigns=[], large=_large(request),
                                        message="没有找到这个评选活动。", kind="error"), 404)
        self._catch_up_ballot(campaign.id)
        now = self.now()
        settings = settings or domain.VotingSettings.of(campaign)
        voter = self.keys.sessions.read(request.cookies.get(SESSION_COOKIE),
                                    campaign.id, now)
        view = self._ballot_view(campaign)
        for category in view["categories"]:
            for row in category["candidates"]:
                row["vote_id"] = f"web-{uuid.uuid4().hex}"
        if error is not None:
            message, kind = messages.refusal_zh(error, settings), "error"
        body = page.render(
            "campaign", campaign=page.campaign_view(campaign, now), categories=view["categories"],
            voter=voter["m"] if voter else None, receipt=receipt, message=message, kind=kind,
            rules=page.rules_text(settings), large=_large(request),
            valid_minutes=int(domain.OTP_VALID.total_seconds() // 60),
            max_wrong=domain.OTP_MAX_WRONG, **context)
        return web.html(body, web.status_of(error) if error is not None else 200,
                        cookies=_size_cookie(request))


def _large(request):
    size = request.args.get("size")
    if size in ("large", "normal"):
        return size == "large"
    return request.cookies.get(SIZE_COOKIE) == "large"


def _size_cookie(request):
    size = request.args.get("size")
    return [(SIZE_COOKIE, size, 365 * 24 * 3600)] if size in ("large", "normal") else []
