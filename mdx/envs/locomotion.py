"""Locomotion task families on Brax: Cheetah-Vel, Cheetah-Dir, Ant-Dir, Walker-Param, Hopper-Param.

Each family wraps one Brax robot (its MJCF, its backend-specific tweaks and its reset noise, taken
from `brax.envs`) and steps a Brax physics pipeline directly, so `reset` and `step` are pure
functions of `(task, state, action)` that `jax.vmap` over tasks with no per-family `in_axes`.

Reward-change families (Cheetah-Vel, Cheetah-Dir, Ant-Dir) share one `System`; the task only
enters the reward. Dynamics-change families (Walker-Param, Hopper-Param) rebuild the randomized
leaves of the `System` from `task.params` inside `reset`/`step` (`System.tree_replace`); under
`vmap` only those leaves carry a batch axis, so one compiled step serves every task.

Velocities are finite differences of the torso (root body) position over the control step:
`v = (x_{t+1} - x_t) / dt`, `dt = n_frames * timestep`, as in Brax's own environments.
Actions are clipped to `[-1, 1]` before they reach the simulator and the control cost.
After `done` (time limit or a fall) every further `step` returns the state unchanged, reward
included, as in `PointRobot`; returns must be summed with the `done` mask of the previous state.
The measurements behind the defaults (backends, termination) are in `docs/locomotion.md`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from brax import base as brax_base
from brax import envs as brax_envs
from brax.generalized import pipeline as generalized_pipeline
from brax.mjx import pipeline as mjx_pipeline
from brax.positional import pipeline as positional_pipeline
from brax.spring import pipeline as spring_pipeline
from mujoco import mjx

from mdx.envs.base import EnvState, Task, TaskFamily

_PIPELINES = {
    'generalized': generalized_pipeline,
    'mjx': mjx_pipeline,
    'positional': positional_pipeline,
    'spring': spring_pipeline,
}


# Observation entries to plot (Brax's layouts: halfcheetah and walker2d observe q[1:] (8) then qd
# (9); hopper q[1:] (5) then qd (6); ant q[2:] (13) then qd (14)).
_PLANAR_LABELS = ((8, 'forward velocity'), (0, 'torso height'), (1, 'torso pitch'))
_HOPPER_LABELS = ((5, 'forward velocity'), (0, 'torso height'), (1, 'torso pitch'))
_ANT_LABELS = ((13, 'x velocity'), (14, 'y velocity'), (0, 'torso height'))


@functools.lru_cache(maxsize=None)
def brax_env(env_name: str, backend: str) -> brax_envs.PipelineEnv:
  """The Brax environment a family is built on (cached: loading an MJCF takes ~0.5 s)."""
  if backend not in _PIPELINES:
    raise ValueError(f'backend must be one of {sorted(_PIPELINES)}, got {backend!r}')
  # The System's arrays must be concrete even when the first use is inside a jit trace (the
  # cache would otherwise keep tracers).
  with jax.ensure_compile_time_eval():
    return brax_envs.get_environment(env_name, backend=backend)


@dataclasses.dataclass(frozen=True)
class BraxFamily(TaskFamily):
  """Shared machinery: a Brax robot stepped in-graph, per-task `System`, frozen after `done`.

  Subclasses set `env_name`, the static fields, `sample_task_params` and `task_reward`, and may
  override `task_system` (dynamics changes) and `healthy` (termination).
  """
  env_name: ClassVar[str]
  name: str = ''
  obs_dim: int = 0
  act_dim: int = 0
  task_dim: int = 1
  episode_length: int = 200
  num_tasks: int = 40
  num_test_tasks: int = 10
  num_validation_tasks: int = 10
  task_seed: int = 0
  backend: str = 'spring'  # Brax physics pipeline: 'spring', 'generalized', 'mjx' or 'positional'.
  # Friction cone of the contact solver: 'pyramidal' (MuJoCo's default, the only one of the
  # generalized pipeline) or 'elliptic' (mjx only). In both pipelines a pyramidal contact's
  # regularizer grows as mu^2 (1 + mu^2), so a large friction coefficient mu softens the contact
  # in the normal direction too: a standing hopper with its friction x1.5^3 sinks 0.5 m into the
  # floor in half a second (docs/locomotion.md). Elliptic cones keep the normal stiff.
  cone: str = 'pyramidal'
  ctrl_cost_weight: float = 0.05  # reward -= ctrl_cost_weight * ||clip(a)||^2

  def __post_init__(self):
    brax_env(self.env_name, self.backend)  # Validates `backend` and loads the MJCF eagerly.
    if self.cone not in ('pyramidal', 'elliptic'):
      raise ValueError(f"{type(self).__name__}.cone must be 'pyramidal' or 'elliptic', "
                       f'got {self.cone!r}')
    if self.cone == 'elliptic' and self.backend != 'mjx':
      raise ValueError(f"cone='elliptic' needs backend='mjx' (Brax's {self.backend!r} pipeline "
                       "has pyramidal cones only): pass cone='pyramidal' with this backend")

  # --- static facts of the simulator ---------------------------------------------------------

  @property
  def env(self) -> brax_envs.PipelineEnv:
    """The Brax environment (System, reset noise, observation layout) of this family."""
    return brax_env(self.env_name, self.backend)

  @property
  def sys(self) -> brax_base.System:
    """The unrandomized `System` (with Brax's backend-specific timestep and gear tweaks)."""
    sys = self.env.sys
    if self.cone == 'elliptic':
      sys = sys.replace(opt=sys.opt.replace(cone=mjx.ConeType.ELLIPTIC))
    return sys

  @property
  def dt(self) -> float:
    """Seconds of simulated time per `step` (float32 product, as Brax's `env.dt`)."""
    return float(np.float32(np.asarray(self.sys.opt.timestep)) * np.float32(self.n_frames))

  @property
  def n_frames(self) -> int:
    """Physics substeps per `step`."""
    return int(self.env._n_frames)  # pylint: disable=protected-access

  # --- hooks for subclasses ------------------------------------------------------------------

  def task_system(self, task: Task) -> brax_base.System:
    """The `System` of `task`; reward-change families share the unrandomized one."""
    del task
    return self.sys

  def task_features(self, params: jax.Array) -> jax.Array:
    """What a task-conditioned policy sees of the task, `[task_dim]` -> `[feature_dim]`."""
    return params

  @property
  def feature_dim(self) -> int:
    return int(jax.eval_shape(self.task_features, jax.ShapeDtypeStruct((self.task_dim,),
                                                                       jnp.float32)).shape[-1])

  def healthy(self, physics: Any) -> jax.Array:
    """False when the robot has fallen (ends the episode); never false by default. `[]` bool."""
    del physics
    return jnp.ones((), bool)

  def task_reward(self, task: Task, velocity: jax.Array, action: jax.Array) -> jax.Array:
    """Reward of a transition from the torso velocity `[3]` and the clipped action `[act_dim]`."""
    raise NotImplementedError

  # --- the TaskFamily contract ---------------------------------------------------------------

  def observe(self, physics: Any) -> jax.Array:
    """The policy-visible observation of a pipeline state (Brax's layout, no task), `[obs_dim]`."""
    with _brax_numerics():
      return self.env._get_obs(physics)  # pylint: disable=protected-access

  def torso_position(self, state: EnvState) -> jax.Array:
    """World position of the root body, `[3]` (with leading batch axes if `state` has them)."""
    return state.physics.x.pos[..., 0, :]

  def reset(self, task: Task, rng: jax.Array) -> EnvState:
    """Brax's reset distribution for this robot (init pose + noise), in the physics of `task`."""
    sys = self.task_system(task)
    physics = _init_physics(self.env_name, self.env, sys, rng)
    return EnvState(obs=self.observe(physics), reward=jnp.zeros((), jnp.float32),
                    done=jnp.zeros((), bool), t=jnp.zeros((), jnp.int32), physics=physics)

  def step(self, task: Task, state: EnvState, action: jax.Array) -> EnvState:
    action = self.clip_action(action)
    sys = self.task_system(task)
    pipeline = _PIPELINES[self.backend]

    def substep(physics, _):
      with _brax_numerics():
        return pipeline.step(sys, physics, action), None

    physics, _ = jax.lax.scan(substep, state.physics, (), length=self.n_frames)
    velocity = (physics.x.pos[0] - state.physics.x.pos[0]) / self.dt
    reward = self.task_reward(task, velocity, action).astype(jnp.float32)
    t = state.t + 1
    done = (t >= self.episode_length) | ~self.healthy(physics)
    new = EnvState(obs=self.observe(physics), reward=reward, done=done, t=t, physics=physics)
    return jax.tree.map(lambda old, nw: jnp.where(state.done, old, nw), state, new)


def _init_physics(env_name: str, env: brax_envs.PipelineEnv, sys: brax_base.System,
                  rng: jax.Array) -> Any:
  """Brax's reset noise for `env_name`, applied to `sys.init_q` and initialized in `sys`."""
  _, rng1, rng2 = jax.random.split(rng, 3)  # Brax's own split, so resets match `env.reset(rng)`.
  scale = env._reset_noise_scale  # pylint: disable=protected-access
  q = sys.init_q + jax.random.uniform(rng1, (sys.q_size(),), minval=-scale, maxval=scale)
  if env_name in ('halfcheetah', 'ant'):
    qd = scale * jax.random.normal(rng2, (sys.qd_size(),))
  else:  # hopper, walker2d
    qd = jax.random.uniform(rng2, (sys.qd_size(),), minval=-scale, maxval=scale)
  with _brax_numerics():
    return _PIPELINES[env.backend].init(sys, q, qd)


def _brax_numerics():
  """Brax's pipelines rely on implicit rank promotion; allow it inside them only (tests raise)."""
  return jax.numpy_rank_promotion('allow')


# --- reward-change families ------------------------------------------------------------------


# Task splits (`task_split`) of Cheetah-Vel and Ant-Dir:
# - 'metadiffuser' (default): `num_tasks` tasks drawn from `task_seed`, the last `num_test_tasks`
#   the test split (MetaDiffuser's 40 = 30 + 10);
# - 'prompt_dt': the Prompt-DT repository's split, which papers 003 and 004 use. Cheetah-Vel: its
#   40 velocities `linspace(0.075, 3, 40)`, test indices 2, 7, 15, 23, 26 (v = 0.225, 0.6, 1.2,
#   1.8, 2.025), the other 35 training. Ant-Dir (`ant_dir_50`): 45 training and 5 test angles;
#   the test angles are the repository's (decoded from its task files, to 4 decimals), its
#   training angles are not published apart from its data, so mdx draws 45 from `task_seed`
#   (U[0, 2 pi), as the repository's were drawn). Training tasks come first, then the test tasks.
# The validation split is drawn from the task distribution either way.
TASK_SPLITS = ('metadiffuser', 'prompt_dt')
PROMPT_DT_VELOCITIES = 0.075 * np.arange(1, 41, dtype=np.float32)  # linspace(0.075, 3, 40)
PROMPT_DT_TEST = {'cheetah_vel': (2, 7, 15, 23, 26),  # indices into the velocities
                  'ant_dir': (0.2454, 1.7781, 0.9042, 3.5688, 4.1419)}  # angles
PROMPT_DT_SIZES = {'cheetah_vel': (40, 5), 'ant_dir': (50, 5)}  # (num_tasks, num_test_tasks)


class _TaskSplits:
  """`task_split` for a family with a `task_split` field (`TASK_SPLITS`): the check, and
  `all_tasks` from `prompt_dt_params()` (training then test parameters, `[n]` each) for
  'prompt_dt'."""

  def __post_init__(self):
    name = type(self).__name__
    if self.task_split not in TASK_SPLITS:
      raise ValueError(f'{name}.task_split must be one of {TASK_SPLITS}, got '
                       f'{self.task_split!r}')
    if self.task_split == 'prompt_dt':
      want = PROMPT_DT_SIZES[self.name]
      if (self.num_tasks, self.num_test_tasks) != want:
        raise ValueError(
            f"{name} with task_split='prompt_dt' has {want[0]} tasks, {want[1]} of them test: "
            f'got num_tasks={self.num_tasks}, num_test_tasks={self.num_test_tasks} (set '
            f'env.num_tasks={want[0]}, env.num_test_tasks={want[1]}, or use the config\'s '
            "',prompt_dt_split' preset option)")
    super().__post_init__()

  def all_tasks(self) -> Task:
    if self.task_split == 'metadiffuser':
      return super().all_tasks()
    train, test = self.prompt_dt_params()
    params = jnp.asarray(np.concatenate([train, test]).reshape(-1, 1), jnp.float32)
    return Task(params=params, task_id=jnp.arange(params.shape[0], dtype=jnp.int32))


@dataclasses.dataclass(frozen=True)
class CheetahVel(_TaskSplits, BraxFamily):
  """Half-Cheetah running at a target speed: `r = -|v_x - v_goal| - 0.05 ||a||^2`.

  Task params: `[v_goal]`, `v_goal ~ U[0, max_velocity]`. Never terminates early. `task_split`:
  MetaDiffuser's draw or Prompt-DT's fixed velocities (`TASK_SPLITS`).
  """
  env_name: ClassVar[str] = 'halfcheetah'
  state_labels = _PLANAR_LABELS
  name: str = 'cheetah_vel'
  obs_dim: int = 17
  act_dim: int = 6
  task_dim: int = 1
  backend: str = 'spring'
  ctrl_cost_weight: float = 0.05
  max_velocity: float = 3.0
  task_split: str = 'metadiffuser'

  def sample_task_params(self, rng: jax.Array, n: int) -> jax.Array:
    return jax.random.uniform(rng, (n, 1), minval=0.0, maxval=self.max_velocity)

  def prompt_dt_params(self) -> tuple[np.ndarray, np.ndarray]:
    test = np.asarray(PROMPT_DT_TEST[self.name])
    train = np.delete(np.arange(len(PROMPT_DT_VELOCITIES)), test)
    return PROMPT_DT_VELOCITIES[train], PROMPT_DT_VELOCITIES[test]

  def task_reward(self, task: Task, velocity: jax.Array, action: jax.Array) -> jax.Array:
    return (-jnp.abs(velocity[0] - task.params[0])
            - self.ctrl_cost_weight * jnp.sum(jnp.square(action)))


@dataclasses.dataclass(frozen=True)
class CheetahDir(BraxFamily):
  """Half-Cheetah running forward or backward: `r = d * v_x - 0.05 ||a||^2`, `d in {-1, +1}`.

  There are only two tasks, `[-1]` (id 0) and `[+1]` (id 1); they are the training, the
  validation and the test split (validation differs from test only in its warm-start data and
  evaluation seeds). `sample_task_params` draws `d = +1` with probability `forward_prob` (uniform by default);
  it is used only to train the expert, whose backward gait lags (docs/locomotion.md).
  """
  env_name: ClassVar[str] = 'halfcheetah'
  state_labels = _PLANAR_LABELS
  name: str = 'cheetah_dir'
  obs_dim: int = 17
  act_dim: int = 6
  task_dim: int = 1
  num_tasks: int = 2
  num_test_tasks: int = 2
  num_validation_tasks: int = 2
  backend: str = 'spring'
  ctrl_cost_weight: float = 0.05
  forward_prob: float = 0.5  # P(d = +1) in sample_task_params (expert training only)

  def __post_init__(self):
    if not 0.0 <= self.forward_prob <= 1.0:
      raise ValueError(f'CheetahDir.forward_prob must be in [0, 1], got {self.forward_prob!r}')
    super().__post_init__()

  def sample_task_params(self, rng: jax.Array, n: int) -> jax.Array:
    return jnp.where(jax.random.bernoulli(rng, self.forward_prob, (n, 1)), 1.0, -1.0)

  def all_tasks(self) -> Task:
    return Task(params=jnp.array([[-1.0], [1.0]], jnp.float32), task_id=jnp.arange(2, dtype=jnp.int32))

  def train_tasks(self) -> Task:
    return self.all_tasks()

  def test_tasks(self) -> Task:
    return self.all_tasks()

  def validation_tasks(self) -> Task:
    return self.all_tasks()

  def task_reward(self, task: Task, velocity: jax.Array, action: jax.Array) -> jax.Array:
    return task.params[0] * velocity[0] - self.ctrl_cost_weight * jnp.sum(jnp.square(action))


@dataclasses.dataclass(frozen=True)
class AntDir(_TaskSplits, BraxFamily):
  """Ant running in direction theta (Prompt-DT's `ant_dir.py` reward, Brax's ant).

  `r = v_xy . (cos theta, sin theta) - 0.5 ||a||^2 + 1` (survive bonus); the episode ends when the
  torso height leaves `[0.2, 1.0]`. Task params: `[theta]`, `theta ~ U[0, 2 pi)`; policies see
  `(cos theta, sin theta)` (`task_features`). `task_split`: MetaDiffuser's draw or Prompt-DT's
  (`TASK_SPLITS`).
  """
  env_name: ClassVar[str] = 'ant'
  state_labels = _ANT_LABELS
  name: str = 'ant_dir'
  obs_dim: int = 27
  act_dim: int = 8
  task_dim: int = 1
  backend: str = 'spring'
  ctrl_cost_weight: float = 0.5
  survive_bonus: float = 1.0
  healthy_z_range: tuple[float, float] = (0.2, 1.0)
  task_split: str = 'metadiffuser'

  def sample_task_params(self, rng: jax.Array, n: int) -> jax.Array:
    return jax.random.uniform(rng, (n, 1), minval=0.0, maxval=2 * math.pi)

  def prompt_dt_params(self) -> tuple[np.ndarray, np.ndarray]:
    train = self.sample_task_params(jax.random.PRNGKey(self.task_seed),
                                    self.num_tasks - self.num_test_tasks)
    return np.asarray(train)[:, 0], np.asarray(PROMPT_DT_TEST[self.name], np.float32)

  def task_features(self, params: jax.Array) -> jax.Array:
    return jnp.concatenate([jnp.cos(params), jnp.sin(params)], axis=-1)

  def healthy(self, physics: Any) -> jax.Array:
    z = physics.x.pos[0, 2]
    return (z >= self.healthy_z_range[0]) & (z <= self.healthy_z_range[1])

  def task_reward(self, task: Task, velocity: jax.Array, action: jax.Array) -> jax.Array:
    direction = self.task_features(task.params)
    return (jnp.dot(velocity[:2], direction) + self.survive_bonus
            - self.ctrl_cost_weight * jnp.sum(jnp.square(action)))


# --- dynamics-change families ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ParamFamily(BraxFamily):
  """Randomized physics (CORRO's `rand_param_envs`), one log-scale exponent per parameter group.

  Task params `u = [u_mass, u_inertia, u_friction, u_damping]`, each ~ U[-log_scale_limit, +..].
  Body masses x 1.5^u_mass, body inertias x 1.5^u_inertia, geom friction x 1.5^u_friction and
  joint damping x 1.3^u_damping. Both views of each quantity are scaled: the Brax fields that the
  generalized/spring/positional pipelines read (`link.inertia.mass`, `link.inertia.i`,
  `dof.damping`) and the MuJoCo fields that MJX reads (`body_mass`, `body_inertia`,
  `dof_damping`); contact friction comes from `geom_friction` in every backend. The spring and
  positional pipelines ignore joint damping (and hopper's spring model ignores masses). These
  families default to MJX with elliptic friction cones: with the pyramidal cones of the
  generalized pipeline (and MuJoCo's default), friction x3.4 makes a standing hopper sink through
  the floor (see `BraxFamily.cone`).

  `r = v_x + alive_bonus - 1e-3 ||a||^2`; the episode ends when Brax's health check fails.
  """
  task_dim: int = 4
  # MJX with elliptic friction cones: with pyramidal cones (the generalized pipeline's only kind)
  # the high-friction tasks sink into the floor (docs/locomotion.md, "Physics backend").
  backend: str = 'mjx'
  cone: str = 'elliptic'
  ctrl_cost_weight: float = 1e-3
  alive_bonus: float = 1.0
  log_scale_limit: float = 3.0

  def sample_task_params(self, rng: jax.Array, n: int) -> jax.Array:
    return jax.random.uniform(rng, (n, 4), minval=-self.log_scale_limit,
                              maxval=self.log_scale_limit)

  def multipliers(self, params: jax.Array) -> jax.Array:
    """`[4]` multipliers (mass, inertia, friction, damping) of the task params `[4]`."""
    return jnp.power(jnp.array([1.5, 1.5, 1.5, 1.3], jnp.float32), params)

  def task_system(self, task: Task) -> brax_base.System:
    sys = self.sys
    mass, inertia, friction, damping = jnp.unstack(self.multipliers(task.params))
    return sys.tree_replace({
        'link.inertia.mass': sys.link.inertia.mass * mass,
        'link.inertia.i': sys.link.inertia.i * inertia,
        'dof.damping': sys.dof.damping * damping,
        'body_mass': sys.body_mass * mass,
        'body_inertia': sys.body_inertia * inertia,
        'dof_damping': sys.dof_damping * damping,
        'geom_friction': sys.geom_friction * friction,
    })

  def task_reward(self, task: Task, velocity: jax.Array, action: jax.Array) -> jax.Array:
    del task
    return (velocity[0] + self.alive_bonus
            - self.ctrl_cost_weight * jnp.sum(jnp.square(action)))


@dataclasses.dataclass(frozen=True)
class WalkerParam(_ParamFamily):
  """Walker2d with randomized physics; falls (torso z outside (0.8, 2) or |pitch| >= 1) end it."""
  env_name: ClassVar[str] = 'walker2d'
  state_labels = _PLANAR_LABELS
  name: str = 'walker_param'
  obs_dim: int = 17
  act_dim: int = 6

  def healthy(self, physics: Any) -> jax.Array:
    z, angle = physics.x.pos[0, 2], physics.q[2]
    return (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0)


@dataclasses.dataclass(frozen=True)
class HopperParam(_ParamFamily):
  """Hopper with randomized physics; Brax's health check (z > 0.7, |pitch| < 0.2, |s| < 100)."""
  env_name: ClassVar[str] = 'hopper'
  state_labels = _HOPPER_LABELS
  name: str = 'hopper_param'
  obs_dim: int = 11
  act_dim: int = 3

  def healthy(self, physics: Any) -> jax.Array:
    z, angle = physics.x.pos[0, 2], physics.q[2]
    state_vec = jnp.concatenate([physics.q[2:], physics.qd])
    return (jnp.all(jnp.abs(state_vec) < 100.0) & (z > 0.7)
            & (angle > -0.2) & (angle < 0.2))


FAMILIES = {
    'cheetah_vel': CheetahVel,
    'cheetah_dir': CheetahDir,
    'ant_dir': AntDir,
    'walker_param': WalkerParam,
    'hopper_param': HopperParam,
}

__all__ = ['AntDir', 'BraxFamily', 'CheetahDir', 'CheetahVel', 'FAMILIES', 'HopperParam',
           'WalkerParam', 'brax_env']
