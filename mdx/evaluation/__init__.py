"""Receding-horizon evaluation in-graph, result records, tables and plots."""
from mdx.evaluation.evaluate import (RESULT_KEYS, evaluate, format_table, make_denoise_fn,
                                     make_guide_fn, make_plan_fn, plan_config)
from mdx.evaluation.rollout import Episodes, infer_contexts, policy_returns, rollout

__all__ = ['RESULT_KEYS', 'evaluate', 'format_table', 'make_denoise_fn', 'make_guide_fn',
           'make_plan_fn', 'plan_config', 'Episodes', 'infer_contexts', 'policy_returns', 'rollout']
