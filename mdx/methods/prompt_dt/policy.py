"""Prompt-DT acting in-graph: its prompt, its last K steps and its return-to-go are the `Policy`
state, so a whole evaluation stays one compiled program.

At `init` each environment draws one episode of its task's warm-start data (the tier under
evaluation, or `config.prompt_dt.prompt_tier` where set: `load_prompt_tier`) and takes its prompt
(`data.prompt_window`), as the reference samples one prompt per task per evaluation; the
return-to-go starts at `target_return / return_scale`. At every step the observation enters the
history with a zero action and the current return-to-go, the network predicts the action at that
state token, and the action replaces the placeholder; `observe` lowers the return-to-go by
`reward / return_scale` (the reference's `pred_return`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx import data as mdata
from mdx.evaluation.policy import Policy
from mdx.methods.prompt_dt import data as dt_data
from mdx.methods.prompt_dt.model import PromptDT, Steps


@struct.dataclass
class DTState:
  prompt: Steps  # [B, K*]
  history: Steps  # [B, K]: the last K steps, left-padded
  return_to_go: jax.Array  # [B], scaled
  t: jax.Array  # [B] int32: steps taken


def build_model(config, family) -> PromptDT:
  t = config.prompt_dt
  return PromptDT(obs_dim=family.obs_dim, act_dim=family.act_dim, embed_dim=t.embed_dim,
                  num_layers=t.num_layers, num_heads=t.num_heads, hidden=t.hidden,
                  dropout=t.dropout, max_episode_length=t.max_episode_length)


def empty_history(b: int, k: int, obs_dim: int, act_dim: int) -> Steps:
  return Steps(states=jnp.zeros((b, k, obs_dim)), actions=jnp.zeros((b, k, act_dim)),
               returns_to_go=jnp.zeros((b, k)), timesteps=jnp.zeros((b, k), jnp.int32),
               mask=jnp.zeros((b, k), bool))


def push(history: Steps, state, action, return_to_go, t) -> Steps:
  """`history` shifted left by one step, with the new step last."""
  roll = lambda x, new: jnp.concatenate([x[:, 1:], new[:, None]], axis=1)
  return Steps(states=roll(history.states, state), actions=roll(history.actions, action),
               returns_to_go=roll(history.returns_to_go, return_to_go),
               timesteps=roll(history.timesteps, t), mask=roll(history.mask,
                                                               jnp.ones(t.shape, bool)))


# Knobs that change no shapes, for an evaluation sweep (`config.eval.sweep`): the target return
# (`config.prompt_dt.target_return`, environment units), read from `params['knobs']` when traced.
SWEEPABLE = ('target_return',)
# The policy's other field of `config.prompt_dt` (training never reads it): the warm-start tier
# the prompt is taken from, '' for the tier under evaluation (`load_prompt_tier`).
PROMPT_FIELDS = ('prompt_tier',)
PROMPT_SPLITS = ('validation', 'test')  # the splits `load_prompt_tier` reads


def load_prompt_tier(config, workdir: str, family):
  """With `config.prompt_dt.prompt_tier` set, `{'arrays', 'rows'}` for `params['prompt_data']`:
  that tier's warm-start episodes of the validation and test tasks (`data.episode_arrays`,
  the two splits' tasks in one axis) and each task id's row in them (-1 for a task outside
  both), so that the prompt comes from that tier while the methods that fine-tune read the tier
  under evaluation: paper 004's Table 2 grid (rows: the fine-tuning data's quality; columns:
  the prompt's). None when the field is ''."""
  tier = config.prompt_dt.prompt_tier
  if not tier:
    return None
  parts = [mdata.load_dataset(workdir, family, split, tier) for split in PROMPT_SPLITS]
  arrays = jax.tree.map(lambda *xs: jnp.concatenate(xs),
                        *[dt_data.episode_arrays(d) for d in parts])
  ids = np.concatenate([np.asarray(d.task_ids) for d in parts])
  rows = np.full((int(ids.max()) + 1,), -1, np.int32)
  rows[ids] = np.arange(len(ids), dtype=np.int32)
  return {'arrays': arrays, 'rows': jnp.asarray(rows)}


def prompt_dt_policy(config, family, params) -> Policy:
  """`params = {'net': ..., 'scales': data.Scales}` (and `'knobs'`: `{'target_return': value}`,
  traced, replacing the config's; `'prompt_data'`: `load_prompt_tier`'s, the prompts' tier) as a
  `Policy` that reads warm-start data."""
  model, cfg = build_model(config, family), config.prompt_dt
  k, k_prompt = int(cfg.context_len), int(cfg.prompt_len)
  last_t = int(cfg.max_episode_length) - 1

  def init(p, rng, tasks, warm):
    if warm is None:
      raise ValueError('Prompt-DT needs warm-start data for its prompts')
    b = tasks.task_id.shape[0]
    if 'prompt_data' in p:  # another tier's episodes of the same tasks
      rows = p['prompt_data']['rows'].at[tasks.task_id].get(mode='fill', fill_value=-1)
      prompt = dt_data.sample_prompts(rng, p['prompt_data']['arrays'], jnp.maximum(rows, 0),
                                      k_prompt, p['scales'])
      # A task without episodes of that tier (not in PROMPT_SPLITS) gets a NaN prompt, which the
      # evaluation reports as a non-finite episode, instead of another task's prompt.
      known = rows >= 0
      prompt = prompt.replace(
          states=jnp.where(known[:, None, None], prompt.states, jnp.nan),
          returns_to_go=jnp.where(known[:, None], prompt.returns_to_go, jnp.nan))
    else:
      prompt = dt_data.sample_prompts(rng, dt_data.episode_arrays(warm), jnp.arange(b), k_prompt,
                                      p['scales'])
    target = p.get('knobs', {}).get('target_return', cfg.target_return)
    start = jnp.full((b,), target / p['scales'].return_scale, jnp.float32)
    return DTState(prompt=prompt, history=empty_history(b, k, family.obs_dim, family.act_dim),
                   return_to_go=start, t=jnp.zeros((b,), jnp.int32))

  def act(p, state, obs, rng):
    del rng  # deterministic, as the reference's evaluation
    scales = p['scales']
    history = push(state.history, scales.states(obs), jnp.zeros(obs.shape[:1] + (family.act_dim,)),
                   state.return_to_go, state.t)
    action = model.apply(p['net'], state.prompt, history)[:, -1]
    history = history.replace(actions=history.actions.at[:, -1].set(action))
    new = state.replace(history=history, t=jnp.minimum(state.t + 1, last_t))
    return scales.env_actions(action), new, {}

  def observe(p, state, reward):
    return state.replace(return_to_go=state.return_to_go - reward / p['scales'].return_scale)

  return Policy(params=params, init_fn=init, act_fn=act, observe_fn=observe)
