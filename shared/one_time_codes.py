"""One-time SMS codes of the public pages (the voting page, the 公示 page's objection form).

The rules (send limits, expiry, wrong-code lockout) are plain functions; the two use cases,
:func:`issue_code` and :func:`redeem_code`, are written once for both pages; the store verbs
are a mixin for a service's repository that has ``codes`` (one document per number and
purpose, ``_id`` = the caller's ``otp_key``, holding the plain number only while a code is
pending) and ``code_requests`` (requests per address and hour) collections. Every limit is one
conditional update, so instances sharing a store enforce it exactly. Each refusal is its own
class (a refinement of ``RateLimited`` or ``ValidationError``) holding the facts a page's words
need; :data:`REFUSALS_ZH` holds those words.
"""
import hashlib
import hmac
import secrets
from datetime import timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.errors import RateLimited, ValidationError
from shared.store import give_back, take

OTP_DIGITS = 6
OTP_VALID = timedelta(minutes=5)
OTP_RESEND_AFTER = timedelta(seconds=60)
OTP_MAX_SENDS_PER_DAY = 10
#: Codes one address may ask for per hour, whatever the numbers: the page is public, and
#: without it one client could make the county's SMS account text thousands of numbers.
OTP_MAX_PER_IP_PER_HOUR = 30
OTP_MAX_WRONG = 5
OTP_LOCK = timedelta(minutes=30)


def _mac(secret, text):
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()


def new_code():
    return f"{secrets.randbelow(10 ** OTP_DIGITS):0{OTP_DIGITS}d}"


def code_mac(secret, otp_key, code):
    return _mac(secret, f"otp|{otp_key}|{code}").hex()


def mask_mobile(mobile):
    return f"{mobile[:3]}****{mobile[-4:]}"


# --- refusals: refinements of RateLimited and ValidationError holding what the pages say ------

class CodeSentRecently(RateLimited):
    """A code was sent to this number less than ``OTP_RESEND_AFTER`` ago."""

    def __init__(self, wait_seconds):
        super().__init__(f"a code was sent less than {OTP_RESEND_AFTER.seconds} s ago")
        self.wait_seconds = wait_seconds

    def __reduce__(self):
        return (type(self), (self.wait_seconds,))


class DailyCodesUsed(RateLimited):
    """This number was sent ``OTP_MAX_SENDS_PER_DAY`` codes today."""

    def __init__(self):
        super().__init__(f"at most {OTP_MAX_SENDS_PER_DAY} codes per number per day")

    def __reduce__(self):
        return (type(self), ())


class TooManyCodeRequests(RateLimited):
    """One address asked for more codes this hour than the campaign allows."""

    def __init__(self, limit):
        super().__init__(f"at most {limit} code requests per address per hour")
        self.limit = limit

    def __reduce__(self):
        return (type(self), (self.limit,))


class NumberLocked(RateLimited):
    """Too many wrong codes: the number is locked for ``minutes`` more."""

    def __init__(self, minutes):
        super().__init__("too many wrong codes: this number is locked for a while")
        self.minutes = minutes

    def __reduce__(self):
        return (type(self), (self.minutes,))


class CodeRequestInProgress(RateLimited):
    """Another request for this number changed its record meanwhile."""

    def __init__(self):
        super().__init__("another code request for this number is in progress")

    def __reduce__(self):
        return (type(self), ())


class NoPendingCode(ValidationError):
    """No code is pending for the number (never sent, used, dropped or locked)."""

    def __init__(self):
        super().__init__({"code": ["no code is pending for this number, or it was used"]})

    def __reduce__(self):
        return (type(self), ())


class CodeExpired(ValidationError):
    """The pending code is older than ``OTP_VALID``."""

    def __init__(self):
        super().__init__({"code": ["the code has expired"]})

    def __reduce__(self):
        return (type(self), ())


class WrongCode(ValidationError):
    """Not the pending code; ``tries_left`` more guesses before the number is locked. The
    only refusal of a guess that uses up one of the code's tries."""

    def __init__(self, tries_left):
        super().__init__({"code": ["the code is not correct"]})
        self.tries_left = tries_left

    def __reduce__(self):
        return (type(self), (self.tries_left,))


