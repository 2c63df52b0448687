"""The data that flows through the system: one environment step, one trajectory, one batch.

Arrays are NumPy on the actor and in replay (uint8 screens, int32 tokens) and become JAX arrays
only inside the learner's jitted step. Every array-valued field crosses the wire as one raw frame
(see ``transport``), so the field names below are the wire's array names too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# Array fields of a Trajectory, in wire order, with the dtype each must have.
TRAJECTORY_ARRAYS: dict[str, np.dtype] = {
    "screens": np.dtype(
        np.uint8
    ),  # [T+1, H, W, 3] s_0..s_T (s_T: the screen after the last action)
    "context": np.dtype(np.int32),  # [T+1, Lc] tokens of task + last k actions, for each state
    "actions": np.dtype(np.int32),  # [T, La] action tokens, right-padded with the pad id 0
    "rewards": np.dtype(np.float32),  # [T] 1 on the step that succeeds, else 0
    "penalties": np.dtype(np.float32),  # [T] <= 0: repetition and invalid-action penalties
    "dones": np.dtype(np.float32),  # [T] 1 where the episode terminated (not a horizon cut)
    "behaviour_logp": np.dtype(np.float32),  # [T] log mu(a_t|s_t), summed over the action's tokens
}


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What a device + evaluator report about one step besides the screen."""

    reward: float = 0.0  # 1.0 on the step whose outcome satisfies the goal
    penalty: float = 0.0  # <= 0: invalid-action and repetition penalties of this step
    done: bool = False  # the episode is over (success, STATUS_* action, or horizon)
    success: bool = False  # the goal holds (as judged by the evaluator)
    invalid: bool = False  # the action did not parse or did not apply (a no-op step)
    repeated: bool = False  # the same action as the previous step on an unchanged screen
    truncated: bool = False  # done because the horizon was reached, not by termination
    latency_s: float = 0.0  # the time the device took for this step (simulated or real)


