"""Errors as answers: RFC 9457 problem documents, the same shape everywhere."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from .validation import FieldError

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a request; the app turns it into a problem+json answer."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}

    def body(self, instance: str = "") -> dict[str, Any]:
        doc: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = [e.as_json() for e in self.errors]
        return doc

    def response(self, instance: str = "") -> Response:
        return Response(
            json.dumps(self.body(instance), ensure_ascii=False),
            status_code=self.status,
            media_type=PROBLEM_TYPE,
            headers=self.headers,
        )


def invalid(errors: Sequence[FieldError]) -> Problem:
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return Problem(422, "Invalid request", f"Check these fields: {fields}", errors)
