"""``hil schema``: JSON Schema for rig, suite and stack files (for the YAML language server)."""

from __future__ import annotations

import json

import click

from hil.cli.app import App


@click.command()
@click.argument("kind", type=click.Choice(["rig", "suite", "stack"]))
@click.pass_obj
def schema(app: App, kind: str) -> None:
    """Print the JSON Schema of KIND files. Use with `# yaml-language-server: $schema=...`."""
    from pydantic import BaseModel

    from hil.spec.rig import Rig
    from hil.spec.stack import Stack
    from hil.spec.suite import Suite

    models: dict[str, type[BaseModel]] = {"rig": Rig, "suite": Suite, "stack": Stack}
    model = models[kind]
    from hil.spec.load import EXTENSION_PREFIX

    doc = model.model_json_schema(by_alias=True)
    doc["patternProperties"] = {f"^{EXTENSION_PREFIX}": {}}  # the user's own keys: anchors to merge
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
