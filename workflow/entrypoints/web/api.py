"""The JSON API: every use case the CLI offers, over HTTP, calling the same services.

Authentication: the session cookie (log in with ``POST /api/session``; writes then need the
``X-CSRF-Token`` header with the token that call returns) or ``Authorization: Bearer <token>``
(``bangfu token-create USERNAME``). Errors are ``{"code": ..., "message": ...}`` with the
status of the error class: 401 not logged in, 403 visible but not permitted (or CSRF), 404
outside the user's view, 409 refused by a rule or a version conflict, 422 bad input, 429 too
many failed logins. OpenAPI at ``/docs``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from workflow.app import (
    accounts,
    attachments,
    delegations,
    lifecycle,
    oversight,
    planning,
    purchases,
    record_views,
    supplements,
    views,
)
from workflow.app.accounts import UserInfo
from workflow.domain import money, rules
from workflow.domain.money import MAX_COUNT
from workflow.entrypoints.web import auth
from workflow.entrypoints.web.fields import LIMITS
from workflow.entrypoints.web.inbox import with_texts
from workflow.entrypoints.web.params import MAX_ID, Id, PageQ, PerPageQ, RoundQ
from workflow.entrypoints.web.rendering import ApiJSON, api_json, download_response
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

router = APIRouter(prefix="/api", tags=["api"])
User = Annotated[UserInfo, Depends(auth.api_user)]


def _db(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


def _uow(request: Request, readonly: bool = False) -> UnitOfWork:
    return UnitOfWork(_db(request), readonly=readonly)


def _round_id(request: Request, round_id: int | None) -> int:
    return views.current_round(_uow(request, True), round_id=round_id).id or 0


# --- bodies ---------------------------------------------------------------------------------


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64)
    password: str = Field(max_length=200)
    totp: str | None = Field(default=None, max_length=8, description="the TOTP code, for an account with a second factor")


class PasswordChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=200)
    new_password: str = Field(max_length=200)


_P = LIMITS["purchase"]


#: What the free-text rule (:mod:`workflow.domain.text`) lets through, as the OpenAPI document
#: describes it (the use cases decide; a client reads here what they will accept).
_FORBIDDEN = "\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069"
ONE_LINE: dict[str, Any] = {"pattern": f"^[^\\u0000-\\u001f{_FORBIDDEN}]*$"}
LONG_TEXT: dict[str, Any] = {"pattern": f"^[^\\u0000-\\u0008\\u000b-\\u001f{_FORBIDDEN}]*$"}
#: A name: one line with at least one character that is not a blank.
NAME: dict[str, Any] = {"pattern": f"^[^\\u0000-\\u001f{_FORBIDDEN}]*[^\\s\\u0000-\\u001f{_FORBIDDEN}]"
                                   f"[^\\u0000-\\u001f{_FORBIDDEN}]*$"}
EMAIL: dict[str, Any] = {"pattern": "^$|^" + rules.EMAIL_RE.pattern + "$"}
PHONE: dict[str, Any] = {"pattern": "^$|^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$"}


class PurchaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paid_at: str = Field(max_length=_P["paid_at"], description="payment time, ISO 8601; naive = China time", examples=["2021-11-01T10:30"])
    channel: str = Field(max_length=_P["channel"], json_schema_extra=ONE_LINE, examples=["ygh"])
    amount: str = Field(max_length=_P["amount"], description="yuan, at most two decimals; negative for a refund", examples=["1234.50"])
    people: int = Field(ge=0, le=MAX_COUNT)
    order_no: str = Field(max_length=_P["order_no"], json_schema_extra=ONE_LINE)
    line_no: int = Field(default=1, ge=1, le=MAX_COUNT)
    product: str = Field(default="", max_length=_P["product"], json_schema_extra=LONG_TEXT)
    product_form: str | None = Field(default=None, max_length=_P["product_form"], json_schema_extra=ONE_LINE)
    holiday: str | None = Field(default=None, max_length=_P["holiday"], json_schema_extra=ONE_LINE)
    origin_region: str | None = Field(default=None, max_length=_P["origin_region"], json_schema_extra=ONE_LINE)
    budget: str = "extra_quota"
    refund_of: str | None = Field(default=None, max_length=_P["refund_of"], json_schema_extra=ONE_LINE)


class VoidBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=LIMITS["void"]["reason"], json_schema_extra=LONG_TEXT, description="why the line is voided (required)")


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seen_version: int = Field(ge=1, le=MAX_COUNT)
    amount: str = Field(max_length=LIMITS["plan"]["amount"], description="yuan per member, 0-600", examples=["600"])
    members: int = Field(ge=0, le=MAX_COUNT)


class ReportInfoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seen_version: int = Field(ge=1, le=MAX_COUNT)
    reporter: str | None = Field(default=None, max_length=LIMITS["info"]["reporter"], json_schema_extra=ONE_LINE)
    phone: str | None = Field(default=None, max_length=LIMITS["info"]["phone"], json_schema_extra=ONE_LINE)
    fill_date: date | None = None
    work_experience: str | None = Field(default=None, max_length=LIMITS["info"]["work_experience"], json_schema_extra=LONG_TEXT)
    work_highlights: str | None = Field(default=None, max_length=LIMITS["info"]["work_highlights"], json_schema_extra=LONG_TEXT)


class FireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str = Field(max_length=LIMITS["fire"]["trigger"])
    seen_version: int = Field(ge=1, le=MAX_COUNT)
    reason: str | None = Field(default=None, max_length=LIMITS["fire"]["reason"], json_schema_extra=LONG_TEXT)


class DelegationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: str = Field(max_length=64)
    delegator: str = Field(max_length=64)
    standin: str = Field(max_length=64)
    starts_on: date
    ends_on: date


class DeadlineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seen_version: int = Field(ge=1, le=MAX_COUNT)
    last_day: date
    reason: str | None = Field(default=None, max_length=LIMITS["deadline"]["reason"], json_schema_extra=LONG_TEXT)


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_id: int = Field(ge=1, le=MAX_ID)
    seen_version: int = Field(ge=1, le=MAX_COUNT)


class BulkAcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BulkItem] = Field(max_length=500)


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_password: str = Field(min_length=accounts.MIN_PASSWORD_LENGTH, max_length=200)


class HandoverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(max_length=100, json_schema_extra=NAME)
    new_password: str = Field(min_length=accounts.MIN_PASSWORD_LENGTH, max_length=200)
    email: str | None = Field(default=None, max_length=200, json_schema_extra=EMAIL)
    phone: str | None = Field(default=None, max_length=64, json_schema_extra=PHONE)


def purchase_input(
    *, paid_at: str, channel: str, amount: str, people: int, order_no: str, line_no: int = 1,
    product: str = "", product_form: str | None = None, holiday: str | None = None,
    origin_region: str | None = None, budget: str = "extra_quota", refund_of: str | None = None,
) -> purchases.PurchaseInput:
    """Parse a purchase as the CLI does (same messages for the same mistakes)."""
    paid = money.parse_paid_at(paid_at)
    return purchases.PurchaseInput(
        paid_at=paid, channel=channel.strip(), amount_fen=money.parse_yuan(amount, "金额"), people=people,
        order_no=order_no, line_no=line_no, product=product or "", product_form=product_form or None,
        holiday=holiday or None, origin_region=origin_region or None, budget=budget,
        refund_of=refund_of or None,
    )


# --- session --------------------------------------------------------------------------------


@router.post("/session", summary="log in (sets the session cookie; returns the CSRF token)")
def api_login(body: LoginBody, request: Request) -> dict[str, Any]:
    policy = request.app.state.settings.security
    uid = accounts.authenticate(_uow(request), username=body.username, password=body.password,
                                client_ip=auth.client_ip(request), policy=policy, totp=body.totp)
    info = accounts.user_info(_uow(request, True), user_id=uid, policy=policy)
    auth.login(request, info)
    return {"user": info.to_dict(), "csrf_token": auth.csrf_token(request)}


@router.post("/password", summary="change your own password (the only call allowed while a change is due)")
def change_password(body: PasswordChangeBody, request: Request, user: User) -> dict[str, Any]:
    info = accounts.change_password(_uow(request), user_id=user.id, current_password=body.current_password,
                                    new_password=body.new_password, policy=request.app.state.settings.security)
    if not request.state.via_token:
        auth.login(request, info)  # the old sessions ended with the old password; this one goes on
    return {"user": info.to_dict(), "csrf_token": auth.csrf_token(request)}


@router.delete("/session", status_code=204, summary="log out")
def api_logout(request: Request, user: User) -> Response:
    auth.end_session(request)
    return Response(status_code=204)


@router.get("/me")
def me(user: User) -> dict[str, Any]:
    return user.to_dict()


@router.get("/rounds")
def list_rounds(request: Request, user: User) -> list[dict[str, Any]]:
    return views.rounds(_uow(request, True))


# --- records --------------------------------------------------------------------------------


@router.get("/records", summary="records in the user's view, with filters and paging",
            response_model=dict[str, Any])
def list_records(
    request: Request, user: User, round: RoundQ = None, state: str | None = None,
    overdue: str | None = None, q: Annotated[str | None, Query(max_length=100)] = None,
    sort: str | None = None, page: PageQ = 1, per_page: PerPageQ = 50,
) -> ApiJSON:
    return api_json(views.visible_records(
        _uow(request, True), user_id=user.id, round_id=_round_id(request, round), state=state,
        overdue=overdue, q=q, sort=sort, page=page, per_page=per_page).to_dict())


@router.get("/records/{record_id}", summary="a record: quota, deadlines, the actions open to you",
            response_model=dict[str, Any])
def show_record(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json(
        record_views.record_view(_uow(request, True), record_id=record_id, user_id=user.id).to_dict())


@router.get("/records/{record_id}/federation",
            summary="a federation's record: its snapshot, the live parts, children not yet accepted (null for grassroots)",
            response_model=dict[str, Any] | None)
def record_federation(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json(record_views.federation_view(_uow(request, True), record_id=record_id,
                                            user_id=user.id))


@router.get("/records/{record_id}/changes-since-return",
            summary="what changed since the latest return, against the returned submission (null if never returned)",
            response_model=dict[str, Any] | None)
def record_changes(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json(record_views.changes_since_return(_uow(request, True), record_id=record_id,
                                                 user_id=user.id))


@router.get("/records/{record_id}/history", response_model=list[dict[str, Any]])
def record_history(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json(record_views.history(_uow(request, True), record_id=record_id, user_id=user.id))


@router.get("/records/{record_id}/purchases", response_model=list[dict[str, Any]])
def record_purchases(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json(purchases.list_purchases(_uow(request, True), record_id=record_id,
                                           user_id=user.id))


@router.post("/records/{record_id}/purchases", status_code=201)
def add_purchase(record_id: Id, body: PurchaseBody, request: Request, user: User) -> dict[str, Any]:
    entry = purchases.enter_purchase(_uow(request), record_id=record_id, user_id=user.id,
                                     purchase=purchase_input(**body.model_dump()))
    return entry.to_dict()  # duplicate_warnings: the order also held by other unions (stored all the same)


@router.post("/records/{record_id}/purchases/{purchase_id}/void",
             summary="void a purchase line with a reason (before submit); it stays listed and counts nowhere")
def void_purchase(record_id: Id, purchase_id: Id, body: VoidBody, request: Request, user: User) -> dict[str, Any]:
    history_id = purchases.void_purchase(_uow(request), record_id=record_id, purchase_id=purchase_id,
                                       user_id=user.id, reason=body.reason)
    return {"purchase_id": purchase_id, "record_id": record_id, "history_id": history_id}


@router.get("/records/{record_id}/attachments", response_model=list[dict[str, Any]])
def record_attachments(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json(attachments.list_attachments(_uow(request, True), record_id=record_id,
                                                 user_id=user.id))


@router.post("/records/{record_id}/attachments", status_code=201,
             summary="upload a PDF, JPG or PNG (at most 10 MB): the sealed Annex 2 scan or an invoice")
def upload_attachment(
    record_id: Id, request: Request, user: User, file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=32)] = "annex2_scan",
) -> dict[str, Any]:
    data = file.file.read(attachments.MAX_BYTES + 1)
    aid = attachments.add_attachment(_uow(request), record_id=record_id, user_id=user.id, kind=kind,
                                     filename=file.filename or "file", data=data)
    return {"attachment_id": aid, "record_id": record_id}


@router.get("/records/{record_id}/attachments/{attachment_id}")
def download_attachment(record_id: Id, attachment_id: Id, request: Request, user: User) -> Response:
    return download_response(attachments.get_attachment(
        _uow(request, True), record_id=record_id, attachment_id=attachment_id, user_id=user.id))


@router.put("/records/{record_id}/plan", response_model=dict[str, Any])
def set_plan(record_id: Id, body: PlanBody, request: Request, user: User) -> ApiJSON:
    view = planning.plan(_uow(request), record_id=record_id, user_id=user.id, seen_version=body.seen_version,
                         amount_per_member_fen=money.parse_yuan(body.amount, "每人增加额度"), members=body.members)
    return api_json(view.to_dict())


@router.put("/records/{record_id}/report-info", response_model=dict[str, Any])
def set_report_info(record_id: Id, body: ReportInfoBody, request: Request, user: User) -> ApiJSON:
    view = planning.update_report_info(
        _uow(request), record_id=record_id, user_id=user.id, seen_version=body.seen_version,
        reporter=body.reporter, phone=body.phone, fill_date=body.fill_date,
        work_experience=body.work_experience, work_highlights=body.work_highlights)
    return api_json(view.to_dict())


@router.post("/records/{record_id}/fire", summary="fire a lifecycle trigger with the version you saw",
             response_model=dict[str, Any])
def fire(record_id: Id, body: FireBody, request: Request, user: User) -> ApiJSON:
    result = lifecycle.fire(_uow(request), record_id=record_id, trigger=body.trigger, user_id=user.id,
                           seen_version=body.seen_version, reason=body.reason)
    return api_json(result)


@router.get("/records/{record_id}/supplements", summary="补报: the record's supplements (late units' figures)",
            response_model=list[dict[str, Any]])
def record_supplements(record_id: Id, request: Request, user: User) -> ApiJSON:
    return api_json([supplements.as_dict(s) for s in
                     supplements.for_record(_uow(request, True), record_id=record_id, user_id=user.id)])


@router.post("/supplements/{supplement_id}/accept", response_model=dict[str, Any],
             summary="the parent's reviewer accepts a supplement (补报); forwarded up when the parent has sent")
def accept_supplement(supplement_id: Id, request: Request, user: User) -> ApiJSON:
    result = supplements.accept(_uow(request), supplement_id=supplement_id, user_id=user.id)
    return api_json({"message": result.message, "supplement": supplements.as_dict(result.supplement),
                     "forwarded": supplements.as_dict(result.forwarded) if result.forwarded else None})


@router.post("/delegations", status_code=201, response_model=dict[str, Any],
             summary="代理: name a reviewer's stand-in for a date range (the reviewer or the federation's admin)")
def name_standin(body: DelegationBody, request: Request, user: User) -> dict[str, Any]:
    named = delegations.name_standin(_uow(request), user_id=user.id, org_code=body.org_code,
                                     delegator=body.delegator, standin=body.standin,
                                     starts_on=body.starts_on, ends_on=body.ends_on)
    return {"id": named.delegation_id, "message": named.message}


@router.get("/delegations", response_model=list[dict[str, Any]],
            summary="代理: running and coming stand-ins (the user's own; an admin's federation's)")
def list_standins(request: Request, user: User) -> ApiJSON:
    return api_json(delegations.current(_uow(request, True), user_id=user.id))


@router.delete("/delegations/{delegation_id}", response_model=dict[str, Any],
               summary="代理: cancel a stand-in early (the reviewer away or the federation's admin)")
def cancel_standin(delegation_id: Id, request: Request, user: User) -> dict[str, Any]:
    done = delegations.cancel(_uow(request), user_id=user.id, delegation_id=delegation_id)
    return {"id": done.delegation_id, "message": done.message}


@router.post("/delegations/{delegation_id}/cancel", response_model=dict[str, Any],
             summary="代理: cancel a stand-in early (as DELETE, for clients without it)")
def cancel_standin_post(delegation_id: Id, request: Request, user: User) -> dict[str, Any]:
    return cancel_standin(delegation_id, request, user)


@router.put("/records/{record_id}/deadline", summary="a parent's reviewer changes a child's report deadline",
            response_model=dict[str, Any])
def set_deadline(record_id: Id, body: DeadlineBody, request: Request, user: User) -> ApiJSON:
    view = oversight.set_report_deadline(_uow(request), record_id=record_id, user_id=user.id,
                                         seen_version=body.seen_version, last_day=body.last_day,
                                         reason=body.reason)
    return api_json(view.to_dict())


# --- reviewing ------------------------------------------------------------------------------


@router.get("/review/inbox", summary="submissions awaiting your decision",
            response_model=dict[str, Any])
def review_inbox(
    request: Request, user: User, round: RoundQ = None,
    q: Annotated[str | None, Query(max_length=100)] = None, sort: str | None = None,
    page: PageQ = 1, per_page: PerPageQ = 50,
) -> ApiJSON:
    return api_json(views.review_inbox(
        _uow(request, True), user_id=user.id, round_id=_round_id(request, round), q=q, sort=sort,
        page=page, per_page=per_page).to_dict())


@router.get("/review/subordinates", summary="your direct subordinates' records",
            response_model=dict[str, Any])
def review_subordinates(
    request: Request, user: User, round: RoundQ = None, state: str | None = None,
    overdue: str | None = None, q: Annotated[str | None, Query(max_length=100)] = None,
    sort: str | None = None, page: PageQ = 1, per_page: PerPageQ = 50,
) -> ApiJSON:
    return api_json(views.subordinates(
        _uow(request, True), user_id=user.id, round_id=_round_id(request, round), state=state,
        overdue=overdue, q=q, sort=sort, page=page, per_page=per_page).to_dict())


@router.post("/review/bulk-accept", summary="accept many submissions; the result says which succeeded")
def bulk_accept(body: BulkAcceptBody, request: Request, user: User) -> dict[str, Any]:
    out = oversight.bulk_accept(_db(request), user_id=user.id,
                                items=[(i.record_id, i.seen_version) for i in body.items])
    return {"accepted": sum(o.ok for o in out), "refused": sum(not o.ok for o in out),
            "results": [o.to_dict() for o in out]}


@router.get("/overview", summary="counts per state and accepted numbers per organisation under you",
            response_model=dict[str, Any])
def overview(request: Request, user: User, round: RoundQ = None) -> ApiJSON:
    return api_json(views.overview(_uow(request, True), user_id=user.id,
                                             round_id=_round_id(request, round)))


@router.get("/notifications", response_model=dict[str, Any])
def notifications(request: Request, user: User, page: PageQ = 1,
                  per_page: PerPageQ = 50) -> ApiJSON:
    data = views.notifications(_uow(request, True), user_id=user.id, page=page, per_page=per_page)
    with_texts(data.items)  # subject, text (as in the e-mail) and path
    return api_json(data.to_dict())


# --- accounts -------------------------------------------------------------------------------


@router.get("/accounts", summary="the clerk accounts you manage")
def managed_accounts(request: Request, user: User) -> list[dict[str, Any]]:
    return accounts.managed_clerks(_uow(request, True), actor_id=user.id)


@router.post("/accounts/{username}/password", status_code=204)
def reset_password(username: str, body: PasswordBody, request: Request, user: User) -> Response:
    accounts.reset_password(_uow(request), actor_id=user.id, username=username, new_password=body.new_password,
                            policy=request.app.state.settings.security)
    return Response(status_code=204)


@router.post("/accounts/{username}/handover", status_code=204)
def handover(username: str, body: HandoverBody, request: Request, user: User) -> Response:
    accounts.handover(_uow(request), actor_id=user.id, username=username, display_name=body.display_name,
                      new_password=body.new_password, email=body.email, phone=body.phone,
                      policy=request.app.state.settings.security)
    return Response(status_code=204)
