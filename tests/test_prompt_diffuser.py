"""Prompt Diffuser's pieces: the gradient projection on hand-made conflicting gradients, and the
gradient of a downstream loss through the sampling chain against finite differences (with and
without rematerialized steps)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from mdx.methods.prompt_diffuser import model as pd


def test_conflicting_gradients_are_projected():
  g_dm = {'a': jnp.asarray([1.0, 0.0]), 'b': jnp.asarray(0.0)}
  conflict = {'a': jnp.asarray([-1.0, 1.0]), 'b': jnp.asarray(2.0)}
  update, conflicted = pd.project_conflicting(g_dm, conflict)
  assert bool(conflicted)
  # g_dt' = g_dt - (g_dt . g_dm / |g_dm|^2) g_dm = (0, 1, 2): orthogonal to g_dm.
  np.testing.assert_allclose(update['a'], [1.0, 1.0])
  np.testing.assert_allclose(update['b'], 2.0)
  agree = {'a': jnp.asarray([1.0, 1.0]), 'b': jnp.asarray(-3.0)}
  update, conflicted = pd.project_conflicting(g_dm, agree)
  assert not bool(conflicted)
  np.testing.assert_allclose(update['a'], [2.0, 1.0])
  np.testing.assert_allclose(update['b'], -3.0)


def test_gradient_through_the_chain_matches_finite_differences():
  h, d = 3, 4
  gen = pd.PromptGenerator(hidden=8, step_dim=8)
  rng = jax.random.PRNGKey(0)
  y = jax.random.normal(rng, (5, h, 2))
  keys = jax.random.split(jax.random.PRNGKey(1), 5)
  params = gen.init(rng, jnp.zeros((1, h, d)), jnp.zeros((1,), jnp.int32), y[:1])
  target = jax.random.uniform(jax.random.PRNGKey(2), (5, h, d), minval=-0.5, maxval=0.5)
  downstream = lambda x0: jnp.mean(jnp.square(x0 - target))
  config = pd.chain_config(10, 5)
  config = dataclasses.replace(config, clip_denoised=None)  # smooth everywhere

  def loss(p, remat=True):
    x0 = pd.sample_prompts(gen, p, keys, y, shape=(h, d), config=config, remat=remat)
    return downstream(x0)

  grad = jax.grad(loss)(params)
  np.testing.assert_allclose(ravel_pytree(jax.grad(lambda p: loss(p, False))(params))[0],
                             ravel_pytree(grad)[0], rtol=1e-4, atol=1e-6)
  flat, unravel = ravel_pytree(params)
  direction = jax.random.normal(jax.random.PRNGKey(3), flat.shape)
  direction = direction / jnp.linalg.norm(direction)
  eps = 1e-2
  numeric = (loss(unravel(flat + eps * direction)) - loss(unravel(flat - eps * direction))) / (
      2 * eps)
  analytic = jnp.vdot(ravel_pytree(grad)[0], direction)
  assert abs(float(analytic)) > 1e-4  # the test is not vacuous
  np.testing.assert_allclose(float(numeric), float(analytic), rtol=2e-2)


def test_a_real_prompt_survives_the_round_trip_to_prompt_dt(test_config, data_workdir):
  """x0 of a real prompt, mapped back (`to_steps`), is Prompt-DT's own prompt of those steps."""
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.data import normalizer as nz  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.methods.prompt_diffuser import data as pd_data  # pylint: disable=g-import-not-at-top
  from mdx.methods.prompt_dt import data as dt_data  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  data = mdata.load_dataset(data_workdir, family, 'train', 'expert')
  t = test_config.prompt_dt
  dt_scales = dt_data.make_scales(data, family, t.return_scale)
  norm = nz.init_normalizer(data)
  arrays = pd_data.episode_arrays(data)
  tasks = jnp.arange(data.num_tasks)
  prompts, segments = pd_data.sample_batch(jax.random.PRNGKey(0), arrays, tasks,
                                           context_len=t.context_len, prompt_len=t.prompt_len,
                                           dt_scales=dt_scales, norm=norm,
                                           max_episode_length=t.max_episode_length)
  assert prompts.x0.shape == (data.num_tasks, t.prompt_len, 2 * family.act_dim + 1)
  assert float(jnp.abs(prompts.x0).max()) <= 1.0 + 1e-5
  back = pd_data.to_steps(prompts.x0, prompts.steps, dt_scales, norm)
  np.testing.assert_allclose(back.states, prompts.steps.states, atol=1e-4)
  np.testing.assert_allclose(back.actions, prompts.steps.actions, atol=1e-5)
  # y holds the prompt's returns-to-go and timesteps: the prompt is the end of an episode.
  np.testing.assert_allclose(prompts.y[..., 0], prompts.steps.returns_to_go)
  last = int(prompts.steps.timesteps.max())
  assert last == family.episode_length - 2  # the last steps but the final one
  assert segments.states.shape[:2] == (data.num_tasks, t.context_len)


def test_fine_tuning_steps_are_the_policys_not_the_pre_trained_stages(test_config):
  from mdx import provenance  # pylint: disable=g-import-not-at-top
  from mdx.methods.prompt_diffuser import PROMPT_DIFFUSER_STAGE  # pylint: disable=g-import-not-at-top
  read = provenance.fields(test_config, PROMPT_DIFFUSER_STAGE.reads)
  assert 'prompt_diffuser.hidden' in read and 'prompt_dt.embed_dim' in read
  assert 'prompt_diffuser.finetune_steps' not in read  # evaluated at 2,000 after 200: not refused
  assert 'prompt_diffuser.noise_scale' not in read
