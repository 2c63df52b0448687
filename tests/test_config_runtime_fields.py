"""The newer config fields (device layout, multi-host mesh, DigiRL, pretraining, sync rounds, warm
starts): bad values are refused with the field's name; history_k lives in the model section; and
the control server's registration ack carries the learner's extra info."""

from __future__ import annotations

import dataclasses

import pytest

from distrl_jax.config import Config, ConfigError, apply_overrides, from_dict, to_dict
from distrl_jax.transport.control import ControlServer
from distrl_jax.transport.control_client import ControlClient


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        (["device.layout=bogus"], "device.layout", "bogus"),
        (["mesh.num_processes=0"], "mesh.num_processes", 0),
        (
            ["mesh.num_processes=2", "mesh.coordinator=host:1234", "mesh.process_id=2"],
            "mesh.process_id",
            2,
        ),
        (["mesh.num_processes=2"], "mesh.coordinator", ""),
        (["mesh.rules=nocolon"], "mesh.rules", "nocolon"),
        (["learner.digirl_advantage_form=x"], "learner.digirl_advantage_form", "x"),
        (["learner.digirl_lambda=2"], "learner.digirl_lambda", 2.0),
        (["pretrain.demo_noise=1.5"], "pretrain.demo_noise", 1.5),
        (["pretrain.steps=0"], "pretrain.steps", 0),
        (["runtime.sync_round=0"], "runtime.sync_round", 0),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    overrides: list[str], field: str, value: object
) -> None:
    """Each bad value raises ConfigError whose message starts with the field and its value."""
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), overrides)
    assert str(info.value).startswith(f"{field}={value!r} is not allowed: "), str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["device.layout=random"],
        ["device.layout=fixed", "device.layout_seed=7"],
        ["mesh.num_processes=2", "mesh.coordinator=10.0.0.1:1234", "mesh.process_id=1"],
        ["mesh.rules=.*/up/bias:model"],
        ["learner.digirl_advantage_form=code", "learner.digirl_lambda=1"],
        ["pretrain.demo_noise=0", "pretrain.steps=1"],
        ["runtime.sync_round=1"],
    ],
)
def test_good_values_at_the_limits_are_accepted(overrides: list[str]) -> None:
    """The allowed values, including the edges of each range, pass validation and are stored."""
    cfg = apply_overrides(Config(), overrides)
    for a in overrides:
        key, value = a.split("=", 1)
        section, name = key.split(".")
        got = getattr(getattr(cfg, section), name)
        want = tuple(value.split(",")) if isinstance(got, tuple) else type(got)(value)
        assert got == want, (key, got)


@pytest.mark.parametrize("init_from", ["bc", "/tmp/runs/x/checkpoints/100", ""])
def test_checkpoint_init_from_takes_bc_a_path_or_nothing(init_from: str) -> None:
    """checkpoint.init_from is free text: 'bc', a checkpoint path, or '' (scratch)."""
    cfg = apply_overrides(Config(), [f"checkpoint.init_from={init_from}"])
    assert cfg.checkpoint.init_from == init_from


def test_history_k_moved_from_tasks_to_model() -> None:
    """tasks.history_k is gone (an unknown field, with a hint); model.history_k is the knob."""
    with pytest.raises(ConfigError, match=r"unknown config field 'history_k'") as info:
        apply_overrides(Config(), ["tasks.history_k=5"])
    assert "TaskConfig" in str(info.value)
    assert not hasattr(Config().tasks, "history_k")
    assert apply_overrides(Config(), ["model.history_k=5"]).model.history_k == 5
    with pytest.raises(ConfigError, match="history_k"):
        apply_overrides(Config(), ["model.history_k=-1"])


def test_several_mesh_rules_from_the_command_line() -> None:
    """Several rules are given ';'-separated, in order (their AXES may hold commas)."""
    cfg = apply_overrides(Config(), ["mesh.rules=.*/a:model;.*/b:_,model"])
    assert cfg.mesh.rules == (".*/a:model", ".*/b:_,model")


def test_a_multi_axis_mesh_rule_from_the_command_line() -> None:
    """The help text's example rule can be given on the command line."""
    cfg = apply_overrides(Config(), ["mesh.rules=.*/up/kernel:_,model"])
    assert cfg.mesh.rules == (".*/up/kernel:_,model",)


def test_multi_axis_mesh_rules_survive_the_dict_round_trip() -> None:
    """A config holding the model's own rules round-trips through to_dict/from_dict."""
    from distrl_jax.models.policy import SHARDING_RULES

    cfg = Config()
    cfg = dataclasses.replace(cfg, mesh=dataclasses.replace(cfg.mesh, rules=SHARDING_RULES))
    assert from_dict(to_dict(cfg)).mesh.rules == SHARDING_RULES


@pytest.mark.timeout(30)
def test_registration_ack_carries_the_server_info() -> None:
    """set_info strings ride on every registration ack (real sockets on loopback)."""
    server = ControlServer("tcp://127.0.0.1:0")
    client = ControlClient(server.endpoint, "actor-info")
    try:
        server.set_info(trajectories="tcp://127.0.0.1:5001", params="tcp://127.0.0.1:5002")
        server.set_info(params="tcp://127.0.0.1:6002")  # a later call updates a key
        ack = client.register(timeout_s=10)
        assert ack == {
            "registered": True,
            "latest_version": -1,
            "trajectories": "tcp://127.0.0.1:5001",
            "params": "tcp://127.0.0.1:6002",
        }
        # Plain heartbeats and version queries do not carry it.
        assert "params" not in client.latest(timeout_s=10)
    finally:
        client.close()
        server.close()
