"""The console's own files (its CSS and script, the vendored chart and htmx libraries),
served from the package: nothing is fetched from elsewhere at run time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from driftloop_console.entrypoints.templating import STATIC_DIR
from driftloop_kit.auth import READER
from driftloop_kit.errors import NotFound

router = APIRouter(tags=["pages"])

_files = StaticFiles(directory=STATIC_DIR, follow_symlink=False)
#: The URLs carry the file's digest (``?v=``): a browser may keep them for a year.
_CACHE = "public, max-age=31536000, immutable"


@router.get("/static/{path:path}", dependencies=[READER], include_in_schema=False)
async def static_file(path: str, request: Request) -> Response:
    """A file under the package's ``static/`` folder."""
    try:
        response = await _files.get_response(path, request.scope)
    except Exception:  # StaticFiles raises HTTPException(404) for a missing or outside path
        raise NotFound(f"no file {path!r}") from None
    if response.status_code == 404:
        raise NotFound(f"no file {path!r}")
    response.headers["Cache-Control"] = _CACHE
    return response
