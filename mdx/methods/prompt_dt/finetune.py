"""Prompt-DT-FT (paper 004's baseline): Prompt-DT with all its parameters fine-tuned on the
evaluated task's few-shot data, then prompted as Prompt-DT.

At `init`, for each environment (vmapped, in-graph, so the evaluation stays one compiled
program): Prompt-DT's own initial state (the same prompt, drawn with the same key), then
`config.prompt_dt.finetune_steps` AdamW updates of a copy of the trained network on the
environment's warm-start data of the tier under evaluation: training's loss (the action MSE over a
segment's real steps), `finetune_batch` segments per update, each with a prompt from the same
data, at a constant `finetune_learning_rate` with training's weight decay and global-norm clip
(no warm-up: 004 fine-tunes with "AdamW 1e-4"). `act` runs Prompt-DT's step with each
environment's own network. With `finetune_steps = 0` it is Prompt-DT, action for action.
"""
from __future__ import annotations

import jax
import optax
from flax import struct

from mdx.evaluation.policy import Policy
from mdx.methods.prompt_dt import data as dt_data
from mdx.methods.prompt_dt.policy import DTState, build_model, prompt_dt_policy
from mdx.methods.prompt_dt.train import loss_fn

# The policy's own fields of `config.prompt_dt` (training never reads them).
FINETUNE_FIELDS = ('finetune_steps', 'finetune_batch', 'finetune_learning_rate')


@struct.dataclass
class FTState:
  dt: DTState  # Prompt-DT's state, [B]
  net: dict  # each environment's fine-tuned network, leading [B]


def finetune_optimizer(config) -> optax.GradientTransformation:
  t = config.prompt_dt
  return optax.chain(optax.clip_by_global_norm(t.grad_clip),
                     optax.adamw(t.finetune_learning_rate, weight_decay=t.weight_decay))


def make_finetune(config, family, scales: dt_data.Scales):
  """`finetune(net, arrays, rng) -> net`: `finetune_steps` updates on one task's episodes
  (`arrays`: `data.episode_arrays` of one task, leading `[1, E]`)."""
  model, t = build_model(config, family), config.prompt_dt
  opt, steps, batch = finetune_optimizer(config), int(t.finetune_steps), int(t.finetune_batch)

  def finetune(net, arrays, rng):
    def update(carry, key):
      params, opt_state = carry
      batch_key, dropout_key = jax.random.split(key)
      prompts, segments = dt_data.sample_batch(batch_key, arrays, arrays, batch, t.context_len,
                                               t.prompt_len, scales)
      grads, _ = jax.grad(lambda p: loss_fn(model, p, prompts, segments, dropout_key),
                          has_aux=True)(params)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    if steps == 0:
      return net
    (net, _), _ = jax.lax.scan(update, (net, opt.init(net)), jax.random.split(rng, steps))
    return net
  return finetune


def prompt_dt_ft_policy(config, family, params) -> Policy:
  """`params` as Prompt-DT's (`{'net', 'scales'}`, and `'knobs'` when a sweep traces them)."""
  dt = prompt_dt_policy(config, family, params)
  finetune = make_finetune(config, family, params['scales'])

  def init(p, rng, tasks, warm):
    state = dt.init_fn(p, rng, tasks, warm)  # the same prompt as Prompt-DT's with this key
    arrays = jax.tree.map(lambda x: x[:, None], dt_data.episode_arrays(warm))  # [B, 1, E, ...]
    b = tasks.task_id.shape[0]
    keys = jax.random.split(jax.random.fold_in(rng, 1), b)
    nets = jax.vmap(lambda a, k: finetune(p['net'], a, k))(arrays, keys)
    return FTState(dt=state, net=nets)

  def act(p, state, obs, rng):
    def one(net, s, o):  # Prompt-DT's step for one environment, with its own network
      batched = jax.tree.map(lambda x: x[None], s)
      action, new, info = dt.act_fn({**p, 'net': net}, batched, o[None], rng)
      return action[0], jax.tree.map(lambda x: x[0], new), info
    action, dt_state, info = jax.vmap(one)(state.net, state.dt, obs)
    return action, state.replace(dt=dt_state), info

  def observe(p, state, reward):
    return state.replace(dt=dt.observe_fn(p, state.dt, reward))

  return Policy(params=params, init_fn=init, act_fn=act, observe_fn=observe)
