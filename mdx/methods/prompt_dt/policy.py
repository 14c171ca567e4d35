"""Prompt-DT acting in-graph: its prompt, its last K steps and its return-to-go are the `Policy`
state, so a whole evaluation stays one compiled program.

At `init` each environment draws one episode of its task's warm-start data (the tier under
evaluation) and takes its prompt (`data.prompt_window`), as the reference samples one prompt per
task per evaluation; the return-to-go starts at `target_return / return_scale`. At every step the
observation enters the history with a zero action and the current return-to-go, the network
predicts the action at that state token, and the action replaces the placeholder; `observe`
lowers the return-to-go by `reward / return_scale` (the reference's `pred_return`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

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


def prompt_dt_policy(config, family, params) -> Policy:
  """`params = {'net': ..., 'scales': data.Scales}` (and `'knobs'`: `{'target_return': value}`,
  traced, replacing the config's) as a `Policy` that reads warm-start data."""
  model, cfg = build_model(config, family), config.prompt_dt
  k, k_prompt = int(cfg.context_len), int(cfg.prompt_len)
  last_t = int(cfg.max_episode_length) - 1

  def init(p, rng, tasks, warm):
    if warm is None:
      raise ValueError('Prompt-DT needs warm-start data for its prompts')
    b = tasks.task_id.shape[0]
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
