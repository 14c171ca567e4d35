"""Random: uniform actions over the family's action box. Its return is the normalized score's 0."""
from mdx.data import policies
from mdx.methods.base import Method
from mdx.methods.oracle import behaviour_as_policy


def make_policy(config, workdir, seed, family):
  del config, workdir, seed
  return behaviour_as_policy(policies.behaviour_policy(family, 'random'))


RANDOM = Method(name='Random', make_policy=make_policy, description='uniform random actions')
