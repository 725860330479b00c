"""Report plots as PNG files (matplotlib, Agg backend, no display needed).

Per bench: a latency histogram and CDF for each probe and chain, the recorded signals over time
against the stimulus events, and the injector's replay lateness. The HTML report embeds the files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hil.analysis.bench import Analysis

DPI = 90


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def render_bench_plots(analysis: Analysis, lateness_ns: list[int] | None, out_dir: Path) -> dict[str, str]:
    """Write the bench's plots into ``out_dir``; return title → file name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    for name, (pairing, stats) in analysis.probes.items():
        made[f"latency {name}"] = _save(latency_figure(name, pairing.latency_ns, analysis.budgets.get(name), stats.missed),
                                        out_dir / f"latency-{name}.png")
    for name, (cp, _stats, _) in analysis.chains.items():
        made[f"latency chain {name}"] = _save(latency_figure(f"chain {name}", cp.total_ns, analysis.budgets.get(f"chain {name}"), cp.missed),
                                              out_dir / f"chain-{name}.png")
    if analysis.signals:
        stim = np.concatenate([p.stimulus_ns for p, _ in analysis.probes.values()]) if analysis.probes else None
        made["signals"] = _save(signals_figure(analysis, stim), out_dir / "signals.png")
    if lateness_ns:
        made["replay lateness"] = _save(replay_figure(np.asarray(lateness_ns)), out_dir / "replay.png")
    return made


def latency_figure(title: str, latency_ns: np.ndarray, budget_ns: int | None, missed: int):
    plt = _pyplot()
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(9, 3.2))
    ms = np.asarray(latency_ns, np.float64) / 1e6
    fig.suptitle(f"{title}: {len(ms)} paired, {missed} missed")
    if len(ms):
        hist.hist(ms, bins=min(60, max(5, len(ms) // 5)), color="#4477aa")
        xs = np.sort(ms)
        cdf.plot(xs, np.arange(1, len(xs) + 1) / len(xs), color="#4477aa")
    for ax in (hist, cdf):
        ax.set_xlabel("latency (ms)")
        if budget_ns is not None:
            ax.axvline(budget_ns / 1e6, color="#cc3311", linestyle="--", label="budget")
    hist.set_ylabel("count")
    cdf.set_ylabel("fraction ≤ x")
    cdf.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def signals_figure(analysis: Analysis, stimulus_ns: np.ndarray | None):
    """Each recorded signal over time; the stretch the stimulus events cover is shaded."""
    plt = _pyplot()
    cols = list(analysis.signals.items())
    t0 = min((int(c.t_ns[0]) for _, c in cols if len(c.t_ns)), default=0)
    fig, axes = plt.subplots(len(cols), 1, figsize=(9, 1.9 * len(cols) + 0.6), sharex=True, squeeze=False)
    for ax, (label, col) in zip(axes[:, 0], cols):
        ax.step((col.t_ns - t0) / 1e9, col.value, where="post", color="#228833")
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_ylabel(col.unit)
        if stimulus_ns is not None and len(stimulus_ns):
            ax.axvspan((stimulus_ns.min() - t0) / 1e9, (stimulus_ns.max() - t0) / 1e9, color="#eeeeee", zorder=0)
    axes[-1, 0].set_xlabel("time since the first recorded frame (s); shaded: stimulus events")
    fig.tight_layout()
    return fig


def replay_figure(lateness_ns: np.ndarray):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.plot(np.arange(len(lateness_ns)), lateness_ns / 1e3, ".", markersize=2, color="#aa3377")
    ax.set_xlabel("frame (in send order)")
    ax.set_ylabel("lateness (µs)")
    ax.set_title(f"replay lateness: p99 {np.percentile(lateness_ns, 99) / 1e3:.1f} µs, "
                 f"max {lateness_ns.max() / 1e3:.1f} µs")
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=DPI, format="png")
    _pyplot().close(fig)
    return path.name
