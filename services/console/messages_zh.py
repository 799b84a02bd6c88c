"""The console's one table of Chinese for the services' refusals: titles, sentences, field names.

The services word their refusals in plain English (CONTRACT.md); the department reads
Chinese. ``TITLES`` gives each error type a heading; ``SENTENCES`` maps each sentence a
service can say (as a template) to its Chinese, carrying the record ids and numbers
across. ``tests/unit/test_console_messages_zh.py`` collects every refusal literal of the
services the console calls and fails when one has no Chinese here.

A template is the English with ``{name}`` for a part the service fills in (any text)
(without "; ", which joins two sentences), ``{name:text}`` (any text, e.g. another
error's words) or ``{name:kind}`` where the part is one of a known set, translated too
(``status``, ``phase``, ``category``, ``org_type``, ``verdict``, ``comparison``) or a ``number``.
Literal braces are doubled, as in ``str.format``. The first template that matches the
whole sentence wins, so a narrow one goes before a wide one.
"""
import re

from shared.campaign import CATEGORY_NAMES_ZH, ORG_TYPE_NAMES_ZH

#: The heading of a refusal, by its ``exc_type``.
TITLES = {
    "ValidationError": "填写的内容未通过校验",
    "Unauthorized": "令牌无效、已过期或已被吊销",
    "Forbidden": "此令牌无权执行该操作",
    "NotFound": "找不到该记录",
    "Conflict": "与已有记录冲突",
    "DeadlinePassed": "已超过规定的截止时间",
    "QuotaExceeded": "名额已满",
    "InvalidState": "当前状态不允许此操作",
    "VotingClosed": "投票未开放或已结束",
    "DuplicateVote": "重复投票",
    "VoteLimitReached": "已达投票上限",
    "RateLimited": "操作过于频繁，请稍后再试",
    "PanelClosed": "评审组已结束评分",
    "MethodNotFound": "该功能所需的服务方法尚未上线",
    "UnknownService": "该服务没有运行",
    "IncorrectSignature": "控制台与服务的版本不一致（调用参数不符）",
    "MalformedRequest": "控制台与服务的版本不一致（请求格式不符）",
    "Unavailable": "服务暂时没有应答，请稍后再试",
}
#: The heading of a refusal of a type not listed above (e.g. a service's crash).
OTHER_TITLE = "操作未完成"

STATUS_ZH = {"submitted": "待审核", "accepted": "已通过（候选）", "rejected": "未通过",
             "withdrawn": "已撤回", "disqualified": "已取消资格"}
PHASE_ZH = {"open": "未公示", "published": "公示中", "finalized": "已审定"}
VERDICT_ZH = {"received": "待处理", "upheld": "成立", "rejected": "不成立"}
#: marshmallow's Range says "Must be greater than or equal to 1."
COMPARISON_ZH = {"greater than or equal to": "不小于", "greater than": "大于",
                 "less than or equal to": "不大于", "less than": "小于"}
#: ``(words, only these)``: a part outside the words is carried over as written, unless
#: ``only these`` (then the template does not match it).
KINDS = {
    "status": (STATUS_ZH, False),
    "phase": (PHASE_ZH, False),
    "verdict": (VERDICT_ZH, False),
    "category": (CATEGORY_NAMES_ZH, False),
    "org_type": (ORG_TYPE_NAMES_ZH, False),
    "comparison": (COMPARISON_ZH, True),
}
NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,}")

#: The fields of the console's forms (and the RPC arguments behind them), as a user reads them.
FIELD_NAMES = {
    "decision": "审核结论", "opinion": "意见", "leadership_opinion": "领导小组意见",
    "opinion.opinion": "意见", "opinion.signed_by": "签字人", "opinion.date": "日期",
    "category": "奖项类别", "judges": "评委", "judges_text": "评委名单", "judges_file": "评委名单文件", "judge_ids": "评委",
    "candidate_id": "候选对象编号", "selector": "作废范围", "selector.candidate_id": "候选对象编号",
    "selector.network": "网段", "selector.from": "起始时间", "selector.to": "结束时间",
    "selector.vote_ids": "投票编号", "reason": "理由", "restore_reason": "恢复理由",
    "void_id": "作废编号", "verdict": "裁定", "objection_id": "异议编号",
    "objector.name": "异议人姓名", "objector.mobile": "异议人手机", "grounds": "异议理由",
    "message_id": "消息编号", "campaign_id": "评选活动编号", "nomination_id": "推荐表编号",
    "campaign_file": "活动配置文件", "body": "提交的内容",
    "_schema": "",  # the whole request: its message needs no field's name before it
}

