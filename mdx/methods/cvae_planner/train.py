"""CVAE-Planner's stage: a conditional VAE over normalized H-step plans `x [H, obs + act]`,
conditioned on `[z, s_t]` (the window's context from MetaDiffuser's trained encoder, and its
first state, which the decoded plan then has imposed, as the diffuser's inpainting).

Loss: the squared error of the decoded plan, weighted as the denoiser's (the first action by
`diffusion.action_weight`, the imposed first state not at all) and masked to the window's valid
steps, plus `cvae.kl_weight` times KL(q(u | x, z, s_t) || N(0, I)). Writes
`WORKDIR/seed_{s}/cvae/`: checkpoints, `metrics.jsonl`, TensorBoard files.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from mdx import data as mdata
from mdx import mesh as mmesh
from mdx import workdir as layout
from mdx.data import normalizer as nz
from mdx.diffusion import loss_weights
from mdx.envs import family_from_config
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.nets import ContextModel
from mdx.nets.vae import CVAE
from mdx.training import TrainState, compiled_init, load_params, reporting, train

STAGE = 'cvae'


def build_cvae(config, family) -> CVAE:
  v = config.cvae
  return CVAE(data_dim=config.diffusion.horizon * (family.obs_dim + family.act_dim),
              latent_dim=v.latent_dim, hidden=tuple(v.hidden))


def condition(z: jax.Array, first_state: jax.Array) -> jax.Array:
  return jnp.concatenate([z, first_state], -1)


@compiled_init
def init_state(config, family, rng) -> TrainState:
  model = build_cvae(config, family)
  h, d = config.diffusion.horizon, family.obs_dim + family.act_dim
  cond = jnp.zeros((1, config.context.context_dim + family.obs_dim))
  params = model.init(rng, jnp.zeros((1, h * d)), cond, jax.random.PRNGKey(0))
  return TrainState.create(params, optax.adam(config.cvae.learning_rate))


def cvae_loss(model, params, x0, z, valid, weights, obs_dim, kl_weight, rng):
  """`x0 [B, H, D]` normalized plans, `z [B, C]`, `valid [B, H]`, `weights [H, D]`."""
  b, h, d = x0.shape
  cond = condition(z, x0[:, 0, :obs_dim])
  x_hat, kl = model.apply(params, x0.reshape(b, -1), cond, rng)
  x_hat = x_hat.reshape(b, h, d).at[:, 0, :obs_dim].set(x0[:, 0, :obs_dim])
  err = jnp.square(x_hat - x0) * weights[None] * valid[..., None]
  recon = err.sum((1, 2)).mean() / jnp.maximum(valid.sum(1).mean(), 1.0)
  loss = recon + kl_weight * kl.mean()
  return loss, {'loss': loss, 'reconstruction': recon, 'kl': kl.mean()}


def make_step(config, family, data, norm, encode, context_data, tier_episodes):
  model, d, c, v = build_cvae(config, family), config.diffusion, config.context, config.cvae
  weights = loss_weights(d.horizon, family.obs_dim, family.act_dim, d.action_weight)
  mesh = mmesh.make_mesh(config)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, rng):
    seg_rng, noise_rng = jax.random.split(rng)
    seg = mdata.sample_segments(seg_rng, data, v.batch_size, history=c.history,
                                horizon=d.horizon, num_context=c.num_context,
                                context_data=context_data, context_blocks=tier_episodes)
    seg = mmesh.constrain_batch(seg, mesh)  # data-parallel over `config.mesh_devices`
    z = jax.lax.stop_gradient(encode(seg.context))
    x0 = nz.normalize_traj(norm, seg.states, seg.actions)
    grads, metrics = jax.grad(lambda p: cvae_loss(
        model, p, x0, z, seg.valid, weights, family.obs_dim, v.kl_weight, noise_rng),
                              has_aux=True)(state.params)
    metrics = dict(metrics, grad_norm=optax.global_norm(grads))
    return state.apply_gradients(grads, ema_decay=v.ema_decay), metrics
  return step


def train_cvae(config, workdir: str, seed: int) -> TrainState:
  """Trains the CVAE of training seed `seed` on the windows of `config.diffusion.tiers`, each
  labelled by the seed's trained context encoder (histories of one tier, as the denoiser's)."""
  family = family_from_config(config)
  tiers = tuple(config.diffusion.tiers)
  loaded = ctx_stage.load_train_tiers(workdir, family, ('expert', *tiers, *config.context.tiers))
  model, params, norm = ctx_stage.load_context(config, workdir, seed, family)
  encode = lambda w: model.apply(params, norm, w, method=ContextModel.encode)
  data = jax.device_put(mdata.concat_episodes([loaded[t] for t in tiers]))
  context_data, tier_episodes = ctx_stage.context_training_data(config, loaded)
  init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 5))
  state = init_state(config, family, init_rng)
  step = make_step(config, family, data, norm, encode, jax.device_put(context_data),
                   tier_episodes)
  return train(layout.stage_dir(workdir, STAGE, seed), state, step, train_rng,
               num_steps=config.cvae.num_train_steps, **reporting(config),
               name=f'{STAGE}/seed_{seed}',
               hparams=config.cvae.to_dict())


def load_cvae(config, workdir: str, seed: int, family):
  template = init_state(config, family, jax.random.PRNGKey(0))
  return build_cvae(config, family), load_params(layout.checkpoint_dir(workdir, STAGE, seed),
                                                 template)
