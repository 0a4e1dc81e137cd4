"""The operation audit log's catalogue: every action code a row may carry, with its Chinese
name (the page and the CSV show the name), and the outcomes.

One catalogue: the writer (:func:`workflow.app.oplog.record`, :func:`workflow.app.oplog.log`,
the :func:`workflow.app.oplog.audited` decorator) refuses a code that is not here, and
``tests/app/test_oplog.py`` checks every write use case is decorated with one.

Login, logout, lockout and reveal codes (``auth.*``, ``contacts.*``) are written by the web's
login seam and by the pages and exports that show clerks' phones (the ``auth`` engineer's
points of issue 21), through the same writer.
"""

from __future__ import annotations

import states

#: Outcomes: done; refused by a rule or a permission (the refusal's code in ``detail``); failed
#: (an error nobody meant).
OK = "ok"
REFUSED = "refused"
FAILED = "failed"
OUTCOMES: dict[str, str] = {OK: "成功", REFUSED: "被拒绝", FAILED: "出错"}

ACTIONS: dict[str, str] = {
    # data entry (own or 代填报: the detail says on_behalf)
    "record.plan": "填写年度计划",
    "record.report_info": "修改报表文字信息",
    "purchase.enter": "录入采购明细",
    "purchase.void": "作废采购明细",
    "purchase.import": "导入采购台账",
    "attachment.add": "上传附件",
    "aggregate.add": "录入汇总数据",
    # decisions and lifecycle steps
    "record.fire": "办理流程（提交、审核、退回等）",
    "record.sweep": "系统检查（逾期、迟报、额度失效）",
    "record.bulk_accept": "批量审核通过",
    "round.deadline": "调整报送截止日期",
    "duplicate.explain": "说明重复订单",
    "record.remind": "上级催办",
    "supplement.accept": "审核通过补报",
    "delegation.name": "指定代理人",
    "delegation.cancel": "取消代理",
    # directory, policies, settings
    "policy.install": "载入政策文件",
    "org.import": "导入单位名单",
    "org.add": "新增单位",
    "org.rename": "单位改名",
    "org.move": "调整单位隶属关系",
    "org.deactivate": "停用单位",
    "members.import": "导入会员人数",
    "rollup.rebuild": "重建汇总",
    # accounts and permissions
    "user.import": "导入用户名单",
    "user.add": "新增账号",
    "user.deactivate": "停用账号",
    "user.reset_password": "重置密码",
    "user.handover": "账号交接",
    "user.set_password": "设置密码",
    "user.grant": "授予角色",
    "user.revoke": "撤销角色",
    "user.unlock": "解除锁定",
    "user.totp_enroll": "开通动态口令",
    "token.create": "创建接口令牌",
    "password.policy": "修改密码规则",
    # signing in and out (written by the login seam)
    "auth.login": "登录",
    "auth.login_failed": "登录失败",
    "auth.lockout": "账号被锁定",
    "auth.logout": "退出登录",
    "auth.password_change": "修改本人密码",
    # personal data shown or exported
    "contacts.reveal": "查看联系电话",
    "contacts.export": "导出含联系电话的文件",
    # the audit log itself
    "oplog.export": "导出审计日志",
    "oplog.archive": "归档审计日志",
    "history.export_heads": "导出历史链头",
    "notifications.read": "标记消息已读",
}


#: The history's triggers read as ``record.fire`` rows (a transition's audit row is its
#: history row) and as ``record.sweep`` rows (the system's checks).
FIRE_TRIGGERS = frozenset(states.TRIGGERS)
SWEEP_TRIGGERS = frozenset({"late", "overdue", "lapse"})


def label(action: str) -> str:
    """The action's Chinese name (the code itself for one the catalogue does not know: an old
    row's, kept readable)."""
    return ACTIONS.get(action, action)


def check(action: str, outcome: str) -> None:
    """Refuse a code outside the catalogue (a programming error, not a user's)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown oplog action {action!r}: add it to workflow.domain.oplog.ACTIONS")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown oplog outcome {outcome!r}")
