"""What goes over the wire: OpenAI-shaped error bodies and the small JSON helpers around them.

Every error the emulator answers has the body `{"error": {"message", "type",
"param", "code"}}`, because that is what the SDK parses into its exception
classes (`BadRequestError.param`, `.code`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_body", "error_response", "mask_key"]


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type_=type_, param=param, code=code), status, headers=headers)


class ApiError(Exception):
    """Raised by a handler to answer with an OpenAI-shaped error; the app turns it into a response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, type_=self.type, param=self.param, code=self.code)


def mask_key(key: str) -> str:
    """'sk-proj-...wxyz' style: never more than the last four characters of a key, none of a short one."""
    prefix = "sk-" if key.startswith("sk-") else ""
    if len(key) < 12:
        return f"{prefix}***"
    return f"{prefix}...{key[-4:]}"
