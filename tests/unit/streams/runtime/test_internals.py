"""The privates of faust-streaming and aiokafka that the streams runtime relies on are there, in
the versions it was written against: an upgrade that removes or renames one fails here, by
name, instead of breaking the commit-safety guarantee at run time."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

import pytest

from streams.runtime.internals import PINNED, RELIED_ON


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_installed_version_is_the_one_the_runtime_was_written_against(package: str) -> None:
    assert version(package) == PINNED[package], (
        f"{package} {version(package)} is installed; streams/runtime was written against"
        f" {PINNED[package]}: check every attribute of streams/runtime/internals.RELIED_ON"
        " against the new release, then move the pin in pyproject.toml and PINNED together"
    )


@pytest.mark.parametrize(("owner", "attribute"), RELIED_ON, ids=str)
def test_every_relied_on_private_is_there(owner: str, attribute: str) -> None:
    module_name, _, class_name = owner.partition(":")
    target: object = importlib.import_module(module_name)
    if class_name:
        target = getattr(target, class_name)
    present = hasattr(target, attribute)
    if not present and inspect.isclass(target):
        # an instance attribute: set by the class (or a base class) on `self`
        present = any(
            f"self.{attribute}" in inspect.getsource(base)
            for base in inspect.getmro(target)
            if base.__module__.split(".")[0] in ("faust", "aiokafka", "mode")
        )
    assert present, (
        f"{owner}.{attribute}, which streams/runtime relies on, is gone from the installed"
        f" {module_name.split('.')[0]}"
    )
