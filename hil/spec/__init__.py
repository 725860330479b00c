"""Spec models (rig, suite, stack) and the YAML loader; see :mod:`hil.spec.load`."""

from hil.spec.check import check_files
from hil.spec.load import SpecFile, load_rig, load_stack, load_suite

__all__ = ["SpecFile", "check_files", "load_rig", "load_stack", "load_suite"]
