"""The shapes of votes, ballots, receipts and the page's API, as marshmallow schemas.

They validate input (every value type-checked before it could reach a query)
and describe replies; ``services.voting.openapi`` generates the page API's
OpenAPI document from them.
"""
import ipaddress
import re

from marshmallow import RAISE, Schema, fields, post_load, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from shared.campaign import CAMPAIGN_ID_PATTERN, CATEGORIES
from shared.validation import Mobile, load, mainland_mobile
from services.voting.domain import CHANNELS, MAX_BATCH, OTP_DIGITS, normal_ip

ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
ID_MESSAGE = "must be 1–100 letters, digits or _ . : - (starting with a letter or digit)"
#: Mainland mobile numbers: 11 digits starting 13–19, optionally written with +86.
#: A WeChat openid / unionid as a mini-program back end forwards it.
WECHAT_ID = re.compile(r"^[A-Za-z0-9_-]{6,128}$")
USER_AGENT_MAX = 512


class Strict(Schema):
    class Meta:
        unknown = RAISE


def identifier(**kwargs):
    return fields.String(validate=validate.Regexp(ID, error=ID_MESSAGE), **kwargs)


def campaign_id(**kwargs):
    return fields.String(validate=validate.Regexp(
        CAMPAIGN_ID_PATTERN, error="must be a campaign id like cb-2013-siping"), **kwargs)


