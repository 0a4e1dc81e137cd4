"""The in-app inbox as its users read it: each notification with the subject and text of its
e-mail (the same templates and context as delivery), its own link clickable (a link somebody
typed into a reason stays text)."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from notifications.templates import render as render_notification
from workflow.scheduler.outbox import template_context
from workflow.settings import get_settings

__all__ = ["linked", "with_texts"]


def with_texts(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each inbox item with the subject and text its e-mail has (the same templates and the same
    context), and the path it points to."""
    base = get_settings().base_url.rstrip("/")
    for item in items:
        context = template_context(item["payload"], base)
        try:
            rendered = render_notification(item["kind"], context)
            item["subject"], item["text"] = rendered.subject, rendered.text.strip()
        except Exception:  # a stored payload the templates cannot render: say so, keep the list
            item["subject"], item["text"] = item["kind_label"], "（此通知的内容无法显示）"
        link = str(context.get("link", ""))
        item["link"] = link
        item["path"] = link[len(base):] if link.startswith(base) else "/"
    return items


_URL = re.compile(r"https?://[^\s<>\"'）)]+")


def linked(text: str, link: str = "") -> Markup:
    """The e-mail's text with the notification's own ``link`` clickable, made relative (so it
    works whatever host serves the page). Any other address in the text (one a reviewer typed
    into a reason) is shown as text, never as a link."""
    base = get_settings().base_url.rstrip("/")
    out, last = [], 0
    for m in _URL.finditer(text):
        url = m.group(0)
        if not link or url != link:
            continue
        href = (url[len(base):] or "/") if url.startswith(base) else url
        out += [str(escape(text[last:m.start()])), f'<a href="{escape(href)}">{escape(url)}</a>']
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))