#: English template -> Chinese, every sentence a service the console calls can refuse with.
SENTENCES = {
    # --- nomination: campaigns and nominations -------------------------------------------
    "no campaign {campaign}": "找不到评选活动 {campaign}。",
    "no nomination {nomination}": "找不到推荐表 {nomination}。",
    "campaign {campaign} does not run category {category:category}; one of {known}":
        "评选活动 {campaign} 没有“{category}”这一类别（可选：{known}）。",
    "campaign {campaign} does not run category {category:category}":
        "评选活动 {campaign} 没有“{category}”这一类别。",
    "a rejection needs a reason": "不通过须写明理由。",
    "nomination {nomination} is {status:status}; the leadership group's opinion is recorded "
    "only on candidates": "推荐表 {nomination} 当前为“{status}”；领导小组意见只记录在候选对象（已通过初审）上。",
    "nomination {nomination} is {status:status}; only a submitted nomination can be reviewed":
        "推荐表 {nomination} 当前为“{status}”，只有待审核的推荐表才能审核。",
    "nomination {nomination} is {status:status}; only a submitted nomination can be amended":
        "推荐表 {nomination} 当前为“{status}”，只有待审核的推荐表才能修改。",
    "nomination {nomination} is {status:status}; only a candidate accepted in review can be "
    "disqualified": "推荐表 {nomination} 当前为“{status}”，只有初审通过的候选对象才能取消资格。",
    "nomination {nomination} is {status:status} and cannot be withdrawn":
        "推荐表 {nomination} 当前为“{status}”，不能撤回。",
    "nomination {nomination} belongs to another unit": "推荐表 {nomination} 属于其他推荐单位。",
    "nomination {nomination} changed meanwhile; read it and retry":
        "推荐表 {nomination} 刚被他人修改，请刷新后重试。",
    "nomination {nomination} changed while amending; read it and retry":
        "推荐表 {nomination} 在修改过程中被他人改动，请刷新后重试。",
    "the list of campaign {campaign} has been finalized (審定); no candidate can be "
    "disqualified any more": "评选活动 {campaign} 的名单已审定，不能再取消候选对象的资格。",
    "a unit may list only its own nominations": "推荐单位只能查看本单位的推荐表。",
    "unit '{unit}' is not a nominating unit of campaign {campaign}":
        "“{unit}”不是评选活动 {campaign} 的推荐单位。",
    "the {slot} is reached; no more nominations are taken": "名额已满（{slot}），不再接受推荐。",
    "cannot {action}: the nomination deadline of campaign {campaign} ({deadline}, {zone}) has "
    "passed; late nominations are refused":
        "评选活动 {campaign} 的推荐截止时间（{deadline}，{zone}）已过，逾期不予受理（{action}）。",
    "client_ref '{ref}' was already used by this unit for a different nomination ({nomination}); "
    "use a new client_ref or amend that one":
        "编号 client_ref “{ref}”已被本单位用于另一份推荐表（{nomination}），请换用新编号或修改那一份。",
    "must not be in the future: today is {today} in the campaign's time zone ({zone})":
        "日期不能晚于今天（按活动时区 {zone}，今天是 {today}）。",
    "must be an object with at least one field": "应至少包含一项要修改的内容。",
    "cannot be changed by amend; withdraw this nomination and submit a new one":
        "此项不能通过修改更正，请撤回本推荐表后重新推荐。",
    "is required for advanced_unit (one of {types})": "“创建学习型党组织先进单位”须填写组织类型（可选：{types}）。",
    "only advanced_unit nominations have an org type": "只有“创建学习型党组织先进单位”才填写组织类型。",
    "is required for learning_star (黨內職務)": "“党员学习明星”须填写党内职务。",
    "must be text or an object {{opinion, signed_by, date}}": "应填写意见文字，或包含意见、签字人、日期的内容。",
    "must be accept or reject": "应选择“通过”或“不通过”。",
    "must be submitted, accepted, rejected, withdrawn or disqualified":
        "状态应为待审核、已通过、未通过、已撤回或已取消资格之一。",
    "must be a telephone number (digits, spaces, '-', '(', ')'; 7–20 characters)":
        "应为电话号码（数字、空格、“-”、括号，7至20个字符）。",
    "must be a date like 2013-10-20": "应为日期，如 2013-10-20。",
    "must be true: the form must carry the unit's seal": "推荐表须加盖推荐单位公章。",
    "must be a lower-case hex SHA-256": "应为小写十六进制的 SHA-256 值。",
    "must be a campaign id like cb-2013-siping": "应为评选活动编号，如 cb-2013-siping。",
    "must be an e-mail address like name@example.cn": "应为电子邮箱地址，如 name@example.cn。",
    "at most {n:number} attachments": "附件最多 {n} 个。",
    "must be 1–100 letters, digits or _ . : / - (your system's own reference)":
        "应为1至100个字母、数字或 _ . : / -（贵单位系统自己的编号）。",
    "must be an object": "格式不正确（应为一组字段）。",
    # --- campaign definitions (shared/campaign.py) ----------------------------------------
    "needs a time as well as a date, e.g. 2013-10-30T23:59:59": "除日期外还须写明时间，如 2013-10-30T23:59:59。",
    "must be a local date and time like 2013-10-30T23:59:59": "应为当地日期和时间，如 2013-10-30T23:59:59。",
    "must be local time without an offset; the zone is `timezone`":
        "应为不带时区偏移的当地时间；时区由 timezone 一项给出。",
    "must be a lower-case identifier like `results`": "应为小写英文标识，如 results。",
    "must be greater than 0 and at most 1": "应大于0且不超过1。",
    "must be greater than min": "应大于最低分（min）。",
    "must be after opens": "结束时间应晚于开始时间（opens）。",
    "must be after from": "结束时间应晚于起始时间。",
    "needs at least one criterion": "至少需要一项评分标准。",
    "needs at least one rule": "至少需要一条投票规则。",
    "needs at least one category": "至少需要一个奖项类别。",
    "criterion keys must be unique": "评分标准的标识不能重复。",
    "criterion weights must add up to 1": "各评分标准的权重之和应为1。",
    "public and panel weights must add up to 1": "网络投票与集中评审的权重之和应为1。",
    "must be between 0 and 1": "应在0与1之间。",
    "add up to {sum:number}, more than intake_cap {cap:number}":
        "合计 {sum}，超过了推荐名额（intake_cap）{cap}。",
    "add up to {sum:number}, more than award_slots {slots:number}":
        "合计 {sum}，超过了获奖名额（award_slots）{slots}。",
    "{slots:number} slots but an intake cap of only {cap:number}":
        "获奖名额 {slots} 个，但推荐名额只有 {cap} 个。",
    "{org_type:org_type}: {slots:number} slots but an intake cap of only {cap:number}":
        "{org_type}：获奖名额 {slots} 个，但推荐名额只有 {cap} 个。",
    "only advanced_unit is divided by org type": "只有“创建学习型党组织先进单位”按组织类型划分名额。",
    "unknown org type; one of {types}": "不认识的组织类型（可选：{types}）。",
    "unknown category; one of {known}": "不认识的奖项类别（可选：{known}）。",
    "unknown time zone '{zone}'": "不认识的时区“{zone}”。",
    "unknown method '{method}'; one of {known}": "不认识的评审计分方法“{method}”（可选：{known}）。",
    "units must be unique": "推荐单位不能重复。",
    "must include {rules}: every vote must be inside the window, for a candidate on the ballot, "
    "once per voter, candidate and day":
        "须包含 {rules}：每一票都须在投票时间内、投给候选对象、每人每天对每位候选对象一票。",
    "must be a whole number from 0 to 6": "应为0至6的整数。",
    "must be 1–{max:number} working days": "应为1至{max}个工作日。",
    "must be lower-case letters, digits and '-' (2–64), like cb-2013-siping":
        "应为2至64个小写字母、数字或“-”，如 cb-2013-siping。",
    "cannot count working days of {year:number}: {problem:text}. A 公示 published within "
    "{days:number} days after voting closes may fall in it":
        "无法计算 {year} 年的工作日（{problem}）；投票结束后 {days} 天内发布的公示可能落在该年。",
    # --- voting ---------------------------------------------------------------------------
    "voting of campaign {campaign} is not open": "评选活动 {campaign} 的网络投票未开放。",
    "voting of campaign {campaign} opens at {at}": "评选活动 {campaign} 的网络投票于 {at} 开始。",
    "voting of campaign {campaign} closed at {at}": "评选活动 {campaign} 的网络投票已于 {at} 结束。",
    "candidate {candidate} is not on the ballot of campaign {campaign}":
        "{candidate} 不是评选活动 {campaign} 的投票候选对象。",
    "this voter has cast the {n:number} votes allowed on {day} ({zone})":
        "该投票人 {day}（{zone}）已投满 {n} 票。",
    "this voter already voted for candidate {candidate} on {day} ({zone})":
        "该投票人 {day}（{zone}）已给候选对象 {candidate} 投过票。",
    "too many votes from this address: {n:number} in {seconds:number} s; try again later":
        "同一地址投票过于频繁（{seconds} 秒内 {n} 票），请稍后再试。",
    "vote_id {vote} was already used for a different vote": "投票编号 {vote} 已用于另一张选票。",
    "no counted vote has receipt {receipt}": "没有回执为 {receipt} 的有效投票。",
    "no candidate {candidate} in campaign {campaign}": "评选活动 {campaign} 中没有候选对象 {candidate}。",
    "{n:number} of the vote ids are no vote of campaign {campaign}: {ids}":
        "有 {n} 个投票编号不属于评选活动 {campaign}：{ids}。",
    "no counted vote of campaign {campaign} matches the selector (votes already voided are not "
    "voided twice)": "评选活动 {campaign} 中没有符合条件的有效投票（已作废的票不会重复作废）。",
    "the list of campaign {campaign} was published (revision {revision}): votes can no longer be "
    "voided or restored": "评选活动 {campaign} 的名单已发布（第 {revision} 版），不能再作废或恢复投票。",
    "no such void": "找不到该作废记录。",
    "void {void} was already restored": "作废记录 {void} 已经恢复过。",
    "void {void} was already restored: its votes count again":
        "作废记录 {void} 已经恢复过，其中的票已重新计入。",
    "void {void} is still being applied; try again in a moment": "作废记录 {void} 仍在执行中，请稍后再试。",
    "verify a mobile number first": "请先验证手机号码。",
    "must be a network in CIDR notation, e.g. 203.0.113.0/24": "应为 CIDR 格式的网段，如 203.0.113.0/24。",
    "must be /{prefix:number} or wider: voting keeps only each address's network, never the "
    "address": "网段应为 /{prefix} 或更宽：投票服务只保存地址所在网段，不保存具体地址。",
    "must be an ISO 8601 time in UTC, e.g. 2013-11-05T02:00:00Z":
        "应为 UTC 时间（ISO 8601），如 2013-11-05T02:00:00Z。",
    "needs its offset: an ISO 8601 time in UTC ends with Z, e.g. 2013-11-05T02:00:00Z":
        "缺少时区：UTC 时间应以 Z 结尾，如 2013-11-05T02:00:00Z。",
    "must list 1–{max:number} vote ids": "应列出1至{max}个投票编号。",
    "either vote_ids or any of candidate_id, network, from, to; not both":
        "请按投票编号作废，或按候选对象、网段、时间作废，二者只能选其一。",
    "needs vote_ids or at least one of candidate_id, network, from, to":
        "请填写投票编号，或至少填写候选对象、网段、起止时间中的一项。",
    "must be 1–2000 characters: say why the votes are voided": "请写明作废理由（1至2000字）。",
    "must say why: a void needs a reason": "作废投票须写明理由。",
    "must be 1–2000 characters: say why the votes count again": "请写明恢复理由（1至2000字）。",
    "must say why: a restore needs a reason": "恢复投票须写明理由。",
    "must be an IPv4 or IPv6 address": "应为 IPv4 或 IPv6 地址。",
    "must be a mainland China mobile number for channel mobile": "手机渠道应填写中国大陆手机号码。",
    "must be a WeChat openid (6–128 letters, digits, _ or -)":
        "应为微信 openid（6至128个字母、数字、_ 或 -）。",
    "must hold {low:number}–{high:number} votes": "应包含{low}至{high}张选票。",
    "must be a rule name like daily_limit": "应为规则名称，如 daily_limit。",
    "must be a receipt like ABCD-EFGH-IJKL-MNOP": "应为投票回执，如 ABCD-EFGH-IJKL-MNOP。",
    "must be the {n:number} digits of the code": "应为验证码的 {n} 位数字。",
    "must be 1–100 letters, digits or _ . : - (starting with a letter or digit)":
        "应为1至100个字母、数字或 _ . : -（以字母或数字开头）。",
    # --- scoring --------------------------------------------------------------------------
    "no panel has been assigned for {category:category} in campaign {campaign}":
        "评选活动 {campaign} 的“{category}”尚未组建评审组。",
    "the panel of {category:category} in campaign {campaign} closed at {at}; no more scores are "
    "taken": "评选活动 {campaign} 的“{category}”评审组已于 {at} 结束评分，不再接受评分。",
    "the panel of {category:category} changed while assigning; try again":
        "“{category}”评审组在指派过程中被他人改动，请重试。",
    "scores kept arriving while closing the panel of {category:category}; try again":
        "关闭“{category}”评审组时仍有评分不断提交，请重试。",
    "judge {judge} is not on the panel of category {category:category}":
        "评委 {judge} 不在“{category}”评审组中。",
    "judge {judge} is not on a panel of campaign {campaign} for {category:category}":
        "评委 {judge} 不在评选活动 {campaign} 的“{category}”评审组中。",
    "judge {judge} is not on a panel of campaign {campaign}": "评委 {judge} 不在评选活动 {campaign} 的任何评审组中。",
    "judge {judge} is from {unit}, the unit of candidate {candidate}, and must recuse (回避)":
        "评委 {judge} 来自 {unit}，即候选对象 {candidate} 所在单位，应当回避。",
    "judge {judge} is from {unit}, which nominated candidate {candidate}, and must recuse (回避)":
        "评委 {judge} 来自 {unit}，该单位推荐了候选对象 {candidate}，应当回避。",
    "no candidate {candidate}": "找不到候选对象 {candidate}。",
    "candidate {candidate} is {status:status}, not on the ballot; it cannot be scored":
        "候选对象 {candidate} 当前为“{status}”，不在评审名单上，不能评分。",
    "candidate {candidate} is not in the category of this panel ({category:category})":
        "候选对象 {candidate} 不属于本评审组的类别（{category}）。",
    "this score was changed at the same time by another request; read the worksheet and send it "
    "again": "这份评分刚被另一次提交同时修改，请刷新评分表后重新提交。",
    "no personal link given": "没有提供评委专用链接。",
    "the personal link's signature is not valid": "评委专用链接的签名无效。",
    "the personal link cannot be read": "无法识别该评委专用链接。",
    "this is not a judge's personal link": "这不是评委专用链接。",
    "this personal link is no longer valid; ask the department for the current one":
        "该评委专用链接已失效，请向宣传部索取最新链接。",
    "must be an object {{criterion: number}} with {criteria}": "应为各评分标准的分数（{criteria}）。",
    "unknown criterion; the criteria are {criteria}": "不认识的评分标准（评分标准为：{criteria}）。",
    "missing: every criterion needs a score ({criterion})": "缺少分数：每项评分标准都须打分（{criterion}）。",
    "must be a number from {low} to {high}": "应为 {low} 至 {high} 之间的数字。",
    "must be a finite number from {low} to {high}": "应为 {low} 至 {high} 之间的有效数字。",
    "{value} is outside the range {low}–{high}": "{value} 超出了 {low}–{high} 的范围。",
    "must be an identifier (letters, digits, '-', '_', '.', ':'; 1–100 characters)":
        "应为编号（字母、数字、“-”“_”“.”“:”，1至100个字符）。",
    "needs 1–{max:number} judges": "评审组应有1至{max}名评委。",
    "judge_id listed twice: {judges}": "评委编号重复：{judges}。",
    "not on the panel of {category:category}: {judges}": "不是“{category}”评审组的评委：{judges}。",
    "name 1–{max:number} judges, or leave it out for all": "请指定1至{max}名评委，或不指定（即全部评委）。",
    "scores kept arriving in the panel of {category:category}; send this one again":
        "“{category}”评审组正有其他评分同时提交，请再提交一次。",
    "the panel of {category:category} changed while renewing links; try again":
        "“{category}”评审组在更换链接时被他人改动，请重试。",
    "is too large": "内容过大。",
    "no rebuild of {campaign} has run": "活动 {campaign} 尚未运行过重算核对。",
    "must be at most {size:number} bytes": "不能超过{size}字节。",
    "must be a JSON object": "格式不正确（应为 JSON 对象）。",
    # --- aggregation ----------------------------------------------------------------------
    "the list of campaign {campaign} is already {phase:phase}; after publication only a "
    "disqualification changes it": "评选活动 {campaign} 的名单{phase}，不能再次发布；发布后只有取消资格才会改变名单。",
    "voting of campaign {campaign} closes at {at} ({zone}); the list is published after the vote":
        "评选活动 {campaign} 的网络投票于 {at}（{zone}）结束，结束后才能发布公示名单。",
    "the panel of {categories} is not closed; panel scores are final only once it is":
        "评审组尚未结束评分（{categories}），结束后评审分才确定，才能发布公示名单。",
    "votes or scores arrived for candidates aggregation does not know ({candidates}); their "
    "nominations have not been received: run rebuild to compare with the other services' records":
        "有投票或评分指向统分服务尚不知道的候选对象（{candidates}）：其推荐表尚未同步，请运行重建（rebuild）与其他服务的记录核对。",
    "the list of campaign {campaign} is {phase:phase}; only a published list can be approved "
    "(finalized)": "评选活动 {campaign} 的名单当前为“{phase}”，只有公示中的名单才能审定。",
    "the per-day vote counts of candidate {candidate} add up to {sum:number}, its count is "
    "{count:number}: run rebuild to compare with voting's records before publishing":
        "候选对象 {candidate} 的每日票数合计 {sum}，与总票数 {count} 不符：请先运行重建（rebuild）与投票服务核对，再发布。",
    "campaign {campaign}: weights public {public} and panel {panel} must be between 0 and 1 and "
    "add up to 1": "评选活动 {campaign}：网络投票权重 {public} 与评审权重 {panel} 应在0与1之间且合计为1。",
    "the list of campaign {campaign} has not been published yet": "评选活动 {campaign} 的名单尚未发布公示。",
    "the list of campaign {campaign} has not been published yet: its inputs are published with it":
        "评选活动 {campaign} 的名单尚未发布公示；计算依据随名单一同公开。",
    "the list of campaign {campaign} has not been published yet; objections are taken during "
    "公示": "评选活动 {campaign} 的名单尚未发布，公示期间才受理异议。",
    "the list of campaign {campaign} has been finalized; the 公示 period is over":
        "评选活动 {campaign} 的名单已审定，公示期已结束。",
    "the 公示 period of revision {revision:number} of campaign {campaign} ended on {day}; "
    "objections to candidate {candidate} are no longer taken":
        "评选活动 {campaign} 第 {revision} 版名单的公示期已于 {day} 结束，不再受理对候选对象 {candidate} 的异议。",
    "the 公示 period of revision {revision:number} of campaign {campaign} runs until {day} "
    "(inclusive); the list can be finalized after it":
        "评选活动 {campaign} 第 {revision} 版名单的公示期到 {day}（含当日）为止，期满后才能审定。",
    "campaign {campaign} has no revision {revision:number} of its list (it has revisions 1 to "
    "{last:number})": "评选活动 {campaign} 的名单没有第 {revision} 版（现有第1至第{last}版）。",
    "the inputs of revision {revision:number} of campaign {campaign} cannot be reproduced; run "
    "rebuild": "评选活动 {campaign} 第 {revision} 版名单的计算依据无法重现，请运行重建（rebuild）。",
    "the list of campaign {campaign} was published meanwhile": "评选活动 {campaign} 的名单刚刚已被发布。",
    "the list of campaign {campaign} changed meanwhile; read it and retry":
        "评选活动 {campaign} 的名单刚被改动，请刷新后重试。",
    "the list of campaign {campaign} is not in 公示": "评选活动 {campaign} 的名单不在公示期。",
    "the list of campaign {campaign} recomputed from its inputs document differs from the list; "
    "nothing was published": "评选活动 {campaign} 按计算依据重算的名单与现有名单不一致，未发布。",
    "could not revise the list of {campaign}: it kept changing": "评选活动 {campaign} 的名单不断变动，未能修订。",
    "publicity.working_days of campaign {campaign}: {problem:text}":
        "评选活动 {campaign} 的公示工作日（publicity.working_days）无法计算：{problem}",
    "candidate {candidate} is not on the published list of campaign {campaign}":
        "候选对象 {candidate} 不在评选活动 {campaign} 已发布的名单上。",
    "{n:number} objection(s) to the list of campaign {campaign} await a verdict; resolve them "
    "before finalizing": "评选活动 {campaign} 还有 {n} 件异议未裁定，须先处理再审定。",
    "objection {objection} was already decided ({verdict:verdict}); a verdict is given once":
        "异议 {objection} 已经裁定（{verdict}），每件异议只裁定一次。",
    "objection {objection} was decided meanwhile; a verdict is given once":
        "异议 {objection} 刚刚已被裁定，每件异议只裁定一次。",
    "no objection {objection}": "找不到异议 {objection}。",
    "no objection": "找不到该异议。",
    "must be upheld or rejected": "裁定应为“成立”或“不成立”。",
    "must be received, upheld or rejected": "状态应为待处理、成立或不成立。",
    "must be the 6 digits of the SMS": "应为短信中的6位数字。",
    "must be a list of votes": "应为投票列表。",
    "the nomination service did not disqualify candidate {candidate} ({problem:text}); nothing was "
    "decided, try again": "推荐服务未能取消候选对象 {candidate} 的资格（{problem}），裁定未生效，请重试。",
    "the one-time code could not be sent": "验证码未能发送。",
    "voting.votes_page returned a vote without a candidate_id or cast_at":
        "投票服务返回的投票缺少候选对象或投票时间。",
    "{source} replied in an unexpected shape: {problem:text}": "{source} 的应答格式不符合约定：{problem}",
    "too large": "内容过大。",
    # --- notification ---------------------------------------------------------------------
    "no message {message}": "找不到消息 {message}。",
    "message {message} is {status}, not parked; only parked messages can be resent":
        "消息 {message} 当前为 {status}，不是发送失败搁置的消息，只有搁置的消息才能重发。",
    "message {message} carried a code or a personal link and was erased; ask for a new one (a new "
    "code, or assign the judge again)": "消息 {message} 含验证码或评委专用链接，已被清除；请重新申请（新的验证码，或重新指派该评委）。",
    "message {message} changed meanwhile; read it and retry": "消息 {message} 刚被改动，请刷新后重试。",
    "message {message} was not requested by {name}": "消息 {message} 不是 {name} 发出的。",
    "idempotency_key was already used for a different message ({message}); use a new key":
        "幂等键 idempotency_key 已用于另一条消息（{message}），请换用新的键。",
    "too many messages to this recipient: at most {n:number} in {minutes:number} minutes; try "
    "again later": "发给该收件人的消息过多（{minutes} 分钟内最多 {n} 条），请稍后再试。",
    "no template {template} (known: {known})": "没有消息模板 {template}（现有：{known}）。",
    "required by template {template}": "消息模板 {template} 需要此项。",
    "no mobile number given": "没有填写手机号码。",
    "no e-mail address given": "没有填写电子邮箱地址。",
    "'{address}' is not a mainland China mobile number (11 digits starting 13–19)":
        "“{address}”不是中国大陆手机号码（以13至19开头的11位数字）。",
    "'{address}' is not an e-mail address": "“{address}”不是电子邮箱地址。",
    "unknown kind of address '{kind}' (sms or email)": "不认识的地址类型“{kind}”（应为 sms 或 email）。",
    "must be text or a number": "应为文字或数字。",
    "must be at most {n:number} characters long": "最多 {n} 个字符。",
    "must be a template name like otp_code": "应为模板名称，如 otp_code。",
    "must be a variable name": "应为变量名。",
    "at most {n:number} variables": "最多 {n} 个变量。",
    "must not contain control characters": "不能包含控制字符。",
    "must be an identifier": "应为编号。",
    # --- shared: tokens, one-time codes, plain values -------------------------------------
    "no auth_token in the call's context data": "调用未携带令牌。",
    "the auth_token is not a pingxuan token": "这不是本系统签发的令牌。",
    "the auth_token is not valid: it has expired": "令牌已过期。",
    "the auth_token is not valid: {problem:text}": "令牌无效：{problem}",
    "the auth_token cannot be read": "无法识别该令牌。",
    "the auth_token has been revoked": "令牌已被吊销。",
    "the {service} service may not call {target}.{method}": "{service} 服务无权调用 {target}.{method}。",
    "role '{role}' may not make this call (needs {needed})": "“{role}”角色无权执行此操作（需要 {needed}）。",
    "no code is pending for this number, or it was used": "该号码没有待验证的验证码，或验证码已用过。",
    "the one-time code could not be sent: {cause}": "验证码暂时无法发送（{cause}），请稍后再试。",
    "the code has expired": "验证码已过期。",
    "the code is not correct": "验证码不正确。",
    "a code was sent less than {n:number} s ago": "{n} 秒内已发送过验证码，请稍候。",
    "at most {n:number} codes per number per day": "每个号码每天最多接收 {n} 条验证码。",
    "at most {n:number} code requests per address per hour": "同一地址每小时最多申请 {n} 次验证码。",
    "too many wrong codes: this number is locked for a while": "验证码错误次数过多，该号码暂时锁定。",
    "another code request for this number is in progress": "该号码的另一次验证码申请正在处理中。",
    "must be a mainland China mobile number (11 digits starting 13–19)":
        "应为中国大陆手机号码（以13至19开头的11位数字）。",
    "must be {low:number}–{high:number} characters long": "应为{low}至{high}个字符。",
    "must be true or false": "应为“是”或“否”。",
    "must be a number": "应为数字。",
    "must be a finite number": "应为有效数字。",
    "must be one of {known}": "应为以下之一：{known}。",
    "must be {n:number} or more": "应不小于{n}。",
    "must be {low:number}–{high:number}": "应在{low}至{high}之间。",
    # --- the console's own -----------------------------------------------------------------
    "{service}.{method} did not answer within the time allowed": "{service}.{method} 在规定时间内没有应答。",
    "Unknown service `{service}`": "服务 {service} 没有运行。",
    # --- marshmallow's own words ----------------------------------------------------------
    "Missing data for required field.": "此项必填。",
    "Field may not be null.": "此项不能为空。",
    "Unknown field.": "不认识的字段。",
    "Invalid input type.": "格式不正确。",
    "Invalid input.": "输入无效。",
    "Invalid type.": "类型不正确。",
    "Invalid value.": "取值无效。",
    "Not a valid string.": "应填写文字。",
    "Not a valid integer.": "应填写整数。",
    "Not a valid number.": "应填写数字。",
    "Not a valid boolean.": "应为“是”或“否”。",
    "Not a valid list.": "应为列表。",
    "Not a valid tuple.": "应为列表。",
    "Not a valid mapping type.": "应为一组字段。",
    "Not a valid date.": "应为日期。",
    "Not a valid email address.": "应为电子邮箱地址。",
    "Not a valid URL.": "应为网址。",
    "Not a valid UUID.": "应为 UUID。",
    "Not a valid utf-8 string.": "应为 UTF-8 文字。",
    "Not a valid period of time.": "应为时间长度。",
    "Not a valid IP address.": "应为 IP 地址。",
    "Not a valid IPv4 address.": "应为 IPv4 地址。",
    "Not a valid IPv6 address.": "应为 IPv6 地址。",
    "Not a valid IP interface.": "应为 IP 网段。",
    "Not a valid IPv4 interface.": "应为 IPv4 网段。",
    "Not a valid IPv6 interface.": "应为 IPv6 网段。",
    "Not a valid {awareness} {kind}.": "应为{awareness}的{kind}。",
    "Not a valid {kind}.": "应为{kind}。",
    "Number too large.": "数字过大。",
    "Special numeric values (nan or infinity) are not permitted.": "不接受 NaN 或无穷大。",
    "String does not match expected pattern.": "格式不正确。",
    "Shorter than minimum length {min:number}.": "至少 {min} 个字符（或项）。",
    "Longer than maximum length {max:number}.": "最多 {max} 个字符（或项）。",
    "Length must be between {min:number} and {max:number}.": "长度应为 {min} 至 {max}。",
    "Length must be {n:number}.": "长度应为 {n}。",
    "Must be equal to {other}.": "应等于 {other}。",
    "Must be one of: {choices}.": "应为以下之一：{choices}。",
    "One or more of the choices you made was not in: {choices}.": "有选项不在可选范围内：{choices}。",
    "One or more of the choices you made was in: {values}.": "有选项属于不允许的值：{values}。",
    "Must be {low_op:comparison} {low} and {high_op:comparison} {high}.": "应{low_op}{low}且{high_op}{high}。",
    "Must be {op:comparison} {limit}.": "应{op}{limit}。",
    "\"{value}\" cannot be formatted as a date.": "“{value}”无法写成日期。",
    "\"{value}\" cannot be formatted as a {kind}.": "“{value}”无法写成{kind}。",
    "{value} cannot be formatted as a timedelta.": "{value} 无法写成时间长度。",
}


