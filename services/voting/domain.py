"""Public voting (網絡投票) as plain functions and records: no nameko, no pymongo.

What a vote is to the rules, how the rules are applied to a group of votes,
the keyed hashes that stand for voters and addresses, receipts, the page's voter
session (its one-time code rules are shared: ``shared/one_time_codes.py``). The words the
page says for each refusal are ``messages.py``.
"""
import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import timedelta

from shared import signing
from shared.campaign import CATEGORY_NAMES_ZH
from shared.errors import PingxuanError
from shared.one_time_codes import (  # noqa: F401  (the page's code rules, shared)
    OTP_DIGITS, OTP_MAX_PER_IP_PER_HOUR, OTP_MAX_WRONG, OTP_VALID, code_ip_slot, code_mac,
    mask_mobile)
from shared.timeutil import iso, local_day

#: How a voter was identified: a mainland mobile number (the page, or a front end) or a
#: WeChat openid (a mini-program back end).
CHANNELS = ("mobile", "wechat")
#: The rules a campaign applies when it names none, in this order.
DEFAULT_RULES = ("voting_window", "candidate_on_ballot", "one_vote_per_candidate_per_day",
                 "daily_limit", "ip_throttle")
#: Per-IP throttle when the campaign sets none: generous, since many residents share an
#: address behind a mobile carrier's NAT.
DEFAULT_IP_LIMIT = 60
DEFAULT_IP_WINDOW_SECONDS = 60
MAX_BATCH = 500

ACCEPTED = "accepted"
REFUSED = "refused"

SESSION_TTL = timedelta(minutes=30)
#: What a voting session is, for the one signer (shared/signing.py).
SESSION_PURPOSE = "px-voter-session"


# --- settings, votes, history ---------------------------------------------------------------

@dataclass(frozen=True)
class VotingSettings:
    """The voting rules of one campaign (its ``voting:`` block, with defaults)."""

    campaign_id: str
    timezone: str
    opens: object
    closes: object
    daily_limit: int | None
    ip_limit: int
    ip_window: timedelta
    rules: tuple
    #: The stored revision of the campaign these were read from (``None``: not known).
    revision: int | None = None

    @classmethod
    def of(cls, campaign, revision=None):
        voting = campaign.document["voting"]
        return cls(
            campaign_id=campaign.id, timezone=campaign.timezone,
            opens=campaign.voting_opens, closes=campaign.voting_closes,
            daily_limit=voting.get("daily_limit"),
            ip_limit=voting.get("ip_limit") or DEFAULT_IP_LIMIT,
            ip_window=timedelta(seconds=voting.get("ip_window_seconds")
                                or DEFAULT_IP_WINDOW_SECONDS),
            rules=tuple(voting.get("rules") or DEFAULT_RULES), revision=revision)


@dataclass(frozen=True)
class VoteRequest:
    """A validated vote waiting for its group commit (the voter and address already hashed)."""

    vote_id: str
    campaign_id: str
    candidate_id: str
    channel: str
    voter_key: str
    ip_key: str
    ip_net: str
    user_agent: str | None
    settings: VotingSettings
    receipt: str
    by: dict
    path: str = "cast"

    @property
    def fingerprint(self):
        """What makes a resend the same vote (the address and user agent may change)."""
        return f"{self.campaign_id}|{self.candidate_id}|{self.channel}|{self.voter_key}"


