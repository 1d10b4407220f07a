"""Strict schemas for the project's YAML files: `sites.yaml`, `publish.yaml`, `env.yaml`.

Every file is checked against a pydantic model with `extra="forbid"` before it is used: an unknown
or misspelled key (`overlap_minuts`), a wrong top level (`site:` for `sites:`), a wrong type or an
empty file is one `ConfigError` line naming the file, the line and the key, e.g.

    sites.yaml:7: sites[0].overlap_minuts: unknown key (allowed: auth, audit, devicestatus, ...)

The models only check the shape; the modules that use a file (ingest/sites.py, publish/publisher.py,
the pipeline) keep their own checks of the values' meaning.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from workbench.errors import SettingsError
from workbench.settings import DEV_BRANCH, MAIN_BRANCH


class ConfigError(SettingsError):
    """A configuration file that does not match its schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


@lru_cache(maxsize=1)
def audit_limits_model() -> type[BaseModel]:
    """The `audit:` mapping (env.yaml, and per site in sites.yaml): the audit's own thresholds,
    every key optional, so there is one definition (`workbench.quality.audit.Thresholds`)."""
    from workbench.quality.audit import Thresholds

    hints = typing.get_type_hints(Thresholds)
    spec: dict[str, Any] = {f.name: (hints[f.name] | None, None) for f in fields(Thresholds)}
    return create_model("AuditLimits", __config__=ConfigDict(extra="forbid"), **spec)


class SiteEntry(_Strict):
    id: str
    url: str
    patient_id: str | None = None
    display_name: str | None = None
    secret_env: str | None = None
    auth: Literal["api_secret", "token"] = "api_secret"
    time_zone: str = "UTC"
    overlap_minutes: float = Field(default=360, ge=0)
    devicestatus: bool = False
    audit: dict[str, Any] | None = None  # checked against audit_limits_model() below


class SitesFile(_Strict):
    sites: list[SiteEntry] = Field(min_length=1)


class PublishTable(_Strict):
    name: str
    source: str | None = None
    primary_key: list[str] = []
    indexes: list[str | list[str]] = []


class PublishFile(_Strict):
    schema_: str = Field(default="marts", alias="schema")
    lock_timeout: str | float = "30s"
    readers: list[str] = []
    tables: list[str | PublishTable] = Field(min_length=1)


class EnvFile(_Strict):
    """The pipeline parameters (Ploomber `env.yaml`)."""

    products: str | None = None
    branch: str = DEV_BRANCH
    baseline: str = MAIN_BRANCH
    sites: str | None = None
    full_resync: bool = False
    backfill: bool = False
    full_refresh: bool = False
    run_id: str | None = None
    audit: dict[str, Any] | None = None  # checked against audit_limits_model() below


_EXAMPLES = {
    SitesFile: "a top-level `sites:` list (see sites.example.yaml)",
    PublishFile: "a mapping with a `tables:` list (see the project's publish.yaml)",
    EnvFile: "a mapping of pipeline parameters (see the project's env.yaml)",
}


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int | None, bool]:
    """1-based line of the YAML node at `loc` (or of the nearest parent that exists); whether found."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, _ in node.value if k.value == part), None)
            if key is None:
                return line, False
            line, node = key.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line, False
    return line, True


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # drop pydantic's union-branch labels ("str", "PublishTable", "function-after[...]")
    return tuple(p for p in loc if isinstance(p, int) or (isinstance(p, str) and not _is_type_label(p)))


def _is_type_label(part: str) -> bool:
    return part in ("str", "float", "int", "list[str]") or part[:1].isupper() or "[" in part


def _allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at the mapping that holds `loc[-1]`."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
        if part == "audit":
            current = audit_limits_model()
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or name for name, f in current.model_fields.items())
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fail(
    path: Path, root: yaml.Node | None, model: type[BaseModel], err: dict[str, Any], prefix: tuple[Any, ...] = ()
) -> ConfigError:
    loc = prefix + _clean_loc(tuple(err["loc"]))
    line, found = _line_of(root, loc)
    where = f"{path}:{line}" if line else str(path)
    key = _where(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed(model, loc)
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        if model is SitesFile and loc and loc[-1] in ("secret", "api_secret", "token", "password"):
            hint = "; never put a secret in the file: put it in an environment variable and name it with secret_env"
        return ConfigError(f"{where}: {key}: unknown key{hint}")
    if err["type"] == "missing":
        return ConfigError(f"{where}: {key}: required key is missing")
    return ConfigError(f"{where}: {key}: {err['msg']} (got {err.get('input')!r})"[:400])


def validate_file(path: Path, model: type[BaseModel]) -> dict[str, Any]:
    """Parse a YAML file and check it against `model`; the parsed mapping, or one ConfigError line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: not valid YAML ({problem})") from None
    if doc is None:
        raise ConfigError(f"{path}: the file is empty; expected {_EXAMPLES.get(model, 'a mapping')}")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}:1: expected {_EXAMPLES.get(model, 'a mapping')}, not a {type(doc).__name__}")
    try:
        parsed = model.model_validate(doc)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a misspelling first
        raise _fail(path, root, model, dict(errors[0])) from None
    _check_audit(path, root, model, parsed)
    return doc


def _check_audit(path: Path, root: yaml.Node | None, model: type[BaseModel], parsed: BaseModel) -> None:
    limits = audit_limits_model()
    blocks: list[tuple[tuple[Any, ...], dict[str, Any] | None]] = []
    if isinstance(parsed, SitesFile):
        blocks = [(("sites", i, "audit"), s.audit) for i, s in enumerate(parsed.sites)]
    elif isinstance(parsed, EnvFile):
        blocks = [(("audit",), parsed.audit)]
    for prefix, block in blocks:
        if block is None:
            continue
        try:
            limits.model_validate(block)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = prefix + _clean_loc(tuple(err["loc"]))
            line, _ = _line_of(root, loc)
            where = f"{path}:{line}" if line else str(path)
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(limits.model_fields))
                raise ConfigError(f"{where}: {_where(loc)}: unknown key (allowed: {allowed})") from None
            raise ConfigError(f"{where}: {_where(loc)}: {err['msg']} (got {err.get('input')!r})") from None


def validate_sites(path: Path) -> dict[str, Any]:
    return validate_file(path, SitesFile)


def validate_publish(path: Path) -> dict[str, Any]:
    return validate_file(path, PublishFile)


def validate_env(path: Path) -> dict[str, Any]:
    return validate_file(path, EnvFile)
