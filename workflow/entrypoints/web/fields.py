"""The Chinese name of every request field the web routes take (form fields, query and path
parameters, JSON body keys): a refusal names a field as the form labels it, never by its
internal name. ``tests/entrypoints/web/test_field_labels.py`` checks that every parameter of
every route has a label here.
"""

from __future__ import annotations

from workflow.app.purchases import VOID_REASON_MAX

#: The longest value each form field takes (characters), per form (the path's last segment): the
#: pages check it in the route, so an over-long value is refused beside its form with the input
#: kept (not by ``Form(max_length=...)`` on the generic error page), the inputs' ``maxlength``
#: read it, and the API's bodies take the same bounds. (Starlette refuses any form field over
#: 1 MB before this, with the Chinese 400 of app.py.)
LIMITS: dict[str, dict[str, int]] = {
    "plan": {"amount": 64, "members": 50},
    "purchase": {"paid_at": 40, "channel": 32, "amount": 64, "people": 20, "order_no": 100, "line_no": 10,
                 "product": 300, "product_form": 64, "holiday": 32, "origin_region": 100, "budget": 32,
                 "refund_of": 100},
    "info": {"reporter": 100, "phone": 64, "fill_date": 20, "work_experience": 20000, "work_highlights": 20000},
    "fire": {"trigger": 64, "reason": 2000},
    "deadline": {"last_day": 20, "reason": 2000},
    "void": {"reason": VOID_REASON_MAX},
    "aggregates": {"channel": 32, "people": 20, "amount": 64, "note": 500},
    "limits": {"ordinary": 50, "budget": 50, "retained": 50, "basis": 16},
}

#: A refusal that names a missing field -> the id of that field's input on the record page
#: (``field-<form>-<name>``): the page links the refusal to the field, which may be screens away.
FIELD_LINKS: dict[str, str] = {
    "plan.amount_missing": "field-plan-amount",
    "plan.members_missing": "field-plan-members",
    "contact.reporter_missing": "field-info-reporter",
    "contact.phone_missing": "field-info-phone",
    "contact.fill_date_missing": "field-info-fill_date",
    "report.texts_missing": "field-info-work_experience",
}

#: Field name -> the label the forms show (or, for a parameter no form shows, what it is).
FIELD_LABELS: dict[str, str] = {
    # 补报 and 代理 (docs/approval.md)
    "supplement_id": "补报",
    "delegator": "被代理的审核人",
    "standin": "代理人",
    "starts_on": "代理开始日期",
    "ends_on": "代理结束日期",
    # the plan and the purchase form
    "amount": "金额",
    "members": "会员人数",
    "paid_at": "支付时间",
    "channel": "渠道",
    "people": "领取人次",
    "order_no": "订单号",
    "line_no": "行号",
    "product": "商品",
    "product_form": "商品形式",
    "holiday": "节日",
    "budget": "经费来源",
    "refund_of": "退款对应原订单号",
    "origin_region": "产地",
    # report texts
    "reporter": "填报人",
    "phone": "联系电话",
    "fill_date": "填表时间",
    "work_experience": "先进经验",
    "work_highlights": "工作亮点",
    # actions, deadlines, voiding
    "trigger": "操作",
    "reason": "原因",
    "note": "数据来源",
    "record": "记录",
    "seen_version": "版本号",
    "last_day": "截止日期",
    "next": "返回地址",
    # uploads, imports, reports
    "file": "文件",
    "kind": "附件类别",
    "mapping": "表格来源",
    "fmt": "文件格式",
    "ordinary": "普通节日慰问品支出",
    "retained": "留成经费",
    "basis": "计算基数",
    # ids, paging, filters
    "record_id": "记录编号",
    "purchase_id": "采购行编号",
    "attachment_id": "附件编号",
    "notification_id": "通知编号",
    "delegation_id": "代理安排",
    "org_code": "单位代码",
    "round": "年度",
    "page": "页码",
    "spage": "页码",
    "per_page": "每页条数",
    "q": "单位名称或代码",
    "sort": "排序",
    "state": "状态",
    "overdue": "逾期",
    "item": "勾选的记录",
    "items": "勾选的记录",
    "ids": "勾选的通知",
    "all_failed": "全部重发",
    # login and accounts
    "username": "用户名",
    "password": "密码",
    "new_password": "新密码",
    "current_password": "原密码",
    "repeat_password": "再输一次的新密码",
    "totp": "动态口令",
    "display_name": "新填报员姓名",
    "email": "电子邮箱",
    "csrf_token": "表单校验码",
    "body": "提交的内容",
    # the administrators' pages (issue 21)
    "code": "单位代码",
    "new_code": "新单位代码",
    "name": "名称",
    "parent_code": "上级单位代码",
    "role": "角色",
    "actor": "操作人账号",
    "action": "操作",
    "org": "单位代码",
    "since": "起始日期",
    "until": "截止日期",
    "outcome": "结果",
}

#: Where one name means another thing on one form (the path's last segment).
FORM_LABELS: dict[str, dict[str, str]] = {
    "plan": {"amount": "每人增加额度"},
    "limits": {"budget": "年度预算支出"},
    "aggregates": {"people": "人次", "amount": "金额"},
}

#: Fields that carry a whole number: "too long" means too many digits there.
NUMBER_FIELDS = frozenset({
    "members", "people", "line_no", "seen_version", "record_id", "purchase_id", "attachment_id",
    "notification_id", "delegation_id", "round", "page", "spage", "per_page", "ids",
})

#: The label of a field this table does not know (never its internal name).
UNKNOWN = "某一项"


def label(name: str, form: str = "") -> str:
    """The Chinese label of request field ``name`` on ``form`` (the path's last segment)."""
    return FORM_LABELS.get(form, {}).get(name) or FIELD_LABELS.get(name, UNKNOWN)


def too_long(name: str, limit: int, form: str = "") -> str:
    """The refusal of a value longer than ``limit`` characters, in the words of its field."""
    if name in NUMBER_FIELDS:
        return f"{label(name, form)}的数字位数过多（最多 {limit} 位）"
    return f"{label(name, form)}太长（最多 {limit:,} 个字符）"


def form_of(path: str) -> str:
    """The form a request path posts (its last segment), for :data:`FORM_LABELS`."""
    return path.rstrip("/").rsplit("/", 1)[-1]
