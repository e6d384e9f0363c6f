"""Entry point for ASGI servers: ``uvicorn --factory tracker.asgi:create``."""

from __future__ import annotations

from .app import create_app
from .redirect import Front
from .settings import Settings


def create() -> Front:
    return create_app(Settings.from_env())