@dataclasses.dataclass
class Trajectory:
    """One episode as an actor recorded it; T = number of actions taken (1 <= T <= horizon)."""

    screens: np.ndarray
    context: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    penalties: np.ndarray
    dones: np.ndarray
    behaviour_logp: np.ndarray
    task: str = ""
    success: bool = False
    policy_version: int = 0
    actor_id: int = 0
    episode_id: int = 0

    @property
    def length(self) -> int:
        """Number of actions T."""
        return int(self.actions.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name (no copies)."""
        return {name: getattr(self, name) for name in TRAJECTORY_ARRAYS}

    def meta(self) -> dict[str, Any]:
        """The scalar fields, JSON-serialisable."""
        return {
            "task": self.task,
            "success": bool(self.success),
            "policy_version": int(self.policy_version),
            "actor_id": int(self.actor_id),
            "episode_id": int(self.episode_id),
        }

    def validate(
        self, *, vocab_size: int | None = None, max_policy_version: int | None = None
    ) -> None:
        """Raise ValueError naming the field when shapes or dtypes are inconsistent, or when the
        values could poison training: non-finite rewards, penalties or behaviour log-probs,
        dones other than 0 or 1, negative token ids or policy version. ``vocab_size`` also
        bounds the token ids (``< vocab_size``) and ``max_policy_version`` the policy version
        (a version the learner has not made yet); None skips those two checks."""
        ranks = {"screens": 4, "context": 2, "actions": 2}
        for name in TRAJECTORY_ARRAYS:
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray):
                raise ValueError(
                    f"trajectory field {name!r} must be a numpy array, got {type(arr)}"
                )
            if arr.ndim != ranks.get(name, 1):
                raise ValueError(
                    f"trajectory field {name!r} has shape {arr.shape}, expected rank {ranks.get(name, 1)}"
                )
        t = self.length
        if t < 1:
            raise ValueError("trajectory has no actions (T must be >= 1)")
        for name, dtype in TRAJECTORY_ARRAYS.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray):
                raise ValueError(
                    f"trajectory field {name!r} must be a numpy array, got {type(arr)}"
                )
            if arr.dtype != dtype:
                raise ValueError(
                    f"trajectory field {name!r} has dtype {arr.dtype}, expected {dtype}"
                )
            want = t + 1 if name in ("screens", "context") else t
            if arr.shape[0] != want:
                raise ValueError(
                    f"trajectory field {name!r} has leading dim {arr.shape[0]}, expected {want} (T={t})"
                )
        if self.screens.ndim != 4 or self.screens.shape[-1] != 3:
            raise ValueError(f"screens must be [T+1, H, W, 3], got {self.screens.shape}")
        self._validate_values(vocab_size, max_policy_version)

    def _validate_values(self, vocab_size: int | None, max_policy_version: int | None) -> None:
        """The content checks of :meth:`validate` (whole-array NumPy reductions, no loops over
        elements): what a well-formed but poisoned trajectory would otherwise carry into replay
        (NaN priorities) or the model (token ids out of the embedding's range)."""
        for name in ("rewards", "penalties", "behaviour_logp"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"trajectory field {name!r} has a non-finite value (NaN or inf)")
        if not ((self.dones == 0.0) | (self.dones == 1.0)).all():
            raise ValueError("trajectory field 'dones' has a value other than 0 or 1")
        for name in ("context", "actions"):
            arr = getattr(self, name)
            if arr.size == 0:
                continue
            low, high = int(arr.min()), int(arr.max())
            if low < 0 or (vocab_size is not None and high >= vocab_size):
                allowed = "ids >= 0" if vocab_size is None else f"ids in [0, {vocab_size})"
                raise ValueError(
                    f"trajectory field {name!r} has token ids in [{low}, {high}]; allowed: {allowed}"
                )
        version = self.policy_version
        if version < 0 or (max_policy_version is not None and version > max_policy_version):
            newest = "" if max_policy_version is None else f" (the newest is {max_policy_version})"
            raise ValueError(f"trajectory policy_version {version} is not a version made{newest}")

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        meta: dict[str, Any],
        *,
        vocab_size: int | None = None,
        max_policy_version: int | None = None,
    ) -> Trajectory:
        """Rebuild from ``arrays()`` and ``meta()`` output; validates the result (the keyword
        arguments are :meth:`validate`'s)."""
        missing = [n for n in TRAJECTORY_ARRAYS if n not in arrays]
        if missing:
            raise ValueError(f"trajectory is missing array fields {missing}")
        traj = cls(
            **{n: arrays[n] for n in TRAJECTORY_ARRAYS},
            task=str(meta.get("task", "")),
            success=bool(meta.get("success", False)),
            policy_version=int(meta.get("policy_version", 0)),
            actor_id=int(meta.get("actor_id", 0)),
            episode_id=int(meta.get("episode_id", 0)),
        )
        traj.validate(vocab_size=vocab_size, max_policy_version=max_policy_version)
        return traj


@dataclasses.dataclass
class Batch:
    """Trajectories padded to a common horizon H for the learner; leading dim B everywhere.

    ``mask[b, t]`` is 1 for real steps t < T_b. Screens and context have H+1 entries; entries past
    T_b repeat nothing meaningful and are masked out by every loss.
    """

    screens: np.ndarray  # [B, H+1, Hs, Ws, 3] uint8
    context: np.ndarray  # [B, H+1, Lc] int32
    actions: np.ndarray  # [B, H, La] int32
    rewards: np.ndarray  # [B, H] float32
    penalties: np.ndarray  # [B, H] float32
    dones: np.ndarray  # [B, H] float32
    behaviour_logp: np.ndarray  # [B, H] float32
    mask: np.ndarray  # [B, H] float32
    success: np.ndarray  # [B] float32
    policy_version: np.ndarray  # [B] int32
    is_weights: (
        np.ndarray
    )  # [B] float32 importance weights from prioritized sampling (1 if uniform)
    indices: np.ndarray  # [B] int64 replay slots, for priority updates
