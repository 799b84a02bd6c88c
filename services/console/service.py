"""The ``console`` service: the department's web console, HTTP entrypoints only.

It owns no selection data. Every page calls the service that owns the data
with the signed-in person's own token (``Desk``), so each rule, refusal and
audit entry stays where it belongs and the console can do nothing the token
could not. Sessions and CSRF are in ``sessions.py``, what a page shows in
``views.py``, the pictures in ``svg.py``, the markup in ``templates/``.
"""
import functools
import json
import logging
import re
from urllib.parse import quote

from nameko.exceptions import BadRequest, RemoteError, UnknownService
from nameko.web.handlers import http
from werkzeug.utils import redirect as werkzeug_redirect
from prometheus_client import Counter
from werkzeug.wrappers import Response

from shared import events, plugins
from shared.campaign import CATEGORY_NAMES_ZH, CampaignFileError, load_campaign_text
from shared.clock import Clock
from shared.entrypoints import PingxuanService
from shared.errors import PingxuanError, Unauthorized, ValidationError
from shared.handlers import handles
from shared.metrics import Metrics
from shared.store import MongoStore
from shared.timeutil import parse_iso
from services.console import judges, messages_zh, render, sessions, svg, views
from services.console.providers import ConsoleSettings, DeskProvider, SessionAuth

log = logging.getLogger(__name__)

#: Uploads (a campaign file, a list of judges) are small; anything bigger is refused unread.
MAX_UPLOAD = 2 * 1024 * 1024
#: Pages of ``voting.votes_page`` read for the traffic chart (10,000 votes a page).
TRAFFIC_PAGES = 50
#: What the results page offers to download (the ``table`` exporter is for terminals).
DOWNLOAD_FORMATS = ("xlsx", "csv")
#: The panels page's link buttons: send again, or renew first (asks for a confirmation).
LINK_ACTIONS = ("send", "renew")
#: A renewal's confirmation key (``sessions.new_key``: 43 URL-safe characters). It keeps a
#: reload from renewing twice; it is not a control (CSRF and the session are).
RENEW_ONCE = re.compile(r"[A-Za-z0-9_-]{43}")
#: Refusals scoring's ``send_links`` makes before it writes anything (its checks of the
#: caller, the request, the panel, and a renewal that lost every race).
REFUSED_BEFORE_WRITING = frozenset(("Unauthorized", "Forbidden", "ValidationError", "NotFound",
                                    "PanelClosed", "InvalidState", "Conflict"))
SERVICES_WITH_AUDIT = ("nomination", "scoring", "aggregation", "notification", "voting")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
}
SIGN_IN_REASONS = {
    "signed-out": "请先登录。",
    "revoked": "您的令牌已被吊销或已过期，会话已结束。请用新的管理员令牌重新登录。",
    "expired": "会话已过期，请重新登录。",
    "bye": "已退出登录。",
}
CLOSED = object()


def define_metrics(registry):
    return {
        "untranslated": Counter(
            "pingxuan_console_untranslated_refusals_total",
            "Refusals shown with a sentence messages_zh has no Chinese for, by error type",
            ["error"], registry=registry),
    }


