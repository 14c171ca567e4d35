"""Videos of evaluation episodes on the locomotion families, the kept plan drawn as a ghost.

`record_episode` runs one episode of a method (its first training seed, one task of the split,
one warm-start tier) and keeps the simulator's joint positions `q` at every step and, for
planners, the plan kept at every step. `render_gif` draws it with MuJoCo's renderer (headless:
`MUJOCO_GL=egl`, software Mesa on a CPU machine) from the robot's `track` camera. The ghost at
frame t is the state that the plan made `lead` steps earlier (at t - lead) predicted for step t,
drawn translucent over the real body: where they part, the plan was not reachable (the paper's
Figure 3, as a picture). Plans hold observations, which omit the root's position along the
floor (`x`, and `y` for the ant): the ghost's is the real root's at t - lead plus the plan's own
root velocities integrated over the `lead` steps. Observed positions may differ from joint
positions by a constant (Brax's hopper and walker observe the torso's world height, not its slide
joint): that offset is read off the real episode at t - lead.

An episode is saved as `.npz` (`save_episode`), so `experiments/render.py` can draw any saved
episode again (other size, other lead) without JAX or the trained models.
"""
from __future__ import annotations

import io as io_bytes
import json
import os
from typing import Optional

import numpy as np

from mdx import io



