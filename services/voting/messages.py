"""What the voting page and its JSON API say for each refusal, in plain simplified Chinese.

One table keyed by error class (the nearest class wins: ``shared.errors.describe``), so a
refinement such as ``WrongCode`` is worded before the ``ValidationError`` it refines; errors
themselves carry no page text. The one-time codes' words are shared with the 公示 page
(``shared.one_time_codes.REFUSALS_ZH``).
"""
from zoneinfo import ZoneInfo

from shared import one_time_codes as otp
from shared.errors import (Conflict, DuplicateVote, NotFound, RateLimited, Unauthorized,
                           Unavailable, ValidationError, VoteLimitReached, VotingClosed,
                           describe)
from services.voting import web

FIELD_NAMES_ZH = {
    "vote_id": "投票编号", "campaign_id": "活动编号", "candidate_id": "候选对象",
    "mobile": "手机号码", "code": "验证码", "voter.id": "投票人", "voter.channel": "投票渠道",
    "client.ip": "IP地址", "body": "请求内容", "category": "评选类别", "receipt": "回执编号",
}


def _local(moment, settings):
    return moment.astimezone(ZoneInfo(settings.timezone)).strftime("%Y年%m月%d日 %H:%M")


def _voting_closed(error, settings):
    if settings is None:
        return "现在不在投票时间内。"
    return (f"现在不在投票时间内。投票时间为{_local(settings.opens, settings)}至"
            f"{_local(settings.closes, settings)}（北京时间）。")


def _vote_limit(error, settings):
    limit = f"{settings.daily_limit}票" if settings and settings.daily_limit else "上限"
    return f"您今天的投票次数已达到{limit}，请明天再来。"


def _bad_fields(error, settings):
    names = [FIELD_NAMES_ZH.get(name, name) for name in error.messages]
    return f"填写的内容有误：{'、'.join(names)}。请检查后重试。" if names else "填写的内容有误，请检查后重试。"


#: Each entry is the words, or a function of (error, the campaign's VotingSettings or None).
REFUSALS_ZH = {
    **otp.REFUSALS_ZH,
    VotingClosed: _voting_closed,
    DuplicateVote: "您今天已经为这位候选对象投过票了，每人每天只能为同一候选对象投一票，请明天再来。",
    VoteLimitReached: _vote_limit,
    RateLimited: "操作太频繁了，请稍等几分钟再试。",
    NotFound: "没有找到该候选对象或活动，可能已不在本次投票名单中。",
    Conflict: "这次投票的编号已用于另一张选票，请刷新页面后重新投票。",
    Unauthorized: "请先用手机号码验证身份，再投票。",
    ValidationError: _bad_fields,
    web.TooLarge: "提交的内容过大，请检查后重试。",
    web.NotJson: "提交的内容不是有效的JSON。",
    web.NotAnObject: "提交的内容必须是一个JSON对象。",
    Unavailable: "暂时无法发送验证码，请稍后再试。",
    Exception: "系统繁忙，请稍后再试。",
}


def refusal_zh(error, settings=None):
    """What the voting page says for a refusal (``settings``: the campaign's, when known)."""
    return describe(REFUSALS_ZH, error, settings)


#: The receipt check's own words (``/receipts``): a well-formed receipt no vote has, or not
#: a receipt at all.
RECEIPT_REFUSALS_ZH = {
    NotFound: "没有找到这张回执对应的选票，请核对回执编号。",
    Exception: "回执编号的格式不对，应类似 ABCD-EFGH-IJKL-MNOP。",
}


def receipt_refusal_zh(error):
    """What the receipt check says when a receipt is refused."""
    return describe(RECEIPT_REFUSALS_ZH, error)
