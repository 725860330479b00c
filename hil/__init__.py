"""hil — hardware-in-the-loop test bench orchestrator."""

__version__ = "0.1.0"