def record_episode(config, workdir: str, method, family, split: str, *, task_index: int,
                   tier: str = 'expert', seed: Optional[int] = None) -> dict:
  """One episode of `method` on task `task_index` of `split` (first evaluation key).

  Returns:
    `{'q': [T + 1, nq], 'observations': [T + 1, obs_dim], 'plan_states': [T, H, obs_dim] or
    absent, 'alive': [T], 'rewards': [T], 'task_params': [task_dim]}` as numpy, plus the
    episode's description under `'meta'`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.evaluation.rollout import rollout  # pylint: disable=g-import-not-at-top
  tasks = family.split_tasks(split)
  n = int(tasks.task_id.shape[0])
  if not 0 <= task_index < n:
    raise ValueError(f'config.eval.video_task: {task_index} is not a task index of the '
                     f'{split} split (0..{n - 1})')
  task = jax.tree.map(lambda x: x[task_index:task_index + 1], tasks)
  seed = (config.train_seeds[0] if method.stages else None) if seed is None else seed
  policy = method.make_policy(config, workdir, seed, family)
  warm = None
  if method.uses_warm_start:
    warm = jax.tree.map(lambda x: x[task_index:task_index + 1],
                        mdata.load_dataset(workdir, family, split, tier))
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 9)
  ep = jax.jit(lambda p, r: rollout(family, task, p, r, warm_start=warm, keep_q=True))(
      policy, rng)
  ep = jax.device_get(ep)
  out = {'q': np.asarray(ep.q[0]), 'observations': np.asarray(ep.observations[0]),
         'alive': np.asarray(ep.alive[0]),
         'rewards': np.asarray(ep.rewards[0]), 'task_params': np.asarray(task.params[0])}
  if 'plan_states' in ep.info:
    out['plan_states'] = np.asarray(ep.info['plan_states'][0])
  out['meta'] = {'family': family.name, 'split': split, 'task_index': int(task_index),
                 'task_id': int(np.asarray(task.task_id)[0]), 'method': method.name,
                 'warm_start': tier if method.uses_warm_start else 'n/a',
                 'train_seed': seed, 'return': float(out['rewards'].sum()),
                 'dt': float(family.dt), 'obs_dim': int(family.obs_dim)}
  return out


def save_episode(path: str, episode: dict) -> None:
  """Writes `episode` (from `record_episode`) as one `.npz` (atomically)."""
  arrays = {k: v for k, v in episode.items() if k != 'meta'}
  arrays['meta'] = np.asarray(json.dumps(episode['meta']))
  buffer = io_bytes.BytesIO()
  np.savez_compressed(buffer, **arrays)
  io.write_atomic(path, buffer.getvalue())


def load_episode(path: str) -> dict:
  """An episode written by `save_episode`, checked for the arrays a video needs."""
  with np.load(path, allow_pickle=False) as f:
    episode = {k: f[k] for k in f.files}
  missing = [k for k in ('q', 'observations', 'alive', 'rewards', 'meta') if k not in episode]
  if missing:
    raise ValueError(f'{path}: not an mdx episode file (missing {missing}); write one with '
                     'experiments/render.py --workdir=... or an evaluation with '
                     'config.eval.videos')
  episode['meta'] = json.loads(str(episode['meta']))
  t = episode['alive'].shape[0]
  if episode['q'].shape[0] != t + 1:
    raise ValueError(f"{path}: 'q' has shape {episode['q'].shape}, expected [{t + 1}, nq]")
  return episode


def ghost_positions(q: np.ndarray, observations: np.ndarray, plan_states: np.ndarray,
                    alive: np.ndarray, *, nv: int, dt: float, lead: int
                    ) -> tuple[np.ndarray, np.ndarray]:
  """The ghost's joint positions at every frame.

  Args:
    q: `[T + 1, nq]` the episode's joint positions.
    observations: `[T + 1, obs_dim]` its observations.
    plan_states: `[T, H, obs_dim]` the plan kept at every step (observations: the positions but
      the root's first `nq - (obs_dim - nv)` entries, then the `nv` velocities).
    alive: `[T]` the episode had not ended before step t.
    nv: the robot's number of velocity entries.
    dt: seconds per environment step.
    lead: how many steps ahead the ghost's plan was made (`1 <= lead <= H - 1`).

  Returns:
    `(ghost [T + 1, nq], shown [T + 1] bool)`: frame t shows the state the plan of step
    t - lead predicted for step t, where that plan was made in a live step.
  """
  steps, horizon, obs_dim = plan_states.shape
  if not 1 <= lead <= horizon - 1:
    raise ValueError(f'lead must be in [1, H - 1 = {horizon - 1}], got {lead}')
  nq = q.shape[1]
  n_pos = obs_dim - nv
  skip = nq - n_pos  # root coordinates the observation leaves out (x; x and y for the ant)
  offset = observations[:, :n_pos] - q[:, skip:]  # observed minus joint positions
  ghost, shown = q.copy(), np.zeros(steps + 1, bool)
  for t in range(lead, steps + 1):
    made = t - lead
    if not alive[made]:
      continue
    plan = plan_states[made]
    ghost[t, skip:] = plan[lead, :n_pos] - offset[made]
    # The root's floor coordinates: the plan's own velocities, integrated from the real root.
    ghost[t, :skip] = q[made, :skip] + dt * plan[1:lead + 1, n_pos:n_pos + skip].sum(0)
    shown[t] = True
  return ghost, shown


def use_egl() -> None:
  """Makes MuJoCo's renderer create EGL contexts (headless; Mesa renders them in software on a
  CPU machine) unless `MUJOCO_GL` names another backend. MuJoCo picks its OpenGL backend when
  it is first imported (by Brax, long before any rendering), from `MUJOCO_GL`, and falls back to
  GLFW, which needs a display; this sets the choice at render time instead."""
  if os.environ.get('MUJOCO_GL', '').lower() not in ('', 'egl'):
    return
  from mujoco.egl import GLContext  # pylint: disable=g-import-not-at-top
  from mujoco.rendering.classic import gl_context  # pylint: disable=g-import-not-at-top
  gl_context.GLContext = GLContext


def render_frames(family_name: str, episode: dict, *, width: int = 320, height: int = 240,
                  lead: int = 0, every: int = 1, ghost_rgba=(0.25, 0.55, 1.0, 0.35)) -> np.ndarray:
  """`[F, height, width, 3]` uint8 frames of a saved episode (every `every`-th step, while the
  episode lasts), the plan's ghost drawn `lead` steps ahead (0: `H - 1`; no plans: no ghost)."""
  import mujoco  # pylint: disable=g-import-not-at-top
  use_egl()
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  from mdx.envs import make_family  # pylint: disable=g-import-not-at-top
  family = make_family(family_name)
  model = family.sys.mj_model
  q, alive, rewards = episode['q'], episode['alive'], episode['rewards']
  if q.shape[1] != model.nq:
    raise ValueError(f"'q' has {q.shape[1]} joint positions per step, {family_name}'s robot "
                     f'has nq = {model.nq}')
  plans = episode.get('plan_states')
  ghost = shown = None
  if plans is not None:
    lead = lead or plans.shape[1] - 1
    ghost, shown = ghost_positions(q, episode['observations'], plans, alive, nv=model.nv,
                                   dt=float(episode['meta']['dt']), lead=lead)
  last = int(alive.sum())  # frames 0..last: the episode until it ended
  data, ghost_data = mujoco.MjData(model), mujoco.MjData(model)
  option, perturb = mujoco.MjvOption(), mujoco.MjvPerturb()
  returns = np.concatenate([[0.0], np.cumsum(rewards)])
  meta = episode.get('meta', {})
  frames = []
  with mujoco.Renderer(model, height, width) as renderer:
    for t in range(0, last + 1, every):
      data.qpos[:] = q[t]
      mujoco.mj_forward(model, data)
      renderer.update_scene(data, camera='track')
      if ghost is not None and shown[t]:
        first = renderer.scene.ngeom
        ghost_data.qpos[:] = ghost[t]
        mujoco.mj_forward(model, ghost_data)
        mujoco.mjv_addGeoms(model, ghost_data, option, perturb,
                            mujoco.mjtCatBit.mjCAT_DYNAMIC, renderer.scene)
        for g in range(first, renderer.scene.ngeom):
          renderer.scene.geoms[g].rgba[:] = ghost_rgba
      image = Image.fromarray(renderer.render())
      draw = ImageDraw.Draw(image)
      draw.rectangle((0, 0, width, 15), fill=(20, 20, 30))
      draw.text((4, 2), f"{meta.get('method', '')}, {family_name} task {meta.get('task_id', '?')}"
                f': step {t}, return {returns[t]:.1f}', fill=(255, 255, 255))
      if ghost is not None:
        draw.rectangle((0, height - 15, width, height), fill=(20, 20, 30))
        draw.text((4, height - 13), f'blue ghost: the plan made {lead} steps earlier',
                  fill=(150, 190, 255))
      frames.append(np.asarray(image))
  return np.stack(frames)


