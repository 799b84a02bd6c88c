"""The message templates: Chinese, complete, and refused when a variable is missing."""
import re

import pytest

from services.notification.render import MissingVariables, Renderer, UnknownTemplate

RENDERER = Renderer()
CJK = re.compile(r"[\u4e00-\u9fff]")

NOMINATION = {
    "campaign_name": "2013年全县“五创四评”活动", "nomination_id": "nom-42",
    "nominee_name": "县财政局机关党委", "nominee_unit": "县财政局", "unit": "城关镇党委",
    "category_name": "创建学习型党组织先进单位", "org_type_name": "机关",
    "submitted_at": "2013年10月20日 10:00", "deadline": "2013年10月30日 23:59",
    "voting_opens": "2013年11月1日 08:00", "voting_closes": "2013年11月20日 20:00",
    "contact_person": "李明",
}
SAMPLES = {
    "nomination_receipt": NOMINATION,
    "review_result": dict(NOMINATION, decision="accept", opinion="材料齐全，同意列为候选对象"),
    "disqualification_notice": dict(NOMINATION, reason="公示期间经核实事迹材料失实"),
    "otp_code": {"campaign_name": "2013年全县“五创四评”活动", "code": "381274", "valid_minutes": 5},
    "judge_assignment": {"judge_name": "王评委", "campaign_name": "2013年全县“五创四评”活动",
                         "category_name": "党员学习明星", "link": "http://127.0.0.1:8102/j/abc",
                         "closes_at": "2013年11月25日 18:00"},
    "objection_code": {"campaign_name": "2013年全县“五创四评”活动", "code": "381274",
                       "valid_minutes": 5},
    "objection_verdict": {"campaign_name": "2013年全县“五创四评”活动",
                          "receipt": "obj-abcdefghijklmnop", "nominee_name": "张三",
                          "verdict": "经核实，异议成立"},
    "judge_reminder": {"judge_name": "王评委", "campaign_name": "2013年全县“五创四评”活动",
                       "category_name": "党员学习明星", "link": "http://127.0.0.1:8102/j/abc",
                       "closes_at": "2013年11月25日 18:00"},
}
#: Templates about a nomination name its nominee; every template names the campaign.
ABOUT_A_NOMINEE = ("nomination_receipt", "review_result", "disqualification_notice")


def test_there_is_one_template_per_message_the_services_need():
    assert RENDERER.names() == set(SAMPLES)


def test_the_agreed_variables_of_the_templates_other_services_use():
    assert RENDERER.variables("otp_code") == {"code", "valid_minutes", "campaign_name"}
    judge = {"judge_name", "campaign_name", "category_name", "link", "closes_at"}
    assert RENDERER.variables("judge_assignment") == judge
    assert RENDERER.variables("judge_reminder") == judge


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_template_renders_in_chinese_naming_the_campaign_and_what_happens_next(name):
    message = RENDERER.render(name, SAMPLES[name])
    assert message.subject and CJK.search(message.subject)
    assert len(CJK.findall(message.body)) > 20
    assert "下一步" in message.body
    assert SAMPLES[name]["campaign_name"] in message.subject + message.body
    assert "{{" not in message.body and "{%" not in message.body
    assert "\n\n\n" not in message.body and message.body == message.body.strip()
    if name in ABOUT_A_NOMINEE:
        assert "县财政局机关党委" in message.subject and "县财政局机关党委" in message.body
    # Simplified Chinese: none of the traditional forms of the notice.
    assert not re.search("[評選審單會聯傳學習]", message.subject + message.body)


@pytest.mark.parametrize("name, variable", [(name, variable) for name in sorted(SAMPLES)
                                            for variable in sorted(RENDERER.variables(name))])
def test_a_missing_variable_is_refused_by_name(name, variable):
    params = {key: value for key, value in SAMPLES[name].items() if key != variable}
    with pytest.raises(MissingVariables) as refused:
        RENDERER.render(name, params)
    assert refused.value.names == [variable]
    assert variable in str(refused.value)


def test_the_review_result_says_what_follows_acceptance_or_rejection():
    accepted = RENDERER.render("review_result", SAMPLES["review_result"])
    assert "已通过" in accepted.subject and "网络投票将于2013年11月1日 08:00开始" in accepted.body
    rejected = RENDERER.render("review_result", dict(SAMPLES["review_result"], decision="reject",
                                                     opinion="缺少单位盖章"))
    assert "未通过" in rejected.subject and "缺少单位盖章" in rejected.body
    assert "不再进入网络投票" in rejected.body


def test_the_one_time_code_is_in_the_text():
    message = RENDERER.render("otp_code", SAMPLES["otp_code"])
    assert "验证码为381274，5分钟内有效" in message.body


def test_values_are_plain_text_not_template_code():
    message = RENDERER.render("otp_code", dict(SAMPLES["otp_code"], campaign_name="{{ code }}<b>"))
    assert "{{ code }}<b>" in message.body


def test_an_unknown_template_is_refused():
    with pytest.raises(UnknownTemplate):
        RENDERER.render("lottery_win", {})