class SignedOut(Exception):
    """No live session: the visitor is sent to sign in (``reason`` says why)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Person:
    """The signed-in department user of one request."""

    def __init__(self, key, identity, csrf):
        self.key = key
        self.identity = identity
        self.csrf = csrf
        self.name = identity.name


def local_path(target):
    """``target`` if it is a path on this console, else "" (no redirect to another site:
    ``//host`` and ``/\\host`` are other sites to a browser)."""
    if not isinstance(target, str) or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return ""
    return target


def html(body, status=200, cookies=()):
    response = Response(body, status=status, content_type="text/html; charset=utf-8",
                        headers=HEADERS)
    for name, value, options in cookies:
        response.set_cookie(name, value, **options)
    return response


def redirect(location, cookies=()):
    response = werkzeug_redirect(location, code=303)
    response.headers.update(HEADERS)
    for name, value, options in cookies:
        response.set_cookie(name, value, **options)
    return response


def signed_in(page):
    """A page for the signed-in department only; a POST must carry the session's CSRF token."""

    @functools.wraps(page)
    def wrapper(self, request, *args, **kwargs):
        try:
            person = self._person(request)
        except SignedOut as out:
            target = quote(request.full_path.rstrip("?"), safe="/?=&") \
                if request.method == "GET" else "/"
            return redirect(f"/sign-in?reason={out.reason}&next={quote(target, safe='')}")
        if request.method == "POST":
            try:
                form = self._form(request)
            except ValidationError as error:
                return self._page(request, person, "error.html", status=413,
                                  refusal=views.refusal(error))
            if not sessions.csrf_valid(self.settings.secret, person.key,
                                       form.get(sessions.CSRF_FIELD)):
                return self._page(request, person, "error.html", status=403, refusal={
                    "type": "CSRF", "summary": "表单缺少有效的安全令牌（CSRF），已拒绝",
                    "message": "请回到页面重新打开表单后再提交；没有做任何更改。",
                    "fields": {}})
        return page(self, request, person, *args, **kwargs)

    return wrapper


class ConsoleService(PingxuanService):
    """宣传部的管理控制台: every operator task of a campaign, as pages."""

    name = "console"
    metrics = Metrics(define=define_metrics)

    auth = SessionAuth()
    store = MongoStore(sessions.SessionStore)
    desk = DeskProvider()
    settings = ConsoleSettings()
    now = Clock()

    # --- campaigns it has heard of (names only, for the menu) ----------------------------------

    @handles(events.NOMINATION, events.CAMPAIGN_LOADED)
    def on_campaign_loaded(self, payload):
        event = events.read_event(events.CAMPAIGN_LOADED, payload)
        self.store.remember_campaign(event["campaign"]["id"], event["campaign"]["name"],
                                     event["revision"])

    # --- sign-in ---------------------------------------------------------------------------

    @http("GET", "/")
    def home(self, request):
        return redirect("/campaigns")

    @http("GET", "/static/<name>")
    def static(self, request, name):
        return render.static_file(name)

    @http("GET", "/sign-in")
    def sign_in_page(self, request):
        reason = request.args.get("reason", "")
        return self._sign_in_form(request, notice=SIGN_IN_REASONS.get(reason),
                                  notice_kind="note" if reason in ("revoked", "expired") else "ok")

    @http("POST", "/sign-in")
    def sign_in(self, request):
        form = self._form(request)
        token = (form.get("token") or "").strip()
        return self._open_session(request, form, token, "token")

    @http("GET", "/sign-in/link")
    def sign_in_link_page(self, request):
        """The page a sign-in link opens; its code is in the URL fragment, which browsers
        never send, and ``link.js`` posts it (or the user pastes it)."""
        return self._sign_in_form(request, template="sign_in_link.html")

    @http("POST", "/sign-in/link")
    def sign_in_link(self, request):
        form = self._form(request)
        now = self.now()
        try:
            token, nonce, expires = sessions.read_sign_in_code(
                self.settings.issuer_keys, form.get("code") or "", now)
        except sessions.SignInRefused as refused:
            return self._sign_in_form(request, template="sign_in_link.html",
                                      errors={"code": [str(refused)]}, status=400)
        if not self._pre_csrf_ok(request, form):
            return self._csrf_refused_at_door(request, "sign_in_link.html")
        try:
            self._admin_identity(token)
        except sessions.SignInRefused as refused:
            return self._sign_in_form(request, template="sign_in_link.html",
                                      errors={"code": [str(refused)]}, status=403)
        if not self.store.use_link(nonce, expires):
            return self._sign_in_form(request, template="sign_in_link.html", errors={
                "code": ["此登录链接已经用过（每个链接只能用一次），请重新签发。"]}, status=403)
        return self._open_session(request, form, token, "code", template="sign_in_link.html")

    @http("POST", "/sign-out")
    @signed_in
    def sign_out(self, request, person):
        self.store.close(person.key)
        return redirect("/sign-in?reason=bye", cookies=[
            (sessions.SESSION_COOKIE, "", self._cookie_options(request, 0))])

    # --- 1 campaigns --------------------------------------------------------------------

    @http("GET", "/campaigns")
    @signed_in
    def campaigns_page(self, request, person):
        return self._page(request, person, "campaigns.html", problems=[], typed_id="")

    @http("POST", "/campaigns")
    @signed_in
    def campaign_upload(self, request, person):
        upload = request.files.get("campaign_file")
        name = upload.filename if upload else ""
        data = upload.read(MAX_UPLOAD + 1) if upload else b""
        problems = []
        if not data:
            problems = [("campaign_file", None, "请选择活动配置文件（YAML）。")]
        elif len(data) > MAX_UPLOAD:
            problems = [("campaign_file", None, "文件过大（最大2MB）。")]
        else:
            try:
                document = load_campaign_text(data.decode("utf-8"), name or "campaign.yml")
            except UnicodeDecodeError:
                problems = [("campaign_file", None, "文件应为UTF-8编码的YAML。")]
            except CampaignFileError as error:
                problems = [(key, line, views.field_message_zh(message))
                            for key, line, message in error.problems]
        if problems:
            return self._page(request, person, "campaigns.html", status=400, problems=problems,
                              file_name=name, typed_id="")
        reply, refusal = self._try("nomination", "load_campaign", document)
        if refusal:
            problems = [(field, None, messages_zh.joined(items))
                        for field, items in sorted(refusal["fields"].items())] or []
            return self._page(request, person, "campaigns.html", status=400, problems=problems,
                              refusal=refusal, file_name=name, typed_id="")
        self.store.remember_campaign(document["id"], document["name"], -1)
        return redirect(f"/campaigns/{quote(document['id'])}?done=loaded")

    @http("GET", "/campaigns/open")
    @signed_in
    def campaign_open(self, request, person):
        return redirect(f"/campaigns/{quote((request.args.get('id') or '').strip() or '-')}")

    @http("GET", "/campaigns/<campaign_id>")
    @signed_in
    def campaign_page(self, request, person, campaign_id):
        document, refusal = self._try("nomination", "get_campaign", campaign_id)
        if refusal:
            return self._page(request, person, "error.html", status=404, refusal=refusal)
        self.store.remember_campaign(document["id"], document["name"], -1)
        publication, _ = self._try("aggregation", "publication", campaign_id)
        return self._page(request, person, "campaign.html", campaign=document,
                          timeline=views.timeline(document, publication, self.now()),
                          publication=publication)

    # --- 2 nominations --------------------------------------------------------------------

    @http("GET", "/campaigns/<campaign_id>/nominations")
    @signed_in
    def nominations_page(self, request, person, campaign_id):
        document, refusal = self._try("nomination", "get_campaign", campaign_id)
        if refusal:
            return self._page(request, person, "error.html", status=404, refusal=refusal)
        chosen = {key: (request.args.get(key) or "").strip()
                  for key in ("category", "org_type", "status", "unit")}
        every, refusal = self._try("nomination", "list", campaign_id)
        every = every or []
        filters = {key: value for key, value in chosen.items()
                   if value and key in ("category", "status")}
        shown, filter_refusal = self._try("nomination", "list", campaign_id, **filters)
        shown = views.filter_nominations(shown or [], chosen["unit"], chosen["org_type"])
        forfeits, _ = self._try("nomination", "forfeits", campaign_id)
        intake = views.intake(document, every)
        pictures = [svg.intake_bars(f"intake-{item['category']}", f"{item['name']}推荐名额使用情况",
                                    item["bars"]) for item in intake]
        return self._page(request, person, "nominations.html", campaign=document,
                          nominations=shown, chosen=chosen, intake=list(zip(intake, pictures)),
                          forfeits=forfeits, refusal=refusal or filter_refusal)

    @http("GET", "/nominations/<nomination_id>")
    @signed_in
    def nomination_page(self, request, person, nomination_id):
        return self._nomination(request, person, nomination_id)

    @http("POST", "/nominations/<nomination_id>/review")
    @signed_in
    def nomination_review(self, request, person, nomination_id):
        form = self._form(request)
        opinion = (form.get("opinion") or "").strip()
        decision = form.get("decision") or ""
        _, refusal = self._try("nomination", "review", nomination_id, decision,
                               opinion or None)
        if refusal:
            return self._nomination(request, person, nomination_id, status=400,
                                    review_refusal=refusal, typed=form)
        return redirect(f"/nominations/{quote(nomination_id)}?done=reviewed")

    @http("POST", "/nominations/<nomination_id>/leadership")
    @signed_in
    def nomination_leadership(self, request, person, nomination_id):
        form = self._form(request)
        opinion = (form.get("leadership_opinion") or "").strip()
        _, refusal = self._try("nomination", "record_leadership_opinion", nomination_id, opinion)
        if refusal:
            refusal["fields"] = {("leadership_opinion" if k.startswith("opinion") else k): v
                                 for k, v in refusal["fields"].items()}
            return self._nomination(request, person, nomination_id, status=400,
                                    leadership_refusal=refusal, typed=form)
        return redirect(f"/nominations/{quote(nomination_id)}?done=leadership")

    # --- 3 voting ---------------------------------------------------------------------------

    @http("GET", "/campaigns/<campaign_id>/voting")
    @signed_in
    def voting_page(self, request, person, campaign_id):
        return self._voting(request, person, campaign_id)

    @http("POST", "/campaigns/<campaign_id>/voting/void")
    @signed_in
    def voting_void(self, request, person, campaign_id):
        form = self._form(request)
        selector = {key: form.get(key).strip() for key in ("candidate_id", "network", "from", "to")
                    if (form.get(key) or "").strip()}
        vote_ids = [line.strip() for line in (form.get("vote_ids") or "").splitlines()
                    if line.strip()]
        if vote_ids:
            selector = {"vote_ids": vote_ids}
        reason = (form.get("reason") or "").strip() or None
        reply, refusal = self._try("voting", "void_votes", campaign_id, selector, reason)
        if refusal:
            return self._voting(request, person, campaign_id, status=400, void_refusal=refusal,
                                typed=form)
        return redirect(f"/campaigns/{quote(campaign_id)}/voting?done=voided"
                        f"&n={quote(str(reply.get('voided', '')))}"
                        f"&void_id={quote(str(reply.get('void_id', '')))}")

    @http("POST", "/campaigns/<campaign_id>/voting/restore")
    @signed_in
    def voting_restore(self, request, person, campaign_id):
        form = self._form(request)
        reason = (form.get("restore_reason") or "").strip() or None
        _, refusal = self._try("voting", "restore_votes", (form.get("void_id") or "").strip(),
                               reason)
        if refusal:
            refusal["fields"] = {("restore_reason" if k == "reason" else k): v
                                 for k, v in refusal["fields"].items()}
            return self._voting(request, person, campaign_id, status=400,
                                restore_refusal=refusal, typed=form)
        return redirect(f"/campaigns/{quote(campaign_id)}/voting?done=restored")

    # --- 4 panels -----------------------------------------------------------------------------

    @http("GET", "/campaigns/<campaign_id>/panels")
    @signed_in
    def panels_page(self, request, person, campaign_id):
        return self._panels(request, person, campaign_id)

    @http("POST", "/campaigns/<campaign_id>/panels/assign")
    @signed_in
    def panel_assign(self, request, person, campaign_id):
        form = self._form(request)
        category = form.get("category") or ""
        upload = request.files.get("judges_file")
        try:
            if upload and upload.filename:
                chosen = judges.parse_judges(upload.filename, upload.read(MAX_UPLOAD + 1))
            else:
                chosen = judges.parse_judges_text(form.get("judges_text"))
                if not chosen:
                    raise ValidationError({"judges_text": ["请填写评委，或上传评委名单文件。"]})
        except ValidationError as error:
            return self._panels(request, person, campaign_id, status=400,
                                assign_refusal=views.refusal(error), typed=form)
        _, refusal = self._try("scoring", "assign_panel", campaign_id, category, chosen)
        if refusal:
            return self._panels(request, person, campaign_id, status=400,
                                assign_refusal=refusal, typed=form)
        return redirect(f"/campaigns/{quote(campaign_id)}/panels?done=assigned&n={len(chosen)}")

    @http("POST", "/campaigns/<campaign_id>/panels/links")
    @signed_in
    def panel_links(self, request, person, campaign_id):
        """Send judges' links again, or renew them (after a confirmation) and send the new ones.

        The reply's links are shown on this POST's own page (never in a URL, never redirected
        to a GET that a browser could cache or a log could hold).
        """
        form = self._form(request)
        action = form.get("action")
        if action not in LINK_ACTIONS:
            return Response("not found", status=404)
        chosen = {"category": form.get("category") or "",
                    "judge_id": (form.get("judge_id") or "").strip()}
        once = None
        if action == "renew":
            # A confirmation renews once: reloading its result page re-posts the same form,
            # and a second renewal would void the links the first one just showed and sent.
            once = form.get("once")
            if (form.get("confirm") != "yes" or not isinstance(once, str)
                    or not RENEW_ONCE.fullmatch(once)):
                return self._panels(request, person, campaign_id,
                                    renew_confirm=dict(chosen, once=sessions.new_key()))
            if not self.store.use_link(f"renew|{once}", self._once_expires()):
                return self._panels(request, person, campaign_id, renew_done_before=chosen)
        reply, refusal = self._try("scoring", "send_links", campaign_id, chosen["category"],
                                   [chosen["judge_id"]] if chosen["judge_id"] else None,
                                   renew=action == "renew")
        if refusal:
            if once is not None and refusal["type"] in REFUSED_BEFORE_WRITING:
                # Nothing was renewed: the same confirmation may try again. Not after a
                # timeout or an unexpected failure, after which scoring may have renewed.
                self.store.release_link(f"renew|{once}")
            return self._panels(request, person, campaign_id, status=400, links_refusal=refusal)
        return self._panels(request, person, campaign_id, links_result=views.link_results(reply))

    def _once_expires(self):
        return int((self.now() + sessions.SESSION_TTL).timestamp())

    @http("POST", "/campaigns/<campaign_id>/panels/close")
    @signed_in
    def panel_close(self, request, person, campaign_id):
        category = self._form(request).get("category") or ""
        _, refusal = self._try("scoring", "close_panel", campaign_id, category)
        if refusal:
            return self._panels(request, person, campaign_id, status=400, close_refusal=refusal)
        return redirect(f"/campaigns/{quote(campaign_id)}/panels?done=closed")

    # --- 5 results --------------------------------------------------------------------------

    @http("GET", "/campaigns/<campaign_id>/results")
    @signed_in
    def results_page(self, request, person, campaign_id):
        return self._results(request, person, campaign_id)

    @http("POST", "/campaigns/<campaign_id>/results/<action>")
    @signed_in
    def results_action(self, request, person, campaign_id, action):
        """publish and finalize ask for a confirmation first (a second form)."""
        form = self._form(request)
        if action not in ("publish", "finalize"):
            return Response("not found", status=404)
        if form.get("confirm") != "yes":
            return self._results(request, person, campaign_id, confirm=action)
        _, refusal = self._try("aggregation", action, campaign_id)
        if refusal:
            return self._results(request, person, campaign_id, status=400,
                                 action_refusal=refusal)
        return redirect(f"/campaigns/{quote(campaign_id)}/results?done={action}")

    @http("POST", "/campaigns/<campaign_id>/objections/resolve")
    @signed_in
    def objection_resolve(self, request, person, campaign_id):
        form = self._form(request)
        _, refusal = self._try("aggregation", "resolve_objection",
                               form.get("objection_id") or "", form.get("verdict") or "",
                               (form.get("reason") or "").strip() or None)
        if refusal:
            return self._results(request, person, campaign_id, status=400,
                                 objection_refusal=refusal, typed=form)
        return redirect(f"/campaigns/{quote(campaign_id)}/results?done=resolved")

    @http("POST", "/campaigns/<campaign_id>/objections/lodge")
    @signed_in
    def objection_lodge(self, request, person, campaign_id):
        """An objection received by letter or telephone, entered by the department."""
        form = self._form(request)
        objection = {"campaign_id": campaign_id, "candidate_id": form.get("candidate_id") or "",
                     "objector": {"name": (form.get("objector_name") or "").strip(),
                                  "mobile": (form.get("objector_mobile") or "").strip()},
                     "grounds": (form.get("grounds") or "").strip()}
        _, refusal = self._try("aggregation", "lodge_objection", objection)
        if refusal:
            return self._results(request, person, campaign_id, status=400,
                                 lodge_refusal=refusal, typed=form)
        return redirect(f"/campaigns/{quote(campaign_id)}/results?done=lodged")

    @http("GET", "/campaigns/<campaign_id>/results/download/<fmt>")
    @signed_in
    def results_download(self, request, person, campaign_id, fmt):
        selected_only = request.args.get("list") == "1"
        if fmt == "inputs":
            inputs, refusal = self._try("aggregation", "inputs", campaign_id)
            if refusal:
                return self._page(request, person, "error.html", status=400, refusal=refusal)
            return self._download(json.dumps(inputs, ensure_ascii=False, indent=2,
                                             sort_keys=True).encode("utf-8"),
                                  f"{campaign_id}-inputs.json", "application/json")
        if fmt not in plugins.plugin_names(plugins.EXPORTERS):
            return Response("not found", status=404)
        report, refusal = self._try("aggregation", "report", campaign_id)
        if refusal:
            return self._page(request, person, "error.html", status=400, refusal=refusal)
        data = plugins.load_plugin(plugins.EXPORTERS, fmt)(report, selected_only=selected_only)
        types = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "csv": "text/csv; charset=utf-8"}
        return self._download(data, f"{campaign_id}-{'list' if selected_only else 'results'}.{fmt}",
                              types.get(fmt, "text/plain; charset=utf-8"))

    # --- 6 messages, 7 audit ------------------------------------------------------------------

    @http("GET", "/messages")
    @signed_in
    def messages_page(self, request, person):
        parked, refusal = self._try("notification", "parked")
        return self._page(request, person, "messages.html", parked=parked or [],
                          refusal=refusal)

    @http("POST", "/messages/resend")
    @signed_in
    def message_resend(self, request, person):
        _, refusal = self._try("notification", "resend", self._form(request).get("message_id"))
        if refusal:
            parked, _ = self._try("notification", "parked")
            return self._page(request, person, "messages.html", status=400, parked=parked or [],
                              refusal=refusal)
        return redirect("/messages?done=resent")

    @http("GET", "/audit")
    @signed_in
    def audit_page(self, request, person):
        chosen = {key: (request.args.get(key) or "").strip()
                  for key in ("campaign_id", "service", "entity", "actor", "since", "until")}
        trails, refusals, bounds = {}, [], {}
        for key in ("since", "until"):
            if chosen[key]:
                try:
                    bounds[key] = parse_iso(chosen[key] + (":00Z" if len(chosen[key]) == 16 else ""))
                except ValueError:
                    refusals.append((key, {"summary": "时间格式应为 2013-11-01T08:00",
                                           "message": chosen[key], "fields": {}}))
        for service in SERVICES_WITH_AUDIT:
            if chosen["service"] and chosen["service"] != service:
                continue
            rows, refusal = self._try(service, "audit_trail", chosen["campaign_id"] or None)
            if refusal:
                refusals.append((service, refusal))
            trails[service] = rows or []
        rows = views.audit_rows(trails, chosen["entity"], chosen["actor"], bounds.get("since"),
                                bounds.get("until"))
        return self._page(request, person, "audit.html", rows=rows, chosen=chosen,
                          current_campaign=chosen["campaign_id"] or None,
                          services=SERVICES_WITH_AUDIT, refusals=refusals)

    # --- helpers ------------------------------------------------------------------------------

    def _person(self, request):
        key = request.cookies.get(sessions.SESSION_COOKIE)
        session = self.store.find(key, self.now())
        if session is None:
            raise SignedOut("expired" if key else "signed-out")
        try:
            identity = self._admin_identity(session["token"])
        except sessions.SignInRefused:
            self.store.close(key)
            raise SignedOut("revoked")
        self.desk.act_as(session["token"])
        return Person(key, identity, sessions.csrf_token(self.settings.secret, key))

    def _admin_identity(self, token):
        try:
            identity = self.auth.verify(token)
        except Unauthorized as error:
            raise sessions.SignInRefused(
                {"the auth_token has been revoked": "此令牌已被吊销，不能登录。",
                 "the auth_token has expired": "此令牌已过期，不能登录。"}.get(
                    str(error), "这不是有效的管理员令牌（签名或格式不正确），请检查是否完整粘贴。"))
        return sessions.check_admin(identity)

    def _open_session(self, request, form, token, field, template="sign_in.html"):
        if not self._pre_csrf_ok(request, form):
            return self._csrf_refused_at_door(request, template)
        if not token:
            return self._sign_in_form(request, template=template,
                                      errors={field: ["请粘贴管理员令牌。"]}, status=400)
        try:
            identity = self._admin_identity(token)
        except sessions.SignInRefused as refused:
            return self._sign_in_form(request, template=template,
                                      errors={field: [str(refused)]}, status=403)
        key = sessions.new_key()
        self.store.open(key, token, identity, self.now())
        log.info("console session opened for %s (token id %s)", identity.name, identity.token_id)
        target = local_path(form.get("next")) or "/campaigns"
        return redirect(target, cookies=[
            (sessions.SESSION_COOKIE, key, self._cookie_options(
                request, int(sessions.SESSION_TTL.total_seconds()))),
            (sessions.PRE_SESSION_COOKIE, "", self._cookie_options(request, 0))])

    def _pre_csrf_ok(self, request, form):
        return sessions.csrf_valid(self.settings.secret,
                                   request.cookies.get(sessions.PRE_SESSION_COOKIE),
                                   form.get(sessions.CSRF_FIELD))

    def _csrf_refused_at_door(self, request, template):
        return self._sign_in_form(request, template=template, status=403, errors={
            "_csrf": ["表单缺少有效的安全令牌（CSRF）或已过期，请重新打开登录页再提交。"]})

    def _sign_in_form(self, request, template="sign_in.html", errors=None, notice=None,
                      status=200, notice_kind="ok"):
        key = request.cookies.get(sessions.PRE_SESSION_COOKIE) or sessions.new_key()
        next_path = local_path(request.values.get("next"))
        body = render.render(template, errors=errors or {}, notice=notice, next=next_path,
                             notice_kind=notice_kind,
                             csrf=sessions.csrf_token(self.settings.secret, key),
                             large=self._large(request))
        return html(body, status=status, cookies=[
            (sessions.PRE_SESSION_COOKIE, key, self._cookie_options(
                request, int(sessions.PRE_SESSION_TTL.total_seconds())))])

    def _cookie_options(self, request, max_age):
        secure = sessions.served_over_tls(request.headers.get("X-Forwarded-Proto"),
                                          request.scheme,
                                          self.settings.secure_cookies)
        return sessions.cookie_options(secure, max_age)

    def _large(self, request):
        return request.args.get("size", request.cookies.get("px_console_size")) == "large"

    def _form(self, request):
        if request.content_length is not None and request.content_length > MAX_UPLOAD + 64 * 1024:
            raise ValidationError({"body": ["上传的内容过大（最大2MB）。"]})
        request.max_content_length = MAX_UPLOAD + 64 * 1024
        return request.form

    def _try(self, service, method, *args, **kwargs):
        """``(reply, None)`` or ``(None, refusal)``: the service's words, never a crash page."""
        try:
            return self.desk.call(service, method, *args, **kwargs), None
        except (PingxuanError, RemoteError, BadRequest, UnknownService) as error:
            return None, self._refusal(error, f"{service}.{method}")

    def _refusal(self, error, where):
        """The refusal as shown; a sentence without Chinese is logged and counted."""
        shown = views.refusal(error)
        for sentence in shown["untranslated"]:
            self.metrics.untranslated.labels(shown["type"]).inc()
            log.warning("no Chinese for a refusal of %s (%s): %r; add it to "
                        "services/console/messages_zh.py", where, shown["type"], sentence)
        return shown

    def _page(self, request, person, template, status=200, **context):
        context.setdefault("refusal", None)
        context.setdefault("typed", {})
        campaign = context.get("campaign")
        body = render.render(
            template, person=person, csrf=person.csrf, large=self._large(request),
            campaigns=self.store.campaigns(), done=request.args.get("done"),
            current_campaign=context.pop("current_campaign", None) or (campaign or {}).get("id"),
            path=request.path, **context)
        cookies = []
        if "size" in request.args:
            cookies.append(("px_console_size", request.args["size"],
                            self._cookie_options(request, 365 * 86400)))
        return html(body, status=status, cookies=cookies)

    def _download(self, data, filename, content_type):
        response = Response(data, content_type=content_type, headers=HEADERS)
        response.headers["Content-Disposition"] = f"attachment; filename=\"{filename}\""
        return response

    def _nomination(self, request, person, nomination_id, status=200, **context):
        record, refusal = self._try("nomination", "get", nomination_id)
        if refusal:
            return self._page(request, person, "error.html", status=404, refusal=refusal)
        document, _ = self._try("nomination", "get_campaign", record["campaign_id"])
        context.setdefault("review_refusal", None)
        context.setdefault("leadership_refusal", None)
        return self._page(request, person, "nomination.html", status=status, record=record,
                          campaign=document, form=views.form_sections(record), **context)

    def _campaign_or_error(self, request, person, campaign_id):
        document, refusal = self._try("nomination", "get_campaign", campaign_id)
        if refusal:
            return None, self._page(request, person, "error.html", status=404, refusal=refusal)
        return document, None

    def _votes(self, campaign_id):
        votes, after = [], None
        for _ in range(TRAFFIC_PAGES):
            page, refusal = self._try("voting", "votes_page", campaign_id, after)
            if refusal:
                return votes, refusal
            votes.extend(page["votes"])
            after = page["next"]
            if after is None:
                break
        return votes, None

    def _voting(self, request, person, campaign_id, status=200, **context):
        document, error_page = self._campaign_or_error(request, person, campaign_id)
        if error_page:
            return error_page
        chosen = (request.args.get("candidate") or "").strip() or None
        votes, votes_refusal = self._votes(campaign_id)
        traffic = views.traffic(votes, document["timezone"], self.now(), chosen)
        tally, _ = self._try("aggregation", "tally", campaign_id)
        candidates = (tally or {}).get("rows", [])
        names = {row["candidate_id"]: row.get("nominee_name") for row in candidates}
        pictures = {
            "overall": svg.line_chart("traffic-overall", "每分钟投票数（全部类别）",
                                      traffic["labels"], [("全部", traffic["overall"])]),
            "by_category": svg.line_chart("traffic-category", "每分钟投票数（按类别）",
                                          traffic["labels"], traffic["by_category"]),
            "candidate": svg.line_chart(
                "traffic-candidate", f"每分钟投票数：{names.get(chosen, chosen)}",
                traffic["labels"], [(names.get(chosen) or chosen, traffic["candidate"])])
            if chosen else None,
        }
        ledger, ledger_refusal = self._try("voting", "fraud_ledger", campaign_id)
        suspicious, suspicious_refusal = self._try("voting", "suspicious", campaign_id)
        for key in ("void_refusal", "restore_refusal"):
            context.setdefault(key, None)
        context.setdefault("void_id", request.args.get("void_id", ""))
        context.setdefault("voided_count", request.args.get("n", ""))
        return self._page(request, person, "voting.html", status=status, campaign=document,
                          traffic=traffic, pictures=pictures, leading=views.leading(candidates),
                          candidates=candidates, chosen=chosen, ledger=ledger,
                          ledger_refusal=ledger_refusal, suspicious=suspicious,
                          suspicious_refusal=suspicious_refusal, votes_refusal=votes_refusal,
                          **context)

    def _panels(self, request, person, campaign_id, status=200, **context):
        document, error_page = self._campaign_or_error(request, person, campaign_id)
        if error_page:
            return error_page
        progress, refusal = self._try("scoring", "progress", campaign_id)
        for key in ("assign_refusal", "close_refusal", "links_refusal", "links_result",
                    "renew_confirm", "renew_done_before"):
            context.setdefault(key, None)
        return self._page(request, person, "panels.html", status=status, campaign=document,
                          progress=progress, progress_refusal=refusal,
                          categories=[(c, CATEGORY_NAMES_ZH.get(c, c))
                                      for c in document["categories"]], **context)

    def _results(self, request, person, campaign_id, status=200, **context):
        document, error_page = self._campaign_or_error(request, person, campaign_id)
        if error_page:
            return error_page
        report, refusal = self._try("aggregation", "report", campaign_id)
        objections, objections_refusal = self._try("aggregation", "objections", campaign_id)
        for key in ("action_refusal", "objection_refusal", "lodge_refusal", "confirm"):
            context.setdefault(key, None)
        return self._page(request, person, "results.html", status=status, campaign=document,
                          report=report, report_refusal=refusal, objections=objections,
                          objections_refusal=objections_refusal,
                          exporters=[name for name in plugins.plugin_names(plugins.EXPORTERS)
                                     if name in DOWNLOAD_FORMATS], **context)
