"""Every refusal and error code bangfu can give, with one line in a union clerk's words.

A code is what the CLI prints in ``[code]`` and the API answers in ``{"code": …}``; a refusal
(:class:`~workflow.domain.errors.Refusal`) or an error (:mod:`workflow.domain.errors`) carries one.
This catalogue is for reading (a newcomer, a support call, the help desk's FAQ): the sentences
the clerk actually sees are written where the rule is, with the figures filled in. The code
literals stay where they are given; ``tests/domain/test_codes.py`` reads the whole source tree and
fails when a code is given that is not listed here, or listed here and given nowhere.

Grouped by area, in the order a year's work goes: plan, purchases, import, report, review, then
accounts and permissions, input, the web and the command line, the operator's settings.
(The Annex 2 limits' verdicts, ``limits.budget_hard`` …, are assessments shown beside the figures,
not refusals, and are listed in :mod:`workflow.domain.limits`.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    area: str
    text: str


#: (area, its Chinese name), in the order the catalogue reads.
AREAS: tuple[tuple[str, str], ...] = (
    ("plan", "年度计划（额外额度）"),
    ("purchase", "采购明细（逐笔录入和导入共用的规则）"),
    ("import", "文件导入（采购台账、单位名单、会员人数）"),
    ("aggregate", "汇总数据（上级工会录入）"),
    ("attachment", "附件"),
    ("report", "报表信息、汇总与提交"),
    ("review", "审核、退回与截止日期"),
    ("lookup", "找不到的对象"),
    ("account", "账号、登录与权限"),
    ("input", "输入格式（金额、人数、日期、时间、表单）"),
    ("web", "网页与接口"),
    ("cli", "命令行与运维"),
    ("general", "通用错误类别（未细分时的默认代码）"),
)

_BY_AREA: dict[str, dict[str, str]] = {
    "plan": {
        "plan.amount_missing": "还没填每人增加额度；不增加也要明确填 0 元",
        "plan.amount_out_of_range": "每人增加额度超出政策允许的范围（0 至每人上限）",
        "plan.members_missing": "还没填会员人数",
        "plan.members_out_of_range": "会员人数超出可填写的范围",
        "plan.members_zero": "选了增加额度，会员人数却填了 0",
        "plan.locked": "记录已不在“计划中”，计划不能再改；要改请先退回计划",
    },
    "purchase": {
        "purchase.unknown_channel": "采购渠道不是本年度认可的渠道（可填渠道代码或中文名，如 粤工惠购、832平台）",
        "purchase.unknown_budget": "经费来源不是 额外额度、普通节日慰问品、集体福利、困难帮扶、会员活动 之一",
        "purchase.order_missing": "没填订单号",
        "purchase.line_invalid": "订单行号不是正整数",
        "purchase.zero_amount": "金额是 0；一笔采购或退款总有金额",
        "purchase.people_negative": "领取人数填成了负数",
        "purchase.people_zero": "采购（正数金额）的领取人次是 0；附件2按人次统计，须写发给多少人次",
        "purchase.amount_over_cap": "单笔金额超过政策的单笔上限，多半是金额填错了，或应分行录入",
        "purchase.people_over_cap": "单笔领取人次超过政策的单笔上限",
        "purchase.line_over_cap": "订单行号超出允许的范围",
        "purchase.naive_time": "支付时间没有时区（程序内部问题：时间都应按北京时间读入）",
        "purchase.outside_year": "支付时间（北京时间）不在本年度内，不能计入本年度额度",
        "purchase.paid_in_future": "支付时间晚于录入时间，多半是日期填错了",
        "purchase.forbidden_form": "商品形式或商品名称是现金、购物卡、代金券、提货券等，工会经费不得这样发放",
        "purchase.after_cutoff": "本年度采购补录已经截止",
        "purchase.unknown_holiday": "节日不在政策列出的节日中",
        "purchase.refund_unlinked": "退款（负数金额）没有注明原订单号",
        "purchase.refund_of_not_refund": "填了原订单号，但这一行不是退款（金额不是负数）",
        "purchase.refund_unknown_order": "退款注明的原订单在台账和本文件中都找不到",
        "purchase.refund_exceeds_order": "一张订单的退款合计超过了订单金额",
        "purchase.refund_people_exceed_order": "一张订单的退款人次合计超过了订单人次",
        "purchase.record_locked": "记录已提交或已通过，采购明细不能再改；要改请先撤回或由上级退回",
        "purchase.duplicate": "同一订单的同一行（同一渠道）已经录入过",
        "purchase.not_found": "本记录中没有这条采购",
        "purchase.already_voided": "这条采购已经作废过了",
        "purchase.void_has_refunds": "这张订单还有没作废的退款行，要先作废退款行",
        "purchase.void_reason_missing": "作废采购行要写明原因",
        "purchase.void_reason_long": "作废原因太长",
    },
    "import": {
        "import.refused": "导入的文件有错误的行，整份文件都没有导入（逐行列出原因）",
        "import.row": "文件中某一行的格子是空的、读不懂，或与前面的行重复却内容不同",
        "import.conflict": "文件中的订单行已录入台账，但金额、人次或日期与台账不一致",
        "import.too_many_rows": "文件的行数超过上限，请拆分成几个文件分别导入",
        "import.too_large": "导入文件太大",
        "import.file_too_costly": "导入文件读取的代价超过上限（解压后太大、压缩比异常、单元格或共享字符串太多、"
                                  "解析超时或内存超限），整份文件都没有导入",
        "import.busy": "服务器正在解析其他上传的文件，请稍后再导入",
        "import.empty": "导入文件是空的",
        "import.mapping": "选的列映射（哪种平台导出）不存在",
        "import.usage": "导入的设置有误（如列映射的渠道不是本年度的渠道），请联系管理员",
        "import.template": "没有这种导入模板",
        "import.encoding": "单位名单文件的编码认不出，请另存为 UTF-8 或 GBK",
        "import.header": "单位名单文件缺少必需的列",
        "import.rows": "单位名单有错误的行，整份名单都没有导入",
    },
    "aggregate": {
        "aggregate.grassroots": "基层工会要逐笔录入采购明细，汇总数据只能由上级工会录入",
        "aggregate.unknown_channel": "汇总数据的采购渠道不是本年度认可的渠道",
        "aggregate.note_missing": "汇总数据没有注明来源（如 某区采购台账汇总）",
    },
    "attachment": {
        "attachment.empty": "上传的附件是空文件",
        "attachment.too_large": "上传的附件（或提交的内容）超过大小上限",
        "attachment.type": "附件只收 PDF、JPG、PNG（按文件内容判断，不看扩展名）",
        "attachment.kind": "附件类别不认识",
        "attachment.record_accepted": "记录已通过，不能再上传附件",
        "attachment.not_found": "找不到这个附件",
    },
    "report": {
        "report.locked": "记录已提交或已通过，报表信息不能再改",
        "report.texts_missing": "报送单位还没填工作报告的先进经验或工作亮点",
        "contact.reporter_missing": "没填填报人",
        "contact.phone_missing": "没填联系电话",
        "contact.phone_invalid": "联系电话格式不对：手机 11 位，座机要带区号",
        "contact.email_invalid": "电子邮箱格式不对（如 zhangsan@example.cn）",
        "contact.fill_date_missing": "没填填表时间",
        "contact.fill_date_future": "填表时间晚于今天",
        "snapshot.missing": "还没汇总，不能提交",
        "snapshot.stale": "汇总以后数据又有变动，要重新汇总再提交",
        "snapshot.not_found": "找不到这份汇总快照",
        "report.empty": "本年度没有报送单位，没有可导出的报表",
        "report.scope": "统计范围不是可选的几种之一",
        "limits.not_grassroots": "慰问品限额只适用于基层工会的记录",
    },
    "review": {
        "transition.not_allowed": "记录当前的状态下不能做这个操作",
        "transition.unknown": "没有这种操作",
        "decision.reason_missing": "退回或撤销没有写明原因",
        "decision.parent_locked": "上级单位的报表已提交或已通过，下级的审核结果已锁定（会改变上级已报送的数字）；迟交的下级用“补报通过”，撤销通过要等上级撤回或被退回",
        "decision.parent_not_sent": "上级单位的报表还没报送，不需要补报，直接“通过”即可",
        "supplement.not_found": "找不到这份补报（或您无权查看）",
        "delegation.not_reviewer": "被代理的人不是该单位的审核人",
        "delegation.not_allowed": "只有审核人本人或本单位的管理员可以指定代理人",
        "delegation.standin_outside": "代理人不是本单位或上级单位的其他人员",
        "delegation.dates": "代理的起止日期不对（结束早于开始，或已经过去）",
        "delegation.over": "要取消的代理已经结束或已被取消",
        "delegation.not_found": "找不到这项代理（或您无权取消）",
        "supplement.not_pending": "这份补报已经审核过，或因原报表被退回、撤回而作废",
        "supplement.base_not_accepted": "原报表还没通过：请先审核原报表，再审核它的补报",
        "review.four_eyes": "代填报的人不能自己审核：代填报或提交了这份记录的人，不能再自己审核通过",
        "deadline.record_accepted": "记录已通过，不能再调整报送截止日期",
        "deadline.past": "新的截止日期早于今天",
        "deadline.after_round": "新的截止日期晚于本年度向省总工会报送的截止日期",
        "bulk.too_many": "一次批量通过的记录太多",
        "version.conflict": "记录已被别人修改过，请刷新页面后再操作",
        "duplicate.reason_missing": "说明重复订单时没有写明原因",
        "duplicate.reason_long": "说明重复订单的原因太长",
        "duplicate.not_found": "没有找到被两个以上单位录入的这张订单（或您无权查看）",
    },
    "lookup": {
        "record.not_found": "找不到这份记录（或您无权查看）",
        "round.not_found": "找不到这个年度（或还没加载任何年度）",
        "org.not_found": "找不到这个单位代码",
        "user.not_found": "找不到这个用户",
        "policy.not_found": "这份政策还没有加载",
        "notification.not_found": "找不到这条通知",
        "export.format": "不支持这种导出格式（可选 xlsx、csv、html）",
    },
    "account": {
        "login.failed": "用户名或密码不对",
        "login.throttled": "登录失败次数太多，请稍后再试",
        "auth.required": "还没登录（或登录已过期）",
        "csrf.failed": "表单已过期或来源不明，请刷新页面后重新提交",
        "permission.denied": "您没有做这件事的权限",
        "permission.not_clerk": "只有本单位填报员或上级审核人可以做这件事",
        "permission.not_parent_reviewer": "只有上级单位的审核人可以做这件事",
        "permission.contact_data": "催报名单含填报员联系电话，只给上级审核人看",
        "permission.report_scope": "您只能导出自己单位范围内的报表",
        "permission.duplicate_scope": "只有同时管辖录入同一订单的所有单位的上级审核人才能说明重复订单",
        "overview.not_allowed": "只有审核人、管理员或观察员可以看汇总概况",
        "account.not_clerk": "只能管理下级单位填报员的账号",
        "account.not_parent_reviewer": "只有直接上级单位的审核人可以管理这个账号",
        "password.too_short": "新密码太短",
        "password.too_simple": "新密码太简单（字母大小写、数字、符号要有三种）",
        "permission.not_security_admin": "只有安全管理员可以解除账号锁定",
        "password.reused": "新密码不能和最近用过的密码相同",
        "password.wrong_current": "原密码不对",
        "password.change_required": "密码是别人设置的或已过期，要先改成自己的新密码",
        "login.locked": "连续登录失败次数太多，账号已锁定",
        "login.totp_required": "这个账号登录时还要填手机上的动态口令",
        "login.totp_wrong": "动态口令不对或已过期",
        "login.sso_failed": "统一身份认证登录没有成功",
        "login.sso_unknown": "统一身份认证的账号在本系统里没有对应的账号",
        "login.sso_off": "本系统没有开通统一身份认证登录",
        "handover.name_missing": "交接时没填新填报员的姓名",
        "handover.name_too_long": "新填报员的姓名太长",
        "permission.not_system_admin": "单位和账号由系统管理员维护（整份名单只能由省级系统管理员导入）",
        "permission.outside_subtree": "该单位或账号不在你管理的范围内",
        "permission.not_auditor": "审计日志只给审计员看（系统管理员、安全管理员都不能看）",
        "account.role_not_addable": "这里只能新增填报员或审核人账号",
        "account.fields_missing": "新账号没填用户名或姓名，或用户名含空格、逗号",
        "account.exists": "用户名已被别人使用",
        "org.name_missing": "没填单位名称，或名称太长",
        "org.kind": "单位类型不对",
        "org.code_invalid": "单位代码没填，或太长、含空格或逗号",
        "org.exists": "单位代码已存在",
        "org.root_move": "省总工会不能移动",
        "oplog.unknown_action": "审计日志的筛选条件里有不认识的操作或结果",
    },
    "input": {
        "input.money": "金额不是有效的数字（或不能为负）",
        "input.delegate_args": "指定代理缺少单位、审核人、代理人或起止日期",
        "input.money_precision": "金额超过两位小数（不会四舍五入，请核对）",
        "input.money_range": "金额大得超出可记录的范围",
        "input.int": "人数、行号这类数量不是整数",
        "input.int_range": "数量超出允许的范围",
        "input.time": "支付时间认不出，或格子是空的（支持 2021-12-31、2021/12/31、2021年12月31日 等写法）",
        "input.time_range": "支付时间的年份不对（须在 2000 至 2100 年之间）",
        "input.date": "日期格式不对，应为 年-月-日",
        "input.date_range": "日期的年份不对（须在 2000 至 2100 年之间）",
        "input.basis": "慰问品限额的计算基数填得不对",
        "input.bulk_item": "批量操作里选了无效的记录",
        "input.too_long": "表单里某一项填得太长",
        "input.nul": "输入里有空字符（常见于复制粘贴），删掉后再提交",
        "input.control_char": "输入里有看不见的控制字符（常见于复制粘贴），删掉后再提交；一行的项目也不能换行",
        "input.bidi": "输入里有看不见的文字方向控制符，会让文字倒着显示，删掉后再提交",
        "input.limit": "输入超过上限（文件大小、行数或单笔金额）",
        "input.file": "读不到指定的文件",
        "query.bad_key": "筛选或排序的选项不是可选的几种之一",
        "query.bad_page": "页码超出范围",
        "query.bad_per_page": "每页条数超出范围",
    },
    "web": {
        "input.invalid": "接口收到的内容缺项或格式不对",
        "input.too_large": "提交的内容太大，没有保存",
        "input.too_many_fields": "提交的项目太多，没有保存",
        "input.unparseable": "提交的内容解析不了（格式不对或数字位数太多），没有保存",
        "http.not_found": "网页不存在，请检查网址或回首页",
        "http.method_not_allowed": "这个网址不接受这种提交方式",
        "http.error": "请求没能完成，请返回上一页重试",
    },
    "cli": {
        "store.error": "数据库拒绝了这次保存（程序问题或数据库未建好），请把提示发给管理员",
        "store.unavailable": "数据库暂时连不上或太忙，请稍后再试",
        "cli.usage": "命令行的用法不对（缺参数或参数不认识）",
        "cli.no_user": "命令行没有用 --as 指定以哪个用户身份操作",
        "cli.no_round": "命令行没有用 --round 指定年度",
        "output.file": "写不了指定的输出文件",
        "notify.unknown_kind": "没有这种通知类型",
        "outbox.retry_what": "重发通知时没说清重发哪些",
        "backup.exists": "备份文件已存在，请换个文件名",
        "backup.no_dir": "备份的目录不存在",
        "backup.not_sqlite": "这个命令只能备份 SQLite 数据库",
        "serve.bind": "网页服务无法在该地址和端口监听",
        "serve.port": "端口号须在 1 到 65535 之间",
        "serve.workers": "网页服务的工作进程数至少为 1",
        "settings.number": "某个环境变量应是数字",
        "settings.default_secret": "还在用默认的密钥，正式运行前必须设置 BANGFU_SECRET_KEY",
        "settings.weak_secret": "BANGFU_SECRET_KEY 太短",
        "settings.audit_key_missing": "没有设置历史记录链的密钥 BANGFU_AUDIT_KEY，正式运行前必须设置",
        "settings.audit_key_weak": "BANGFU_AUDIT_KEY 太短",
        "settings.audit_hash": "BANGFU_AUDIT_HASH 只能是 sha256 或 sm3",
        "settings.port": "BANGFU_PORT 应是 1–65535 的端口号",
        "settings.pii_cipher": "BANGFU_PII_CIPHER 只能是 none、aes-gcm 或 sm4",
        "settings.pii_key": "BANGFU_PII_KEY 没有设置或长度不对",
        "policy.invalid": "政策文件有错，载入失败（会指出哪一项）",
        "db.schema": "数据库结构不是最新的，请先升级数据库",
        "internal": "程序内部错误，请把提示发给管理员",
    },
    "general": {
        "error": "出错了（未细分的错误）",
        "bad_input": "输入有误（未细分的输入错误）",
        "not_found": "找不到（未细分）",
    },
}

#: Code → its area and one line in a union clerk's words.
CODES: dict[str, Code] = {code: Code(area, text) for area, table in _BY_AREA.items() for code, text in table.items()}


def describe(code: str) -> str | None:
    """The catalogue's line for a code (None for a code it does not hold)."""
    entry = CODES.get(code)
    return entry.text if entry else None


__all__ = ["AREAS", "CODES", "Code", "describe"]
