"""``hil plugins``: every registry (``hil.target``, ``hil.flash``, …), what is built in, what
installed plugins add, and which plugins cannot be used (a name claimed twice, an import that
fails, a model or class of the wrong kind)."""

from __future__ import annotations

import click

from hil.cli.app import App, plain


@click.command()
@click.pass_obj
def plugins(app: App) -> None:
    """List the registries and their entries; exit 2 when an installed plugin cannot be used."""
    from hil import registry

    problems: list[str] = []
    for reg in registry.registries():
        app.print(f"[bold]{reg.group}[/] ({reg.what})")
        for name, claims in reg.table().items():
            app.print(f"  {plain(name):<14} " + plain("; ".join(
                "built in" if e.builtin else f"{e.implementation} ({e.dist})" for e in claims)))
        problems += reg.problems()
    for problem in problems:
        app.error(problem)
    if problems:
        app.abort(f"{len(problems)} plugin(s) cannot be used")
