"""Config: overrides from strings, validation messages, presets, and the YAML round trip."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
import yaml

from distrl_jax.config import (
    Config,
    ConfigError,
    LearnerConfig,
    apply_overrides,
    describe_fields,
    field,
    from_dict,
    load_preset,
    override,
    preset_names,
    save_yaml,
    split_overrides,
    to_dict,
)


def leaves(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


# ---------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("dotted", "raw", "expected"),
    [
        ("seed", "42", 42),
        ("learner.batch_size", "4", 4),
        ("mesh.data", "-1", -1),
        ("learner.lr", "3e-4", 3e-4),
        ("learner.gamma", "1", 1.0),
        ("device.time_scale", "0.01", 0.01),
        ("eval.greedy", "false", False),
        ("eval.greedy", "No", False),
        ("eval.greedy", "0", False),
        ("eval.greedy", "off", False),
        ("learner.off_policy_correction", "TRUE", True),
        ("learner.off_policy_correction", "yes", True),
        ("learner.off_policy_correction", "on", True),
        ("name", "my-run.2", "my-run.2"),  # one folder name (no spaces or separators)
        ("run_dir", "", ""),
        ("learner.algo", "digirl", "digirl"),
        ("device.serials", "emulator-5554, emulator-5556", ("emulator-5554", "emulator-5556")),
        ("device.serials", "", ()),
        ("learner.priority_weights", "10,2,0.5", (10.0, 2.0, 0.5)),
        ("model.image_size", "64,32", (64, 32)),
        ("model.width", "32", 32),
    ],
)
def test_override_values(dotted: str, raw: str, expected: object) -> None:
    base = Config()
    cfg = apply_overrides(base, [f"{dotted}={raw}"])
    got = leaves(to_dict(cfg))[dotted]
    if isinstance(expected, tuple):
        assert tuple(got) == expected  # to_dict lists tuples
        section, _, name = dotted.rpartition(".")
        obj = getattr(cfg, section) if section else cfg
        assert getattr(obj, name) == expected and isinstance(getattr(obj, name), tuple)
    else:
        assert got == expected and type(got) is type(expected)
    assert base == Config()  # the original is untouched (frozen copies)


def test_overrides_apply_in_order_and_leave_other_fields() -> None:
    cfg = apply_overrides(Config(), ["--learner.lr=0.1", "learner.lr=0.2", " seed =5"])
    assert cfg.learner.lr == 0.2 and cfg.seed == 5
    assert dataclasses.replace(cfg, seed=0, learner=LearnerConfig()) == dataclasses.replace(
        Config(), learner=LearnerConfig()
    )
    assert cfg.learner == dataclasses.replace(LearnerConfig(), lr=0.2)


def test_override_value_may_contain_equals() -> None:
    cfg = apply_overrides(Config(), ["checkpoint.init_from=runs/a=b/ckpt"])
    assert cfg.checkpoint.init_from == "runs/a=b/ckpt"


@pytest.mark.parametrize(
    ("dotted", "section", "must_list"),
    [
        ("learner.lrr", "LearnerConfig", ["lr", "gamma", "batch_size"]),
        ("sed", "Config", ["seed", "learner", "replay", "model"]),
        ("model.widht", "ModelSpec", ["width", "heads"]),
        ("replay.capacity.x", "ReplayConfig", None),
    ],
)
def test_unknown_field_lists_known_fields(dotted: str, section: str, must_list) -> None:
    if must_list is None:  # a value used as a section
        with pytest.raises(ConfigError, match="capacity is a value, not a section"):
            apply_overrides(Config(), [f"{dotted}=1"])
        return
    with pytest.raises(ConfigError) as exc:
        apply_overrides(Config(), [f"{dotted}=1"])
    msg = str(exc.value)
    assert f"unknown config field {dotted.rpartition('.')[2]!r}" in msg or repr(dotted) in msg
    assert section in msg and "known:" in msg
    for name in must_list:
        assert name in msg


def test_section_given_a_value() -> None:
    with pytest.raises(ConfigError, match=r"learner is a section; set one of its fields"):
        apply_overrides(Config(), ["learner=5"])
    with pytest.raises(ConfigError, match=r"seed is a value, not a section; use --seed=VALUE"):
        apply_overrides(Config(), ["seed.x=5"])


def test_override_needs_equals() -> None:
    with pytest.raises(ConfigError, match=r"must look like section\.field=value"):
        apply_overrides(Config(), ["learner.lr"])


TYPE_ERRORS = [
    ("learner.batch_size=abc", "learner.batch_size='abc'", "expected int"),
    ("learner.batch_size=1.5", "learner.batch_size='1.5'", "expected int"),
    ("learner.lr=fast", "learner.lr='fast'", "expected float"),
    ("eval.greedy=maybe", "eval.greedy='maybe'", "true or false"),
    ("learner.priority_weights=1,2", "learner.priority_weights='1,2'", "3 comma-separated"),
    ("learner.priority_weights=1,2,x", "learner.priority_weights='x'", "expected float"),
    ("model.image_size=64,x", "model.image_size='x'", "expected int"),
    ("seed=one", "seed='one'", "expected int"),
]

RANGE_ERRORS = [
    ("accel=quantum", "accel='quantum'", "cpu, gpu, tpu or auto"),
    ("device.kind=usb", "device.kind='usb'", "simphone or adb"),
    ("device.count=0", "device.count=0", ">= 1"),
    ("device.latency=slow", "device.latency='slow'", "none or emulator"),
    ("device.hang_prob=1.5", "device.hang_prob=1.5", "probability in [0, 1]"),
    ("device.offline_prob=-0.1", "device.offline_prob=-0.1", "probability in [0, 1]"),
    ("device.time_scale=-1", "device.time_scale=-1.0", ">= 0"),
    ("device.kind=adb", "device.serials=()", "at least one serial"),
    ("tasks.train_split=test", "tasks.train_split='test'", "train, val or all"),
    ("tasks.horizon=-1", "tasks.horizon=-1", ">= 1"),
    ("tasks.invalid_penalty=0.5", "tasks.invalid_penalty=0.5", "<= 0"),
    ("tasks.repeat_penalty=nan", "tasks.repeat_penalty=nan", "<= 0"),
    ("learner.algo=ppo", "learner.algo='ppo'", "aride or digirl"),
    ("learner.value_target=td", "learner.value_target='td'", "vtrace, retrace_paper or none"),
    ("learner.gamma=1.5", "learner.gamma=1.5", "[0, 1]"),
    ("learner.lam=nan", "learner.lam=nan", "[0, 1]"),
    ("learner.lr=0", "learner.lr=0.0", "> 0"),
    ("learner.c_bar=-1", "learner.c_bar=-1.0", "> 0"),
    ("learner.entropy_coef=-0.1", "learner.entropy_coef=-0.1", ">= 0"),
    ("learner.batch_size=0", "learner.batch_size=0", ">= 1"),
    ("learner.digirl_curriculum_fraction=0", "learner.digirl_curriculum_fraction=0.0", "(0, 1]"),
    ("replay.capacity=0", "replay.capacity=0", ">= 1"),
    ("replay.sampling=random", "replay.sampling='random'", "prioritized or uniform"),
    ("replay.beta0=2", "replay.beta0=2.0", "[0, 1]"),
    ("replay.min_size=100000", "replay.min_size=100000", "1..capacity"),
    ("mesh.data=0", "mesh.data=0", "-1 or an integer >= 1"),
    ("mesh.model=0", "mesh.model=0", ">= 1"),
    ("runtime.mode=fast", "runtime.mode='fast'", "async or sync"),
    ("runtime.port=70000", "runtime.port=70000", "0..65535"),
    ("runtime.broadcast=udp", "runtime.broadcast='udp'", "path or inline"),
    ("runtime.outbox=0", "runtime.outbox=0", ">= 1"),
    ("checkpoint.keep=0", "checkpoint.keep=0", ">= 1"),
    ("eval.episodes_per_task=0", "eval.episodes_per_task=0", ">= 1"),
    # ModelSpec validates itself; Config prefixes the section.
    ("model.heads=3", "model.heads=3", "a divisor of width"),
    ("model.dtype=int8", "model.dtype='int8'", "float32 | bfloat16 | float16"),
    pytest.param(
        "runtime.ingest_queue=0",
        "runtime.ingest_queue=0",
        ">= 1",
    ),
]


def assert_config_error(assignment: str, name: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as exc:
        apply_overrides(Config(), [assignment])
    msg = str(exc.value)
    assert name in msg, msg
    assert "is not allowed" in msg, msg
    assert allowed in msg, msg


@pytest.mark.parametrize(("assignment", "name", "allowed"), RANGE_ERRORS)
def test_bad_values_name_field_value_and_what_is_allowed(
    assignment: str, name: str, allowed: str
) -> None:
    assert_config_error(assignment, name, allowed)


@pytest.mark.parametrize(("assignment", "name", "allowed"), TYPE_ERRORS)
def test_wrong_types_name_field_value_and_what_is_allowed(
    assignment: str, name: str, allowed: str
) -> None:
    assert_config_error(assignment, name, allowed)


@pytest.mark.parametrize(("assignment", "name", "allowed"), TYPE_ERRORS[2:4])
def test_type_errors_name_the_full_dotted_field(assignment: str, name: str, allowed: str) -> None:
    assert_config_error(assignment, name, allowed)


def test_nested_override_function_directly() -> None:
    spec = override(Config(), "model.width", "128").model
    assert spec.width == 128
    with pytest.raises(ConfigError, match="model is a section"):
        override(Config(), "model", "tiny")


def test_field_refuses_mutable_defaults() -> None:
    with pytest.raises(TypeError, match="tuples"):
        field([1, 2], "help")


# ---------------------------------------------------------------- argv splitting


@pytest.mark.parametrize(
    ("argv", "flags", "overrides"),
    [
        (["--learner.lr=0.1"], [], ["learner.lr=0.1"]),
        (["--learner.lr", "0.1"], [], ["learner.lr=0.1"]),
        (["--set", "learner.lr=0.1"], [], ["learner.lr=0.1"]),
        (["--role=learner", "--config", "smoke"], ["--role=learner", "--config", "smoke"], []),
        (["--config=configs/smoke.py"], ["--config=configs/smoke.py"], []),
        (
            [
                "--role",
                "actor",
                "--device.serials",
                "a,b",
                "--set",
                "seed=3",
                "-v",
                "--eval.greedy=0",
            ],
            ["--role", "actor", "-v"],
            ["device.serials=a,b", "seed=3", "eval.greedy=0"],
        ),
        (
            ["--learner.digirl_advantage_threshold", "-0.5"],
            [],
            ["learner.digirl_advantage_threshold=-0.5"],
        ),
        (["--set"], [], [""]),  # then apply_overrides refuses the empty assignment
        (["--a.b"], [], ["a.b="]),
        (["--known.flag=1"], ["--known.flag=1"], []),
        (["positional.with.dots"], ["positional.with.dots"], []),
    ],
)
def test_split_overrides(argv: list[str], flags: list[str], overrides: list[str]) -> None:
    got_flags, got_overrides = split_overrides(
        argv, known_flags=["--role", "--config", "--known.flag"]
    )
    assert got_flags == flags
    assert got_overrides == overrides


def test_split_then_apply() -> None:
    flags, overrides = split_overrides(
        ["--config", "smoke", "--learner.lr", "0.5", "--set", "tasks.horizon=7"], ["--config"]
    )
    cfg = apply_overrides(Config(), overrides)
    assert flags == ["--config", "smoke"]
    assert cfg.learner.lr == 0.5 and cfg.tasks.horizon == 7


# ---------------------------------------------------------------- describe, presets, YAML


def test_describe_fields_covers_every_leaf() -> None:
    cfg = Config()
    rows = describe_fields(cfg)
    names = [r[0] for r in rows]
    flat = leaves(to_dict(cfg))
    assert names == list(flat)  # every leaf, once, in declaration order
    for name, shown, help_text in rows:
        assert help_text, f"{name} has no help text"
        value = flat[name]
        assert shown == (",".join(map(str, value)) if isinstance(value, list) else str(value))
    # Every shown value is accepted back as an override (what --help prints can be pasted).
    assert apply_overrides(cfg, [f"{n}={v}" for n, v, _ in rows]) == cfg


def test_preset_names_include_smoke() -> None:
    names = preset_names()
    assert "smoke" in names and names == sorted(names)
    assert not any(n.startswith("_") for n in names)


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        load_preset("no_such_preset")
    msg = str(exc.value)
    assert "unknown preset 'no_such_preset'" in msg
    for name in preset_names():
        assert name in msg


def test_load_preset_from_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        "import dataclasses\n"
        "from distrl_jax.config import Config, LearnerConfig\n\n\n"
        "def get_config() -> Config:\n"
        "    return Config(name='mine', seed=9, learner=dataclasses.replace(LearnerConfig(), lr=0.5))\n"
    )
    cfg = load_preset(str(path))
    assert cfg.name == "mine" and cfg.seed == 9 and cfg.learner.lr == 0.5
    assert cfg == Config(name="mine", seed=9, learner=dataclasses.replace(LearnerConfig(), lr=0.5))


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (None, "does not exist"),
        ("X = 1\n", "defines no get_config()"),
        ("def get_config():\n    return {'name': 'x'}\n", "returned dict, not Config"),
        (
            "from distrl_jax.config import Config\n\ndef get_config():\n    return Config(accel='abacus')\n",
            "accel='abacus' is not allowed",
        ),
    ],
)
def test_bad_preset_files(tmp_path: pathlib.Path, source: str | None, error: str) -> None:
    path = tmp_path / "bad.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        load_preset(str(path))


def round_trip(cfg: Config, tmp_path: pathlib.Path) -> Config:
    path = tmp_path / "config.yaml"
    save_yaml(cfg, path)
    return from_dict(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("name", ["default", *preset_names()])
def test_yaml_round_trip_of_presets(name: str, tmp_path: pathlib.Path) -> None:
    cfg = Config() if name == "default" else load_preset(name)
    assert round_trip(cfg, tmp_path) == cfg


def test_yaml_round_trip_of_awkward_values(tmp_path: pathlib.Path) -> None:
    cfg = apply_overrides(
        Config(),
        [
            "name=yes",  # YAML 1.1 would read a bare yes as a bool
            "run_dir=runs/with space: colon",
            "checkpoint.init_from=123",  # a string that looks like a number
            "device.kind=adb",
            "device.serials=emulator-5554,192.168.0.2:5555",
            "learner.lr=1e-07",
            "learner.priority_weights=0.1,0.2,0.30000000000000004",
            "eval.greedy=false",
            "runtime.seconds=12.5",
        ],
    )
    back = round_trip(cfg, tmp_path)
    assert back == cfg
    assert back.name == "yes" and back.checkpoint.init_from == "123"


def test_from_dict_refuses_unknown_keys_and_keeps_base() -> None:
    with pytest.raises(ConfigError, match="unknown config field 'lrr'"):
        from_dict({"learner": {"lrr": 0.1}})
    base = Config(seed=4)
    cfg = from_dict({"learner": {"lr": 0.25}}, base=base)
    assert cfg.seed == 4 and cfg.learner.lr == 0.25


def test_to_dict_is_plain_data() -> None:
    d = to_dict(Config())
    text = yaml.safe_dump(d)  # safe_dump refuses anything but plain types
    assert yaml.safe_load(text) == d
    assert isinstance(d["learner"]["priority_weights"], list)


# ---------------------------------------------------------------- names that become folders

UNSAFE_NAMES = ["../../x", "a/b", "/abs", "..", ".hidden", "", "a b", "a\\b", "-dash", "x\0y"]


@pytest.mark.parametrize("field_name", ["name", "model.name"])
@pytest.mark.parametrize("bad", UNSAFE_NAMES)
def test_names_that_would_leave_their_folder_are_refused(field_name: str, bad: str) -> None:
    """``name`` names the run folder and ``model.name`` the warm-start folder: one plain folder
    name each, never a path."""
    assert_config_error(f"{field_name}={bad}", f"{field_name}={bad!r}", "a folder name")


@pytest.mark.parametrize("field_name", ["name", "model.name"])
@pytest.mark.parametrize("good", ["smoke", "smoke-bc", "A1.b_c-2", "7"])
def test_plain_folder_names_are_accepted(field_name: str, good: str) -> None:
    cfg = apply_overrides(Config(), [f"{field_name}={good}"])
    assert (cfg.name if field_name == "name" else cfg.model.name) == good


def test_a_preset_file_with_a_path_for_a_name_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "evil.py"
    path.write_text(
        "from distrl_jax.config import Config\n\ndef get_config():\n"
        "    return Config(name='../../escaped')\n"
    )
    with pytest.raises(ConfigError, match=r"name='\.\./\.\./escaped' is not allowed"):
        load_preset(str(path))
