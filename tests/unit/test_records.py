"""The library's records are msgspec Structs, never dataclasses: they are made at every cold start.

On CPython 3.11 a dataclass compiles its generated methods (`__init__`, `__repr__`, `__eq__`,
and for a frozen one `__setattr__`, `__delattr__`, `__hash__`) when its class is created:
~0.8 ms each here, ~5-7 ms for `Settings`' 60 fields. verify_otp's load created 23 of them,
~20 ms of the ~30 ms its import cost over its floor; a Struct class is made in C in ~0.02 ms
(bench/README.md, on the records).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator

import msgspec
import pytest

import otplogin
from otplogin.config import Settings


def _library_classes() -> Iterator[type]:
    for info in pkgutil.walk_packages(otplogin.__path__, "otplogin."):
        if info.name.endswith(".__main__"):  # runs the admin command
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == info.name:
                yield value


def test_the_library_defines_no_dataclass():
    classes = list(_library_classes())
    dataclasses_made = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if dataclasses.is_dataclass(c))
    assert dataclasses_made == []
    # Not vacuous: the walk reaches the records of every function's load, the settings first.
    structs = {f"{c.__module__}.{c.__qualname__}" for c in classes if issubclass(c, msgspec.Struct)}
    assert {"otplogin.config.Settings", "otplogin.otp.Verified", "otplogin.http.Context", "otplogin.store.Plan"} <= structs


def test_settings_stay_immutable_and_replaceable():
    """What the dataclass gave and callers rely on: frozen, compared by value, copied with changes."""
    settings = Settings(project="demo-records")
    with pytest.raises(AttributeError):
        settings.code_length = 8  # type: ignore[misc]
    changed = msgspec.structs.replace(settings, code_length=8)
    assert (changed.code_length, settings.code_length) == (8, 6)
    assert msgspec.structs.replace(changed, code_length=6) == settings
