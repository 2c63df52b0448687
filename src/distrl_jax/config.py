"""Configuration as data: typed, frozen dataclasses with a help text per field.

Presets live in ``configs/*.py`` (each defines ``get_config() -> Config``, big_vision style); any
field is overridden from the command line as ``--section.field=value`` (or ``--set
section.field=value``). :func:`validate` names the field, the bad value and what is allowed. The
resolved config is written into every run folder as YAML.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import pathlib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from distrl_jax.config_distill import ActorConfig, DistillConfig
from distrl_jax.config_runtime import CheckpointConfig, MeshConfig, RuntimeConfig
from distrl_jax.config_sections import (
    SAFE_NAME_HELP,
    ConfigError,
    DeviceConfig,
    EvalConfig,
    LearnerConfig,
    PretrainConfig,
    ReplayConfig,
    TaskConfig,
    _check,
    _sub,
    field,
    is_safe_name,
)
from distrl_jax.models.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run."""

    name: str = field("default", "preset name (used in the run folder's name)")
    seed: int = field(0, "master seed")
    accel: str = field("cpu", "cpu | gpu | tpu | auto")
    run_dir: str = field("", "run folder ('' = runs/<time>-<name>)")
    model: ModelSpec = _sub(ModelSpec)
    device: DeviceConfig = _sub(DeviceConfig)
    tasks: TaskConfig = _sub(TaskConfig)
    learner: LearnerConfig = _sub(LearnerConfig)
    replay: ReplayConfig = _sub(ReplayConfig)
    mesh: MeshConfig = _sub(MeshConfig)
    runtime: RuntimeConfig = _sub(RuntimeConfig)
    checkpoint: CheckpointConfig = _sub(CheckpointConfig)
    pretrain: PretrainConfig = _sub(PretrainConfig)
    eval: EvalConfig = _sub(EvalConfig)
    actor: ActorConfig = _sub(ActorConfig)
    distill: DistillConfig = _sub(DistillConfig)

    def validate(self) -> Config:
        """Check every section; returns self so calls chain."""
        _check(is_safe_name(self.name), "name", self.name, SAFE_NAME_HELP)  # names a folder
        _check(
            self.accel in ("cpu", "gpu", "tpu", "auto"),
            "accel",
            self.accel,
            "cpu, gpu, tpu or auto",
        )
        for f in dataclasses.fields(self):
            sub = getattr(self, f.name)
            if dataclasses.is_dataclass(sub) and hasattr(sub, "validate"):
                try:
                    sub.validate()
                except ConfigError:
                    raise
                except ValueError as e:  # a section's own validate (e.g. ModelSpec)
                    msg = str(e)
                    raise ConfigError(
                        msg if msg.startswith(f"{f.name}.") else f"{f.name}: {msg}"
                    ) from e
        if self.actor.policy == "distilled":
            from distrl_jax.learner.distill import check_compatible
            from distrl_jax.models.spec import preset

            try:
                check_compatible(self.model, preset(self.distill.student))
            except (KeyError, ValueError) as e:
                raise ConfigError(f"distill.student={self.distill.student!r}: {e}") from None
        return self


# ---------------------------------------------------------------- overrides


def _coerce(tp: Any, raw: str, name: str, sep: str = ",") -> Any:
    origin = typing.get_origin(tp)
    if tp is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not allowed: true or false")
    if tp in (int, float, str):
        try:
            return tp(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not allowed: expected {tp.__name__}") from None
    if origin is tuple:
        args = typing.get_args(tp)
        parts = [p for p in (s.strip() for s in raw.split(sep)) if p] if raw.strip() else []
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], p, name) for p in parts)
        if len(parts) != len(args):
            raise ConfigError(
                f"{name}={raw!r} is not allowed: expected {len(args)} comma-separated values"
            )
        return tuple(_coerce(a, p, name) for a, p in zip(args, parts, strict=True))
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            if a is type(None):
                continue
            try:
                return _coerce(a, raw, name)
            except ConfigError:
                pass
        raise ConfigError(f"{name}={raw!r} is not allowed: expected {tp}")
    raise ConfigError(f"{name} cannot be set from the command line (type {tp})")


