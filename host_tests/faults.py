"""Fault injection for the runtime tests: make a function raise on chosen calls."""
from __future__ import annotations

from typing import Any, Callable


class Inject:
    """Replace obj.name with a wrapper that raises `exc` on the calls for
    which when(*args) is true, `times` times at most; undo() restores it."""

    def __init__(self, obj: Any, name: str, exc: BaseException | type[BaseException] = MemoryError,
                 times: int = 1, when: Callable[..., bool] | None = None) -> None:
        self.obj, self.name, self.exc = obj, name, exc
        self.left = times
        self.hits = 0
        self.calls = 0
        self.orig = getattr(obj, name)
        orig, me = self.orig, self

        def wrapper(*args: Any, **kw: Any) -> Any:
            me.calls += 1
            if me.left > 0 and (when is None or when(*args, **kw)):
                me.left -= 1
                me.hits += 1
                raise me.exc
            return orig(*args, **kw)

        setattr(obj, name, wrapper)

    def undo(self) -> None:
        setattr(self.obj, self.name, self.orig)

    def __enter__(self) -> "Inject":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.undo()
