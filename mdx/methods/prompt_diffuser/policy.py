"""Prompt Diffuser's policy: Prompt-DT acting with a generated prompt.

At `init`, for each environment (vmapped, in-graph): the real prompt Prompt-DT would take from the
task's warm-start data of the tier under evaluation (`prompt_dt.policy`), then
`config.prompt_diffuser.finetune_steps` updates of the pre-trained generator on that environment's
warm-start data (Alg. 1 on the few-shot target data; 0 is the paper's zero-shot use), then a
prompt sampled by the full DDPM chain from the real prompt's y (Alg. 1 line 9; noise variance
`noise_scale`, the paper's low temperature), which replaces the real prompt. `act` and `observe`
are Prompt-DT's.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from mdx.diffusion import sampling
from mdx.evaluation.policy import Policy
from mdx.methods.prompt_diffuser import data as pd_data
from mdx.methods.prompt_diffuser import model as pd_model
from mdx.methods.prompt_diffuser import train as pd_train
from mdx.methods.prompt_dt.policy import prompt_dt_policy

# The fields of `config.prompt_diffuser` only this policy reads (not the pre-training stage): another
# value evaluates the same pre-trained generator.
POLICY_FIELDS = ('noise_scale', 'finetune_steps')


def prompt_diffuser_policy(config, family, params) -> Policy:
  """`params = {'gen', 'norm', 'dt': {'net', 'scales'}}`."""
  p = config.prompt_diffuser
  gen = pd_train.build_generator(config)
  shape = pd_train.prompt_shape(config, family)
  dt = prompt_dt_policy(config, family, params['dt'])
  steps, batch = int(p.finetune_steps), int(p.batch_size)
  sample_config = sampling.SampleConfig(num_diffusion_steps=p.num_diffusion_steps,
                                        noise_scale=p.noise_scale, clip_denoised=1.0)

  def init(prm, rng, tasks, warm):
    dt_rng, tune_rng, sample_rng = jax.random.split(rng, 3)
    state = dt.init_fn(prm['dt'], dt_rng, tasks, warm)
    arrays = pd_data.episode_arrays(warm)  # [B, E, ...]: one task per environment
    update = pd_train.make_update(config, family, prm['dt'], prm['norm'])
    base = pd_train.init_state(config, family, jax.random.PRNGKey(0)).replace(
        params=prm['gen'], ema_params=prm['gen'])

    def tune(one_task, key):  # the generator fine-tuned on one environment's warm-start data
      if steps == 0:
        return base.params
      body = lambda s, k: (update(s, one_task, jnp.zeros((batch,), jnp.int32), k)[0], None)
      tuned, _ = jax.lax.scan(body, base, jax.random.split(key, steps))
      return tuned.params

    b = tasks.task_id.shape[0]
    tuned = jax.vmap(tune)(jax.tree.map(lambda x: x[:, None], arrays),
                           jax.random.split(tune_rng, b))
    y = jnp.stack([state.prompt.returns_to_go,
                   state.prompt.timesteps / config.prompt_dt.max_episode_length], axis=-1)
    x0 = jax.vmap(lambda q, yy, key: pd_model.sample_prompts(
        gen, q, key[None], yy[None], shape=shape, config=sample_config)[0])(
            tuned, y, jax.random.split(sample_rng, b))
    prompt = pd_data.to_steps(x0, state.prompt, prm['dt']['scales'], prm['norm'])
    return state.replace(prompt=prompt)

  return Policy(params=params, init_fn=init,
                act_fn=lambda prm, s, obs, rng: dt.act_fn(prm['dt'], s, obs, rng),
                observe_fn=lambda prm, s, reward: dt.observe_fn(prm['dt'], s, reward))
