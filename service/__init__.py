"""dunscan: is this debt-collection SMS or call a scam?

`create_app` (the HTTP service) is imported on first use, so the CLI and the pipeline do not pay
for Flask and its extensions: `gunicorn 'service:create_app()'` and `from service import create_app`
both work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.app import create_app

        return create_app
    raise AttributeError(f"module 'service' has no attribute {name!r}")