def _compile(template):
    """``(regex, kinds)`` of a template: each ``{name}`` or ``{name:kind}`` a named group."""
    pattern, kinds, position = "", {}, 0
    for found in re.finditer(r"\{\{|\}\}|\{(\w+)(?::(\w+))?\}", template):
        pattern += re.escape(template[position:found.start()])
        position = found.end()
        if found.group(0) in ("{{", "}}"):
            pattern += re.escape(found.group(0)[0])
            continue
        name, kind = found.group(1), found.group(2)
        if kind == "number":
            pattern += f"(?P<{name}>{NUMBER})"
        elif kind in KINDS and KINDS[kind][1]:
            words = sorted(KINDS[kind][0], key=len, reverse=True)
            pattern += f"(?P<{name}>{'|'.join(map(re.escape, words))})"
        elif kind == "text":
            pattern += f"(?P<{name}>.+?)"
        elif kind in KINDS or kind is None:
            # Not across "; ": that joins two sentences filed under one field.
            pattern += f"(?P<{name}>[^;]+?)"
        else:
            raise ValueError(f"{template!r}: unknown kind {kind!r}")
        if kind in KINDS:
            kinds[name] = kind
    pattern += re.escape(template[position:])
    return re.compile(pattern, re.DOTALL), kinds


COMPILED = [(_compile(english), chinese) for english, chinese in SENTENCES.items()]


