"""Spec fields whose model comes from a registry (:mod:`hil.registry`): the rig's targets, power
switches and flash methods, a component's ready condition, a suite's reports.

``Annotated[PowerSpec, Registered(POWER)]`` validates a mapping with the model of the entry its tag
names (``kind: command`` → :class:`CommandPower`), looked up when a file is validated rather than
when the spec is imported, so a plugin is imported only when a file names it. The chosen model
validates the mapping itself, so its errors are located and worded like any other field's
(``extra="forbid"``: "unknown key …; did you mean …"). An unknown tag is pydantic's
``union_tag_invalid``, a missing one ``union_tag_not_found``, so the loader words them as it words
every union; a clash or a broken plugin is ``plugin_unusable`` at the tag.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

from hil.errors import HilError
from hil.registry import Registry


class Registered:
    """Field marker: the value is one of ``registry``'s spec models, chosen by its tag field (or,
    for a keyed registry, by which entry's key it has). ``shorthand``: a bare name stands for
    ``{tag: name}`` (``reports: [junit]``)."""

    def __init__(self, registry: Registry, *, shorthand: bool = False):
        self.registry = registry
        self.shorthand = shorthand

    def tag_of(self, value: Any) -> Any:
        """The tag a raw value names (None: it names none)."""
        if self.shorthand and isinstance(value, str):
            return value
        if not isinstance(value, dict):
            return None
        if self.registry.keyed:
            return next((name for name in self.registry.names() if name in value), None)
        return value.get(self.registry.tag)

    def model_for(self, value: Any) -> Any:
        """The model ``value`` names, or None (unknown, or not loadable): for the loader's hints."""
        tag = self.tag_of(value)
        try:
            return self.registry.model(tag) if isinstance(tag, str) and tag in self.registry.tags() else None
        except HilError:
            return None

    def validate(self, value: Any, info: ValidationInfo) -> Any:
        reg = self.registry
        if self.shorthand and isinstance(value, str):
            value = {reg.tag: value}
        if not isinstance(value, dict):
            raise PydanticCustomError("model_type", "Input should be a valid dictionary")
        tag = self.tag_of(value)
        if reg.keyed and tag is None:
            *rest, last = map(repr, reg.names())
            keys = f"{', '.join(rest)} or {last}" if rest else last
            raise PydanticCustomError("registry_key", f"expected one of the keys {keys}")
        disc = {"discriminator": repr(reg.tag)}
        if tag is None:
            raise PydanticCustomError("union_tag_not_found", "no tag {discriminator}", disc)
        if not isinstance(tag, str) or tag not in reg.tags():
            raise PydanticCustomError("union_tag_invalid", "tag {tag} is none of {expected_tags}",
                                      {**disc, "tag": tag, "expected_tags": ", ".join(map(repr, reg.tags()))})
        try:
            model = reg.model(tag)
        except HilError as exc:  # a clash or a broken plugin, reported at the tag that names it
            raise PydanticCustomError("plugin_unusable", "{reason}", {**disc, "reason": str(exc)}) from None
        if model is None:  # a built-in written as a key of its own (a measurement's ``probe:``)
            raise PydanticCustomError("plugin_unusable", "{reason}", {**disc, "reason": (
                f"{reg.what} {tag!r} is built in and written as a key of its own, not here")})
        return model.model_validate(value, context=info.context)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            self.validate, metadata={"pydantic_js_functions": [self._json_schema]})

    def _json_schema(self, _: Any, handler: GetJsonSchemaHandler) -> dict:
        """The union of every usable registered model (``hil schema``)."""
        models = {}
        for tag in self.registry.tags():
            try:
                model = self.registry.model(tag)
            except HilError:
                continue
            if model is not None:
                models[tag] = model.__pydantic_core_schema__
        if not models:  # no plugin brings one (measurement sources): nothing is valid here
            return {"not": {}}
        union: core_schema.CoreSchema
        if self.registry.keyed:
            union = core_schema.union_schema(list(models.values()))
        else:
            union = core_schema.tagged_union_schema(models, discriminator=self.registry.tag)
        if self.shorthand:
            union = core_schema.union_schema([core_schema.literal_schema(list(models)), union])
        return handler(union)


class Named:
    """Field marker for a string that names an entry of ``registry`` (a probe's ``pair``, a
    stimulus source's ``format``), or one of ``also``: an unknown name is pydantic's
    ``literal_error``, so it is worded like any choice of fixed words."""

    def __init__(self, registry: Registry, also: tuple[str, ...] = ()):
        self.registry = registry
        self.also = also

    def choices(self) -> list[str]:
        return [*self.also, *self.registry.names()]

    def check(self, value: str) -> str:
        if value not in self.choices():
            *rest, last = map(repr, self.choices())
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": f"{', '.join(rest)} or {last}" if rest else last})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        """The names known when ``hil schema`` runs, plugins' too."""
        return {**handler(schema), "enum": self.choices()}
