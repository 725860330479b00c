"""``hil doctor``: how fit this host is for exact replay timing, with advice."""

from __future__ import annotations

from typing import Any

import click

from hil.cli.app import App

SLACK_DEFAULT_NS = 50_000
GOOD_P99_NS = 100_000


@click.command()
@click.option("--sample", default="5s", show_default=True, help="Length of the timer-lateness sample.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_obj
def doctor(app: App, sample: str, as_json: bool) -> None:
    """Check timer slack, PM QoS access, scheduler and timer lateness; say what to change."""
    import json
    import os
    from pathlib import Path

    import numpy as np

    from hil.spec.common import parse_duration_ns
    from hil.stimulus import realtime

    try:
        seconds = parse_duration_ns(sample) / 1e9
    except ValueError as exc:
        app.abort(f"invalid --sample: {exc}")
    advice: list[str] = []
    slack_before = realtime.timer_slack_ns()
    slack_after = realtime.set_timer_slack(1)
    if slack_after != 1:
        advice.append("timer slack cannot be lowered here; wake-ups may come up to "
                      f"{(slack_before or SLACK_DEFAULT_NS) / 1000:g} µs late")
    dma = realtime.hold_cpu_dma_latency(0)
    if dma.fd is None:
        advice.append(f"PM QoS not available ({dma.why}): run as root or give your group write access to "
                      "/dev/cpu_dma_latency (udev: KERNEL==\"cpu_dma_latency\", GROUP=\"hil\", MODE=\"0660\")")
    try:
        app.err_console.print(f"sampling timer lateness for {seconds:g} s …") if not as_json else None
        bare = np.array(realtime.timer_lateness_sample(seconds / 2, spin_ns=0))
        spun = np.array(realtime.timer_lateness_sample(seconds / 2, spin_ns=realtime.SPIN_NS))
    finally:
        dma.release()
    clocksource = _read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    sched = realtime.scheduler()
    findings: dict[str, Any] = {
        "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0], "scheduler": sched,
        "timer_slack_ns": {"default": slack_before, "lowered_to": slack_after},
        "pm_qos": dma.why, "clocksource": clocksource, "cpufreq_governor": governor,
        "sleep_lateness_ns": _stats(bare), "sleep_and_spin_lateness_ns": _stats(spun),
    }
    if clocksource and clocksource != "tsc":
        advice.append(f"clocksource is {clocksource}; 'tsc' reads the clock fastest")
    if governor and governor != "performance":
        advice.append(f"CPU frequency governor is {governor}; 'performance' avoids ramp-up delays")
    load = findings["load_1min"] / (os.cpu_count() or 1)
    if load > 0.7:
        advice.append(f"the host is busy (load {findings['load_1min']:.1f} on {os.cpu_count()} CPUs); "
                      "replay lateness will suffer — prefer simbus timed release or a quieter host")
    if findings["sleep_and_spin_lateness_ns"]["p99"] > GOOD_P99_NS:
        advice.append("p99 wake-up lateness with spinning is above 100 µs: real-bus replays will show it")
    if not Path("/sys/devices/system/cpu/isolated").exists() or not _read("/sys/devices/system/cpu/isolated"):
        advice.append("no isolated CPUs (isolcpus=); an isolated core for the injector removes most jitter")
    findings["advice"] = advice
    if as_json:
        app.console.print_json(json.dumps(findings))
        return
    app.print(_table(findings), level=-1)
    for line in advice:
        app.print(f"[yellow]advice:[/] {line}", level=-1)
    if not advice:
        app.print("[green]this host is fit for exact timing[/]", level=-1)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _stats(a) -> dict[str, float]:
    import numpy as np

    return {k: float(np.percentile(a, q)) for k, q in (("p50", 50), ("p99", 99), ("p99.9", 99.9))} | {
        "max": float(a.max()), "samples": int(len(a))}


def _table(f: dict):
    from rich.table import Table

    t = Table(title="host timing fitness", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("CPUs / load", f"{f['cpus']} / {f['load_1min']:.2f}")
    t.add_row("scheduler", f["scheduler"])
    s = f["timer_slack_ns"]
    t.add_row("timer slack", f"{s['default']} ns default, lowered to {s['lowered_to']} ns")
    t.add_row("PM QoS", f["pm_qos"])
    t.add_row("clocksource / governor", f"{f['clocksource']} / {f['cpufreq_governor']}")
    for key, label in (("sleep_lateness_ns", "sleep lateness"), ("sleep_and_spin_lateness_ns", "sleep+spin lateness")):
        st = f[key]
        t.add_row(label, " · ".join(f"{k} {st[k] / 1000:,.1f} µs" for k in ("p50", "p99", "p99.9", "max")))
    return t
