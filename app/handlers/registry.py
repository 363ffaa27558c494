"""The service operations of the app, keyed by the operation name the BPMN diagrams use."""
from __future__ import annotations

from app.handlers.account_steps import account_activate, account_refuse
from app.handlers.handler import Handler
from app.handlers.plan_steps import plan_close, plan_compute_results, plan_end_announcement
from app.handlers.sms_many import sms_many
from app.handlers.sms_send import sms_send

HANDLERS: dict[str, Handler] = {
    "sms_send": Handler(sms_send, ("phone", "template"), ("vars", "message_ref"), "发送短信"),
    "sms_many": Handler(sms_many, ("template", "selector"), ("plan_id", "vars"),
                        "群发短信：按 selector 选出的每个收件人发送一条（每步骤每人至多一条）"),
    "plan_close": Handler(plan_close, ("plan_id",), ("notify_drafts",),
                          "截止申报：草稿过期；notify_drafts 为 True（默认）时并短信通知只有草稿的院校"),
    "plan_compute_results": Handler(plan_compute_results, ("plan_id",), (), "计算试点院校结果"),
    "plan_end_announcement": Handler(plan_end_announcement, ("plan_id",), (), "结束结果公示"),
    "account_activate": Handler(account_activate, (), (), "开通注册的院校账号：生成初始密码并短信发送账号和密码"
                                "（此前账号不能登录、不能申报）", inline=True, processes=("registration",)),
    "account_refuse": Handler(account_refuse, (), ("reason",), "拒绝院校注册：账号不开通，院校可重新注册"
                              "（reason：审核意见，记入账号记录）", processes=("registration",)),
}
