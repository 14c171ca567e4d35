"""CORRO's three training stages (`PKU-AI-Edge/CORRO`), per training seed:

1. `corro_cvae` (`train_generative_model.py`): a CVAE of `(s', r)` given `(s, a)` over all
   training tasks' transitions pooled: loss `beta KL + MSE(s') + MSE(r)`.
2. `corro_encoder` (`train_contrastive.py`): the transition encoder by InfoNCE. A query is a
   transition of a task, its positive another transition of the same task, its `num_negatives`
   negatives the query's `(s, a)` with `(s', r)` decoded by the frozen CVAE from `u ~ N(0, I)`:
   transitions of "other tasks" that share the query's state and action, so the encoder cannot
   tell tasks apart by the behaviour policy; with `corro.negatives = 'reward_randomize'` the
   query with its reward perturbed by `N(0, reward_std^2)` instead (the CVAE is then unused).
3. `corro_sac` (`train_offpolicy_with_trained_encoder.py`): offline SAC on `[s, z]`, z the
   attention aggregate of the frozen encoder's embeddings of one episode of the task (the
   aggregator is trained by the critic loss), tasks drawn with replacement; with
   `corro.cql_weight > 0` the critic has CQL's term (the reference's `use_cql`, off in its
   configs). With `corro.context = 'task'` z is the task's true parameters, standardized
   (`TaskFamily.standardize_params`): the same learner with the encoder out of the loop, a
   diagnostic.

Each writes `WORKDIR/seed_{s}/<stage>/`: checkpoints, `metrics.jsonl`, TensorBoard files; every
compiled call runs `updates_per_call` updates (`mdx.rl.make_train_step`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mdx import data as mdata
from mdx import rl
from mdx import workdir as layout
from mdx.envs import family_from_config
from mdx.methods.corro import losses, model
from mdx.rl import sac
from mdx.training import TrainState, compiled_init, checkpoints, train

CVAE_STAGE, ENCODER_STAGE, SAC_STAGE = 'corro_cvae', 'corro_encoder', 'corro_sac'


class NetState(struct.PyTreeNode):
  step: jax.Array  # compiled calls
  net: TrainState


class CorroSACState(struct.PyTreeNode):
  step: jax.Array
  sac: rl.SACState
  aggregator: TrainState


def _scaled(t: mdata.Transitions, scale: float) -> mdata.Transitions:
  return t.replace(actions=t.actions / scale)


def training_data(config, workdir, family):
  return jax.device_put(mdata.concat_episodes([mdata.load_dataset(workdir, family, 'train', tier)
                                               for tier in config.corro.tiers]))


def _seed_rngs(seed: int, salt: int):
  return jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), salt))


def _train(config, workdir, seed, stage, state, update, sample, num_calls):
  c = config.corro
  step = rl.make_train_step(update, sample, c.updates_per_call)
  return train(layout.stage_dir(workdir, stage, seed), state, step, _seed_rngs(seed, 8)[1],
               num_steps=num_calls, log_every=c.log_every, checkpoint_every=c.checkpoint_every,
               wandb=config.wandb, name=f'{stage}/seed_{seed}', hparams=c.to_dict())


def _restore(config, workdir, stage, seed, template):
  directory = layout.checkpoint_dir(workdir, stage, seed)
  with checkpoints.checkpoint_manager(directory) as manager:
    state, _ = checkpoints.restore(manager, template)
  if state is None:
    raise FileNotFoundError(f'{directory}: no checkpoint (train the {stage} stage first)')
  return state


# --- 1. the negative generator --------------------------------------------------------------------


@compiled_init
def init_cvae(config, family, rng) -> NetState:
  s, a = jnp.zeros((1, family.obs_dim)), jnp.zeros((1, family.act_dim))
  params = model.build_cvae(config, family).init(rng, s, a, jnp.zeros((1,)), s,
                                                 jax.random.PRNGKey(0))
  return NetState(step=jnp.zeros((), jnp.int32),
                  net=TrainState.create(params, optax.adam(config.corro.cvae_learning_rate)))


def cvae_loss(cvae, params, t: mdata.Transitions, rng, beta: float):
  (s2_hat, r_hat), kl = cvae.apply(params, t.states, t.actions, t.rewards, t.next_states, rng)
  mse_s = jnp.square(s2_hat - t.next_states).mean()
  mse_r = jnp.square(r_hat - t.rewards).mean()
  loss = beta * kl.mean() + mse_s + mse_r
  return loss, {'loss': loss, 'kl': kl.mean(), 'mse_next_state': mse_s, 'mse_reward': mse_r}


def train_cvae(config, workdir: str, seed: int) -> NetState:
  family = family_from_config(config)
  data, c, scale = training_data(config, workdir, family), config.corro, model.action_scale(family)
  cvae = model.build_cvae(config, family)

  def sample(rng):  # pooled: a task uniformly, then a transition of it
    t_rng, s_rng = jax.random.split(rng)
    tasks = jax.random.randint(t_rng, (c.cvae_batch,), 0, data.num_tasks)
    return jax.tree.map(lambda x: x[:, 0], _scaled(mdata.sample_transitions(s_rng, data, tasks, 1),
                                                   scale))

  def update(state, t, rng):
    grads, metrics = jax.grad(lambda p: cvae_loss(cvae, p, t, rng, c.cvae_beta), has_aux=True)(
        state.net.params)
    return state.replace(net=state.net.apply_gradients(grads, ema_decay=0.0)), metrics
  state = init_cvae(config, family, _seed_rngs(seed, 7)[0])
  return _train(config, workdir, seed, CVAE_STAGE, state, update, sample, c.cvae_num_calls)


# --- 2. the contrastive transition encoder --------------------------------------------------------


@compiled_init
def init_encoder(config, family, rng) -> NetState:
  row = jnp.zeros((1, 2 * family.obs_dim + family.act_dim + 1))
  params = model.build_encoder(config).init(rng, row)
  return NetState(step=jnp.zeros((), jnp.int32),
                  net=TrainState.create(params, optax.adam(config.corro.encoder_learning_rate)))


def _repeat(x: jax.Array, num: int) -> jax.Array:
  """`[B, ...] -> [B, num, ...]`: each query's field for each of its negatives."""
  return jnp.broadcast_to(x[:, None], (x.shape[0], num) + x.shape[1:])