def _fill(chinese, groups, kinds):
    values = {name: KINDS[kinds[name]][0].get(value, value) if name in kinds else value
              for name, value in groups.items()}
    return chinese.format(**values)


def already_chinese(message):
    """Written in Chinese (a Chinese term inside an English sentence does not make it so)."""
    return bool(CHINESE.search(message)) and not ENGLISH_WORDS.search(message)


def translate(message):
    """The Chinese of one of the services' sentences, or ``None`` when the table lacks it.

    A sentence already in Chinese is itself. Several sentences joined by "; " (as a
    service may file them under one field) are translated one by one.
    """
    message = str(message).strip()
    if not message or already_chinese(message):
        return message
    for (pattern, kinds), chinese in COMPILED:
        found = pattern.fullmatch(message)
        if found:
            return _fill(chinese, found.groupdict(), kinds)
    parts = [part.strip() for part in message.split(";")]
    if len(parts) > 1:
        words = [translate(part) for part in parts if part]
        if all(words):
            return joined(words)
    return None


def joined(sentences):
    """Sentences as one, Chinese style: "甲；乙。" (not "甲。；乙。")."""
    parts = [str(part).strip() for part in sentences if str(part).strip()]
    return "；".join(part[:-1] if part.endswith("。") and number < len(parts) - 1 else part
                    for number, part in enumerate(parts))


def title(exc_type):
    """The Chinese heading of a refusal of type ``exc_type``."""
    return TITLES.get(exc_type, OTHER_TITLE)


def field_name(field):
    """A field as a user reads it: its Chinese name where the console knows it."""
    return FIELD_NAMES.get(field, field)
