"""Test suites for plugin authors: a driver that passes them keeps the contracts hil's own code
relies on. Import one into a pytest module, subclass it, and give it the fixture it asks for
(docs/plugins.md); hil's own drivers run the same suites (tests/targets)."""

from hil.testing.targets import TargetCase, TargetContract

__all__ = ["TargetCase", "TargetContract"]
