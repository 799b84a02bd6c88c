"""The voting page's one-time codes: a resident proves a mobile number, then votes as it.

The code rules, their store verbs and the two use cases (send once within the limits, redeem
once) are ``shared/one_time_codes.py``, shared with the 公示 page; what is the voting page's
own is here: voting must be open, which number and address count, the channel the code goes
through, the metrics an SMS outage alert reads, and the signed session a verified number gets.
"""
from shared import one_time_codes as otp
from shared.errors import PingxuanError, Unavailable, VotingClosed
from shared.timeutil import iso, local_day
from shared.validation import load
from services.voting import domain, schemas


class OneTimeCodes:
    """One worker's view of the page's codes: its store, keys, channel, metrics and clock."""

    def __init__(self, store, keys, send, metrics, now):
        self.store = store
        self.keys = keys
        self.send = send
        self.metrics = metrics
        self.now = now

    def request(self, campaign, mobile, ip):
        """Send a code to ``mobile`` (validated) for ``campaign``:
        ``{sent, mobile (masked), valid_seconds}``, or the refusal, which changes nothing."""
        now = self.now()
        if not campaign.voting_opens <= now < campaign.voting_closes:
            raise VotingClosed(f"voting of campaign {campaign.id} is not open")
        otp_key = self._otp_key(campaign, mobile)
        reply = otp.issue_code(
            self.store, otp_key, {"campaign_id": campaign.id, "mobile": mobile},
            domain.code_ip_slot(campaign.id, self.keys.hashes.ip(ip), now),
            domain.code_ip_limit(campaign), now, local_day(now, campaign.timezone),
            self.keys.code,
            lambda code: self._send(mobile, code, campaign.name, f"otp|{otp_key}|{now.timestamp()}"))
        # notification answers "queued" when its channel's first attempt failed (it retries):
        # the voter has no code yet, which an SMS outage alert must see.
        queued = isinstance(reply, dict) and reply.get("status") == "queued"
        self.metrics.codes.labels("send_delayed" if queued else "sent").inc()
        return {"sent": True, "mobile": domain.mask_mobile(mobile),
                "valid_seconds": int(domain.OTP_VALID.total_seconds())}

    def verify(self, campaign, mobile, code):
        """Use the pending code of ``mobile``: ``{session, expires_at}``, or why not."""
        now = self.now()
        voter = domain.voter_key(self.keys.voter, "mobile", mobile)
        otp_key = f"{campaign.id}|{voter}"
        try:
            otp.redeem_code(self.store, otp_key, domain.code_mac(self.keys.code, otp_key, code),
                            now)
        except PingxuanError:
            self.metrics.codes.labels("refused").inc()
            raise
        self.metrics.codes.labels("verified").inc()
        session = domain.sign_session(self.keys.session, campaign.id,
                                      {"k": voter, "m": domain.mask_mobile(mobile)}, now)
        return {"session": session, "expires_at": iso(now + domain.SESSION_TTL)}

    def _otp_key(self, campaign, mobile):
        # The page's voter and a front end's voter with the same number are one voter.
        return f"{campaign.id}|{domain.voter_key(self.keys.voter, 'mobile', mobile)}"

    def _send(self, mobile, code, campaign_name, idempotency_key):
        """The channel's refusal (``RateLimited``) is the caller's answer; any other failure
        is not the caller's fault: ``Unavailable`` (HTTP 503)."""
        try:
            return self.send(mobile, code, campaign_name, idempotency_key)
        except PingxuanError:
            self.metrics.codes.labels("refused_by_channel").inc()
            raise
        except Exception as exc:
            self.metrics.codes.labels("send_failed").inc()
            raise Unavailable(f"the one-time code could not be sent: {type(exc).__name__}")


def code_request(campaign_id, mobile, strict=None):
    """The validated request of a code: the JSON API's body as sent (``strict``: an unknown
    field is refused), or the page's form fields."""
    return load(schemas.CodeRequest(), strict if strict is not None else
                {"campaign_id": campaign_id, "mobile": mobile}, "body")