class Vote:
    """A vote as the rules see it: the request at the group's instant, with its ballot entry.

    Its day and keys are computed once, here: the rules, the judgement and the
    records read them many times per vote. A group commit passes ``day``, which
    is the same for all its votes in one campaign zone (they share ``cast_at``),
    so the zone conversion is done once per group, not once per vote.
    """

    __slots__ = ("request", "cast_at", "candidate", "day", "key", "voter_day", "ip_slot",
                 "ip_window")

    def __init__(self, request, cast_at, candidate, day=None):
        self.request = request
        self.cast_at = cast_at
        self.candidate = candidate
        #: The calendar day of the vote in the campaign's zone (the once-a-day rule's day).
        self.day = day or local_day(cast_at, request.settings.timezone)
        #: The store's unique key: one vote per voter per candidate per day.
        self.key = vote_key(request.campaign_id, request.voter_key, request.candidate_id,
                            self.day)
        self.voter_day = voter_day(request.campaign_id, request.voter_key, self.day)
        self.ip_slot = ip_slot(request.campaign_id, request.ip_key)
        #: The address's throttle window this vote falls in (its counter's key).
        self.ip_window = ip_window(self.ip_slot, cast_at, request.settings.ip_window)

    vote_id = property(lambda self: self.request.vote_id)
    campaign_id = property(lambda self: self.request.campaign_id)
    candidate_id = property(lambda self: self.request.candidate_id)
    voter_key = property(lambda self: self.request.voter_key)
    ip_key = property(lambda self: self.request.ip_key)

    @property
    def category(self):
        return self.candidate["category"] if self.candidate else None


@dataclass(frozen=True)
class History:
    """What the rules know of the voter's day and the address's window.

    ``candidates_today``: those of the candidates being voted for that this voter
    already voted for today; ``votes_today``: the votes the voter has taken against
    the daily cap today; ``ip_votes``: the votes taken from the address in the
    current throttle window.
    """

    candidates_today: frozenset = frozenset()
    ip_votes: int = 0
    votes_today: int = 0


def vote_key(campaign_id, voter, candidate_id, day):
    return f"{campaign_id}|{voter}|{candidate_id}|{day}"


def voter_day(campaign_id, voter, day):
    return f"{campaign_id}|{voter}|{day}"


def ip_slot(campaign_id, ip_key_):
    return f"{campaign_id}|{ip_key_}"


def ip_window(slot, cast_at, window):
    """The throttle counts per fixed window of ``ip_window_seconds`` (aligned to the epoch):
    one counter per address and window, which every instance increments atomically."""
    return f"{slot}|{int(cast_at.timestamp() // window.total_seconds())}"


def window_ends(cast_at, window):
    """When the window ``cast_at`` falls in ends."""
    seconds = window.total_seconds()
    start = (cast_at.timestamp() // seconds) * seconds
    return cast_at + timedelta(seconds=start + seconds - cast_at.timestamp())


# --- keyed hashes ---------------------------------------------------------------------------

#: A dotted quad as written is already the address's compressed form (no leading zeros,
#: each part 0–255): checked with one regular expression instead of ``ipaddress``.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


def _mac(secret, text):
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()


def normal_ip(ip):
    """The address in its compressed form (``ValueError`` if it is not an address)."""
    if _IPV4.fullmatch(ip):
        return ip
    return ipaddress.ip_address(ip).compressed


def voter_key(secret, channel, voter_id):
    """个人信息保护: a voter is kept only as a keyed hash of the channel and id."""
    return _mac(secret, f"voter|{channel}|{voter_id}")[:16].hex()


def ip_key(secret, ip):
    return _mac(secret, f"ip|{normal_ip(ip)}")[:12].hex()


def ip_net(ip):
    """The address's network (/24, or /48 for IPv6) as evidence: enough to see a burst."""
    if _IPV4.fullmatch(ip):
        return f"{ip.rsplit('.', 1)[0]}.0/24"
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def receipt_code(secret, vote_id):
    """A code the voter keeps to check later that the vote was counted (not guessable)."""
    return _receipt_text(_mac(secret, f"receipt|{vote_id}"))


def _receipt_text(mac):
    # Base32 turns each 5 bytes into 8 characters: the first 10 bytes are the 16 characters.
    raw = base64.b32encode(mac[:10]).decode("ascii")
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:]}"


class Keyring:
    """The voter, address and receipt hashes with their keys set up once.

    The same values as :func:`voter_key`, :func:`ip_key` and
    :func:`receipt_code`; copying a keyed HMAC is about half the cost of keying
    a new one, and a flood of votes hashes three times per vote.
    """

    def __init__(self, voter_secret, receipt_secret):
        self._voter = hmac.new(voter_secret.encode("utf-8"), digestmod=hashlib.sha256)
        self._receipt = hmac.new(receipt_secret.encode("utf-8"), digestmod=hashlib.sha256)

    @staticmethod
    def _mac(keyed, text):
        mac = keyed.copy()
        mac.update(text.encode("utf-8"))
        return mac.digest()

    def voter(self, channel, voter_id):
        return self._mac(self._voter, f"voter|{channel}|{voter_id}")[:16].hex()

    def ip(self, ip):
        return self._mac(self._voter, f"ip|{normal_ip(ip)}")[:12].hex()

    def receipt(self, vote_id):
        return _receipt_text(self._mac(self._receipt, f"receipt|{vote_id}"))


