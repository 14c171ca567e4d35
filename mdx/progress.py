"""Progress lines from inside compiled programs (collection, evaluation, the Figure-3 replays).

A locomotion evaluation is one compiled `lax.scan` over the episode's steps that runs for minutes;
without this it prints nothing until it ends. `tick` goes inside the scan body: every `every`
steps (and at the last step) a host callback prints

  [progress] eval/test MetaDiffuser: step 100/200 (50%), 3.2 steps/s, elapsed 31 s, ETA 31 s

The step counter must be the scan's own step index (an unbatched value, e.g. from
`jnp.arange(T)` in the scanned inputs), so under `vmap` (seeds, sweep settings) the callback
fires once per step, not once per batch element. The callback returns nothing and reads no
traced value but the counter, so results are bitwise those of the program without it; `every=0`
traces no callback at all. Rate and ETA are measured on the host from the step-0 line, so they
leave compilation out; the rate is that of the steps since the previous line.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
from flax import struct


class _Clock:
  """Host-side times per label: the step-0 callback starts a label's clock; the rate is that of
  the steps since the label's previous line (so the ETA follows the current speed)."""

  def __init__(self):
    self.start: dict[str, float] = {}
    self.last: dict[str, tuple[int, float]] = {}

  def line(self, label: str, t: int, total: int) -> str:
    now = time.perf_counter()
    if t == 0 or label not in self.start:
      self.start[label] = now
      self.last[label] = (0, now)
    done = t + 1
    head = f'[progress] {label}: step {done}/{total} ({100 * done / total:.0f}%)'
    prev_t, prev_time = self.last[label]
    self.last[label] = (t, now)
    if t == 0 or now <= prev_time:
      return head
    rate = (t - prev_t) / (now - prev_time)
    return (f'{head}, {rate:.3g} steps/s, elapsed {now - self.start[label]:.0f} s, '
            f'ETA {(total - done) / rate:.0f} s')


_CLOCK = _Clock()


def _to_stdout(line: str) -> None:
  print(line, file=sys.stdout, flush=True)


_PRINT: Callable[[str], None] = _to_stdout


def set_printer(fn: Optional[Callable[[str], None]]) -> Callable[[str], None]:
  """Routes progress lines to `fn` (None: stdout); returns the previous printer (for tests)."""
  global _PRINT
  previous = _PRINT
  _PRINT = fn or _to_stdout
  return previous


@struct.dataclass
class Progress:
  """Where and how often a compiled loop reports: `label` names the program in the line,
  `every` is the period in loop steps (0: no reports, nothing traced)."""
  label: str = struct.field(pytree_node=False, default='')
  every: int = struct.field(pytree_node=False, default=0)

  def tick(self, t: jax.Array, total: int) -> None:
    """Inside a traced loop body at step `t` (0-based, unbatched) of `total`: prints a line
    on the host at `t % every == 0` and at the last step."""
    if not self.every:
      return
    label = self.label

    def report(step):
      _PRINT(_CLOCK.line(label, int(step), total))

    due = (t % self.every == 0) | (t == total - 1)
    jax.lax.cond(due, lambda: jax.debug.callback(report, t), lambda: None)


def from_config(config, label: str) -> Progress:
  """`Progress(label, config.progress_every)`."""
  return Progress(label=label, every=int(config.progress_every))


def steps(total: int) -> jax.Array:
  """`[total]` int32 step indices, to scan over beside a loop's own inputs."""
  return jnp.arange(total, dtype=jnp.int32)