def negatives(cvae, cvae_params, t: mdata.Transitions, num: int, latent_dim: int, rng):
  """`[B, num, row]`: the query's `(s, a)` with `(s', r)` decoded from `u ~ N(0, I)`."""
  u = jax.random.normal(rng, (t.states.shape[0], num, latent_dim))
  s, a = _repeat(t.states, num), _repeat(t.actions, num)
  s2, r = cvae.apply(cvae_params, s, a, u, method=model.TransitionCVAE.decode)
  return model.rows(s, a, r, s2)


def reward_negatives(t: mdata.Transitions, num: int, std: float, rng) -> jax.Array:
  """`[B, num, row]`: the query's `(s, a, s')` with `r + N(0, std^2)` (the reference's
  `reward_randomize` relabelling, for families whose tasks share their dynamics)."""
  r = _repeat(t.rewards, num) + std * jax.random.normal(rng, (t.states.shape[0], num))
  return model.rows(_repeat(t.states, num), _repeat(t.actions, num), r,
                    _repeat(t.next_states, num))


def train_encoder(config, workdir: str, seed: int) -> NetState:
  family = family_from_config(config)
  data, c, scale = training_data(config, workdir, family), config.corro, model.action_scale(family)
  cvae, encoder = model.build_cvae(config, family), model.build_encoder(config)
  cvae_params = load_cvae(config, workdir, seed, family)

  def sample(rng):
    t_rng, q_rng, k_rng = jax.random.split(rng, 3)
    tasks = jax.random.randint(t_rng, (c.encoder_batch,), 0, data.num_tasks)
    one = lambda key: jax.tree.map(lambda x: x[:, 0], _scaled(
        mdata.sample_transitions(key, data, tasks, 1), scale))
    return one(q_rng), one(k_rng)

  def update(state, batch, rng):
    q_t, k_t = batch
    if c.negatives == 'generative':
      negs = negatives(cvae, cvae_params, q_t, c.num_negatives, c.cvae_latent_dim, rng)
    else:
      negs = reward_negatives(q_t, c.num_negatives, c.reward_std, rng)
    as_rows = lambda t: model.rows(t.states, t.actions, t.rewards, t.next_states)

    def loss(params):
      f = lambda x: encoder.apply(params, x)
      value = losses.info_nce(f(as_rows(q_t)), f(as_rows(k_t)), f(negs), c.temperature)
      return value, {'loss': value}
    grads, metrics = jax.grad(loss, has_aux=True)(state.net.params)
    return state.replace(net=state.net.apply_gradients(grads, ema_decay=0.0)), metrics
  state = init_encoder(config, family, _seed_rngs(seed, 9)[0])
  return _train(config, workdir, seed, ENCODER_STAGE, state, update, sample, c.encoder_num_calls)


# --- 3. offline SAC on the aggregated embedding ---------------------------------------------------


def sac_context_dim(config, family) -> int:
  return config.corro.latent_dim if config.corro.context == 'encoder' else family.task_dim


@compiled_init
def init_sac_state(config, family, rng) -> CorroSACState:
  s_rng, a_rng = jax.random.split(rng)
  c = config.corro
  agg = model.AttentionAggregator().init(a_rng, jnp.zeros((1, 2, c.latent_dim)),
                                         jnp.ones((1, 2), bool))
  return CorroSACState(step=jnp.zeros((), jnp.int32),
                       sac=rl.init_sac(s_rng, family.obs_dim + sac_context_dim(config, family),
                                       family.act_dim, model.sac_config(config)),
                       aggregator=TrainState.create(agg, optax.adam(c.learning_rate)))