def derive_secret(secret, purpose):
    """A separate key for each use of one configured secret."""
    return _mac(secret, f"pingxuan-voting|{purpose}").hex()


# --- applying the rules to a group of votes -----------------------------------------------

@dataclass
class Decision:
    """The rules' verdict on one vote: ``error`` is ``None`` when it may be stored."""

    vote: Vote
    error: Exception | None = None
    rule: str | None = None
    evidence: dict = field(default_factory=dict)


def evidence_of(vote, history, settings):
    """What a refusal is recorded with in the fraud ledger (counts, never an id or address)."""
    return {
        "voter_votes_today": history.votes_today,
        "daily_limit": settings.daily_limit,
        "ip_votes_in_window": history.ip_votes,
        "ip_limit": settings.ip_limit,
        "ip_window_seconds": int(settings.ip_window.total_seconds()),
    }


def first_refusal(vote, history, settings, rules):
    """Apply the campaign's rules in order; ``(rule name, error)`` of the first that refuses."""
    for name in settings.rules:
        try:
            rules[name](vote, history, settings)
        except PingxuanError as error:
            return name, error
    return None, None


@dataclass(frozen=True)
class GroupFacts:
    """What the store knew of a group's voters and addresses when the group was read.

    ``stored_keys`` are the once-a-day keys already voted, ``votes_today`` maps a
    voter-day to the votes taken against its cap and ``address_votes`` an address
    window to the votes taken in it.
    """

    stored_keys: frozenset = frozenset()
    votes_today: dict = field(default_factory=dict)
    address_votes: dict = field(default_factory=dict)

    @property
    def counters(self):
        """The day and window counters that existed when the group read them."""
        return set(self.votes_today) | set(self.address_votes)


def judge_group(votes, facts, rules):
    """The rules' decisions on a group of votes, in order, from the facts read before.

    A vote that passes is added to the facts, so the votes of one group see each
    other exactly as consecutive single casts would.
    """
    voted = set(facts.stored_keys)
    today = dict(facts.votes_today)
    window = dict(facts.address_votes)
    candidates = {}  # voter_day -> candidates already voted among this group's
    for vote in votes:
        if vote.key in voted:
            candidates.setdefault(vote.voter_day, set()).add(vote.candidate_id)
    decisions = []
    for vote in votes:
        settings = vote.request.settings
        history = History(candidates_today=frozenset(candidates.get(vote.voter_day, ())),
                          ip_votes=window.get(vote.ip_window, 0),
                          votes_today=today.get(vote.voter_day, 0))
        rule, error = first_refusal(vote, history, settings, rules)
        if error is None:
            candidates.setdefault(vote.voter_day, set()).add(vote.candidate_id)
            today[vote.voter_day] = today.get(vote.voter_day, 0) + 1
            window[vote.ip_window] = window.get(vote.ip_window, 0) + 1
            decisions.append(Decision(vote))
        else:
            decisions.append(Decision(vote, error, rule, evidence_of(vote, history, settings)))
    return decisions


# --- records and replies --------------------------------------------------------------------

def vote_record(vote, batch_id):
    """The stored vote (append-only): its ``_id`` is the once-a-day key."""
    request = vote.request
    return {
        "_id": vote.key, "vote_id": vote.vote_id, "campaign_id": vote.campaign_id,
        "candidate_id": vote.candidate_id, "category": vote.category,
        "voter_day": vote.voter_day, "ip_slot": vote.ip_slot, "ip_net": request.ip_net,
        "channel": request.channel, "day": vote.day, "cast_at": vote.cast_at,
        "receipt": request.receipt, "by": request.by, "path": request.path,
        "user_agent": request.user_agent, "batch": batch_id,
    }


