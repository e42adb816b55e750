"""(being written)"""

from fastapi import APIRouter

router = APIRouter(prefix="/api/2.0", tags=["logged_models"])
