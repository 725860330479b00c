"""The one exception tree of hil.

Every error that hil raises on purpose derives from :class:`HilError`. Each class carries the
process exit code the CLI uses when the error ends a command, so the mapping from "what went wrong"
to "what a CI job sees" lives in one place:

==========  =====================================================================
exit code   meaning
==========  =====================================================================
0           every bench passed (or the command did what it was asked)
1           a bench failed: a measurement was outside its limits
2           usage or spec error: the command line or a YAML file is wrong
3           infrastructure error: a bus, target, deploy, flash or lease failed
130         interrupted (Ctrl-C); teardown still ran
143, 129    stopped by SIGTERM, SIGHUP: as Ctrl-C (128 + the signal, hil.lifecycle.signals)
==========  =====================================================================

Tree::

    HilError                     exit 3 unless stated
    ├── SpecError                exit 2  rig / suite / stack file is invalid (file:line:col)
    ├── UsageError               exit 2  command-line arguments do not make sense together
    ├── RigBusyError                     another holder has the rig's lease
    ├── RigUnhealthyError                the rig's last health check failed (override: --force)
    ├── ClusterError                     the Dask scheduler is unreachable, or no worker offers a rig
    ├── BusError                         a bus could not be opened or went down
    ├── DeployError                      a stack component could not be deployed or started
    │   └── BundleError                  a stack bundle is malformed or fails verification
    ├── TargetStateError                 a target was driven out of its life-cycle order
    ├── SessionStateError                a rig session was driven out of its life-cycle order
    ├── TargetTimeoutError               a target did not become ready in time
    ├── FlashError                       a flashing step failed (which step, which response)
    ├── StimulusError                    a stimulus file is unreadable or corrupt (file, record)
    │   └── ReplayStoppedError           a replay was stopped at its deadline (the bench's timeout)
    ├── RecordingError                   a recording could not be written or read
    ├── AnalysisError                    a probe or measurement cannot be evaluated
    └── HarnessError                     the harness broke its error budget: the stack was not judged

Messages say what was expected and what came; the cause is named in the message itself, never only
in ``__cause__``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class HilError(Exception):
    """Base of every deliberate hil error."""

    exit_code = EXIT_INFRA

    def lines(self) -> list[str]:
        """What the user is told, one line per problem."""
        return [str(self)]


class SpecError(HilError):
    """A rig, suite or stack file is invalid.

    ``problems`` holds every problem found, each already formatted as
    ``path:LINE:COL: field.path: message``; ``str()`` joins them one per line.
    """

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return list(self.problems)


class UsageError(HilError):
    """Command-line arguments that do not make sense together."""

    exit_code = EXIT_USAGE


class RigBusyError(HilError):
    """The rig's lease is held by someone else."""


class RigUnhealthyError(HilError):
    """The rig's last health check failed; runs refuse it until a health check passes."""


class ClusterError(HilError):
    """The Dask scheduler cannot be reached, or no worker offers the rig a bench needs."""


class BusError(HilError):
    """A bus could not be opened, or went down while in use."""


class DeployError(HilError):
    """A stack component could not be deployed or started."""


class BundleError(DeployError):
    """A stack bundle is malformed or fails checksum verification."""


class TargetStateError(HilError):
    """A target was asked to do something its life-cycle state does not allow."""


class SessionStateError(HilError):
    """A rig session was asked to do something its life-cycle state does not allow."""


class TargetTimeoutError(HilError):
    """A target (or one of its components) did not become ready in time."""


class FlashError(HilError):
    """A flashing step failed; the message names the step and the response."""


class StimulusError(HilError):
    """A stimulus source is unreadable, truncated or corrupt."""


class ReplayStoppedError(StimulusError):
    """A replay was stopped because it ran past its deadline (the bench's timeout)."""


class RecordingError(HilError):
    """A recording could not be written, or read back."""


class AnalysisError(HilError):
    """A probe or measurement cannot be evaluated on a recording."""


class HarnessError(HilError):
    """The harness (host load, emulation, adapter clocks) broke its error budget while a bench ran,
    so the stack's measurements were shown but not judged (the bench's verdict is ``error``)."""