#: What a public page says for each refusal of this module, in plain simplified Chinese
#: (merged into each page's own table: the voting page's and the 公示 page's say the same).
REFUSALS_ZH = {
    CodeSentRecently: lambda error, *_: f"验证码已发送，请{error.wait_seconds}秒后再重新获取。",
    DailyCodesUsed: f"该号码今天获取验证码已达{OTP_MAX_SENDS_PER_DAY}次，请明天再试。",
    TooManyCodeRequests: "此网络请求验证码过于频繁，请一小时后再试。",
    NumberLocked: lambda error, *_: f"验证码错误次数过多，该号码已被锁定，请{error.minutes}分钟后再试。",
    CodeRequestInProgress: "验证码正在发送，请稍候再试。",
    NoPendingCode: "验证码无效或已使用，请重新获取。",
    CodeExpired: "验证码已过期，请重新获取。",
    WrongCode: lambda error, *_: (
        f"验证码不正确，还可以再试{error.tries_left}次。" if error.tries_left > 0 else
        f"验证码错误次数过多，该号码已被锁定，请{int(OTP_LOCK.total_seconds() // 60)}分钟后再试。"),
}


# --- the rules --------------------------------------------------------------------------------

def check_code_request(record, now, day):
    """May a new code be sent for this number now? (lockout, resend interval, daily cap)."""
    if not record:
        return 0
    check_not_locked(record, now)
    if record.get("sent_at") and now - record["sent_at"] < OTP_RESEND_AFTER:
        raise CodeSentRecently(
            int((OTP_RESEND_AFTER - (now - record["sent_at"])).total_seconds()) + 1)
    sends = record.get("sends", 0) if record.get("day") == day else 0
    if sends >= OTP_MAX_SENDS_PER_DAY:
        raise DailyCodesUsed()
    return sends


def code_ip_slot(campaign_id, address_key, now):
    """The counter of code requests from one address in the current hour."""
    return f"ip|{campaign_id}|{address_key}|{int(now.timestamp() // 3600)}"


