"""The `Policy` contract, rollouts of any policy in-graph, the evaluation of any set of methods,
bootstrap intervals, tables and plots. Names no method: methods come from `mdx.methods`."""
from mdx.evaluation.evaluate import RESULT_KEYS, evaluate, format_table, make_records, run_method
from mdx.evaluation.policy import Policy, stack_params, stateless
from mdx.evaluation.rollout import Episodes, plan_discrepancy, replay_mask, replay_plan, rollout

__all__ = ['RESULT_KEYS', 'evaluate', 'format_table', 'make_records', 'run_method', 'Policy',
           'stack_params', 'stateless', 'Episodes', 'plan_discrepancy', 'replay_mask',
           'replay_plan', 'rollout']
