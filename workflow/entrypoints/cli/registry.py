"""The table of commands: each command's name, the module under
:mod:`workflow.entrypoints.cli.commands` that defines it, and its Chinese help line.

``bangfu --help`` lists the commands from this table alone; running a command (or asking for its
``--help``) imports its module, in :func:`load`: the command line's one import inside a function
(tests/test_architecture.py checks both the table and that rule).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from workflow.entrypoints.cli.command import Command

PACKAGE = "workflow.entrypoints.cli.commands"


class Entry(NamedTuple):
    module: str  #: the module under :data:`PACKAGE`
    help: str  #: the help line, in ``bangfu --help`` and atop the command's own help
    #: One short transaction (a clerk's everyday commands): runs with the cyclic garbage collector
    #: paused, see ``workflow.entrypoints.cli._collector_paused``.
    short: bool = False


#: In the order ``bangfu --help`` lists them.
COMMANDS: dict[str, Entry] = {
    "init": Entry("setup", "创建或升级数据库，并加载 17号文政策"),
    "db-upgrade": Entry("setup", "把数据库结构升级到最新版本"),
    "policy-check": Entry("setup", "检查政策文件"),
    "policy-load": Entry("setup", "加载政策文件（或内置政策代码）"),
    "org-import": Entry("directory", "从 CSV 导入单位树（code,name,kind,parent_code[,phone]）"),
    "user-import": Entry("directory", "从 CSV 导入用户和任职（username,display_name,org_code,role[,email,phone,password]）"),
    "members-import": Entry("directory", "导入 --round 年度各单位会员人数（org_code,members）"),
    "rounds": Entry("rounds", "列出已加载的年度及其截止日期", short=True),
    "verify": Entry("verify", "按明细重算汇总快照、概况汇总表、额外额度和作废额度，逐单位列出不一致（有则退出码 1）"),
    "rollup-rebuild": Entry("rollup_rebuild", "按记录重算概况用的汇总表（--round 指定年度，不指定则全部年度）"),
    "plan": Entry("plan", "填写每人额外额度和会员人数", short=True),
    "report-info": Entry("plan", "填写填报人、联系电话、填表时间和工作报告内容", short=True),
    "purchase-add": Entry("purchases", "录入一笔采购", short=True),
    "purchase-void": Entry("purchases", "作废一笔采购并说明原因（提交前；作废的行仍列出，但不计入任何数字）", short=True),
    "purchase-list": Entry("purchases", "列出一个单位的采购", short=True),
    "fire": Entry("fire", "执行一步流程操作（提交、通过、退回……）", short=True),
    "delegate": Entry("delegate", "指定审核人的代理人及代理起止日期（代理期间由代理人审核）", short=True),
    "show": Entry("show", "查看记录：额度、截止日期、可执行操作", short=True),
    "history": Entry("history", "查看记录的历史", short=True),
    "lifecycle": Entry("lifecycle", "以 Mermaid 图输出流程", short=True),
    "demo": Entry("demo", "加载演示省份和本年度演示年度"),
    "stats": Entry("stats", "单位的附件2统计（快照、实时或下级汇总）"),
    "province-workbook": Entry("province_workbook", "全省汇总工作簿：汇总表 + 每个已报送单位一张附件2 + 未报送单位名单"),
    "import-purchases": Entry("import_purchases", "把采购文件（CSV/XLSX）导入单位的记录"),
    "limits": Entry("limits", "检查基层工会的普通节日慰问品限额"),
    "duplicates": Entry("duplicates", "列出被两个以上单位录入的同一订单（疑似重复计算）；审核人用 --explain 说明原因"),
    "completeness": Entry("completeness", "各级工会：下级各状态数量、逾期、迟报、快照核对"),
    "chase-list": Entry("chase_list", "未提交的下级单位及填报员电话，写成 XLSX（催报名单）"),
    "work-report": Entry("work_report", "生成报送单位的工作报告"),
    "aggregate-add": Entry("aggregate_add", "上级工会录入一条汇总数据（渠道、人次、金额、来源）"),
    "compare": Entry("compare", "比较下级单位两个年度的数字"),
    "sweep": Entry("sweep", "生成现在到期的提醒和年度检查（逾期、迟报、额度失效）"),
    "deliver": Entry("deliver", "发送待发的通知"),
    "notify-preview": Entry("notify_preview", "用示例数据预览一种通知"),
    "inbox": Entry("inbox", "列出用户的站内通知（最新在前）"),
    "round-status": Entry("round_status", "各报送单位：状态、逾期、快照核对"),
    "review-times": Entry("review_times", "审核用时：按层级、审核单位、审核人列出从提交到审核的天数（中位数、九成以内、最长）、退回次数和最慢的单位"),
    "outbox": Entry("outbox", "发件箱：状态、失败记录、重发、健康检查"),
    "audit-verify": Entry("audit", "核对历史记录链：逐条记录找出第一处被改写、删除或伪造的历史（--round 只核对该年度；有问题时退出码 1）"),
    "audit-export-head": Entry("audit", "导出历史记录链的链头：追加到 var/audit/heads.log，并发邮件给省总工会管理员"),
    "audit-log": Entry("audit_log", "审计员查看操作审计日志（--actor、--action、--org、--from、--to 筛选；--csv 导出）"),
    "audit-log-archive": Entry("audit_log", "把操作审计日志的新记录归档到 var/oplog/ 下只写一次的文件（每天由后台任务执行）"),
    "backup": Entry("backup", "在线备份 SQLite 数据库到文件"),
    "serve": Entry("serve", "启动网页和 JSON 接口（uvicorn）"),
    "account-add": Entry("administration", "系统管理员（或本单位、直接上级的审核人）为单位新增填报员或审核人账号（初始密码从标准输入读取）"),
    "account-deactivate": Entry("administration", "停用账号：不能再登录，原有登录和接口令牌随即失效"),
    "org-add": Entry("administration", "系统管理员在上级单位下新增单位"),
    "org-rename": Entry("administration", "系统管理员为单位改名"),
    "org-move": Entry("administration", "系统管理员调整单位隶属关系（连同下级单位，汇总随即重建）"),
    "token-create": Entry("accounts", "为用户创建接口访问令牌（只显示一次）"),
    "password-reset": Entry("accounts", "上级审核人重置下级单位填报员的密码（新密码从标准输入读取）"),
    "unlock": Entry("accounts", "安全管理员解除因连续登录失败而锁定的账号"),
    "totp-enroll": Entry("accounts", "为管理员账号开通手机验证器动态口令（第二重验证），显示一次绑定地址"),
}

SHORT_COMMANDS = frozenset(name for name, entry in COMMANDS.items() if entry.short)


def module_name(name: str) -> str:
    return f"{PACKAGE}.{COMMANDS[name].module}"


def load(name: str) -> Command:
    """The named command, from its module (imported now: the registry's one lazy import)."""
    command: Command = importlib.import_module(module_name(name)).COMMANDS[name]
    return command
