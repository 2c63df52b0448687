"""A slow, obvious NumPy (float64) reference for the learner losses: explicit loops, no scans.

Every function takes ONE unpadded view of a trajectory through its real length T and writes
each formula of DESIGN §5 (and DigiRL's) the way it is printed; ``make_trajectory`` builds the
seeded padded inputs. Imported by the loss tests; not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import numpy as np


def make_trajectory(
    rng: np.random.Generator,
    horizon: int,
    length: int,
    *,
    terminal: bool,
    logp_gap: float = 0.7,
    pad_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """One padded trajectory; padding holds wild (but finite) values scaled by ``pad_scale``."""
    t = length
    f32 = np.float32
    value_logits = rng.normal(0.0, 1.5, horizon + 1)
    rewards = rng.uniform(0.0, 1.0, horizon) * (rng.uniform(size=horizon) < 0.4)
    penalties = -0.1 * (rng.uniform(size=horizon) < 0.3)
    dones = np.zeros(horizon)
    if terminal:
        dones[t - 1] = 1.0
    target_logp = -rng.uniform(0.5, 5.0, horizon)
    behaviour_logp = target_logp + rng.normal(0.0, logp_gap, horizon)
    entropy = rng.uniform(0.0, 3.0, horizon)
    mask = (np.arange(horizon) < t).astype(f32)
    pad = slice(t, horizon)
    value_logits[t + 1 :] = pad_scale * rng.choice([-60.0, 60.0], horizon - t)
    rewards[pad] = pad_scale * rng.normal(0.0, 1e3, horizon - t)
    penalties[pad] = pad_scale * rng.normal(0.0, 1e3, horizon - t)
    dones[pad] = rng.choice([0.0, 1.0, 3.5], horizon - t)
    target_logp[pad] = pad_scale * rng.choice([-1e4, 40.0], horizon - t)
    behaviour_logp[pad] = pad_scale * rng.choice([-1e4, 3.0], horizon - t)
    entropy[pad] = pad_scale * 1e4
    return {
        "value_logits": value_logits.astype(f32),
        "traj_value_logit": f32(rng.normal()),
        "target_logp": target_logp.astype(f32),
        "entropy": entropy.astype(f32),
        "rewards": rewards.astype(f32),
        "penalties": penalties.astype(f32),
        "dones": dones.astype(f32),
        "mask": mask,
        "behaviour_logp": behaviour_logp.astype(f32),
        "success": f32(rng.uniform() < 0.5),
    }


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def bce(logit: float, label: float) -> float:
    """Binary cross-entropy −y·log σ(x) − (1−y)·log(1−σ(x)), stable for large |x|."""
    x = float(logit)
    return float(label * np.logaddexp(0.0, -x) + (1.0 - label) * np.logaddexp(0.0, x))


def real_length(mask: np.ndarray) -> int:
    """Number of leading real steps."""
    return int(np.sum(np.asarray(mask) > 0))


def ratios(target_logp: np.ndarray, behaviour_logp: np.ndarray, t_len: int) -> np.ndarray:
    """ρ_t = exp(log π − log μ) for the real steps."""
    out = np.zeros(t_len)
    for t in range(t_len):
        out[t] = np.exp(np.float64(target_logp[t]) - np.float64(behaviour_logp[t]))
    return out


def td(values: np.ndarray, rewards, dones, t_len: int, gamma: float) -> np.ndarray:
    """δ_t = r_t + γ V(s_{t+1})(1 − done_t) − V(s_t)."""
    out = np.zeros(t_len)
    for t in range(t_len):
        out[t] = rewards[t] + gamma * values[t + 1] * (1.0 - dones[t]) - values[t]
    return out


def targets(kind: str, values, rewards, dones, rhos, t_len, *, gamma, lam, c_bar, rho_bar):
    """v_t for 'vtrace', 'retrace_paper' or 'none', summed term by term."""
    delta = td(values, rewards, dones, t_len, gamma)
    c = [lam * min(c_bar, rhos[i]) for i in range(t_len)]
    out = np.zeros(t_len)
    for t in range(t_len):
        if kind == "none":
            out[t] = rewards[t] + gamma * values[t + 1] * (1.0 - dones[t])
            continue
        total = 0.0
        for k in range(t, t_len):
            if kind == "vtrace":
                trace = np.prod([c[i] for i in range(t, k)])
                weight = min(rho_bar, rhos[k])
            else:
                trace = np.prod([c[i] for i in range(t + 1, k + 1)])
                weight = 1.0
            total += gamma ** (k - t) * trace * weight * delta[k]
        out[t] = values[t] + total
    return out


def lambda_return(values, rewards, dones, t_len, *, gamma, lam) -> np.ndarray:
    """G_t = r_t + γ(1 − done_t)[(1 − λ) V(s_{t+1}) + λ G_{t+1}], G after the end = V(s_T)."""
    out = np.zeros(t_len)
    for t in reversed(range(t_len)):
        following = (
            values[t + 1] if t == t_len - 1 else (1 - lam) * values[t + 1] + lam * out[t + 1]
        )
        out[t] = rewards[t] + gamma * (1.0 - dones[t]) * following
    return out


def monte_carlo_return(values, rewards, dones, t_len, *, gamma) -> np.ndarray:
    """Σ_{k=t}^{T−1} γ^{k−t} r_k + γ^{T−t} (1 − done_{T−1}) V(s_T)."""
    out = np.zeros(t_len)
    for t in range(t_len):
        out[t] = sum(gamma ** (k - t) * rewards[k] for k in range(t, t_len))
        out[t] += gamma ** (t_len - t) * (1.0 - dones[t_len - 1]) * values[t_len]
    return out


def aride(traj: dict, hp: dict) -> tuple[float, dict, float]:
    """A-RIDE's (loss, parts, priority) for one padded trajectory dict."""
    t_len = real_length(traj["mask"])
    values = sigmoid(traj["value_logits"])
    rhos = ratios(traj["target_logp"], traj["behaviour_logp"], t_len)
    used = rhos if hp["off_policy_correction"] else np.ones(t_len)
    v = targets(
        hp["value_target"],
        values,
        traj["rewards"],
        traj["dones"],
        used,
        t_len,
        gamma=hp["gamma"],
        lam=hp["lam"],
        c_bar=hp["c_bar"],
        rho_bar=hp["rho_bar"],
    )
    gamma = hp["gamma"]
    adv = np.zeros(t_len)
    pg = 0.0
    value_loss = 0.0
    for t in range(t_len):
        v_next = v[t + 1] if t + 1 < t_len else values[t_len]
        adv[t] = (
            traj["rewards"][t]
            + traj["penalties"][t]
            + gamma * v_next * (1.0 - traj["dones"][t])
            - values[t]
        )
        pg -= min(hp["rho_bar"], used[t]) * adv[t] * traj["target_logp"][t] / t_len
        value_loss += bce(traj["value_logits"][t], min(max(v[t], 0.0), 1.0)) / t_len
    entropy = float(np.mean(np.asarray(traj["entropy"][:t_len], np.float64)))
    policy_loss = pg - hp["entropy_coef"] * entropy
    traj_loss = bce(traj["traj_value_logit"], traj["success"])
    loss = policy_loss + hp["value_coef"] * value_loss + hp["traj_value_coef"] * traj_loss
    delta = td(values, traj["rewards"], traj["dones"], t_len, gamma)
    w1, w2, w3 = hp["priority_weights"]
    priority = (
        w1 * np.mean(np.abs(delta))
        + w2 * np.mean(np.minimum(rhos, hp["rho_max"]))
        + w3 * np.mean(-np.asarray(traj["target_logp"][:t_len], np.float64))
    )
    parts = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "traj_value_loss": traj_loss,
        "targets": v,
        "advantages": adv,
    }
    return loss, parts, float(priority)