def override(cfg: Any, dotted: str, raw: str, _prefix: str = "") -> Any:
    """Return a copy of ``cfg`` with ``dotted`` (e.g. ``learner.lr``) set from the string ``raw``."""
    head, _, rest = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if head not in fields:
        where = type(cfg).__name__
        close = difflib.get_close_matches(head, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown config field {dotted!r} in {where}{hint}; known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(type(cfg))
    if rest:
        sub = getattr(cfg, head)
        if not dataclasses.is_dataclass(sub):
            raise ConfigError(f"{head} is a value, not a section; use --{head}=VALUE")
        return dataclasses.replace(cfg, **{head: override(sub, rest, raw, f"{_prefix}{head}.")})
    if dataclasses.is_dataclass(getattr(cfg, head)):
        raise ConfigError(
            f"{dotted} is a section; set one of its fields, e.g. --{dotted}.FIELD=VALUE"
        )
    sep = fields[head].metadata.get("sep", ",")
    return dataclasses.replace(cfg, **{head: _coerce(hints[head], raw, _prefix + dotted, sep)})


def apply_overrides(cfg: Config, assignments: Iterable[str]) -> Config:
    """Apply ``section.field=value`` strings in order, then validate."""
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep:
            raise ConfigError(f"override {a!r} must look like section.field=value")
        cfg = override(cfg, key.strip().lstrip("-"), value)
    return cfg.validate()


# ---------------------------------------------------------------- presets and files

CONFIG_DIRS = (
    pathlib.Path.cwd() / "configs",
    pathlib.Path(__file__).resolve().parents[2] / "configs",
)


def preset_names() -> list[str]:
    """Names of the presets found in ``configs/``."""
    names = {
        p.stem
        for d in CONFIG_DIRS
        if d.is_dir()
        for p in d.glob("*.py")
        if not p.stem.startswith("_")
    }
    return sorted(names)


def load_preset(name_or_path: str) -> Config:
    """Load ``configs/<name>.py`` (or a path to such a file) and return its validated Config."""
    path = pathlib.Path(name_or_path)
    if path.suffix != ".py":
        found = [
            d / f"{name_or_path}.py" for d in CONFIG_DIRS if (d / f"{name_or_path}.py").is_file()
        ]
        if not found:
            raise ConfigError(
                f"unknown preset {name_or_path!r}; known: {', '.join(preset_names()) or 'none'}"
            )
        path = found[0]
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"distrl_config_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path} defines no get_config() -> Config")
    cfg = module.get_config()
    if not isinstance(cfg, Config):
        raise ConfigError(f"{path}: get_config() returned {type(cfg).__name__}, not Config")
    return cfg.validate()


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (tuples become lists) for YAML/JSON."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def save_yaml(cfg: Config, path: str | pathlib.Path) -> None:
    """Write the resolved config."""
    pathlib.Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _list_sep(cfg: Any, dotted: str) -> str:
    """The separator a tuple field is written with on the command line (',' unless declared)."""
    head, _, rest = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if head not in fields:
        return ","
    if rest:
        sub = getattr(cfg, head)
        # A dotted path below a plain value: apply_overrides reports it ("a value, not a section").
        return _list_sep(sub, rest) if dataclasses.is_dataclass(sub) else ","
    return fields[head].metadata.get("sep", ",")


def from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    """Rebuild a Config from ``to_dict`` output (unknown keys are an error)."""
    cfg = base or Config()
    flat: list[str] = []

    def walk(prefix: str, d: dict[str, Any]) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            elif isinstance(v, list):
                flat.append(f"{key}={_list_sep(cfg, key).join(str(x) for x in v)}")
            else:
                flat.append(f"{key}={v}")

    walk("", data)
    return apply_overrides(cfg, flat)


def describe_fields(cfg: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, current value, help) for every leaf field, for ``--help``."""
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            rows += describe_fields(v, f"{prefix}{f.name}.")
        else:
            shown = ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
            rows.append((prefix + f.name, shown, f.metadata.get("help", "")))
    return rows


def split_overrides(argv: Sequence[str], known_flags: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split argv into (known flags for argparse, ``section.field=value`` overrides)."""
    known = set(known_flags)
    flags: list[str] = []
    overrides: list[str] = []
    it = iter(argv)
    for a in it:
        name = a.split("=", 1)[0]
        if a == "--set":
            overrides.append(next(it, ""))
        elif a.startswith("--") and "." in name and name not in known:
            if "=" not in a:
                a = f"{a}={next(it, '')}"
            overrides.append(a[2:])
        else:
            flags.append(a)
    return flags, overrides