def check_not_locked(record, now):
    if record and record.get("locked_until") and now < record["locked_until"]:
        raise NumberLocked(int((record["locked_until"] - now).total_seconds() // 60) + 1)


def no_try_left(record, mac, now):
    """Why a guess that got no try is refused: the number is locked, or about to be (other
    guesses used the tries), or the code was used or dropped meanwhile."""
    check_not_locked(record, now)
    if record and record.get("code_mac") and record.get("wrong", 0) >= OTP_MAX_WRONG:
        check_not_locked({"locked_until": now + OTP_LOCK}, now)
    return code_problem(None, mac, now)


def code_problem(record, mac, now):
    """Why a code is not accepted (``None`` when it is): the reason as a typed error."""
    check_not_locked(record, now)
    if not record or not record.get("code_mac"):
        return NoPendingCode()
    if now >= record["expires_at"]:
        return CodeExpired()
    if not hmac.compare_digest(record["code_mac"], mac):
        return WrongCode(OTP_MAX_WRONG - record.get("wrong", 0) - 1)
    return None


def issue_code(store, otp_key, fields, ip_slot, ip_limit, now, day, code_secret, send):
    """Send a new code for ``otp_key`` (``fields``: what the record keeps while it is pending,
    the plain number among them): the number's limits, the address's, a compare-and-set of the
    record, then ``send(code)``. A request refused after it took the address's count — the
    record changed meanwhile, or ``send`` raised — gives back all it took, in one place: the
    record as it was, the address's count; the exception goes on to the caller. A refused
    request changes nothing. Returns what ``send`` returned."""
    record = store.code_record(otp_key)
    sends = check_code_request(record, now, day)
    if not store.take_code_slot(ip_slot, ip_limit, now):
        raise TooManyCodeRequests(ip_limit)
    code = new_code()
    mac = code_mac(code_secret, otp_key, code)
    pending = dict(fields, code_mac=mac, expires_at=now + OTP_VALID, sent_at=now, day=day,
                   sends=sends + 1, wrong=0)
    put = False
    try:
        put = store.put_code(otp_key, record, pending)
        if not put:
            raise CodeRequestInProgress()
        return send(code)
    except BaseException:
        if put:
            store.drop_code(otp_key, mac, record)
        store.release_code_slot(ip_slot)
        raise


def redeem_code(store, otp_key, mac, now):
    """Use the pending code whose MAC is ``mac``, once; raises why it is refused.

    Each guess takes one of the code's tries before it is compared, in one conditional update,
    so guesses racing on several instances get ``OTP_MAX_WRONG`` tries in all; the last wrong
    one locks the number and drops the code."""
    record = store.code_record(otp_key)
    problem = code_problem(record, mac, now)
    if problem is None or isinstance(problem, WrongCode):
        tried = store.take_try(otp_key, record["code_mac"], OTP_MAX_WRONG)
        if tried is None:
            problem = no_try_left(store.code_record(otp_key), mac, now)
        elif problem is None and store.use_code(otp_key, mac, now) is None:
            problem = code_problem(None, mac, now)  # used meanwhile: single use
        elif problem is not None and tried["wrong"] >= OTP_MAX_WRONG:
            store.lock_number(otp_key, tried["code_mac"], now + OTP_LOCK)
    if problem is not None:
        raise problem


class OneTimeCodeStore:
    """Store verbs of one-time codes; mix into a repository with ``codes`` and
    ``code_requests`` collections. Every change is a single-document atomic update."""

    def code_record(self, otp_key):
        return self.codes.find_one({"_id": otp_key})

    def put_code(self, otp_key, previous, fields):
        """Store a new pending code unless another request changed the record meanwhile."""
        if previous is None:
            try:
                self.codes.insert_one(dict(fields, _id=otp_key))
                return True
            except DuplicateKeyError:
                return False
        result = self.codes.update_one({"_id": otp_key, "sent_at": previous.get("sent_at")},
                                       {"$set": fields})
        return bool(result.modified_count)

    def drop_code(self, otp_key, mac, previous):
        """Undo ``put_code`` after a refused send: the record as it was before the request
        (a refused call changes nothing: no resend wait, no daily send used)."""
        if previous is None:
            self.codes.delete_one({"_id": otp_key, "code_mac": mac})
        else:
            self.codes.replace_one({"_id": otp_key, "code_mac": mac}, previous)

    def take_code_slot(self, slot, limit, now):
        """Count one code request in ``slot``; ``False`` (and nothing counted) past ``limit``.

        One conditional increment, so instances sharing the store allow ``limit`` exactly."""
        return take(self.code_requests, slot, limit, 1,
                    on_insert={"until": now + timedelta(hours=2)})

    def release_code_slot(self, slot):
        give_back(self.code_requests, slot)

    def use_code(self, otp_key, mac, now):
        """Single use: the one caller whose update matches gets the record; the code is gone."""
        return self.codes.find_one_and_update(
            {"_id": otp_key, "code_mac": mac, "expires_at": {"$gt": now}},
            {"$unset": {"code_mac": "", "mobile": "", "expires_at": ""},
             "$set": {"wrong": 0, "verified_at": now}})

    def take_try(self, otp_key, mac, max_tries):
        """Count one guess at the pending code ``mac``; the record after, or ``None`` when its
        ``max_tries`` are used up (or the code is gone). One conditional update: exact across
        instances."""
        return self.codes.find_one_and_update(
            {"_id": otp_key, "code_mac": mac, "wrong": {"$lt": max_tries}},
            {"$inc": {"wrong": 1}}, return_document=ReturnDocument.AFTER)

    def lock_number(self, otp_key, mac, locked_until):
        """Its tries used up: lock the number and drop the code (and the plain number)."""
        self.codes.update_one({"_id": otp_key, "code_mac": mac}, {
            "$set": {"locked_until": locked_until, "wrong": 0},
            "$unset": {"code_mac": "", "mobile": "", "expires_at": ""}})

    def purge_expired_codes(self, now):
        """A plain number is kept only while its code is pending."""
        return self.codes.update_many(
            {"expires_at": {"$lte": now}},
            {"$unset": {"code_mac": "", "mobile": "", "expires_at": ""}}).modified_count
