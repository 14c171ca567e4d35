"""Prompt Diffuser's prompts as diffusion samples, and the batches of its two losses.

A prompt (Prompt-DT's: the last K* steps but one of an episode, `prompt_dt.data.prompt_window`)
becomes `x0 [K*, S + A + 1]`, its states, actions and rewards each mapped to [-1, 1] by the
training data's limits (Eq. 8; `mdx.data.normalizer`), and `y [K*, 2]`, its returns-to-go (over
Prompt-DT's return scale) and timesteps (over the timestep table's size), the condition (Eq. 9).
`to_steps` turns a generated x0 back into Prompt-DT's prompt `Steps`: the states and actions
from x0, the returns-to-go, timesteps and mask from the prompt whose y conditioned it (the
generated reward row is not part of Prompt-DT's prompt: SYSTEMS.md's pitfall).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from mdx.data import normalizer as nz
from mdx.methods.prompt_dt import data as dt_data
from mdx.methods.prompt_dt.model import Steps


@struct.dataclass
class Prompt:
  x0: jax.Array  # [..., K*, S + A + 1] normalized (s, a, r); zeros on padding
  y: jax.Array  # [..., K*, 2]: return-to-go / return_scale, timestep / max_episode_length
  steps: Steps  # [..., K*]: Prompt-DT's prompt of the same steps (the real one)


def episode_arrays(data) -> tuple:
  """`(obs, act, rew, rtg, length)` with a leading `[N, E]`."""
  obs, act, rtg, length = dt_data.episode_arrays(data)
  return obs, act, jnp.asarray(data.rewards), rtg, length


def prompt_of(obs, act, rew, rtg, length, k: int, dt_scales: dt_data.Scales,
              norm: nz.Normalizer, max_episode_length: int) -> Prompt:
  """The prompt of one episode (`obs [T, S]`, ...): its last `k` steps but the final one."""
  t = obs.shape[0]
  start = jnp.maximum(length - k - 1, 0)
  steps = dt_data.window(obs, act, rtg, length, start, k, dt_scales)
  taken = jnp.clip(length - start, 0, k)
  src = jnp.clip(start + jnp.arange(k) - (k - taken), 0, t - 1)
  x0 = jnp.concatenate([nz.normalize_obs(norm, obs[src]), nz.normalize_act(norm, act[src]),
                        nz.normalize_rew(norm, rew[src])[:, None]], axis=-1)
  y = jnp.stack([steps.returns_to_go, steps.timesteps / max_episode_length], axis=-1)
  return Prompt(x0=jnp.where(steps.mask[:, None], x0, 0.0), y=y, steps=steps)


def to_steps(x0: jax.Array, real: Steps, dt_scales: dt_data.Scales,
             norm: nz.Normalizer) -> Steps:
  """Prompt-DT's prompt from a generated `x0 [..., K*, D]` and the real prompt it was
  conditioned on."""
  s = norm.obs_dim
  a = norm.act_lo.shape[-1]
  states = dt_scales.states(nz.unnormalize_obs(norm, x0[..., :s]))
  actions = dt_scales.actions(nz.unnormalize_act(norm, x0[..., s:s + a]))
  mask = real.mask[..., None]
  return real.replace(states=jnp.where(mask, states, 0.0),
                      actions=jnp.where(mask, actions, dt_data.ACTION_PAD))


def sample_batch(rng, arrays, tasks: jax.Array, *, context_len: int, prompt_len: int,
                 dt_scales: dt_data.Scales, norm: nz.Normalizer, max_episode_length: int):
  """`(prompts, segments)`: for each entry of `tasks [B]`, the prompt of a random episode of the
  task and a K-step segment of another random episode (Prompt-DT's training segment)."""
  obs, act, rew, rtg, length = arrays
  e = obs.shape[1]
  p_rng, s_rng, start_rng = jax.random.split(rng, 3)
  pe = jax.random.randint(p_rng, tasks.shape, 0, e)
  se = jax.random.randint(s_rng, tasks.shape, 0, e)
  prompts = jax.vmap(lambda o, a, r, g, l: prompt_of(o, a, r, g, l, prompt_len, dt_scales, norm,
                                                     max_episode_length))(
      obs[tasks, pe], act[tasks, pe], rew[tasks, pe], rtg[tasks, pe], length[tasks, pe])
  lengths = length[tasks, se]
  start = jnp.floor(jax.random.uniform(start_rng, tasks.shape) * lengths).astype(jnp.int32)
  segments = jax.vmap(lambda o, a, g, l, s0: dt_data.window(o, a, g, l, s0, context_len,
                                                            dt_scales))(
      obs[tasks, se], act[tasks, se], rtg[tasks, se], lengths, start)
  return prompts, segments
