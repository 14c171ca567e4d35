"""The planner: `plan(...)` (one `lax.scan` over the K denoising steps) and its config/output."""
from mdx.planning.planner import GuideFn, PlanConfig, PlanOutput, plan, trajectory_objective

__all__ = ['GuideFn', 'PlanConfig', 'PlanOutput', 'plan', 'trajectory_objective']