class IpAddress(fields.String):
    """An IPv4 or IPv6 address, in its compressed form."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            if len(text) > 64:
                raise ValueError
            return ipaddress.ip_address(text.strip()).compressed
        except ValueError:
            raise SchemaError("must be an IPv4 or IPv6 address")


class Voter(Strict):
    """Who votes, as the front end verified them: the id is hashed at once, never stored."""

    channel = fields.String(required=True, validate=validate.OneOf(
        CHANNELS, error=f"must be one of {', '.join(CHANNELS)}"))
    id = fields.String(required=True)

    @validates_schema
    def id_fits_channel(self, data, **kwargs):
        channel, voter_id = data.get("channel"), data.get("id")
        if voter_id is None or channel is None:
            return
        if channel == "mobile":
            if mainland_mobile(voter_id) is None:
                raise SchemaError({"id": ["must be a mainland China mobile number for channel mobile"]})
        elif not WECHAT_ID.match(voter_id):
            raise SchemaError({"id": ["must be a WeChat openid (6–128 letters, digits, _ or -)"]})

    @post_load
    def normalise(self, data, **kwargs):
        if data["channel"] == "mobile":
            data["id"] = mainland_mobile(data["id"])
        return data


class Client(Strict):
    ip = IpAddress(required=True)
    user_agent = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=USER_AGENT_MAX))


class Vote(Strict):
    """One vote from a trusted front end (CONTRACT.md ``cast``)."""

    vote_id = identifier(required=True)
    campaign_id = campaign_id(required=True)
    candidate_id = identifier(required=True)
    voter = fields.Nested(Voter, required=True)
    client = fields.Nested(Client, required=True)


class VoteBatch(Strict):
    """``cast_many``: each vote is validated on its own, so one bad vote refuses only itself."""

    votes = fields.List(fields.Raw(), required=True, validate=validate.Length(
        min=1, max=MAX_BATCH, error=f"must hold 1–{MAX_BATCH} votes"))


class CastResult(Schema):
    vote_id = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(["accepted", "refused"]))
    receipt = fields.String()
    campaign_id = fields.String()
    candidate_id = fields.String()
    category = fields.String()
    cast_at = fields.String()
    day = fields.String()
    nominee_name = fields.String()
    error = fields.String()
    message = fields.String()


class BallotQuery(Strict):
    campaign_id = campaign_id(required=True)
    category = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        CATEGORIES, error=f"must be one of {', '.join(CATEGORIES)}"))


class BallotRow(Schema):
    candidate_id = fields.String()
    nominee_name = fields.String()
    nominee_unit = fields.String()
    category = fields.String()
    org_type = fields.String(allow_none=True)
    deeds_summary = fields.String()
    votes = fields.Integer()


class BallotCategory(Schema):
    category = fields.String()
    name = fields.String()
    candidates = fields.List(fields.Nested(BallotRow))


class Ballot(Schema):
    campaign_id = fields.String()
    name = fields.String()
    opens = fields.String()
    closes = fields.String()
    open = fields.Boolean()
    counts_age_seconds = fields.Float()
    categories = fields.List(fields.Nested(BallotCategory))


class VotesPage(Strict):
    campaign_id = campaign_id(required=True)
    after = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=400))
    limit = fields.Integer(strict=True, load_default=10000, validate=validate.Range(
        min=1, max=10000, error="must be 1–10000"))


class LedgerQuery(Strict):
    campaign_id = campaign_id(required=True)
    rule = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^[a-z_]{1,60}$", error="must be a rule name like daily_limit"))
    limit = fields.Integer(strict=True, load_default=1000, validate=validate.Range(
        min=1, max=10000, error="must be 1–10000"))


class Receipt(Strict):
    receipt = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$", error="must be a receipt like ABCD-EFGH-IJKL-MNOP"))


class VoidInfo(Schema):
    void_id = fields.String()
    reason = fields.String()
    at = fields.String()


class ReceiptStatus(Schema):
    receipt = fields.String()
    counted = fields.Boolean()
    #: ``counted``, ``voided`` (票數清零: ``void`` says when and why) or
    #: ``candidate_disqualified`` (``disqualification_reason`` says why).
    status = fields.String()
    void = fields.Nested(VoidInfo, allow_none=True)
    disqualification_reason = fields.String(allow_none=True)
    campaign_id = fields.String()
    candidate_id = fields.String()
    nominee_name = fields.String()
    category = fields.String()
    cast_at = fields.String()
    day = fields.String()


class CodeRequest(Strict):
    """The page asks for a one-time code for a mobile number."""

    campaign_id = campaign_id(required=True)
    mobile = Mobile(required=True)


class CodeSent(Schema):
    sent = fields.Boolean()
    mobile = fields.String(metadata={"description": "masked, like 138****5678"})
    valid_seconds = fields.Integer()


class CodeCheck(Strict):
    campaign_id = campaign_id(required=True)
    mobile = Mobile(required=True)
    code = fields.String(required=True, validate=validate.Regexp(
        rf"^\d{{{OTP_DIGITS}}}$", error=f"must be the {OTP_DIGITS} digits of the code"))


class Session(Schema):
    session = fields.String(metadata={"description": "send as `Authorization: Bearer <session>`"})
    expires_at = fields.String()


class PageVote(Strict):
    """A vote from the page: the voter is the verified session, the address the connection."""

    campaign_id = campaign_id(required=True)
    candidate_id = identifier(required=True)
    vote_id = identifier(load_default=None, allow_none=True)


class Refusal(Schema):
    error = fields.String(metadata={"description": "the contract's error type"})
    message = fields.String(metadata={"description": "what happened, in plain Chinese"})
    fields_ = fields.Dict(data_key="fields", metadata={"description": "field -> messages"})


# --- the per-vote fast path -------------------------------------------------------------------
#
# marshmallow costs about as much per vote as storing the vote. ``fast_vote`` checks the
# common case — a well-formed vote — with the same regular expressions and functions as
# ``Vote`` above and returns what ``Vote().load`` would return; for anything else (a
# missing, extra or mistyped field, a bad value, bytes for text, a padded address) it
# returns ``None`` and ``load_vote`` lets marshmallow decide and word the refusal. So every
# refusal comes from the schema, word for word, and a test checks that whatever the fast
# path accepts, the schema accepts as the same data.

VOTE_SCHEMA = Vote()
BATCH_SCHEMA = VoteBatch()
_ID_RE = re.compile(ID)
_CAMPAIGN_RE = re.compile(CAMPAIGN_ID_PATTERN)
_VOTE_KEYS = frozenset(("vote_id", "campaign_id", "candidate_id", "voter", "client"))
_VOTER_KEYS = frozenset(("channel", "id"))


def fast_vote(raw):
    """``Vote().load(raw)`` for a well-formed vote, or ``None`` (not decided here)."""
    if type(raw) is not dict or raw.keys() != _VOTE_KEYS:
        return None
    vote_id, campaign, candidate = raw["vote_id"], raw["campaign_id"], raw["candidate_id"]
    voter, client = raw["voter"], raw["client"]
    if not (type(vote_id) is str and _ID_RE.match(vote_id)
            and type(campaign) is str and _CAMPAIGN_RE.match(campaign)
            and type(candidate) is str and _ID_RE.match(candidate)
            and type(voter) is dict and voter.keys() == _VOTER_KEYS
            and type(client) is dict and "ip" in client
            and client.keys() <= {"ip", "user_agent"}):
        return None
    channel, voter_id = voter["channel"], voter["id"]
    if type(voter_id) is not str:
        return None
    if channel == "mobile":
        voter_id = mainland_mobile(voter_id)        # Voter.id_fits_channel and .normalise
        if voter_id is None:
            return None
    elif channel != "wechat" or not WECHAT_ID.match(voter_id):
        return None
    ip, user_agent = client["ip"], client.get("user_agent")
    if type(ip) is not str or len(ip) > 64:         # IpAddress
        return None
    try:
        ip = normal_ip(ip.strip())
    except ValueError:
        return None
    if user_agent is not None and (type(user_agent) is not str
                                   or len(user_agent) > USER_AGENT_MAX):
        return None
    return {"vote_id": vote_id, "campaign_id": campaign, "candidate_id": candidate,
            "voter": {"channel": channel, "id": voter_id},
            "client": {"ip": ip, "user_agent": user_agent}}


def load_batch(votes):
    """``cast_many``'s votes (each still to be loaded on its own), as ``VoteBatch`` loads them."""
    if type(votes) is list and 1 <= len(votes) <= MAX_BATCH:
        return votes
    return load(BATCH_SCHEMA, {"votes": votes}, "votes")["votes"]


