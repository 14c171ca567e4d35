"""Shared set-up of the binaries: JAX's persistent compilation cache and quiet logs."""
import os

import jax


def setup() -> None:
  cache = os.environ.get('JAX_COMPILATION_CACHE_DIR',
                         os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      '.jax_cache'))
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
