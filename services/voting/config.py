"""Names of the voting service's own config keys (``config.yml`` fills them from the environment)."""

#: Secret of the voter hashes (HMAC of the mobile number / WeChat id), receipts and page
#: sessions. Empty: derived from the service's own ``SERVICE_KEY`` (set it on its own in
#: production: rotating the service key would otherwise change every voter hash).
VOTER_SECRET = "VOTER_SECRET"
#: Where one-time codes go: ``notification`` (``notification.send_direct``) or ``log``.
OTP_SENDER = "OTP_SENDER"
#: Seconds the vote counts shown on the ballot may be old.
BALLOT_CACHE_SECONDS = "BALLOT_CACHE_SECONDS"
#: Comma-separated addresses of reverse proxies whose ``X-Forwarded-For`` is believed.
TRUSTED_PROXIES = "TRUSTED_PROXIES"
#: Base URL of the 公示 page the front page links (empty: ``http://`` + ``AGGREGATION_HTTP``).
PUBLICITY_URL = "PUBLICITY_URL"
AGGREGATION_HTTP = "AGGREGATION_HTTP"

OTP_SENDERS = ("notification", "log")
DEFAULT_BALLOT_CACHE_SECONDS = 5.0
