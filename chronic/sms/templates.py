"""The one place that holds each SMS template: its Chinese text, its values, its Aliyun code.

The text uses Aliyun's own placeholder syntax (``${name}``), so the template registered in the
Aliyun console is this text verbatim and the log gateway and the outbox show exactly what the
provider sends. Aliyun adds the sign name (【…】) itself; it is not part of the text.

No template names the applicant: the SMS goes to the mobile given on the form, and keeping
names out of the text keeps them out of the outbox's params as well. The applicant's messages
end with a link to their timeline in the hall, the expert's with a link to the task
(``${link}``: the hall's public address and the application ID, nothing personal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Template

from models.notifications import SmsTemplate


@dataclass(frozen=True)
class TemplateSpec:
    """One SMS template.

    Attributes:
        text: The Chinese text with ``${name}`` placeholders (Aliyun's syntax).
        params: The placeholder names, in the order they appear.
        code_setting: The :class:`chronic.sms.settings.SmsSettings` field holding the Aliyun
            template code (``SMS_…``) registered for this text; its environment variable is
            ``CHRONIC_SMS_`` + the field name in upper case.
        secret: Params that are never logged nor kept in clear (a one-time code): the log
            line and the outbox's text show them masked, the outbox keeps them sealed.
    """

    text: str
    params: tuple[str, ...]
    code_setting: str
    secret: tuple[str, ...] = ()

    @property
    def env_var(self) -> str:
        """Environment variable that sets this template's Aliyun code."""
        return f"CHRONIC_SMS_{self.code_setting.upper()}"


TEMPLATES: Mapping[SmsTemplate, TemplateSpec] = {
    SmsTemplate.SUBMITTED: TemplateSpec(
        text="您的门诊慢特病认定申请已提交，申请编号${application_id}，可随时登录查询办理进度。"
        "详情：${link}",
        params=("application_id", "link"),
        code_setting="aliyun_template_submitted",
    ),
    SmsTemplate.RETURNED: TemplateSpec(
        text="您的门诊慢特病认定申请（编号${application_id}）已被退回，原因：${reasons}。"
        "请按要求补正后重新提交。"
        "详情：${link}",
        params=("application_id", "reasons", "link"),
        code_setting="aliyun_template_returned",
    ),
    SmsTemplate.MATERIALS_REQUESTED: TemplateSpec(
        text="您的门诊慢特病认定申请（编号${application_id}）需补充材料：${note}。"
        "请尽快登录补充提交。"
        "详情：${link}",
        params=("application_id", "note", "link"),
        code_setting="aliyun_template_materials_requested",
    ),
    SmsTemplate.APPROVED: TemplateSpec(
        text="您的门诊慢特病认定申请（编号${application_id}）已通过认定，待遇有效期"
        "${valid_from}至${valid_to}，定点医院：${hospital}。"
        "详情：${link}",
        params=("application_id", "valid_from", "valid_to", "hospital", "link"),
        code_setting="aliyun_template_approved",
    ),
    SmsTemplate.REJECTED: TemplateSpec(
        text="您的门诊慢特病认定申请（编号${application_id}）未通过认定，原因：${reason}。"
        "详情：${link}",
        params=("application_id", "reason", "link"),
        code_setting="aliyun_template_rejected",
    ),
    SmsTemplate.BENEFIT_REVOKED: TemplateSpec(
        text="您的门诊慢特病待遇（申请编号${application_id}）经抽审核查，自${date}起撤销，"
        "原因：${reason}。如有异议请联系医保经办机构。"
        "详情：${link}",
        params=("application_id", "date", "reason", "link"),
        code_setting="aliyun_template_benefit_revoked",
    ),
    SmsTemplate.CLOSED: TemplateSpec(
        text="您的门诊慢特病认定申请（编号${application_id}）已终止办理，原因：${reason}。"
        "如有疑问请联系医保经办机构，可重新提交申请。"
        "详情：${link}",
        params=("application_id", "reason", "link"),
        code_setting="aliyun_template_closed",
    ),
    SmsTemplate.EXAMINATION_SCHEDULED: TemplateSpec(
        text="您的门诊慢特病认定申请（编号${application_id}）需现场鉴定，请于${at}到${place}，"
        "携带社会保障卡及病历资料。"
        "详情：${link}",
        params=("application_id", "at", "place", "link"),
        code_setting="aliyun_template_examination_scheduled",
    ),
    SmsTemplate.EXPERT_DISQUALIFIED: TemplateSpec(
        text="贵院推荐的门诊慢特病认定专家（工号${expert_code}）已连续${strikes}次拒绝或超时"
        "未受理评审任务，依规取消其专家资格。",
        params=("expert_code", "strikes"),
        code_setting="aliyun_template_expert_disqualified",
    ),
    SmsTemplate.EXPERT_MONTH_REPORT: TemplateSpec(
        text="贵院${month}门诊慢特病认定专家工作量统计：专家${experts}名，推送任务${offers}次，"
        "受理${accepted}次，不受理${declined}次，超时${lapsed}次。明细请向医保经办机构索取。",
        params=("month", "experts", "offers", "accepted", "declined", "lapsed"),
        code_setting="aliyun_template_expert_month_report",
    ),
    SmsTemplate.FILING_FILED: TemplateSpec(
        text="您的异地就医备案（编号${filing_id}）已办理，就医地${destination}，备案有效期"
        "${validity}。请在就医地联网定点医疗机构凭医保电子凭证或社保卡就医直接结算。",
        params=("filing_id", "destination", "validity"),
        code_setting="aliyun_template_filing_filed",
    ),
    SmsTemplate.FILING_REFUSED: TemplateSpec(
        text="您的异地就医备案（编号${filing_id}）未通过，原因：${reason}。请按要求补正后"
        "重新申请备案。",
        params=("filing_id", "reason"),
        code_setting="aliyun_template_filing_refused",
    ),
    SmsTemplate.FILING_CLOSED: TemplateSpec(
        text="您的异地就医备案（编号${filing_id}）已终止办理，原因：${reason}。如有疑问请联系"
        "医保经办机构，可重新申请备案。",
        params=("filing_id", "reason"),
        code_setting="aliyun_template_filing_closed",
    ),
    SmsTemplate.BENEFIT_DESIGNATION_CHANGED: TemplateSpec(
        text="您的门诊慢特病待遇（编号${application_id}）${what}已变更为${name}，自${on}起生效。"
        "详情：${link}",
        params=("application_id", "what", "name", "on", "link"),
        code_setting="aliyun_template_benefit_designation_changed",
    ),
    SmsTemplate.BENEFIT_SUSPENDED: TemplateSpec(
        text="您的门诊慢特病待遇（编号${application_id}）因住院自${on}起暂停，住院期间不同时"
        "享受门诊慢特病待遇，出院后恢复。"
        "详情：${link}",
        params=("application_id", "on", "link"),
        code_setting="aliyun_template_benefit_suspended",
    ),
    SmsTemplate.BENEFIT_RESUMED: TemplateSpec(
        text="您的门诊慢特病待遇（编号${application_id}）已于${on}出院后恢复。详情：${link}",
        params=("application_id", "on", "link"),
        code_setting="aliyun_template_benefit_resumed",
    ),
    SmsTemplate.BENEFIT_ENDING: TemplateSpec(
        text="您的门诊慢特病待遇（编号${application_id}）将于${valid_to}到期，请留意到期复查接续。"
        "详情：${link}",
        params=("application_id", "valid_to", "link"),
        code_setting="aliyun_template_benefit_ending",
    ),
    SmsTemplate.BENEFIT_RENEWED: TemplateSpec(
        text="您的门诊慢特病待遇（编号${application_id}）经到期复查已续期，有效期至${valid_to}。"
        "详情：${link}",
        params=("application_id", "valid_to", "link"),
        code_setting="aliyun_template_benefit_renewed",
    ),
    SmsTemplate.BENEFIT_ENDED: TemplateSpec(
        text="您的门诊慢特病待遇（编号${application_id}）已于${valid_to}到期终止。如需继续享受"
        "待遇，请联系医保经办机构。"
        "详情：${link}",
        params=("application_id", "valid_to", "link"),
        code_setting="aliyun_template_benefit_ended",
    ),
    SmsTemplate.EXPERT_OFFER: TemplateSpec(
        text="您有一项门诊慢特病认定评审任务待受理，请于${deadline}前登录网上服务大厅受理或"
        "不受理：${link}",
        params=("deadline", "link"),
        code_setting="aliyun_template_expert_offer",
    ),
    SmsTemplate.EXPERT_OFFER_REMINDER: TemplateSpec(
        text="提醒：您的门诊慢特病认定评审任务将于${deadline}超时，超时未受理计为一次未受理，"
        "请尽快登录处理：${link}",
        params=("deadline", "link"),
        code_setting="aliyun_template_expert_offer_reminder",
    ),
    SmsTemplate.SIGN_IN_CODE: TemplateSpec(
        text="您正在登录门诊慢特病网上服务大厅，验证码${code}，${minutes}分钟内有效。"
        "如非本人操作请忽略，切勿告诉他人。",
        params=("code", "minutes"),
        code_setting="aliyun_template_sign_in_code",
        secret=("code",),
    ),
}

MASK = "******"
"""What a secret param reads as in a log line or the outbox's text."""


def spec(template: SmsTemplate) -> TemplateSpec:
    """The spec of ``template``."""
    return TEMPLATES[template]


def missing_params(template: SmsTemplate, values: Mapping[str, str]) -> list[str]:
    """The placeholders of ``template`` that ``values`` does not fill (empty counts as missing)."""
    return [name for name in spec(template).params if not values.get(name)]


def template_values(template: SmsTemplate, values: Mapping[str, str]) -> dict[str, str]:
    """Only the values ``template`` uses, in its order (what the provider receives)."""
    return {name: values[name] for name in spec(template).params}


def render(template: SmsTemplate, values: Mapping[str, str]) -> str:
    """The text of ``template`` filled with ``values``.

    Raises:
        KeyError: A placeholder has no value (see :func:`missing_params` to check first).
    """
    return Template(spec(template).text).substitute(template_values(template, values))


def render_masked(template: SmsTemplate, values: Mapping[str, str]) -> str:
    """The text of ``template`` with its secret params masked: what a log or a person reads."""
    secret = spec(template).secret
    return render(template, {k: MASK if k in secret else v for k, v in values.items()})


__all__ = [
    "MASK",
    "TEMPLATES",
    "TemplateSpec",
    "missing_params",
    "render",
    "render_masked",
    "spec",
    "template_values",
]