def load_vote(raw):
    """One vote, loaded as ``Vote`` loads it; a refusal is the schema's ``ValidationError``."""
    data = fast_vote(raw)
    return data if data is not None else load(VOTE_SCHEMA, raw, "vote")


# --- voiding votes (票數清零) ---------------------------------------------------------------

#: The widest net voting can match: it keeps each address's /24 (IPv4) or /48 (IPv6) only.
NARROWEST_PREFIX = {4: 24, 6: 48}
MAX_VOID_IDS = 100000


class Network(fields.String):
    """A network in CIDR, no narrower than the /24 (/48) voting keeps of each address."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if "/" not in text or len(text) > 64:
            raise SchemaError("must be a network in CIDR notation, e.g. 203.0.113.0/24")
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise SchemaError("must be a network in CIDR notation, e.g. 203.0.113.0/24")
        if network.prefixlen > NARROWEST_PREFIX[network.version]:
            raise SchemaError(
                f"must be /{NARROWEST_PREFIX[network.version]} or wider: voting keeps only "
                "each address's network, never the address")
        return str(network)


class UtcTime(fields.String):
    """An ISO 8601 instant with its offset (``Z`` for UTC); a time without one is refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        from datetime import datetime, timezone

        text = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            if len(text) > 40:
                raise ValueError
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SchemaError("must be an ISO 8601 time in UTC, e.g. 2013-11-05T02:00:00Z")
        if moment.tzinfo is None:
            raise SchemaError("needs its offset: an ISO 8601 time in UTC ends with Z, "
                              "e.g. 2013-11-05T02:00:00Z")
        return moment.astimezone(timezone.utc)


class VoidSelector(Strict):
    """Which votes to void: by ``vote_ids``, or by any of candidate, network and time."""

    vote_ids = fields.List(identifier(), validate=validate.Length(
        min=1, max=MAX_VOID_IDS, error=f"must list 1–{MAX_VOID_IDS} vote ids"))
    candidate_id = identifier()
    network = Network()
    from_ = UtcTime(data_key="from")
    to = UtcTime()

    @validates_schema
    def one_kind(self, data, **kwargs):
        keys = {"candidate_id", "network", "from_", "to"} & data.keys()
        if "vote_ids" in data and keys:
            raise SchemaError({"selector": [
                "either vote_ids or any of candidate_id, network, from, to; not both"]})
        if "vote_ids" not in data and not keys:
            raise SchemaError({"selector": [
                "needs vote_ids or at least one of candidate_id, network, from, to"]})
        if "from_" in data and "to" in data and data["from_"] >= data["to"]:
            raise SchemaError({"to": ["must be after from"]})


class VoidRequest(Strict):
    campaign_id = campaign_id(required=True)
    selector = fields.Raw(required=True)
    reason = fields.String(required=True, allow_none=False, validate=validate.Length(
        min=1, max=2000, error="must be 1–2000 characters: say why the votes are voided"))

    @post_load
    def stripped(self, data, **kwargs):
        data["reason"] = data["reason"].strip()
        if not data["reason"]:
            raise SchemaError({"reason": ["must say why: a void needs a reason"]})
        return data


class RestoreRequest(Strict):
    void_id = identifier(required=True)
    reason = fields.String(required=True, allow_none=False, validate=validate.Length(
        min=1, max=2000, error="must be 1–2000 characters: say why the votes count again"))

    @post_load
    def stripped(self, data, **kwargs):
        data["reason"] = data["reason"].strip()
        if not data["reason"]:
            raise SchemaError({"reason": ["must say why: a restore needs a reason"]})
        return data


def load_selector(raw):
    """The selector with ``from``/``to`` as UTC datetimes; errors are dotted under ``selector``."""
    if not isinstance(raw, dict):
        raise _selector_error({"selector": ["must be an object"]})
    try:
        data = VoidSelector().load(raw)
    except SchemaError as exc:
        raise _selector_error(exc.messages)
    if "from_" in data:
        data["from"] = data.pop("from_")
    return data


def _selector_error(messages):
    from shared.errors import ValidationError
    from shared.validation import flatten_messages

    flat = flatten_messages(messages)
    return ValidationError({(key if key.startswith("selector") else f"selector.{key}"): value
                            for key, value in flat.items()})