def claim_record(vote, record):
    """The vote_id's claim: the key and content it stands for, and the vote decided for it.

    ``key`` and ``fingerprint`` answer a resend; ``vote`` (the ``record`` about to be
    stored) is read only to complete a commit that stopped between claim and vote.
    """
    return {"_id": vote.vote_id, "key": vote.key, "fingerprint": vote.request.fingerprint,
            "vote": record}


def event_vote(record):
    """One vote of a ``vote_cast`` batch."""
    return {"vote_id": record["vote_id"], "candidate_id": record["candidate_id"],
            "category": record["category"], "cast_at": iso(record["cast_at"])}


def accepted_reply(record, nominee_name=None):
    reply = {"vote_id": record["vote_id"], "status": ACCEPTED, "receipt": record["receipt"],
             "campaign_id": record["campaign_id"], "candidate_id": record["candidate_id"],
             "category": record["category"], "cast_at": iso(record["cast_at"]),
             "day": record["day"]}
    if nominee_name is not None:
        reply["nominee_name"] = nominee_name
    return reply


def refused_result(vote_id, error):
    """One refused vote of ``cast_many``: the contract's ``{vote_id, status, error, message}``."""
    return {"vote_id": vote_id if isinstance(vote_id, str) and len(vote_id) <= 100 else None,
            "status": REFUSED, "error": error.exc_type, "message": str(error)}


def ledger_entry(decision, at):
    """A refused vote in the fraud ledger: the rule, the evidence, never a plain id or address."""
    vote = decision.vote
    return {"campaign_id": vote.campaign_id, "vote_id": vote.vote_id,
            "candidate_id": vote.candidate_id, "category": vote.category,
            "rule": decision.rule, "error": decision.error.exc_type,
            "message": str(decision.error), "voter": vote.voter_key, "ip_net": vote.request.ip_net,
            "channel": vote.request.channel, "path": vote.request.path, "by": vote.request.by,
            "day": vote.day, "at": at, "evidence": decision.evidence}


def ballot_row(entry, votes):
    return {"candidate_id": entry["_id"], "nominee_name": entry["nominee_name"],
            "nominee_unit": entry.get("nominee_unit"), "category": entry["category"],
            "org_type": entry.get("org_type"), "deeds_summary": entry["deeds_summary"],
            "votes": votes}


# --- one-time codes and the page's voter session ----------------------------------------------

def code_ip_limit(campaign):
    """Code requests one address may make per hour: the campaign's ``voting.code_ip_limit``."""
    return campaign.document["voting"].get("code_ip_limit") or OTP_MAX_PER_IP_PER_HOUR


def _session_key(secret):
    # 32 bytes whatever the configured secret's length (HS256 wants no less).
    raw = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    return hmac.new(raw, SESSION_PURPOSE.encode("ascii"), hashlib.sha256).digest()


def sign_session(secret, campaign_id, voter, now):
    """The page's proof that a number was verified: campaign, voter hash, expiry; signed."""
    claims = {"c": campaign_id, "v": voter, "exp": int((now + SESSION_TTL).timestamp())}
    return signing.sign_mac(_session_key(secret), claims, SESSION_PURPOSE)


#: Page sessions a voting process keeps verified (a resident votes for several candidates in one
#: session; a few hundred bytes each).
SESSIONS_KEPT = 10000


class Sessions:
    """Reads the page's voter sessions; each session string is verified once per process
    (``signing.Verified``), its expiry on every read."""

    def __init__(self, secret, size=SESSIONS_KEPT):
        self.key = _session_key(secret)
        self.verified = signing.Verified(size)

    def read(self, token, campaign_id, now):
        """The voter hash of a valid session for ``campaign_id``, else ``None``."""
        if not isinstance(token, str) or len(token) > 512:
            return None
        try:
            payload = self.verified.read(
                token, lambda token_: signing.verify_mac(self.key, token_, SESSION_PURPOSE), now)
        except signing.BadSignature:
            return None
        if payload.get("c") != campaign_id or not isinstance(payload.get("exp"), int):
            return None
        return payload.get("v")


def category_name_zh(category):
    return CATEGORY_NAMES_ZH.get(category, category)