def write_gif(path: str, frames: np.ndarray, *, fps: float) -> None:
  """`frames [F, h, w, 3]` uint8 as a looping GIF (written atomically)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = [Image.fromarray(f).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
            for f in frames]
  buffer = io_bytes.BytesIO()
  images[0].save(buffer, format='GIF', save_all=True, append_images=images[1:],
                 duration=int(1000 / fps), loop=0, optimize=True)
  io.write_atomic(path, buffer.getvalue())


def render_gif(path: str, episode: dict, *, width: int = 320, height: int = 240, lead: int = 0,
               every: int = 2) -> int:
  """Renders a saved episode to the GIF `path` at real time (`every`-th step); returns the
  number of frames."""
  meta = episode['meta']
  frames = render_frames(meta['family'], episode, width=width, height=height, lead=lead,
                         every=every)
  write_gif(path, frames, fps=1.0 / (meta['dt'] * every))
  return len(frames)


def evaluation_videos(config, workdir: str, split: str, out_dir: str, methods, family) -> list:
  """The evaluation stage's videos: for each method named in `config.eval.videos`, one episode
  of task `config.eval.video_task` (expert warm start) as `video_<method>.gif` and its
  `video_<method>.npz`; nothing on families without a MuJoCo robot (Point-Robot)."""
  e = config.eval
  if not e.videos or not hasattr(family, 'sys'):
    return []
  written = []
  for method in methods:
    if method.name not in e.videos:
      continue
    episode = record_episode(config, workdir, method, family, split,
                             task_index=int(e.video_task))
    base = os.path.join(out_dir, f'video_{method.name}')
    save_episode(base + '.npz', episode)
    frames = render_gif(base + '.gif', episode)
    io.write_json(base + '.json', episode['meta'])
    print(f'[eval/{split}] video: {base}.gif ({frames} frames, return '
          f"{episode['meta']['return']:.1f})", flush=True)
    written.append(base + '.gif')
  return written