def episode_rows(data, tasks, episodes, scale):
  """One episode of each task: rows `[M, T, row]` and their valid mask `[M, T]`."""
  take = lambda x: x[tasks, episodes]
  r = model.rows(take(data.observations), take(data.actions) / scale, take(data.rewards),
                 take(data.next_observations))
  return r, take(data.valid)


def train_sac(config, workdir: str, seed: int) -> CorroSACState:
  family = family_from_config(config)
  data, c, scale = training_data(config, workdir, family), config.corro, model.action_scale(family)
  sc, encoder = model.sac_config(config), model.build_encoder(config)
  aggregator = model.AttentionAggregator()
  from_task = c.context == 'task'
  enc_params = None if from_task else load_encoder(config, workdir, seed, family)
  # every training task's z of `context = 'task'`, standardized once, outside the training step
  task_z = family.standardize_params(data.task_params) if from_task else None

  def sample(rng):
    t_rng, e_rng, s_rng = jax.random.split(rng, 3)
    tasks = jax.random.randint(t_rng, (c.meta_batch,), 0, data.num_tasks)  # with replacement
    episodes = jax.random.randint(e_rng, (c.meta_batch,), 0, data.episodes_per_task)
    context = task_z[tasks] if from_task else episode_rows(data, tasks, episodes, scale)
    return context, _scaled(mdata.sample_transitions(s_rng, data, tasks, c.batch_size), scale)

  def update(state: CorroSACState, batch, rng):
    context, t = batch
    if not from_task:
      ctx_rows, ctx_mask = context
      z_ctx = jax.lax.stop_gradient(encoder.apply(enc_params, ctx_rows))  # frozen encoder
    m, b = t.rewards.shape

    def with_z(agg_params, x):  # [M, B, obs] -> [M * B, obs + latent]
      z = context if from_task else aggregator.apply(agg_params, z_ctx, ctx_mask)
      zb = jnp.broadcast_to(z[:, None], (m, b, z.shape[-1]))
      return jnp.concatenate([x, zb], -1).reshape(m * b, -1)
    flat = lambda x: x.reshape((m * b,) + x.shape[2:])
    target_rng, actor_rng = jax.random.split(rng)
    agg_params = state.aggregator.params
    detached = rl.Batch(obs=jax.lax.stop_gradient(with_z(agg_params, t.states)),
                        act=flat(t.actions), rew=flat(t.rewards),
                        next_obs=jax.lax.stop_gradient(with_z(agg_params, t.next_states)),
                        done=flat(t.terminals))
    target_rng, cql_rng = jax.random.split(target_rng)
    target = sac.sac_target(state.sac, detached, target_rng, sc)
    cql = (sac.cql_actions(state.sac.actor.params, detached.obs, detached.next_obs,
                           family.act_dim, cql_rng, sc) if sc.cql_weight > 0 else None)

    def loss(params):  # the critic loss trains the critic and the aggregator
      q_params, a_params = params
      return sac.critic_loss(q_params, with_z(a_params, t.states), detached.act, target, sc,
                             cql)
    (c_loss, q), (q_grads, a_grads) = jax.value_and_grad(loss, has_aux=True)(
        (state.sac.critic.params, agg_params))
    critic = state.sac.critic.apply_gradients(q_grads, ema_decay=1.0 - sc.tau)
    agg = state.aggregator.apply_gradients(a_grads, ema_decay=0.0)
    actor, a_loss, logp = sac.actor_step(state.sac.actor, critic.params, detached.obs,
                                         family.act_dim, actor_rng, sc)
    metrics = dict(critic_loss=c_loss, actor_loss=a_loss, q=q.mean(), target=target.mean(),
                   entropy=-logp.mean())
    return state.replace(sac=state.sac.replace(actor=actor, critic=critic), aggregator=agg), metrics
  state = init_sac_state(config, family, _seed_rngs(seed, 10)[0])
  return _train(config, workdir, seed, SAC_STAGE, state, update, sample, c.sac_num_calls)


# --- loading --------------------------------------------------------------------------------------


def load_cvae(config, workdir, seed, family):
  return _restore(config, workdir, CVAE_STAGE, seed,
                  init_cvae(config, family, jax.random.PRNGKey(0))).net.params


def load_encoder(config, workdir, seed, family):
  return _restore(config, workdir, ENCODER_STAGE, seed,
                  init_encoder(config, family, jax.random.PRNGKey(0))).net.params


def load_sac(config, workdir, seed, family) -> CorroSACState:
  """The trained SAC stage's state (actor, critic and aggregator)."""
  return _restore(config, workdir, SAC_STAGE, seed,
                  init_sac_state(config, family, jax.random.PRNGKey(0)))


def load_corro(config, workdir, seed, family) -> dict:
  """`{'encoder', 'aggregator', 'actor'}` parameters of the trained stages."""
  state = load_sac(config, workdir, seed, family)
  encoder = (None if config.corro.context == 'task'  # z is the task itself
             else load_encoder(config, workdir, seed, family))
  return {'encoder': encoder, 'aggregator': state.aggregator.params,
          'actor': state.sac.actor.params}
