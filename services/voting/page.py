"""The voting page (simplified Chinese, mobile-first, large text on request, readable by a
screen reader, no image captcha): server-rendered HTML that works without JavaScript."""
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, select_autoescape

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:18px/1.6 -apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
 color:#1a1a1a;background:#f6f6f6}
body.large{font-size:24px}
.wrap{max-width:40rem;margin:0 auto;padding:0 1rem 3rem}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
header{background:#b71c1c;color:#fff;padding:1rem}
header h1{font-size:1.3em;margin:0 0 .3rem}
header p{margin:.2rem 0}
header a{color:#fff}
h2{font-size:1.15em;border-left:.3rem solid #b71c1c;padding-left:.5rem;margin:1.5rem 0 .5rem}
h3{font-size:1.05em;margin:0}
.card{background:#fff;border-radius:.5rem;padding:1rem;margin:.75rem 0;box-shadow:0 1px 2px #0002}
label{display:block;font-weight:bold;margin:.5rem 0 .25rem}
input{width:100%;font-size:1.1em;padding:.6rem;border:2px solid #555;border-radius:.4rem}
button{width:100%;min-height:3rem;font-size:1.05em;margin-top:.6rem;border:0;border-radius:.4rem;
 background:#b71c1c;color:#fff;cursor:pointer}
button.secondary{background:#555}
button:focus,input:focus,a:focus{outline:3px solid #1565c0;outline-offset:2px}
.msg{padding:1rem;border-radius:.5rem;margin:1rem 0;font-weight:bold}
.msg.error{background:#fdecea;color:#8a1c12;border:2px solid #8a1c12}
.msg.ok{background:#e8f5e9;color:#1b5e20;border:2px solid #1b5e20}
.receipt{font-family:monospace;font-size:1.2em;letter-spacing:.05em}
.votes{color:#555}.unit{color:#555;margin:0}
ul.candidates{list-style:none;padding:0;margin:0}
.sizes a{margin-right:1rem}
"""

BASE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}网络投票{% endblock %}</title>
<style>{{ style }}</style>
</head>
<body class="{{ 'large' if large else '' }}">
<a class="skip" href="#main">跳到主要内容</a>
<header><div class="wrap">{% block header %}<h1>网络投票</h1>{% endblock %}
<p class="sizes"><a href="?size=large" id="large-text">大字版</a><a href="?size=normal">标准字号</a></p>
</div></header>
<main id="main" class="wrap">
{% if message %}<div class="msg {{ kind }}" role="{{ 'alert' if kind == 'error' else 'status' }}" id="message">{{ message }}</div>{% endif %}
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

INDEX = """{% extends "base" %}
{% block main %}
<h2>正在进行的评选活动</h2>
{% for campaign in campaigns %}
<div class="card"><h3><a href="/campaigns/{{ campaign.id }}">{{ campaign.name }}</a></h3>
<p>投票时间：{{ campaign.opens }} 至 {{ campaign.closes }}（{{ campaign.zone }}）</p>
{% if publicity %}<p><a class="publicity-link" href="{{ publicity }}/publicity/{{ campaign.id }}">查看公示名单、提出异议</a></p>{% endif %}</div>
{% else %}
<p>目前没有评选活动。</p>
{% endfor %}
{{ receipt_form() }}
{% endblock %}
"""

RECEIPT_FORM = """{% macro receipt_form(code='') %}
<section class="card" aria-labelledby="check-h"><h2 id="check-h">查询投票回执</h2>
<form method="get" action="/receipts">
<label for="receipt-input">回执编号（如 ABCD-EFGH-IJKL-MNOP）</label>
<input id="receipt-input" name="code" value="{{ code }}" autocomplete="off" autocapitalize="characters">
<button type="submit" id="check-receipt">查询是否已计入</button>
</form></section>
{% endmacro %}"""

CAMPAIGN = """{% extends "base" %}
{% block title %}{{ campaign.name }} · 网络投票{% endblock %}
{% block header %}<h1>{{ campaign.name }}</h1>
<p>网络投票时间：{{ campaign.opens }} 至 {{ campaign.closes }}（{{ campaign.zone }}）</p>
<p>{{ '投票进行中' if campaign.open else '现在不在投票时间内' }}{% if rules %} · {{ rules }}{% endif %}</p>{% endblock %}
{% block main %}
{% if receipt %}
<section class="card" aria-labelledby="receipt-h" id="receipt">
<h2 id="receipt-h">投票成功</h2>
<p>您已为 <strong>{{ receipt.nominee_name }}</strong> 投票，已计入。</p>
<p>回执编号：<strong class="receipt" id="receipt-code">{{ receipt.receipt }}</strong></p>
<p>请记下回执编号，以后可以在本页下方查询这张选票是否已计入。</p>
</section>
{% endif %}
<section class="card" aria-labelledby="verify-h" id="verify">
<h2 id="verify-h">第一步：验证手机号码</h2>
{% if voter %}
<p id="verified">已验证手机号码 {{ voter }}，可以投票。每人每天可为同一候选对象投一票。</p>
<form method="post" action="/campaigns/{{ campaign.id }}/leave"><button class="secondary" type="submit">退出验证</button></form>
{% elif code_sent %}
<form method="post" action="/campaigns/{{ campaign.id }}/verify" id="code-form">
<input type="hidden" name="mobile" value="{{ mobile }}">
<p>验证码已发送到 {{ masked }}，{{ valid_minutes }}分钟内有效。</p>
<label for="code">短信验证码（6位数字）</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" pattern="[0-9]*" required aria-describedby="code-help">
<p id="code-help">连续输错{{ max_wrong }}次，该号码将被锁定30分钟。</p>
<button type="submit" id="verify-button">验证</button>
</form>
<form method="post" action="/campaigns/{{ campaign.id }}/code"><input type="hidden" name="mobile" value="{{ mobile }}">
<button class="secondary" type="submit">重新获取验证码</button></form>
{% else %}
<form method="post" action="/campaigns/{{ campaign.id }}/code" id="mobile-form">
<label for="mobile">手机号码</label>
<input id="mobile" name="mobile" type="tel" inputmode="numeric" autocomplete="tel" maxlength="20" required aria-describedby="mobile-help">
<p id="mobile-help">我们会发送一条短信验证码。手机号码只用于确认“一人一票”，不会公开。</p>
<button type="submit" id="send-code">获取验证码</button>
</form>
{% endif %}
</section>
<h2 id="ballot-h">第二步：选择候选对象投票</h2>
<p>票数每隔几秒更新一次。</p>
{% for category in categories %}
<section aria-labelledby="cat-{{ category.category }}">
<h2 id="cat-{{ category.category }}">{{ category.name }}</h2>
<ul class="candidates">
{% for c in category.candidates %}
<li class="card candidate" id="candidate-{{ c.candidate_id }}">
<h3>{{ c.nominee_name }}</h3>
{% if c.nominee_unit %}<p class="unit">{{ c.nominee_unit }}</p>{% endif %}
<p>{{ c.deeds_summary }}</p>
<p class="votes">当前票数：<span class="count">{{ c.votes }}</span></p>
{% if voter and campaign.open %}
<form method="post" action="/campaigns/{{ campaign.id }}/vote">
<input type="hidden" name="candidate_id" value="{{ c.candidate_id }}">
<input type="hidden" name="vote_id" value="{{ c.vote_id }}">
<button type="submit" class="vote" aria-label="为{{ c.nominee_name }}投一票">投票</button>
</form>
{% endif %}
</li>
{% else %}
<li>本类别暂无候选对象。</li>
{% endfor %}
</ul>
</section>
{% endfor %}
{{ receipt_form() }}
{% endblock %}
"""

RECEIPT = """{% extends "base" %}
{% block title %}投票回执查询{% endblock %}
{% block main %}
{% if status %}
<section class="card" id="receipt-status" aria-labelledby="status-h">
{% if status.status == "voided" %}
<h2 id="status-h">这张选票已被作废，不计入票数</h2>
<p role="status">作废原因：{{ status.void.reason }}</p>
<p>作废时间：{{ status.void_at_local }}</p>
{% elif status.status == "candidate_disqualified" %}
<h2 id="status-h">该候选对象已被取消参评资格</h2>
<p role="status">这张选票已记录，但该候选对象已被取消参评资格，不参加排名。{% if status.disqualification_reason %}原因：{{ status.disqualification_reason }}{% endif %}</p>
{% else %}
<h2 id="status-h">这张选票已计入</h2>
{% endif %}
<p>回执编号：<span class="receipt">{{ status.receipt }}</span></p>
<p>候选对象：{{ status.nominee_name }}（{{ status.category_name }}）</p>
<p>投票时间：{{ status.cast_at_local }}</p>
</section>
{% endif %}
{{ receipt_form(code) }}
<p><a href="/">返回首页</a></p>
{% endblock %}
"""

_env = Environment(loader=DictLoader({
    "base": BASE, "index": "{% from 'receipt_form' import receipt_form %}" + INDEX,
    "campaign": "{% from 'receipt_form' import receipt_form %}" + CAMPAIGN,
    "receipt": "{% from 'receipt_form' import receipt_form %}" + RECEIPT,
    "receipt_form": RECEIPT_FORM,
}), autoescape=select_autoescape(default=True, default_for_string=True))


def render(template, **context):
    return _env.get_template(template).render(style=STYLE, **context)


def local_time(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y年%m月%d日 %H:%M")


def zone_name(zone):
    return "北京时间" if zone in ("Asia/Shanghai", "Asia/Chongqing", "PRC") else zone


def campaign_view(campaign, now):
    return {"id": campaign.id, "name": campaign.name,
            "opens": local_time(campaign.voting_opens, campaign.timezone),
            "closes": local_time(campaign.voting_closes, campaign.timezone),
            "zone": zone_name(campaign.timezone),
            "open": campaign.voting_opens <= now < campaign.voting_closes}


def publicity_base(config):
    """Where the 公示 page is (aggregation's ``/publicity/<id>``), from the service's config."""
    from shared import config as cfg

    url = cfg.read(config, cfg.PUBLICITY_URL)
    if url:
        return url.rstrip("/")
    return f"http://{cfg.read(config, cfg.AGGREGATION_HTTP)}"


def rules_text(settings):
    if settings.daily_limit:
        return f"每人每天最多投{settings.daily_limit}票"
    return ""