def digirl_mc_returns(rewards, t_len, gamma) -> np.ndarray:
    """DigiRL's mc_return_t = Σ_{k≥t} γ^{k−t} r_k (no bootstrap)."""
    return np.array(
        [sum(gamma ** (k - t) * rewards[k] for k in range(t, t_len)) for t in range(t_len)]
    )


def digirl_advantages(traj: dict, *, form: str, lam: float, gamma: float) -> np.ndarray:
    """DigiRL's step advantages: the paper's doubly-robust form or the public code's."""
    t_len = real_length(traj["mask"])
    values = sigmoid(traj["value_logits"])
    r = traj["rewards"]
    mc = digirl_mc_returns(r, t_len, gamma)
    out = np.zeros(t_len)
    for h in range(t_len):
        one_step = values[h + 1] + r[h] - values[h]
        if form == "paper":
            w = lam ** (t_len - h)
            out[h] = w * traj["success"] + (1 - w) * one_step
        else:
            out[h] = one_step - 0.05 + mc[h]
    return out


def digirl(traj: dict, hp: dict) -> dict:
    """DigiRL's per-trajectory loss terms."""
    t_len = real_length(traj["mask"])
    adv = digirl_advantages(traj, form=hp["advantage_form"], lam=hp["lam"], gamma=hp["gamma"])
    labels = (digirl_mc_returns(traj["rewards"], t_len, hp["gamma"]) > 0).astype(float)
    policy = 0.0
    value = 0.0
    for t in range(t_len):
        if adv[t] > hp["advantage_threshold"]:
            policy -= traj["target_logp"][t] / t_len
        value += bce(traj["value_logits"][t], labels[t]) / t_len
        value += bce(traj["value_logits"][t + 1], labels[t]) / t_len
    return {
        "policy_loss": policy,
        "value_loss": value,
        "traj_value_loss": bce(traj["traj_value_logit"], traj["success"]),
        "advantages": adv,
    }
