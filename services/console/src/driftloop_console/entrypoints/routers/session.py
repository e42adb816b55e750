"""Logging in and out (the token kept in an HttpOnly cookie)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from driftloop_console.entrypoints.session import COOKIE, safe_next
from driftloop_kit.auth import READER

router = APIRouter(tags=["session"])


@router.get("/login", dependencies=[READER], summary="The login page")
async def login_page(next: str | None = None) -> RedirectResponse:
    """Logged in already: on to ``next``. Without a credential the answer is the login
    form itself (a 401 page where a token from `driftloop token create` is pasted)."""
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[READER], summary="Forget the viewer's token")
async def logout() -> RedirectResponse:
    """Drop the cookie; the next page asks for a token again."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
